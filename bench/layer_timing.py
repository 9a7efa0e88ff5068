"""One tinyalex training step with every layer of every column timed on its own.

:func:`layer_by_layer_step` does what ``AlexNet.forward``, ``SoftmaxCrossEntropy`` and
``AlexNet.backward`` followed by ``SGD.step`` do, in the same order and with the same
arrays, but calls the layers one at a time and waits for the device before and after each
call. It must follow any change to the order of work in ``tinyalex/model.py``;
``compare.py`` checks that it still gives exactly the weights and loss of a normal step.
"""

import time

from tinyalex.backend import on_device, to_device
from tinyalex.layers import Dropout
from tinyalex.model import cross, sum_crossed_gradients, uncross

CROSSINGS = {1: "cross3", 2: "cross6", 3: "cross7"}  # the stage that reads a crossing -> its name


def layer_by_layer_step(model, x, labels, loss_fn, optimizer, sync=lambda: None):
    """Train ``model`` one step on (x, labels) and return (loss, times).

    times: {name: {"forward": seconds, "backward": seconds}} in network order, each layer's
    two columns summed. ``crossN`` is the crossing in front of layer N (concatenating both
    columns' outputs forward; splitting and summing the gradients backward); ``loss`` is
    the softmax cross-entropy; ``sgd`` the optimizer step, counted as "backward".
    sync: waits until the device has finished its queued work (a no-op on the CPU).
    """
    a, b = model.column_a, model.column_b
    times = {}

    def run(name, direction, fn, *args):
        sync()
        start = time.perf_counter()
        result = fn(*args)
        sync()
        entry = times.setdefault(name, {"forward": 0.0, "backward": 0.0})
        entry[direction] += time.perf_counter() - start
        return result

    def stage_forward(stage, h):
        with on_device(stage.device):
            for name, layer in stage.layers.items():
                h = run(name, "forward", layer.forward, *((h, True) if isinstance(layer, Dropout) else (h,)))
        return h

    def stage_backward(stage, dout):
        with on_device(stage.device):
            for name, layer in reversed(stage.layers.items()):
                dout = run(name, "backward", layer.backward, dout)
        return dout

    if x.dtype != model.dtype:
        x = x.astype(model.dtype)
    xa = stage_forward(a.stages[0], to_device(x, a.device))
    xb = stage_forward(b.stages[0], to_device(x, b.device))
    for stage in (1, 2, 3):
        input_a = run(CROSSINGS[stage], "forward", cross, xa, xb, a.device)
        input_b = run(CROSSINGS[stage], "forward", cross, xa, xb, b.device)
        xa, xb = stage_forward(a.stages[stage], input_a), stage_forward(b.stages[stage], input_b)
    with on_device(a.device):
        features = run("cross8", "forward", cross, xa, xb, a.device)
        logits = run("fc8", "forward", model.fc8.forward, features)
        loss = run("loss", "forward", loss_fn.forward, logits, labels)
        dlogits = run("loss", "backward", loss_fn.backward)
        dfeatures = run("fc8", "backward", model.fc8.backward, dlogits)
    da, db = run("cross8", "backward", uncross, dfeatures, a.device, b.device)
    for stage in (3, 2, 1):
        dxa, dxb = stage_backward(a.stages[stage], da), stage_backward(b.stages[stage], db)
        da, db = run(CROSSINGS[stage], "backward", sum_crossed_gradients, dxa, dxb, a.device, b.device)
    stage_backward(a.stages[0], da)
    stage_backward(b.stages[0], db)
    run("sgd", "backward", optimizer.step, model.parameters())
    return loss, times
