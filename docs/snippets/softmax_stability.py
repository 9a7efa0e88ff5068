# shown in: docs/softmax.md
"""Why the loss shifts the logits before exp: a naive softmax against SoftmaxCrossEntropy."""

import numpy as np

from tinyalex import SoftmaxCrossEntropy

# exp(z) overflows where z passes the log of the largest finite number
print("exp overflows for logits above " + ", ".join(
    f"{np.log(np.finfo(dtype).max):.1f} in {dtype.__name__}" for dtype in (np.float32, np.float64)))
print()

logits = np.array([[1000, 1001, 1002]], dtype=np.float32)
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)    # inf / inf
loss_fn = SoftmaxCrossEntropy()
loss = loss_fn.forward(logits, np.array([2]), train=True)
print(f"logits [[1000, 1001, 1002]] (float32), naive softmax:  {naive}")
print(f"tinyalex, label 2:   loss {loss}")
print(f"                     probs {loss_fn.probs}")
print()

big = np.array([[1e4, -1e4]])
with np.errstate(divide="ignore"):
    shifted = big - big.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    print("logits [[1e4, -1e4]], label 1:")
    print(f"    shifted, then log of the probabilities: p = {p}, -log p[1] = {-np.log(p[0, 1])}")
print(f"    tinyalex: loss {SoftmaxCrossEntropy().forward(big, np.array([1]), train=False)}")
print()

logits = np.array([[2, 1, 0.1], [0.5, 2.5, -1]])
loss_fn = SoftmaxCrossEntropy()
print(f"loss {loss_fn.forward(logits, np.array([0, 2]), train=True):.6f}")
probs = loss_fn.probs.copy()
dlogits = loss_fn.backward()
print("probs   " + str(probs).replace("\n", "\n        "))
print("dlogits " + str(dlogits).replace("\n", "\n        "))
print()
print("row sums of dlogits: " + ", ".join(f"{s:.1e}" for s in dlogits.sum(axis=1)))
