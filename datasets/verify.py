"""Check prepared files in full: every image against the checksum stored when it was prepared.

    python datasets/verify.py FILE [FILE ...]      e.g. data/imagenet/train.h5 data/imagenet/val.h5

Opening a file already checks its labels (each one a class index) and its statistics (all
finite): the training program does that too, every time. This program also reads every
image once, in file order, and compares its CRC-32 with the stored one: for ImageNet's
252 GB, minutes, about as long as reading the file once (docs/data.md gives numbers).
Training checks each image as it reads it as well, so a damaged image stops a run either
way; run this after copying the files, or to find every damaged image at once.

Exit code 0 when every file is sound, 1 when an image is damaged, 2 when a file cannot be
opened or is refused. A file prepared before tinyalex stored checksums is reported as such
(labels and statistics checked, images not) and counts as sound.
"""

import argparse
import sys

from tinyalex.datasets import DatasetError, open_prepared
from tinyalex.datasets.prepared import PREPARE_COMMAND, damaged_images
from tinyalex.progress import progress_bar

SHOWN = 10  # damaged images listed by name; the count covers all


def verify(path):
    """Checks one file and prints what it found -> the number of damaged images."""
    with open_prepared(path) as file:
        count = len(file["images"])
        if "checksums" not in file:
            print(f"{path}: {count} images, labels and statistics sound; prepared before tinyalex stored "
                  f"checksums, so the images cannot be checked (prepare it again with {PREPARE_COMMAND} to have them)")
            return 0
        with progress_bar(count, desc=str(path), unit="img") as bar:
            damaged = list(damaged_images(file, progress=bar))
        if not damaged:
            print(f"{path}: {count} images, labels and statistics sound, every image matches its checksum")
            return 0
        names = file["filenames"].asstr()
        print(f"{path}: {len(damaged)} of {count} images do not match their checksums (the file is damaged; "
              f"prepare it again with {PREPARE_COMMAND}):")
        for index in damaged[:SHOWN]:
            print(f"  image {index}: {names[index]}")
        if len(damaged) > SHOWN:
            print(f"  ... and {len(damaged) - SHOWN} more")
        return len(damaged)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python datasets/verify.py", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", help="prepared files (train.h5, val.h5)")
    args = parser.parse_args(argv)
    damaged = 0
    for path in args.files:
        try:
            damaged += verify(path)
        except DatasetError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return 130
    return 1 if damaged else 0


if __name__ == "__main__":
    sys.exit(main())
