"""A small built-in data set in ImageNet's folder layout, made of drawn shapes and textures.

    python datasets/synthetic.py OUT_DIR [--classes 10] [--train-per-class 100]
        [--val-per-class 20] [--seed 0]
    python datasets/synthetic.py --montage PNG    (a picture of examples of each class)

(make_synthetic_imagenet() and save_montage() here) write

    OUT_DIR/train/n0000000k/n0000000k_<i>.JPEG   class folders, as in ImageNet
    OUT_DIR/val/synthetic_val_<j>.JPEG            one flat folder, classes mixed
    OUT_DIR/val_ground_truth.txt                  1-based class index of each val image
    OUT_DIR/words.txt                             "<wnid><TAB><name>", e.g. "n00000003<TAB>plus cross"

so that tinyalex can be tried, and its data path tested, without ImageNet.
ensure_builtin_dataset() also prepares it into train.h5 / val.h5.

The classes can only be told apart by shape and layout, not by colour:

* every image draws its background colour and its foreground colour from the
  same distribution, whatever its class (two colours 120 to 200 levels apart,
  either side of a colour near grey), and all classes paint a similar share
  of the image in the foreground colour;
* position, size and rotation are random, the background has a gradient,
  noise and thin clutter lines of random colours;
* images have random sizes and aspect ratios (sides 180 to 400 pixels) like
  real photos; the object always lies in the central square, the part that
  survives preparation's centre crop.

tests/test_datasets.py checks this: a nearest-class-mean classifier on the mean
colour, or on the colour histogram, of each image scores near chance, while
one on a histogram of edge orientations does far better.

Everything is deterministic: image i of class k in a split comes from its own
random generator seeded with (seed, split, k, i), so the same seed gives the
same pixels, whatever the other settings.
"""

import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import DatasetError
from .images import resize_and_crop
from .prepare import prepare_imagenet
from .prepared import is_complete
from ..locking import folder_lock
from ..progress import progress_bar

MIN_SIDE, MAX_SIDE = 180, 400
# Each image's background and foreground colours lie on either side of a middle colour near
# grey, CONTRAST apart (RGB distance, 0..255) in a random direction. Colours drawn from the
# whole RGB cube vary so much from image to image that they dominate the pixels' variance:
# conv1 then learns colour blobs and the shapes and textures are learned late.
MIDDLE = (104, 152)     # each channel of the middle colour
CONTRAST = (120, 200)
NOISE_STD = 8.0
# Texture scales as shares of the central square's side, the part preparation keeps, so a
# texture has the same size in every prepared image whatever the photo's size. At 144
# pixels, the built-in run's size, stripes repeat every 9 to 18 pixels: at least two of
# conv1's stride-4 steps, so conv1 can see the stripes' orientation (drawn in pixels, they
# came down to 3.6 pixels in large photos, below the stride). Checkerboard cells are as
# wide as the dots' spacing: with cells half as wide, the two lattices looked alike after
# conv1 and the built-in run called every checkerboard polka dots.
STRIPE_PERIOD = (1 / 16, 1 / 8)
CHECKER_CELL = (1 / 16, 1 / 8)
DOT_SPACING = (1 / 16, 1 / 8)
TRAIN, VAL, MONTAGE = 0, 1, 2  # the "split" part of each image's seed


def wnid(class_index):
    """The fake WordNet id of a class: n00000000, n00000001, ..."""
    return f"n{class_index:08d}"


# ---------------------------------------------------------------------------
# Foreground masks, one function per class. Each gets a random generator, the
# image size and the central square (left, top, side), and returns a boolean
# (height, width) mask of the pixels painted in the foreground colour.


def circle(rng, width, height, square):
    radius = square[2] * rng.uniform(0.12, 0.3)
    return disks_mask(width, height, [(random_centre(rng, square, radius), radius)])


