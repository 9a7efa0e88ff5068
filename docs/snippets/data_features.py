# shown in: docs/data.md
"""What tells the built-in classes apart, as docs/data.md shows it: a nearest-class-mean
classifier on colour features and on a crude spatial one, and the eigenvalues of the
training pixels' RGB covariance. The data set, the features and the classifier are those
of tests/test_datasets.py (test_colour_alone_does_not_tell_the_classes_apart)."""

import contextlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from test_datasets import (SMALL_BUILTIN, colour_histogram, edge_orientations, mean_colour,  # noqa: E402
                           nearest_class_mean_accuracy)

from tinyalex.data import PreparedSplit  # noqa: E402
from tinyalex.datasets.synthetic import ensure_builtin_dataset  # noqa: E402

FEATURES = {"mean R, G, B": mean_colour,
            "histogram of 4x4x4 colour bins": colour_histogram,
            "histogram of edge orientations (a crude spatial feature, blind to colour)": edge_orientations}

with tempfile.TemporaryDirectory() as folder:
    with contextlib.redirect_stdout(sys.stderr):   # the preparation's report is not part of the page
        train_path, val_path = ensure_builtin_dataset(folder, **SMALL_BUILTIN, workers=1)
    train, val = PreparedSplit(train_path), PreparedSplit(val_path)
    train_images, train_labels = train.read(range(len(train)))
    val_images, val_labels = val.read(range(len(val)))
    _, eigenvalues, _ = train.statistics()
    train.close()
    val.close()

print("| feature of each image | accuracy |")
print("|---|---|")
for name, feature in FEATURES.items():
    accuracy = nearest_class_mean_accuracy(feature(train_images), train_labels, feature(val_images), val_labels)
    print(f"| {name} | {accuracy:.1%} |")
print()
print("eigenvalues of the RGB covariance of the training pixels:", ", ".join(f"{v:,.0f}" for v in eigenvalues))
