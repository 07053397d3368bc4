"""Reading all-sky images at full bit depth (8-bit ``L``, 16-bit ``I;16``, 32-bit ``I``, RGB).

Conventions:

- 16-bit files (the UiO ``*_cal.png`` are ``I;16``) stay ``uint16``: nothing is scaled to 8 bits here.
- RGB files whose red and blue channels are all zero carry a single colour-coded channel (OATH /
  THEMIS crops store the grey image in green): :func:`load_asi_image` returns that channel as is.
- Any other RGB image is reduced to luminance, ITU-R BT.601 ``0.299 R + 0.587 G + 0.114 B``.

A file is valid only when its size read from the header is within the pixel cap, PIL's structural
check (:meth:`PIL.Image.Image.verify`: chunk CRCs) and a full decode (:meth:`PIL.Image.Image.load`:
truncated/corrupt pixel data) succeed. The pixel cap (width × height; ``max_pixels`` arguments — the
setting ``max_image_pixels``, passed explicitly, also to Dask workers — else
:data:`tame_assets.config.MAX_IMAGE_PIXELS` = 4096 × 4096) is
checked before any pixel is decoded, so a decompression bomb (a small file declaring a huge image)
costs no memory; it is rejected like any other unreadable file, naming the file.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tame_assets.config import MAX_IMAGE_PIXELS
from tame_assets.sources.errors import ImageReadError
from tame_assets.sources.png import PngTooLarge, decode_grey_png

#: BT.601 luma weights for R, G, B.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: Version of the decoding/validity rules (pixel cap, checks); part of the image assets' code_version.
IMAGE_READ_VERSION = "3"  # 3: THEMIS PGM inflate cap, frameless files quarantined, blank/tiny images unclassified


class ImageTooLarge(ValueError):
    """The header declares more pixels than the cap."""


def default_max_pixels() -> int:
    """The pixel cap used when a caller passes none: :data:`MAX_IMAGE_PIXELS` (callers holding settings
    pass ``settings.max_image_pixels``)."""
    return MAX_IMAGE_PIXELS


def _open(path: str | Path, max_pixels: int) -> Image.Image:
    """Open (header only) and enforce the pixel cap before anything is decoded."""
    with warnings.catch_warnings():  # our cap decides, not Pillow's DecompressionBombWarning
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = Image.open(path)
    width, height = im.size
    if width * height > max_pixels:
        im.close()
        raise ImageTooLarge(
            f"{width}×{height} = {width * height:,} pixels exceeds the cap of {max_pixels:,} "
            "(setting [archives] max_image_pixels)"
        )
    return im


def _decode(path: str | Path, verify: bool, max_pixels: int) -> np.ndarray:
    if not verify and str(path).lower().endswith(".png") and os.path.getsize(path) <= 4 * max_pixels + (1 << 20):
        # greyscale PNGs (the UiO images): libdeflate + a compiled unfilter, 2.2× Pillow; None → Pillow
        try:
            pixels = decode_grey_png(Path(path).read_bytes(), max_pixels)
        except PngTooLarge as exc:
            raise ImageTooLarge(f"{exc} (setting [archives] max_image_pixels)") from None
        if pixels is not None:
            return pixels
    if verify:
        with _open(path, max_pixels) as im:  # structure and CRCs; the image object is unusable afterwards
            im.verify()
    with _open(path, max_pixels) as im:
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L"):
            return np.asarray(im).astype(np.uint16, copy=False)
        if im.mode == "I":
            arr = np.asarray(im)
            if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
                raise ValueError(f"32-bit values outside 0..65535 ({arr.min()}..{arr.max()})")
            return arr.astype(np.uint16)
        if im.mode in ("L", "P", "1", "LA", "PA"):
            return np.asarray(im.convert("L"), dtype=np.uint8)
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def load_image_array(path: str | Path, verify: bool = False, max_pixels: int | None = None) -> np.ndarray:
    """Decode ``path`` fully: (H, W) uint8/uint16 greyscale, or (H, W, 3) uint8 for colour images.

    ``verify=True`` also runs PIL's structural check first; ``max_pixels`` (default
    :func:`default_max_pixels`) caps width × height, read from the header before decoding.
    Raises :class:`ImageReadError` naming the file for every unreadable, truncated or oversized image.
    """
    try:
        return _decode(path, verify, max_pixels or default_max_pixels())
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except ImageTooLarge as exc:
        raise ImageReadError(path, f"image too large: {exc}") from None
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        Image.DecompressionBombError,
        MemoryError,
    ) as exc:
        raise ImageReadError(path, f"unreadable image ({type(exc).__name__}: {exc})") from None


#: Smallest side (pixels) of an image the classifier is given: a sky image has thousands of pixels;
#: below this there is nothing to classify (a 1-pixel image was once called "moon").
MIN_CLASSIFIABLE_SIDE = 8


def unclassifiable_reason(arr: np.ndarray) -> str | None:
    """Why a decoded image carries no sky to classify, else None: ``image too small: W×H pixels …``
    (a side below :data:`MIN_CLASSIFIABLE_SIDE`) or ``blank image: every pixel is V`` (one value
    everywhere, e.g. a camera that recorded nothing). Classification gives such images no class
    (``pred`` NULL, this reason in ``error``) instead of whatever class a featureless input falls into."""
    height, width = arr.shape[:2]
    if min(height, width) < MIN_CLASSIFIABLE_SIDE:
        return (
            f"image too small: {width}×{height} pixels (classified from {MIN_CLASSIFIABLE_SIDE}×"
            f"{MIN_CLASSIFIABLE_SIDE} up)"
        )
    first = arr.flat[0]
    if arr.size and not np.any(arr != first):
        return f"blank image: every pixel is {first.tolist()}"
    return None


def to_greyscale(arr: np.ndarray) -> np.ndarray:
    """2-D image: greyscale unchanged; RGB with R = B = 0 → G; other RGB → BT.601 luminance (uint8)."""
    if arr.ndim == 2:
        return arr
    if not arr[..., 0].any() and not arr[..., 2].any():
        return arr[..., 1].copy()
    luma = arr[..., :3].astype(np.float32) @ np.asarray(LUMA_WEIGHTS, dtype=np.float32)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)


def load_asi_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """All-sky image as 2-D greyscale at full depth (uint8 or uint16; 16-bit is never reduced)."""
    return to_greyscale(load_image_array(path, max_pixels=max_pixels))


def check_image(path: str | Path, max_pixels: int | None = None) -> str | None:
    """None when ``path`` is within the pixel cap, passes ``verify()`` and decodes completely, else
    the reason."""
    try:
        load_image_array(path, verify=True, max_pixels=max_pixels)
    except ImageReadError as exc:
        return exc.reason
    return None