def filled_square(rng, width, height, square):
    half = square[2] * rng.uniform(0.1, 0.25)
    corners = [(-half, -half), (half, -half), (half, half), (-half, half)]
    return polygon_mask(rng, width, height, square, corners, half * np.sqrt(2))


def triangle(rng, width, height, square):
    radius = square[2] * rng.uniform(0.15, 0.35)
    angles = np.radians([90, 210, 330])
    corners = list(zip(radius * np.cos(angles), radius * np.sin(angles)))
    return polygon_mask(rng, width, height, square, corners, radius)


def cross(rng, width, height, square):
    arm = square[2] * rng.uniform(0.15, 0.33)
    half = arm * rng.uniform(0.15, 0.25)  # half the bar thickness
    corners = [(half, arm), (half, half), (arm, half), (arm, -half), (half, -half), (half, -arm),
               (-half, -arm), (-half, -half), (-arm, -half), (-arm, half), (-half, half), (-half, arm)]
    return polygon_mask(rng, width, height, square, corners, arm * np.sqrt(2))


def ring(rng, width, height, square):
    outer = square[2] * rng.uniform(0.15, 0.33)
    centre = random_centre(rng, square, outer)
    hole = disks_mask(width, height, [(centre, outer * rng.uniform(0.5, 0.7))])
    return disks_mask(width, height, [(centre, outer)]) & ~hole


def two_circles(rng, width, height, square):
    radii = square[2] * rng.uniform(0.08, 0.16, size=2)
    first = random_centre(rng, square, radii[0])
    while True:  # place the second one clear of the first
        second = random_centre(rng, square, radii[1])
        if np.hypot(first[0] - second[0], first[1] - second[1]) > radii.sum() + 0.05 * square[2]:
            return disks_mask(width, height, [(first, radii[0]), (second, radii[1])])


def horizontal_stripes(rng, width, height, square):
    _, y = patch_coordinates(rng, width, height, square, rng.uniform(-10, 10))
    period = square[2] * rng.uniform(*STRIPE_PERIOD)
    return (np.sin(2 * np.pi * y / period) > 0) & patch_mask(rng, width, height, square)


def vertical_stripes(rng, width, height, square):
    x, _ = patch_coordinates(rng, width, height, square, rng.uniform(-10, 10))
    period = square[2] * rng.uniform(*STRIPE_PERIOD)
    return (np.sin(2 * np.pi * x / period) > 0) & patch_mask(rng, width, height, square)


def checkerboard(rng, width, height, square):
    x, y = patch_coordinates(rng, width, height, square, rng.uniform(0, 90))
    cell = square[2] * rng.uniform(*CHECKER_CELL)
    return ((np.floor(x / cell) + np.floor(y / cell)) % 2 == 0) & patch_mask(rng, width, height, square)


def polka_dots(rng, width, height, square):
    x, y = patch_coordinates(rng, width, height, square, rng.uniform(0, 90))
    spacing = square[2] * rng.uniform(*DOT_SPACING)
    # Distance from each pixel to the nearest point of a square lattice.
    dx = x - spacing * np.round(x / spacing)
    dy = y - spacing * np.round(y / spacing)
    dots = np.hypot(dx, dy) < spacing * rng.uniform(0.25, 0.35)
    return dots & patch_mask(rng, width, height, square)


CLASSES = [
    ("filled circle", circle),
    ("filled square", filled_square),
    ("filled triangle", triangle),
    ("plus cross", cross),
    ("ring", ring),
    ("horizontal stripes", horizontal_stripes),
    ("vertical stripes", vertical_stripes),
    ("checkerboard", checkerboard),
    ("polka dots", polka_dots),
    ("two circles", two_circles),
]


def random_centre(rng, square, radius):
    """A point of the central square at least `radius` from its edges."""
    left, top, side = square
    margin = min(radius, side / 2)
    return left + rng.uniform(margin, side - margin), top + rng.uniform(margin, side - margin)


def disks_mask(width, height, disks):
    """Mask of the union of disks [((x, y), radius), ...]."""
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for (x, y), radius in disks:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(mask) > 0


