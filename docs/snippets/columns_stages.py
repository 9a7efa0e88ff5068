# shown in: docs/columns.md
"""The stages of one column of the paper's network, as Column builds them from the table."""

from tinyalex import AlexNet

# small widths: building the stages does not depend on them, and the full net takes seconds
model = AlexNet(devices="cpu", channels=(8, 16, 16, 16, 16), hidden=32, num_classes=10)
for i, stage in enumerate(model.column_a.stages):
    reads = "reads the image" if i == 0 else f"reads crossing {i} ({model.crossings[i - 1]})"
    print(f"{f'stages[{i}]':10} {' '.join(stage.layers):54} {reads}")
