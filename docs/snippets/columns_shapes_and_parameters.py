# shown in: docs/columns.md
"""The crossings, the shapes and the parameters of docs/columns.md, read from the paper's
net: a forward pass of two images, the arrays of every layer, and the one-GPU baseline."""

import numpy as np

from tinyalex import AlexNet
from tinyalex.model import fan_ins, schedule


def row(*cells):
    """A Markdown table row; an empty cell stays empty."""
    return "|" + "|".join(f" {cell} " if cell != "" else " " for cell in cells) + "|"


def batch_n(shape):
    """(2, 128, 13, 13) -> "(N, 128, 13, 13)": the shape for any batch size."""
    return "(" + ", ".join(["N"] + [str(d) for d in shape[1:]]) + ")"


model = AlexNet(devices="cpu")
crossed = {}        # crossing name -> (one column's part, both side by side)


def record(event, name, value):
    if name.startswith("cross") and event == "before_forward":
        outputs, _ = value
        crossed[name] = [outputs[0].shape]
    elif name.startswith("cross") and event == "after_forward":
        crossed[name].append(value.shape)


model.hooks.append(record)
x = np.random.default_rng(0).standard_normal((2, 3, 227, 227)).astype(np.float32)
logits = model.forward(x, train=False)
shapes = model.activation_shapes()
assert shapes["column_a"] == shapes["column_b"]
shapes = shapes["column_a"]

# the crossings: what each reads, who reads it
readers = [spec for spec in model.layers if spec.reads == "both"]
print("| crossing | what is read | by | shape of each half |")
print("|---|---|---|---|")
for i, (stage, reader) in enumerate(zip(model.column_a.stages, readers), start=1):
    *before, last = stage.layers
    read = f"flattened {before[-1]}" if last == "flatten" else last
    by = (f"{reader.name}, on column a's device" if reader.name == model.classifier_name
          else f"{reader.name} of a and of b")
    print(row(i, f"{read} outputs of both columns", by, batch_n(crossed[f"cross{reader.number}"][0])))
print()

# every layer's output shape, a row per run of equal shapes within a row of the table
print("| layer | output shape, each column | input |")
print("|---|---|---|")
rows = []
for name, kind, spec in schedule(model.layers[:-1]):
    if kind == "weights" or shapes[name] != rows[-1][1]:
        if kind != "weights":
            source = ""
        elif spec.reads == "image":
            source = f"the image {x.shape}"
        elif spec.reads == "own":
            source = "own column"
        else:
            source = f"crossing {readers.index(spec) + 1}: {crossed[f'cross{spec.number}'][1]}"
        rows.append([[name], shapes[name], source])
    else:
        rows[-1][0].append(name)
for names, shape, source in rows:
    print(row(", ".join(names), shape, source))
print(row(f"{model.classifier_name}, column a only", logits.shape,
          f"crossing {len(readers)}: {crossed[f'cross{readers[-1].number}'][1]}"))
print()

# the parameters of each layer, per column and together
state = model.state_dict()
print("| layer | weight, each column | per column | both columns | merged weight in `state_dict()` |")
print("|---|---|---|---|---|")
per_column_total = 0
for spec in model.layers[:-1]:
    layers = [column.layer(spec.name) for column in model.columns]
    per_column = layers[0].weight.size + layers[0].bias.size
    per_column_total += per_column
    print(row(spec.name, layers[0].weight.shape, f"{per_column:,}", f"{len(layers) * per_column:,}",
              state[f"{spec.name}.weight"].shape))
fc8 = model.fc8.weight.size + model.fc8.bias.size
print(row("fc8", f"{model.fc8.weight.shape}, column a only", "", f"{fc8:,}", state["fc8.weight"].shape))
print(row("total", "", f"{per_column_total:,}", f"**{model.num_parameters():,}**", ""))
print()

# the counts, and the multiply-adds of one image: each output value (before pooling) of a
# layer takes fan-in multiply-adds
total = model.num_parameters()
fc_parameters = sum(state[f"{spec.name}.{p}"].size for spec in model.layers if not spec.is_conv
                    for p in ("weight", "bias"))
fan_in = fan_ins(model.layers, model.image_size, len(model.columns))
outputs = {spec.name: int(np.prod(shapes[spec.name][1:])) * len(model.columns) for spec in model.layers[:-1]}
outputs["fc8"] = model.num_classes
macs = {name: outputs[name] * fan_in[name] for name in outputs}
conv_macs = sum(macs[spec.name] for spec in model.layers if spec.is_conv)
print(f"model.num_parameters() = {total:,}; the sizes in state_dict(), summed: "
      f"{sum(v.size for v in state.values()):,}")
print(f"in the fully-connected layers: {fc_parameters:,} parameters ({fc_parameters / total:.1%})")
print(f"multiply-adds per image, forward: {sum(macs.values()):,}, "
      f"{conv_macs / sum(macs.values()):.1%} of them in the conv layers")
cells = [f"{name} {count:,}" for name, count in macs.items()]
for start in range(0, len(cells), 4):
    print("  " + "".join(f"{cell:20}" for cell in cells[start:start + 4]).rstrip())
print()

# the paper's one-GPU baseline (section 3.2): half the kernels in conv1-conv4, one column
baseline = AlexNet(devices="cpu", columns=1, channels=(48, 128, 192, 192, 256))
print(f"one column, half the kernels of conv1-conv4: {baseline.num_parameters():,} parameters")
print(f"two columns (the paper's net):               {total:,} parameters")
