# shown in: docs/distributed.md
"""The arithmetic of docs/distributed.md: what an all-reduce leaves, batch shares, gradient
bytes, the ring all-reduce's traffic, and where AlexNet's parameters and multiply-adds are."""

import numpy as np

from tinyalex import AlexNet
from tinyalex.distributed import batch_share

# an all-reduce with the operation "sum": every process ends with the sum of all the vectors
vectors = [np.array([1, 2, 3]) * 10**rank for rank in range(3)]
print("before:   " + "    ".join(f"rank {rank}: {vector}" for rank, vector in enumerate(vectors)))
print("after:    " + "   ".join(f"rank {rank}: {sum(vectors)}" for rank in range(len(vectors))))
print()

shares = [batch_share(128, rank, 3) for rank in range(3)]
print("global batch 128 on 3 processes: rows " + ", ".join(f"{a}:{b}" for a, b in shares)
      + " (weights " + ", ".join(f"{b - a}/128" for a, b in shares) + ")")
print()

model = AlexNet(devices="cpu")
gradient_bytes = model.num_parameters() * model.dtype.itemsize
print(f"paper AlexNet: {model.num_parameters():,} parameters = {gradient_bytes / 1e6:.1f} MB of float32 gradients")
print("ring all-reduce, bytes sent per process and step: "
      + ", ".join(f"N={n} {2 * (n - 1) / n * gradient_bytes / 1e6:.1f} MB" for n in (2, 4, 8)))
print()

# multiply-adds of a layer for one image: its weights times the positions of its output
output_shapes = {}
for name, layer in model.layers_with_parameters():
    def recording(*args, name=name, forward=layer.forward, **kwargs):
        out = forward(*args, **kwargs)
        output_shapes[name] = out.shape
        return out
    layer.forward = recording
model.forward(np.zeros((1, 3, 227, 227), np.float32), train=False)
parameters = {"conv": 0, "fc": 0}
multiply_adds = {"conv": 0, "fc": 0}
for name, layer in model.layers_with_parameters():
    kind = "conv" if "conv" in name else "fc"
    parameters[kind] += layer.weight.size + layer.bias.size
    multiply_adds[kind] += layer.weight.size * int(np.prod(output_shapes[name][2:]))
for kind, label in (("conv", "conv1-conv5"), ("fc", "fc6-fc8")):
    print(f"{label}: {parameters[kind]:,} parameters ({100 * parameters[kind] / sum(parameters.values()):.1f}%), "
          f"{multiply_adds[kind]:,} multiply-adds per image "
          f"({100 * multiply_adds[kind] / sum(multiply_adds.values()):.1f}%)")
