"""Reading all-sky images at full bit depth (8-bit ``L``, 16-bit ``I;16``, 32-bit ``I``, RGB).

Conventions:

- 16-bit files (the UiO ``*_cal.png`` are ``I;16``) stay ``uint16``: nothing is scaled to 8 bits here.
- RGB files whose red and blue channels are all zero carry a single colour-coded channel (OATH /
  THEMIS crops store the grey image in green): :func:`load_asi_image` returns that channel as is.
- Any other RGB image is reduced to luminance, ITU-R BT.601 ``0.299 R + 0.587 G + 0.114 B``.

A file is valid only when PIL's structural check (:meth:`PIL.Image.Image.verify`: chunk CRCs) and a
full decode (:meth:`PIL.Image.Image.load`: truncated/corrupt pixel data) both succeed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

#: BT.601 luma weights for R, G, B.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: Version of the decoding/validity rules (pixel cap, checks); part of the image assets' code_version.
IMAGE_READ_VERSION = "2"


class ImageReadError(ValueError):
    """An image file cannot be decoded; names the file and the reason."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def _decode(path: str | Path, verify: bool) -> np.ndarray:
    if verify:
        with Image.open(path) as im:  # structure and CRCs; the image object is unusable afterwards
            im.verify()
    with Image.open(path) as im:
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


def load_image_array(path: str | Path, verify: bool = False) -> np.ndarray:
    """Decode ``path`` fully: (H, W) uint8/uint16 greyscale, or (H, W, 3) uint8 for colour images.

    ``verify=True`` also runs PIL's structural check first. Raises :class:`ImageReadError`.
    """
    try:
        return _decode(path, verify)
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(path, f"unreadable image ({type(exc).__name__}: {exc})") from None


def to_greyscale(arr: np.ndarray) -> np.ndarray:
    """2-D image: greyscale unchanged; RGB with R = B = 0 → G; other RGB → BT.601 luminance (uint8)."""
    if arr.ndim == 2:
        return arr
    if not arr[..., 0].any() and not arr[..., 2].any():
        return arr[..., 1].copy()
    luma = arr[..., :3].astype(np.float32) @ np.asarray(LUMA_WEIGHTS, dtype=np.float32)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)


def load_asi_image(path: str | Path) -> np.ndarray:
    """All-sky image as 2-D greyscale at full depth (uint8 or uint16; 16-bit is never reduced)."""
    return to_greyscale(load_image_array(path))


def check_image(path: str | Path) -> str | None:
    """None when ``path`` passes ``verify()`` and decodes completely, else the reason."""
    try:
        load_image_array(path, verify=True)
    except ImageReadError as exc:
        return exc.reason
    return None
