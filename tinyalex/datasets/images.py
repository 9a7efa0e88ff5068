"""Turns one image file into the 256x256 RGB array that AlexNet's data starts from.

The paper (section 2): "we down-sampled the images to a fixed resolution of
256 x 256. Given a rectangular image, we first rescaled the image such that the
shorter side was of length 256, and then cropped out the central 256x256 patch".

Choices the paper leaves open, made here:

* Resampling filter: Pillow's BICUBIC. Pillow widens the filter when it shrinks
  an image, so downscaling is properly anti-aliased; bicubic is sharper than
  bilinear and rings less than Lanczos. Small images are scaled up with the
  same filter.
* Orientation: a camera that was held sideways stores the pixels as the sensor saw them
  and an EXIF tag saying how to turn them. The image is turned as the tag says
  (Pillow's ImageOps.exif_transpose), as every photo viewer does, so that a phone
  photo is not prepared, or classified, lying on its side.
* Colour modes: everything becomes 8-bit RGB.
  - Transparent images (RGBA, LA, palette images with a transparent colour)
    are laid over a white background: such web graphics are drawn on white
    pages, and the colour stored under transparent pixels is meaningless.
  - 16-bit greyscale ("I;16" modes, and "I" which Pillow uses for 32-bit
    integer pixels) is scaled from 0..65535 to 0..255 by dividing by 257.
    Pillow's own convert("L") clips at 255 instead, which turns almost every
    pixel white. An "I" image with values outside 0..65535 has no known
    range (32-bit data: depth maps, scientific images); it is refused, and
    preparation skips it with that reason.
  - Floating-point greyscale ("F", e.g. a 32-bit float TIFF) is taken to hold
    0..1, the usual convention, and scaled by 255 (Pillow's convert would
    round 0..1 down to black). Values outside 0..1 are refused, as above.
  - 16-bit colour PNGs already arrive as 8-bit "RGB": Pillow keeps the high
    byte of each sample, which is within one level of the exact scaling.
  - CMYK (a few ImageNet JPEGs are CMYK) and the rest: Pillow's convert("RGB").
    ICC colour profiles are ignored, as in most ImageNet pipelines.
"""

import numpy as np
from PIL import Image, ImageOps

RESAMPLE = Image.Resampling.BICUBIC
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def load_image(path, size=256):
    """Reads an image file -> uint8 array (size, size, 3), RGB.

    Raises whatever Pillow raises for a file it cannot decode (OSError,
    ValueError, ...), and ValueError for pixel values of unknown range; the
    caller decides what to do with such a file.
    """
    with Image.open(path) as image:
        image.load()  # decode now, so a truncated file fails here
        rgb = to_rgb(ImageOps.exif_transpose(image))
    return np.asarray(resize_and_crop(rgb, size), dtype=np.uint8)


def to_rgb(image):
    """Any Pillow image -> an 8-bit "RGB" image (see the module notes)."""
    if image.mode == "RGB":
        return image
    if image.mode in SIXTEEN_BIT_MODES:
        return sixteen_bit_to_rgb(image)
    if image.mode == "F":
        return float_to_rgb(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return over_white(image.convert("RGBA"))
    return image.convert("RGB")


def sixteen_bit_to_rgb(image):
    """Greyscale with values 0..65535 -> RGB 0..255, rounding to nearest."""
    values = np.asarray(image).astype(np.float64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ValueError(f"{image.mode} pixels from {values.min():.0f} to {values.max():.0f}: 32-bit integer "
                         "values of unknown range (only 0..65535 is understood)")
    grey = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def float_to_rgb(image):
    """Floating-point greyscale with values 0..1 -> RGB 0..255, rounding to nearest."""
    values = np.asarray(image).astype(np.float64)
    if values.size and not np.isfinite(values).all():
        raise ValueError(f"floating-point pixels that are not numbers ({np.isnan(values).sum()} NaN, "
                         f"{np.isinf(values).sum()} infinite): only 0..1 is understood")
    if values.size and not (values.min() >= 0 and values.max() <= 1):
        raise ValueError(f"floating-point pixels from {values.min():g} to {values.max():g}: only 0..1 is "
                         "understood")
    grey = np.rint(values * 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def over_white(rgba):
    """Composites an RGBA image over an opaque white background."""
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def resize_and_crop(image, size=256):
    """Scales the shorter side to `size`, then cuts out the central size x size square."""
    width, height = image.size
    scale = size / min(width, height)
    new_width = max(size, round(width * scale))
    new_height = max(size, round(height * scale))
    image = image.resize((new_width, new_height), RESAMPLE)
    left = (new_width - size) // 2
    top = (new_height - size) // 2
    return image.crop((left, top, left + size, top + size))