def polygon_mask(rng, width, height, square, corners, radius):
    """Mask of a polygon given around (0, 0), rotated randomly and moved to a random centre."""
    angle = rng.uniform(0, 2 * np.pi)
    cx, cy = random_centre(rng, square, radius)
    cos, sin = np.cos(angle), np.sin(angle)
    points = [(cx + cos * x - sin * y, cy + sin * x + cos * y) for x, y in corners]
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).polygon(points, fill=255)
    return np.asarray(mask) > 0


def patch_coordinates(rng, width, height, square, degrees):
    """Pixel coordinates rotated by `degrees`, shifted randomly, for drawing a texture."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    angle = np.radians(degrees)
    shift = rng.uniform(0, 100, size=2)
    return (np.cos(angle) * x + np.sin(angle) * y + shift[0],
            -np.sin(angle) * x + np.cos(angle) * y + shift[1])


def patch_mask(rng, width, height, square):
    """A random rectangle inside the central square, where a texture shows."""
    left, top, side = square
    patch_width, patch_height = side * rng.uniform(0.45, 0.85, size=2)
    x0 = left + rng.uniform(0, side - patch_width)
    y0 = top + rng.uniform(0, side - patch_height)
    y, x = np.mgrid[0:height, 0:width]
    return (x >= x0) & (x < x0 + patch_width) & (y >= y0) & (y < y0 + patch_height)


# ---------------------------------------------------------------------------
# Whole images.


def render(class_index, rng):
    """One image of class `class_index` -> PIL RGB image of random size."""
    width, height = (int(side) for side in rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2))
    side = min(width, height)
    square = ((width - side) // 2, (height - side) // 2, side)
    background, foreground = contrasting_colours(rng)
    image = background_image(rng, width, height, background)
    mask = CLASSES[class_index][1](rng, width, height, square)
    image[mask] = foreground
    image += rng.normal(0, NOISE_STD, size=image.shape)
    return Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8))


def contrasting_colours(rng):
    """Two random RGB colours CONTRAST apart around a MIDDLE colour, the same for every class.

    The two are symmetric about the middle, so the background and the foreground colour
    follow the same distribution.
    """
    while True:
        middle = rng.uniform(*MIDDLE, size=3)
        direction = rng.normal(size=3)
        difference = direction / np.linalg.norm(direction) * rng.uniform(*CONTRAST)
        background, foreground = middle + difference / 2, middle - difference / 2
        if min(background.min(), foreground.min()) >= 0 and max(background.max(), foreground.max()) <= 255:
            return background, foreground


def background_image(rng, width, height, colour):
    """A float (height, width, 3) background: a soft gradient around `colour`, and thin clutter lines."""
    y, x = np.mgrid[0:height, 0:width]
    direction = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(direction) * x + np.sin(direction) * y) / max(width, height)
    image = colour + ramp[..., None] * rng.normal(0, 30, size=3)
    clutter = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(clutter)
    colours = rng.uniform(0, 255, size=(4, 3))
    for index in range(1, len(colours) + 1):  # line k is drawn with value k, then coloured
        ends = rng.uniform(0, 1, size=4) * [width, height, width, height]
        draw.line(list(ends), fill=index, width=int(rng.integers(1, 3)))
    lines = np.asarray(clutter)
    for index, line_colour in enumerate(colours, start=1):
        image[lines == index] = line_colour
    return image


# ---------------------------------------------------------------------------
# Folders, the prepared files, and a picture for the docs.


def make_synthetic_imagenet(root, num_classes=10, train_per_class=100, val_per_class=20, seed=0):
    """Writes the data set to `root` (a new or empty folder) -> root as a Path."""
    if not 1 <= num_classes <= len(CLASSES):
        raise ValueError(f"num_classes must be from 1 to {len(CLASSES)}, not {num_classes}")
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise DatasetError(f"{root}: folder is not empty; choose a new one")
    names = [CLASSES[k][0] for k in range(num_classes)]
    (root / "val").mkdir(parents=True)
    (root / "words.txt").write_text("".join(f"{wnid(k)}\t{name}\n" for k, name in enumerate(names)))
    with progress_bar(num_classes * (train_per_class + val_per_class), desc="synthetic", unit="img") as bar:
        for k in range(num_classes):
            (root / "train" / wnid(k)).mkdir(parents=True)
            for i in range(train_per_class):
                save_jpeg(render(k, image_rng(seed, TRAIN, k, i)), root / "train" / wnid(k) / f"{wnid(k)}_{i}.JPEG")
                bar.update()
        # Validation images come in a shuffled order, as in ILSVRC.
        val_classes = np.repeat(np.arange(num_classes), val_per_class)
        val_index = np.tile(np.arange(val_per_class), num_classes)
        order = np.random.default_rng([seed, VAL]).permutation(len(val_classes))
        for j, (k, i) in enumerate(zip(val_classes[order], val_index[order]), start=1):
            save_jpeg(render(k, image_rng(seed, VAL, k, i)), root / "val" / f"synthetic_val_{j:08d}.JPEG")
            bar.update()
    (root / "val_ground_truth.txt").write_text("".join(f"{k + 1}\n" for k in val_classes[order]))
    return root


def image_rng(seed, split, class_index, index):
    """The random generator of one image: it depends on nothing else."""
    return np.random.default_rng([seed, split, int(class_index), int(index)])


def save_jpeg(image, path):
    image.save(path, "JPEG", quality=90)


def ensure_builtin_dataset(out_dir, num_classes=10, train_per_class=100, val_per_class=20, seed=0, size=256,
                           workers=None):
    """Makes and prepares the synthetic data set once -> (train.h5 path, val.h5 path).

    Everything goes to OUT_DIR/synthetic-c<classes>-t<train>-v<val>-s<seed>-<size>px/,
    so different settings never mix: raw/ holds the image folders, train.h5 and
    val.h5 the prepared files (size x size images). Steps already done are not
    repeated, and an interrupted run continues (the images are first written to
    raw.tmp/, the preparation resumes from its checkpoint).
    """
    settings = f"c{num_classes}-t{train_per_class}-v{val_per_class}-s{seed}-{size}px"
    folder = Path(out_dir) / f"synthetic-{settings}"
    raw = folder / "raw"
    if not (is_complete(folder / "train.h5") and is_complete(folder / "val.h5")):
        folder.mkdir(parents=True, exist_ok=True)
        # The lock of OUT_DIR (the preparation takes the one of the folder inside it):
        # two runs drawing into raw.tmp at once would delete each other's images.
        with folder_lock(out_dir, "a preparation of the built-in data set"):
            if not raw.exists():
                temporary = folder / "raw.tmp"
                shutil.rmtree(temporary, ignore_errors=True)
                make_synthetic_imagenet(temporary, num_classes, train_per_class, val_per_class, seed)
                os.replace(temporary, raw)
            prepare_imagenet(raw, folder, val_labels=raw / "val_ground_truth.txt", size=size, workers=workers)
    return folder / "train.h5", folder / "val.h5"


def save_montage(path, num_classes=10, per_class=6, seed=0, tile=72):
    """Saves a PNG of `per_class` examples of each class, as preparation crops them."""
    label_width = 140
    montage = Image.new("RGB", (label_width + per_class * tile, num_classes * tile), "white")
    draw = ImageDraw.Draw(montage)
    font = ImageFont.load_default(size=14)
    for k in range(num_classes):
        draw.text((8, k * tile + tile // 2 - 8), CLASSES[k][0], fill="black", font=font)
        for i in range(per_class):
            example = resize_and_crop(render(k, image_rng(seed, MONTAGE, k, i)), 256)
            montage.paste(example.resize((tile, tile), Image.Resampling.BICUBIC), (label_width + i * tile, k * tile))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    montage.save(path)
