"""Check that tinyalex and PyTorch compute the same numbers, before comparing their speed.

    python bench/compare.py [--device cpu|0] [--dtype float32|float64] [--batch N]

Checks, each reported as one relative error ||a - b|| / max(||a||, ||b||):

1. the layers the benchmark also times alone, against PyTorch's own ops: LRN (with the
   paper's constants and with exaggerated ones, alpha = 1 and k = 1, which expose a wrong
   window), max-pooling (also of an 8x11 map the windows do not tile, both rounding
   rules), im2col against ``unfold`` and col2im against ``fold``;
2. the whole net with the same weights (copied by ``torch_alexnet_from``) and the same
   images: the logits in evaluation mode, the loss, and the gradient of every parameter
   (dropout off in both, so that both compute the same function). The images are
   redrawn while a few max-pool windows are near-ties that the two frameworks (or, in
   float32, tinyalex's float64 twin, which referees disagreements) resolve differently
   (their gradient would go to different inputs: a kink, not a bug);
3. one SGD step: tinyalex's velocity against PyTorch's momentum buffer. The paper's rule
   (v <- 0.9 v - 0.0005 lr w - lr dL/dw, w <- w + v) and ``torch.optim.SGD`` (buf <- 0.9 buf
   + dL/dw + 0.0005 w, w <- w - lr buf) are the same update with v = -lr * buf;
4. the variants of the architecture table (tanh, no LRN, pooling 2/2, one column, no
   conv4), from which both frameworks build their nets: the same logits;
5. the benchmark's layer-by-layer training step (``layer_timing.py``) against tinyalex's
   own, on a small net with dropout on: the same loss and weights after two steps.

Exits with status 1 if any error is above the tolerance: 1e-4 in float32, 1e-10 in float64.
"""

import argparse
import os
import sys

import numpy as np

os.environ["CUPY_TF32"] = "0"  # full float32 matrix products in CuPy; read when cupy is imported

import tinyalex  # noqa: E402
from tinyalex import PAPER  # noqa: E402
from tinyalex.backend import on_device, to_device, to_numpy  # noqa: E402
from tinyalex.layers.conv import col2im, im2col  # noqa: E402
from tinyalex.testing import rel_error as array_rel_error  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("compare.py needs PyTorch: pip install torch (the CPU build is enough on a CPU machine)")

from alexnet_torch import torch_alexnet_from, torch_device  # noqa: E402
from layer_timing import layer_by_layer_step  # noqa: E402

TOLERANCE = {"float32": 1e-4, "float64": 1e-10}
PIXEL_STD = 60.0  # mean-subtracted 0..255 pixels: the scale at which LRN has a visible effect
POOLS = ("pool1", "pool2", "pool5")
MAX_DRAWS = 10
MAX_NEAR_TIES = 20  # more windows with different winners than this is not bad luck


def rel_error(a, b):
    """tinyalex's one error number, for arrays of either framework on any device."""
    return array_rel_error(*(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x for x in (a, b)))


def merged_view(model, lookup):
    """Per-column arrays (``column_a.conv2.weight``, ...) as one-device NumPy arrays
    (``conv2.weight``, column a's part first), the layout of ``AlexNet.state_dict()``."""
    merged = {}
    for spec in model.layers[:-1]:
        for param in ("weight", "bias"):
            merged[f"{spec.name}.{param}"] = np.concatenate(
                [to_numpy(lookup(f"column_{column.name}.{spec.name}.{param}")) for column in model.columns], axis=0)
    for param in ("weight", "bias"):
        merged[f"{model.classifier_name}.{param}"] = to_numpy(lookup(f"{model.classifier_name}.{param}"))
    return merged


class Report:
    def __init__(self, tolerance):
        self.tolerance, self.failures, self.count = tolerance, [], 0

    def section(self, title):
        print(f"\n{title}")

    def check(self, name, error, referee=None):
        """One error against the tolerance. ``referee``, if given, returns the errors of
        tinyalex's and PyTorch's values against a float64 reference; it decides a check the
        two frameworks disagree on: tinyalex passes if it is within the tolerance of the
        reference (the other framework's float32 being the less precise one)."""
        self.count += 1
        ok, note = error <= self.tolerance, ""
        if not ok and referee is not None:
            ours, theirs = referee()
            ok = ours <= self.tolerance
            note = f"  (against float64: tinyalex {ours:.2e}, PyTorch {theirs:.2e})"
        if not ok:
            self.failures.append(name)
        print(f"  {name:<50} {error:9.2e}  {'ok' if ok else 'FAILED'}{note}")

    def fail(self, name):
        self.count += 1
        self.failures.append(name)
        print(f"  {name:<60}  FAILED")


