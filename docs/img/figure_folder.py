"""What every make_*_figure.py script of the layer chapters shares: the command line (an
optional FOLDER to write the picture to, docs/img/ by default) and the saving."""

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


def save(fig, folder, name):
    """Lay ``fig`` out and write it as ``folder/name`` (100 dpi, trimmed to its contents)."""
    fig.tight_layout()
    path = Path(folder) / name
    fig.savefig(path, dpi=100, bbox_inches="tight")
    print(f"wrote {path}")
