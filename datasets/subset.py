"""Make a class subset of ImageNet (or any folder in its layout) to prepare and train on.

    python datasets/subset.py SRC OUT_DIR --classes 100 [--val-labels FILE] [--val-synsets FILE]
    python datasets/subset.py SRC OUT_DIR --classes wnids.txt ...

OUT_DIR gets the same layout with only the chosen classes, made of symbolic links to
SRC's files (nothing is copied): train/<wnid> for each chosen class, and val/<wnid>/ with
the validation images of those classes (a flat val/ folder is sorted into class folders
by its labels file, read as datasets/prepare.py reads it). --classes N takes the first N
classes in sorted wnid order; --classes FILE takes the wnids that FILE lists, one a line
(the first word of each line). Then prepare OUT_DIR as usual:

    python datasets/prepare.py OUT_DIR data/subset --size 144
    python examples/train_imagenet.py --data data/subset --net builtin

docs/data.md says which settings suit which subset.
"""

import argparse
import os
import sys
from pathlib import Path

from tinyalex.datasets import DatasetError
from tinyalex.datasets.listing import find_classes, find_split, read_class_names, CLASS_NAME_FILES


def chosen_classes(src, classes):
    """The wnids that --classes names, checked against SRC/train."""
    wnids = find_classes(src)
    if classes.isdigit():
        count = int(classes)
        if not 1 <= count <= len(wnids):
            raise DatasetError(f"--classes {count}: {src}/train has {len(wnids)} classes")
        return wnids[:count]
    path = Path(classes)
    if not path.is_file():
        raise DatasetError(f"--classes {classes}: neither a number nor a file of wnids")
    chosen = [line.split()[0] for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    unknown = [wnid for wnid in chosen if wnid not in wnids]
    if unknown:
        raise DatasetError(f"{path}: {', '.join(unknown[:3])}{' ...' if len(unknown) > 3 else ''} "
                           f"{'is' if len(unknown) == 1 else 'are'} not class folders of {src}/train")
    if len(set(chosen)) != len(chosen):
        raise DatasetError(f"{path}: lists a wnid twice")
    if not chosen:
        raise DatasetError(f"{path}: lists no wnid")
    return sorted(chosen)


def make_subset(src, out_dir, classes, val_labels=None, val_synsets=None):
    """Link the chosen classes of SRC into OUT_DIR -> (wnids, train images, val images)."""
    src, out_dir = Path(src).resolve(), Path(out_dir)
    wnids = chosen_classes(src, classes)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DatasetError(f"{out_dir} is not empty: give a new or empty folder")
    val = find_split(src, "val", val_labels, val_synsets)   # every class, read as prepare.py reads it
    keep = set(wnids)
    (out_dir / "train").mkdir(parents=True, exist_ok=True)
    train_count = 0
    for wnid in wnids:
        os.symlink(src / "train" / wnid, out_dir / "train" / wnid, target_is_directory=True)
        train_count += sum(1 for _ in (src / "train" / wnid).iterdir())
    val_count = 0
    for name, label in zip(val.files, val.labels):
        wnid = val.wnids[label]
        if wnid in keep:
            target = out_dir / "val" / wnid / Path(name).name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(val.folder / name, target)
            val_count += 1
    for file_name in CLASS_NAME_FILES:   # the readable class names, for the chosen classes
        if (src / file_name).is_file():
            names = read_class_names(src, wnids)
            (out_dir / file_name).write_text("".join(f"{w} {n}\n" for w, n in zip(wnids, names)), encoding="utf-8")
            break
    return wnids, train_count, val_count


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python datasets/subset.py", description=__doc__.split("\n")[0])
    parser.add_argument("src", help="folder holding train/ and val/ in ImageNet's layout")
    parser.add_argument("out_dir", help="a new or empty folder for the subset (symbolic links)")
    parser.add_argument("--classes", required=True, help="N (the first N wnids) or a file listing wnids")
    parser.add_argument("--val-labels", help="labels file of a flat val/ folder: ILSVRC ground truth or CSV")
    parser.add_argument("--val-synsets", help="wnid of each ILSVRC class index, one a line, in index order")
    args = parser.parse_args(argv)
    try:
        wnids, train_count, val_count = make_subset(args.src, args.out_dir, args.classes, args.val_labels,
                                                    args.val_synsets)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.out_dir}: {len(wnids)} classes, {train_count} training and {val_count} validation files "
          f"(links into {args.src})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