def check_ops(report, device, dtype, rng):
    """The single layers, on small inputs of the real channel counts."""
    tdev = torch_device(device)

    def pair(array):
        """The same numbers for tinyalex (on its device) and for PyTorch (with a gradient)."""
        return to_device(array, device), torch.from_numpy(array).to(tdev).requires_grad_()

    report.section("single ops, forward and backward")
    activations = np.maximum(rng.standard_normal((2, 96, 13, 13)) * 5, 0).astype(dtype)
    for label, constants in (("paper constants", {}), ("alpha=1, k=1", {"alpha": 1.0, "k": 1.0})):
        lrn = tinyalex.LRN(**constants)
        x, tx = pair(activations)
        out = lrn.forward(x)
        tout = F.local_response_norm(tx, 5, alpha=lrn.alpha * lrn.size, beta=lrn.beta, k=lrn.k)
        dout = rng.standard_normal(activations.shape).astype(dtype)
        dx = lrn.backward(to_device(dout, device))
        (tdx,) = torch.autograd.grad(tout, tx, torch.from_numpy(dout).to(tdev))
        report.check(f"lrn forward ({label})", rel_error(out, tout))
        report.check(f"lrn backward ({label})", rel_error(dx, tdx))

    pool = tinyalex.MaxPool2D()
    x, tx = pair(rng.standard_normal((2, 96, 27, 27)).astype(dtype))  # continuous values: no ties
    out = pool.forward(x)
    tout = F.max_pool2d(tx, 3, 2)
    dout = rng.standard_normal(tuple(tout.shape)).astype(dtype)
    dx = pool.backward(to_device(dout, device))
    (tdx,) = torch.autograd.grad(tout, tx, torch.from_numpy(dout).to(tdev))
    report.check("max-pool forward", rel_error(out, tout))
    report.check("max-pool backward", rel_error(dx, tdx))
    for ceil_mode in (False, True):  # a size the windows do not tile: PyTorch's output-size rules
        pool = tinyalex.MaxPool2D(3, 2, ceil_mode=ceil_mode)
        x, tx = pair(rng.standard_normal((2, 4, 8, 11)).astype(dtype))
        out, tout = pool.forward(x), F.max_pool2d(tx, 3, 2, ceil_mode=ceil_mode)
        dout = rng.standard_normal(tuple(tout.shape)).astype(dtype)
        (tdx,) = torch.autograd.grad(tout, tx, torch.from_numpy(dout).to(tdev))
        shapes_agree = tuple(out.shape) == tuple(tout.shape)
        if not shapes_agree:
            report.fail(f"max-pool 8x11, ceil_mode={ceil_mode}: shape {tuple(out.shape)} vs {tuple(tout.shape)}")
            continue
        report.check(f"max-pool 8x11 -> {out.shape[2]}x{out.shape[3]}, ceil_mode={ceil_mode}",
                     max(rel_error(out, tout), rel_error(pool.backward(to_device(dout, device)), tdx)))

    for label, shape, k, stride, pad in (("conv1: 3x227x227, k=11, s=4", (2, 3, 227, 227), 11, 4, 0),
                                         ("conv2: 96x27x27, k=5, pad 2", (2, 96, 27, 27), 5, 1, 2)):
        x, tx = pair(rng.standard_normal(shape).astype(dtype))
        cols = im2col(x, k, stride, pad)                       # (C*k*k, N*L)
        tcols = F.unfold(tx.detach(), k, padding=pad, stride=stride)   # (N, C*k*k, L)
        n, ckk, positions = tcols.shape
        report.check(f"im2col vs unfold ({label})",
                     rel_error(to_numpy(cols).reshape(ckk, n, positions).transpose(1, 0, 2), tcols))
        dcols = rng.standard_normal((ckk, n * positions)).astype(dtype)
        dx = col2im(to_device(dcols, device), shape, k, stride, pad)
        tdcols = torch.from_numpy(np.ascontiguousarray(dcols.reshape(ckk, n, positions).transpose(1, 0, 2)))
        tdx = F.fold(tdcols.to(tdev), shape[2:], k, padding=pad, stride=stride)
        report.check(f"col2im vs fold ({label})", rel_error(dx, tdx))


