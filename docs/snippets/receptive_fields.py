# shown in: docs/introduction.md
"""Local connectivity, weight sharing and receptive fields, computed from the table of layers."""

from tinyalex.model import PAPER_LAYERS

image = 227
conv1 = PAPER_LAYERS[0]
inputs_per_neuron = conv1.kernel * conv1.kernel * 3 + 1          # an 11 x 11 x 3 window and a bias
neurons = 55 * 55 * conv1.width
print("conv1 as three kinds of layer, on a 227 x 227 x 3 image:")
print(f"  fully connected (every neuron sees every pixel): {neurons:,} x {image * image * 3 + 1:,}"
      f" = {neurons * (image * image * 3 + 1):,} weights")
print(f"  locally connected (11 x 11 x 3 windows, no sharing): {neurons:,} x {inputs_per_neuron}"
      f" = {neurons * inputs_per_neuron:,} weights")
print(f"  convolution (the 96 kernels shared by all 55 x 55 positions): {conv1.width} x {inputs_per_neuron}"
      f" = {conv1.width * inputs_per_neuron:,} weights")
local_saving = (image * image * 3 + 1) / inputs_per_neuron
print(f"local connectivity saves a factor of {local_saving:.0f}, weight sharing another {neurons // conv1.width:,}")
print()

# The receptive field of a unit: the square of input pixels that can change it. A k x k
# window (convolution or pooling) widens it by (k - 1) times the distance, in input pixels,
# between neighbouring units of the layer it reads ("jump"); a stride multiplies the jump.
print(f"{'after':7} {'receptive field':>16} {'jump':>5}")
field, jump = 1, 1
for spec in PAPER_LAYERS:
    if not spec.is_conv:
        break
    field, jump = field + (spec.kernel - 1) * jump, jump * spec.stride
    print(f"{spec.name:7} {field:>10} x {field:<3} {jump:>5}")
    if spec.pool:
        size, stride = spec.pool
        field, jump = field + (size - 1) * jump, jump * stride
        print(f"{'pool' + spec.number:7} {field:>10} x {field:<3} {jump:>5}")
