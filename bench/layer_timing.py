"""One tinyalex training step with every layer of every column timed on its own.

:func:`layer_by_layer_step` runs an ordinary step -- ``AlexNet.forward``,
``SoftmaxCrossEntropy``, ``AlexNet.backward``, ``SGD.step`` -- with a hook on the model
(``AlexNet.hooks``) that waits for the device before and after each layer and each
crossing and times it. So it times the model's real schedule, whatever it is; the only
difference from an untimed step is the waiting, which ``compare.py`` checks changes
nothing: the same weights and loss as a normal step.
"""

import time


class LayerTimer:
    """A model hook: seconds per step name and direction, each layer's columns summed.

    The names are the model's without the column ("conv1" for "column_a.conv1" and
    "column_b.conv1"); ``crossN`` is the crossing in front of layer N.
    """

    def __init__(self, sync):
        self.sync, self.times, self.started = sync, {}, {}

    def __call__(self, event, name, value):
        when, direction = event.split("_")
        name = name.split(".")[-1]
        self.sync()
        if when == "before":
            self.started[name, direction] = time.perf_counter()
        else:
            entry = self.times.setdefault(name, {"forward": 0.0, "backward": 0.0})
            entry[direction] += time.perf_counter() - self.started.pop((name, direction))

    def time(self, name, direction, fn, *args):
        """Time a step outside the model (the loss, the optimizer) under ``name``."""
        self(f"before_{direction}", name, args)
        result = fn(*args)
        self(f"after_{direction}", name, result)
        return result


def layer_by_layer_step(model, x, labels, loss_fn, optimizer, sync=lambda: None):
    """Train ``model`` one step on (x, labels) and return (loss, times).

    times: {name: {"forward": seconds, "backward": seconds}} in the order the steps first
    ran, each layer's columns summed; ``loss`` is the softmax cross-entropy, and ``sgd``
    the optimizer step, counted as "backward".
    sync: waits until the device has finished its queued work (a no-op on the CPU).
    """
    timer = LayerTimer(sync)
    model.hooks.append(timer)
    try:
        logits = model.forward(x, train=True)
        loss = timer.time("loss", "forward", loss_fn.forward, logits, labels)
        model.backward(timer.time("loss", "backward", loss_fn.backward))
    finally:
        model.hooks.remove(timer)
    timer.time("sgd", "backward", optimizer.step, model.parameters())
    return loss, timer.times