def tinyalex_winners(model, x):
    """{pool name: the winner of every max-pool window} in an evaluation forward pass of
    ``model`` (both columns side by side), found on the pooling inputs that its hooks record."""
    inputs = {}

    def record(event, name, value):
        if event == "before_forward" and name.split(".")[-1] in POOLS:
            inputs.setdefault(name.split(".")[-1], []).append(value[0])

    model.hooks.append(record)
    try:
        model.forward(x, train=False)
    finally:
        model.hooks.remove(record)
    winners = {}
    for name in POOLS:
        pools = [tinyalex.MaxPool2D(3, 2) for _ in inputs[name]]
        for pool, pool_input in zip(pools, inputs[name]):
            pool.forward(pool_input, train=True)       # a training pass keeps the winners
        winners[name] = np.concatenate([to_numpy(pool.argmax) for pool in pools], axis=1)
    return winners


def pool_disagreements(model, tmodel, exact, images, device):
    """Max-pool windows, among those with a positive maximum, whose winner differs between
    tinyalex and PyTorch, or (when ``exact``, the same net in float64, is given) between
    tinyalex and its float64 twin, which referees the gradients the frameworks disagree on."""
    theirs = {}
    hooks = [getattr(tmodel, name).register_forward_hook(
        lambda module, args, out, name=name: theirs.__setitem__(name, args[0])) for name in POOLS]
    try:
        with torch.no_grad():
            tmodel(torch.from_numpy(images).to(torch_device(device)))
    finally:
        for hook in hooks:
            hook.remove()
    ours = tinyalex_winners(model, to_device(images, device))
    exacts = tinyalex_winners(exact, to_device(images.astype(np.float64), device)) if exact is not None else {}
    count = 0
    for name in POOLS:
        out, winners = F.max_pool2d(theirs[name], 3, 2, return_indices=True)
        differ = winners.cpu().numpy() != ours[name]
        if name in exacts:
            differ |= exacts[name] != ours[name]
        count += int((differ & (out.cpu().numpy() > 0)).sum())
    return count


def images_without_near_ties(report, model, tmodel, exact, batch, dtype, device, rng):
    """Random images on which both frameworks (and tinyalex's float64 twin ``exact``, if
    given) pick the same winner in every max-pool window.

    A window whose two largest inputs differ only by rounding can pick different winners
    in the two frameworks, and then sends its gradient to a different input: a kink, not a
    bug. Such near-ties are rare, so the images are redrawn until there is none.
    """
    for draw in range(1, MAX_DRAWS + 1):
        images = (rng.standard_normal((batch, 3, model.image_size, model.image_size)) * PIXEL_STD).astype(dtype)
        disagreements = pool_disagreements(model, tmodel, exact, images, device)
        if disagreements == 0 or disagreements > MAX_NEAR_TIES:
            break
        print(f"  (images, draw {draw}: {disagreements} max-pool window(s) with a near-tie picked different "
              f"winners; drawing again)")
    if disagreements:
        report.fail(f"max-pool winners differ in {disagreements} windows "
                    + ("(more than near-ties explain)" if disagreements > MAX_NEAR_TIES
                       else f"after {MAX_DRAWS} draws (try a smaller --batch)"))
    else:
        twin = " and tinyalex in float64" if exact is not None else ""
        print(f"  (images of draw {draw}: every max-pool winner is the same in both frameworks{twin})")
    return images


