"""Finds the images of an ImageNet-style folder and the class of each one.

The layout read here (SRC is the folder given to `python datasets/prepare.py`):

    SRC/train/<wnid>/<name>.JPEG    one folder per class, named by its WordNet id
    SRC/val/<wnid>/<name>.JPEG      validation images in class folders, like train/,
    SRC/val/<name>.JPEG             or all in one flat folder, with a labels file
    SRC/synset_words.txt            optional class names, "<wnid> <name ...>" per line
    SRC/words.txt                   (the same, under the other usual file name)

Class indices: the sorted folder names of SRC/train are the classes, and a
class's index is its position in that sorted list (0-based). The validation
split uses the same indices, so both files agree on what label 7 means.

A flat validation folder needs a labels file, in one of two formats:

* ILSVRC ground truth: one 1-based class index per line, the k-th line for the
  k-th image file of the folder in sorted file-name order. By default index i
  means the i-th wnid of the sorted train folder names (index 1 = label 0).
  Careful: the official ILSVRC2012_validation_ground_truth.txt numbers classes
  in the order of the devkit's meta.mat (its ILSVRC2012_ID), which is NOT the
  sorted wnid order. For that file pass `index_wnids` (`--val-synsets FILE`):
  a text file whose line i starts with the wnid that index i means.
* CSV: "filename,wnid" per line, with or without a header row. A filename may
  lack its extension, and only the first word of the wnid field is used, so
  the LOC_val_solution.csv file ("ImageId,PredictionString") also works.

Which files are images: those whose extension (any case) is in
IMAGE_EXTENSIONS. Every other file is left out and listed as "ignored", so
stray text files or archives never reach the decoder and never go unnoticed.
Files and folders whose names start with "." are ignored too.
"""

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError

