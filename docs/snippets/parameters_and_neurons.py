# shown in: docs/introduction.md
"""The paper's "60 million parameters and 650,000 neurons", counted on the real model.

A neuron here is one output value of a layer for one image, before pooling: a convolution
with K kernels and an H x W output has H * W * K of them, a fully-connected layer one per
row of its weight matrix. The shapes are read from a forward pass, not typed in.
"""

import numpy as np

from tinyalex import AlexNet
from tinyalex.model import PAPER_LAYERS

model = AlexNet(devices="cpu")
model.forward(np.zeros((1, 3, 227, 227), dtype=np.float32), train=False)
shapes = model.activation_shapes()          # {column: {layer: output shape}}
state = model.state_dict()                  # the merged view: conv1.weight (96, 3, 11, 11), ...

# the neurons counted in the paper's Figure 2 (section 3.5), conv1 .. fc8
PAPER_FIGURE = [253_440, 186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000]

print(f"{'layer':6} {'output of one image':>20} {'neurons':>9} {'paper':>9} {'parameters':>12}")
total_neurons = 0
for spec, paper in zip(PAPER_LAYERS, PAPER_FIGURE):
    if spec.name == "fc8":
        neurons, shape = model.num_classes, f"{model.num_classes}"
    else:
        # both columns together: each holds half of the kernels or neurons
        per_column = [column[spec.name][1:] for column in shapes.values()]
        merged = (sum(s[0] for s in per_column),) + per_column[0][1:]
        neurons, shape = int(np.prod(merged)), " x ".join(str(d) for d in merged[1:] + merged[:1])
    parameters = state[f"{spec.name}.weight"].size + state[f"{spec.name}.bias"].size
    total_neurons += neurons
    print(f"{spec.name:6} {shape:>20} {neurons:>9,} {paper:>9,} {parameters:>12,}")
print(f"{'total':6} {'':>20} {total_neurons:>9,} {sum(PAPER_FIGURE):>9,} {model.num_parameters():>12,}")
print()
conv = total_neurons - sum(PAPER_FIGURE[5:])
print(f"conv1 neurons: 55 * 55 * 96 = {55 * 55 * 96:,}; the paper's figure says 253,440")
print(f"neurons in the conv layers: {conv:,}, in the fc layers: {total_neurons - conv:,}")
fc = sum(state[f"{n}.weight"].size + state[f"{n}.bias"].size for n in ("fc6", "fc7", "fc8"))
print(f"parameters in the fc layers: {fc:,} of {model.num_parameters():,} "
      f"({100 * fc / model.num_parameters():.1f}%)")
largest = max(("conv1", "conv2", "conv3", "conv4", "conv5"), key=lambda n: state[f"{n}.weight"].size)
size = state[f"{largest}.weight"].size + state[f"{largest}.bias"].size
print(f"the largest conv layer: {largest}, {size:,} parameters ({100 * size / model.num_parameters():.2f}%)")
# Multiply-accumulates of one forward pass: every neuron takes one dot product with its
# weights, as long as one kernel (conv: weight[0]) or one row of the matrix (fc).
macs = {}
for spec in PAPER_LAYERS:
    weight = state[f"{spec.name}.weight"]
    per_neuron = weight[0].size
    count = (model.num_classes if spec.name == "fc8" else
             sum(int(np.prod(column[spec.name][1:])) for column in shapes.values()))
    macs[spec.name] = count * per_neuron
conv_macs = sum(v for k, v in macs.items() if k.startswith("conv"))
print(f"multiply-accumulates per image, forward: {sum(macs.values()):,}, "
      f"{100 * conv_macs / sum(macs.values()):.1f}% of them in the conv layers")