def check_gradients(report, model, tmodel, exact, images, y, ty, device, dtype):
    """The loss and every parameter's gradient (dropout off in both: the same function).

    Where the two float32 results disagree, the same computation in float64 by ``exact``
    (same weights, same images, the same max-pool winners) tells which of them is off: on
    a GPU, cuDNN's weight gradient of the grouped conv2 was measured 2.6e-4 from float64,
    tinyalex's 5.9e-7.
    """
    initial = model.state_dict()
    loss_fn = tinyalex.SoftmaxCrossEntropy()
    loss = loss_fn.forward(model.forward(to_device(images, device), train=True), y)
    model.backward(loss_fn.backward())
    tloss = F.cross_entropy(tmodel(torch.from_numpy(images).to(torch_device(device))), ty)
    tloss.backward()
    report.check(f"loss ({loss:.6f})", abs(loss - tloss.item()) / abs(tloss.item()))

    reference = {}

    def float64_gradients():
        if not reference:
            exact_loss = tinyalex.SoftmaxCrossEntropy()
            exact_loss.forward(exact.forward(to_device(images.astype(np.float64), device), train=True), y)
            exact.backward(exact_loss.backward())
            reference.update(merged_view(exact, {n: to_numpy(g) for n, _, g in exact.parameters()}.__getitem__))
        return reference

    def referee(ours, theirs, name, exact=lambda g, name: g[name]):
        return lambda: (rel_error(exact(float64_gradients(), name), ours),
                        rel_error(exact(float64_gradients(), name), theirs))

    report.section("gradients of the loss (dropout off)")
    grads = merged_view(model, {name: grad for name, _, grad in model.parameters()}.__getitem__)
    for name, param in tmodel.named_parameters():
        report.check(name, rel_error(grads[name], param.grad),
                     referee(grads[name], param.grad, name) if dtype == np.float32 else None)
    return initial, referee


def check_sgd_step(report, model, tmodel, initial, referee, dtype):
    """One SGD step: tinyalex's velocity against -lr * PyTorch's momentum buffer."""
    report.section("one SGD step: tinyalex's velocity vs -lr * PyTorch's momentum buffer")
    optimizer = tinyalex.SGD(PAPER.learning_rate, PAPER.momentum, PAPER.weight_decay)
    optimizer.step(model.parameters())
    toptimizer = torch.optim.SGD(tmodel.parameters(), lr=PAPER.learning_rate, momentum=PAPER.momentum,
                                 weight_decay=PAPER.weight_decay)
    toptimizer.step()
    velocity = merged_view(model, optimizer.velocity.__getitem__)
    tvelocity = {name: -PAPER.learning_rate * toptimizer.state[param]["momentum_buffer"] for name, param in tmodel.named_parameters()}
    errors = {name: rel_error(velocity[name], tvelocity[name]) for name in tvelocity}
    worst = max(errors, key=errors.get)

    def exact_velocity(gradients, name):  # v = -0.0005 lr w - lr dL/dw, from v = 0
        return -PAPER.learning_rate * (gradients[name] + PAPER.weight_decay * initial[name].astype(np.float64))

    report.check(f"worst parameter ({worst})", errors[worst],
                 referee(velocity[worst], tvelocity[worst], worst, exact_velocity) if dtype == np.float32 else None)
    weights = model.state_dict()
    report.check("weights after the step (worst parameter)",
                 max(rel_error(weights[name], param) for name, param in tmodel.named_parameters()))


def check_model(report, device, dtype, batch, rng):
    """The paper's net: logits, loss, every gradient and one SGD step, same weights in both."""
    # dropout=0 here and eval() there: both compute the same function in a training pass
    model = tinyalex.AlexNet(devices=device, dtype=dtype, seed=0, dropout=0.0)
    tmodel = torch_alexnet_from(model)
    tmodel.eval()
    exact = None    # in float32, the float64 twin that referees a disagreement
    if dtype == np.float32:
        exact = tinyalex.AlexNet(devices=device, dtype="float64", seed=0, dropout=0.0)
        exact.load_state_dict(model.state_dict())
    report.section(f"the whole net ({model!r}), same weights, batch {batch}")
    images = images_without_near_ties(report, model, tmodel, exact, batch, dtype, device, rng)
    labels = rng.integers(0, model.num_classes, batch)
    y, ty = to_device(labels, device), torch.from_numpy(labels).to(torch_device(device))
    logits = to_numpy(model.forward(to_device(images, device), train=False))
    with torch.no_grad():
        tlogits = tmodel(torch.from_numpy(images).to(torch_device(device))).cpu().numpy()
    report.check("logits, evaluation (worst image)", max(rel_error(a, b) for a, b in zip(logits, tlogits)))
    initial, referee = check_gradients(report, model, tmodel, exact, images, y, ty, device, dtype)
    check_sgd_step(report, model, tmodel, initial, referee, dtype)