IMAGE_EXTENSIONS = {".jpeg", ".jpg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
CLASS_NAME_FILES = ("synset_words.txt", "words.txt")


@dataclass
class SplitListing:
    """The images of one split, in the order they will be written.

    split: "train" or "val".
    folder: the split folder (SRC/train or SRC/val).
    wnids, class_names: the classes; label i means wnids[i].
    files: image paths relative to `folder`, with '/' separators.
    labels: the class index of each file.
    ignored: paths (relative to `folder`) left out because they are not image files.
    """

    split: str
    folder: Path
    wnids: list
    class_names: list
    files: list
    labels: list
    ignored: list


def find_split(src, split, labels_file=None, synsets_file=None):
    """Lists SRC/<split> with its classes -> SplitListing.

    labels_file: the labels of a flat val/ folder (see the module notes).
    synsets_file: for an ILSVRC ground-truth labels file whose indices do not
        follow the sorted wnids: line i starts with the wnid of index i.
    """
    wnids = find_classes(src)
    index_wnids = read_index_wnids(synsets_file) if synsets_file is not None else None
    files, labels, ignored = list_split(Path(src) / split, split, wnids, labels_file, index_wnids)
    return SplitListing(split, Path(src) / split, wnids, read_class_names(src, wnids), files, labels, ignored)


def find_classes(src):
    """The wnids of SRC/train, sorted: position in this list = class index."""
    train = Path(src) / "train"
    if not train.is_dir():
        raise DatasetError(f"{train}: folder not found (the classes are the folder names in train/)")
    wnids = sorted(entry.name for entry in os.scandir(train) if entry.is_dir() and not entry.name.startswith("."))
    if not wnids:
        raise DatasetError(f"{train}: no class folders found")
    return wnids


def read_class_names(src, wnids):
    """Readable names for the wnids, from synset_words.txt or words.txt in SRC.

    A wnid missing from the file, or every wnid when no such file exists,
    keeps the wnid itself as its name.
    """
    names = {}
    for file_name in CLASS_NAME_FILES:
        path = Path(src) / file_name
        if path.is_file():
            for line in path.read_text(encoding="utf-8-sig").splitlines():
                parts = line.strip().split(maxsplit=1)
                if len(parts) == 2:
                    names[parts[0]] = parts[1]
            break
    return [names.get(wnid, wnid) for wnid in wnids]


def list_split(folder, split, wnids, labels_file=None, index_wnids=None):
    """Finds the images of a split folder and their labels -> (files, labels, ignored).

    train/ must hold class folders. val/ may hold class folders, or be flat
    and come with `labels_file` (see the module notes for its formats).
    """
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder not found")
    has_class_folders = any(entry.is_dir() and not entry.name.startswith(".") for entry in os.scandir(folder))
    if has_class_folders:
        if labels_file is not None:
            raise DatasetError(f"{folder} holds class folders, so the labels file {labels_file} "
                               "would not be used; leave it out")
        return list_class_folders(folder, wnids)
    if split == "train":
        raise DatasetError(f"{folder}: no class folders found")
    if labels_file is None:
        raise DatasetError(f"{folder} is a flat folder of images: give its labels file (--val-labels)")
    return list_flat_folder(folder, wnids, labels_file, index_wnids)


def list_class_folders(folder, wnids):
    """Images in folder/<wnid>/, class by class in wnid order, files sorted by name.

    Returns (files, labels, ignored) as in SplitListing.
    """
    label_of = {wnid: label for label, wnid in enumerate(wnids)}
    files, labels, ignored = [], [], []
    for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
        if not entry.is_dir() or entry.name.startswith("."):
            ignored.append(entry.name)
            continue
        if entry.name not in label_of:
            raise DatasetError(f"{entry.path}: class {entry.name} is not among the train/ class folders")
        images, others = split_images(Path(entry.path))
        if not images:
            raise DatasetError(f"{entry.path}: class folder holds no image files")
        files += [f"{entry.name}/{name}" for name in images]
        labels += [label_of[entry.name]] * len(images)
        ignored += [f"{entry.name}/{name}" for name in others]
    return files, labels, ignored


def list_flat_folder(folder, wnids, labels_file, index_wnids=None):
    """Images directly in `folder`, sorted by name, labelled from `labels_file`.

    Returns (files, labels, ignored) as in SplitListing.
    """
    labels_file = Path(labels_file)
    if not labels_file.is_file():
        raise DatasetError(f"{labels_file}: labels file not found")
    images, ignored = split_images(folder)
    if not images:
        raise DatasetError(f"{folder}: holds no image files")
    rows = [line.strip() for line in labels_file.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    if rows and "," in rows[0]:
        labels = labels_from_csv(labels_file, images, wnids)
    else:
        labels = labels_from_indices(labels_file, rows, images, index_wnids or wnids, wnids)
    return images, labels, ignored


def split_images(folder):
    """File names in `folder` -> (image files, other entries), both sorted."""
    images, ignored = [], []
    for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
        is_image = may_be_file(entry) and Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS
        if is_image and not entry.name.startswith("."):
            images.append(entry.name)
        else:
            ignored.append(entry.name)
    return images, ignored


def may_be_file(entry):
    """entry.is_file(), except that a link that cannot be followed (a loop of symbolic links,
    ELOOP) counts as a file: named like an image, it then reaches the decoder, which skips it
    with the system's reason, like every other file that cannot be read."""
    try:
        return entry.is_file()
    except OSError:
        return True


def labels_from_indices(labels_file, rows, images, index_wnids, wnids):
    """ILSVRC ground truth: line k holds the 1-based class index of images[k]."""
    if len(rows) != len(images):
        raise DatasetError(
            f"{labels_file}: {len(rows)} labels for {len(images)} image files in the folder; "
            "the k-th line must label the k-th image in sorted file-name order"
        )
    label_of = {wnid: label for label, wnid in enumerate(wnids)}
    labels = []
    for line_number, row in enumerate(rows, start=1):
        if not row.isdigit() or not 1 <= int(row) <= len(index_wnids):
            raise DatasetError(f"{labels_file}, line {line_number}: {row!r} is not a class index "
                               f"from 1 to {len(index_wnids)}")
        wnid = index_wnids[int(row) - 1]
        if wnid not in label_of:
            raise DatasetError(f"{labels_file}, line {line_number}: index {row} means {wnid}, "
                               "which has no train/ folder")
        labels.append(label_of[wnid])
    return labels


def labels_from_csv(labels_file, images, wnids):
    """CSV rows "filename,wnid" -> the label of each image, in `images` order."""
    label_of = {wnid: label for label, wnid in enumerate(wnids)}
    name_of = {name: name for name in images}
    name_of.update({Path(name).stem: name for name in images if Path(name).stem not in name_of})
    with open(labels_file, newline="", encoding="utf-8-sig") as file:
        rows = [row for row in csv.reader(file) if row]
    if rows and rows[0][0] not in name_of and first_word(rows[0]) not in label_of:
        rows = rows[1:]  # a header row: it names neither a file nor a class
    labels = {}
    for row in rows:
        wnid = first_word(row)
        name = name_of.get(row[0].strip())
        if name is None:
            raise DatasetError(f"{labels_file}: lists {row[0]!r}, which is not an image file in the folder")
        if wnid not in label_of:
            raise DatasetError(f"{labels_file}: {row[0]!r} has class {wnid!r}, which has no train/ folder")
        if name in labels:
            raise DatasetError(f"{labels_file}: {row[0]!r} is listed twice")
        labels[name] = label_of[wnid]
    unlabelled = [name for name in images if name not in labels]
    if unlabelled:
        raise DatasetError(
            f"{labels_file}: {len(unlabelled)} of {len(images)} image files have no label, e.g. {unlabelled[0]!r}"
        )
    return [labels[name] for name in images]


def first_word(row):
    """The wnid of a CSV row: the first word of its second field ('' if none)."""
    words = row[1].split() if len(row) > 1 else []
    return words[0] if words else ""


def read_index_wnids(path):
    """A synsets file: line i starts with the wnid that class index i (1-based) means."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: synsets file not found")
    return [line.split()[0] for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
