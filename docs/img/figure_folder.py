"""The command line every make_*_figure.py script of the layer chapters shares:
an optional FOLDER to write the picture to, docs/img/ by default."""

import argparse
from pathlib import Path


def parse_folder(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("folder", nargs="?", default=Path(__file__).parent, type=Path,
                        help="where to write the picture (default: docs/img)")
    folder = parser.parse_args().folder
    if not folder.is_dir():
        parser.error(f"{folder} is not a folder")
    return folder