def check_variants(report, device, dtype, rng):
    """The ablation switches change tinyalex's table, from which PyTorch's net is built too:
    each variant's logits must still agree (a small net, evaluation)."""
    report.section("the table's variants (small net, evaluation logits)")
    geometry = {"num_classes": 10, "image_size": 67, "channels": (8, 16, 24, 24, 16), "hidden": 32,
                "weight_std": 0.1}
    images = (rng.standard_normal((2, 3, 67, 67)) * PIXEL_STD).astype(dtype)
    for label, switches in (("tanh", {"activation": "tanh"}), ("no LRN", {"lrn": False}),
                            ("pooling 2/2", {"pool": (2, 2)}), ("one column", {"columns": 1}),
                            ("no conv4", {"drop_conv": "conv4"})):
        model = tinyalex.AlexNet(devices=device, dtype=dtype, seed=2, **geometry, **switches)
        tmodel = torch_alexnet_from(model).eval()
        with torch.no_grad():
            tlogits = tmodel(torch.from_numpy(images).to(torch_device(device)))
        report.check(f"logits ({label})", rel_error(model.forward(to_device(images, device), train=False), tlogits))


def check_layer_timing(report, device, dtype, rng):
    """The per-layer timings are only worth reading if the timed step is a normal step."""
    geometry = {"num_classes": 10, "image_size": 67, "channels": (8, 16, 24, 24, 16), "hidden": 32}
    models = [tinyalex.AlexNet(devices=device, dtype=dtype, seed=1, **geometry) for _ in range(2)]
    optimizers = [tinyalex.SGD(PAPER.learning_rate, PAPER.momentum, PAPER.weight_decay) for _ in range(2)]
    loss_fn = tinyalex.SoftmaxCrossEntropy()
    x = to_device((rng.standard_normal((4, 3, 67, 67)) * PIXEL_STD).astype(dtype), device)
    y = to_device(rng.integers(0, 10, 4), device)
    for _ in range(2):  # the second step uses the velocities and the next dropout masks
        loss = loss_fn.forward(models[0].forward(x, train=True), y)
        models[0].backward(loss_fn.backward())
        optimizers[0].step(models[0].parameters())
        timed_loss, _ = layer_by_layer_step(models[1], x, y, tinyalex.SoftmaxCrossEntropy(), optimizers[1])
    report.section("the benchmark's layer-by-layer step vs AlexNet's own (small net, dropout on, 2 steps)")
    report.check("loss", abs(loss - timed_loss) / abs(loss))
    weights, timed_weights = models[0].state_dict(), models[1].state_dict()
    report.check("weights (worst parameter)", max(rel_error(weights[name], timed_weights[name]) for name in weights))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help='"cpu" or a CUDA device id (default: cpu)')
    parser.add_argument("--dtype", choices=sorted(TOLERANCE), default="float32")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = "cpu" if args.device == "cpu" else int(args.device)
    dtype = np.dtype(args.dtype)

    # Both frameworks must do full float32 arithmetic on a GPU for the comparison to mean anything.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    report = Report(TOLERANCE[args.dtype])
    print(f"tinyalex {tinyalex.__version__} vs PyTorch {torch.__version__} on device {device}, {args.dtype}; "
          f"relative error ||a - b|| / max(||a||, ||b||), tolerance {report.tolerance:g}")
    rng = np.random.default_rng(args.seed)
    with on_device(device):
        check_ops(report, device, dtype, rng)
        check_model(report, device, dtype, args.batch, rng)
        check_variants(report, device, dtype, rng)
        check_layer_timing(report, device, dtype, rng)

    if report.failures:
        print(f"\nFAILED: {len(report.failures)} of {report.count} checks (tolerance {report.tolerance:g}): "
              + ", ".join(report.failures))
        return 1
    print(f"\nall {report.count} checks within {report.tolerance:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
