# shown in: docs/index.md
"""The outputs printed in docs/index.md: the hooks recording activations, conv1's output
size on the paper's 224, and 224 refused."""

import numpy as np

from tinyalex import AlexNet
from tinyalex.model import PAPER_LAYERS

model = AlexNet(devices="cpu")
activations = {}


def record(event, name, value):
    if event == "after_forward":
        activations[name] = value


model.hooks.append(record)
model.forward(np.zeros((2, 3, 227, 227), dtype=np.float32), train=False)
print(f'activations["cross3"].shape == {activations["cross3"].shape}')
print(f'activations["fc8"].shape == {activations["fc8"].shape}')
print()

conv1 = PAPER_LAYERS[0]
print(f"(224 - {conv1.kernel}) / {conv1.stride} + 1 = {(224 - conv1.kernel) / conv1.stride + 1}")
print()

try:
    AlexNet(devices="cpu", image_size=224)
except ValueError as error:
    print('>>> AlexNet(devices="cpu", image_size=224)')
    # the message is one line; the page shows it broken after the colon
    print(f"ValueError: {error}".replace(": (size", ":\n(size"))
