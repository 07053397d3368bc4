"""Reading all-sky images at full bit depth (8-bit ``L``, 16-bit ``I;16``, RGB)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


class ImageReadError(ValueError):
    """An image file cannot be decoded; names the file and the reason."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def load_image_array(path: str | Path) -> np.ndarray:
    """Decode ``path`` fully: (H, W) uint8/uint16 greyscale, or (H, W, 3) uint8 for RGB."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(im, dtype=np.uint16)
            if im.mode == "I":
                arr = np.asarray(im)
                return np.clip(arr, 0, 65535).astype(np.uint16)
            if im.mode in ("L", "P", "1", "LA"):
                return np.asarray(im.convert("L"), dtype=np.uint8)
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(path, f"unreadable image ({type(exc).__name__}: {exc})") from None


def load_asi_image(path: str | Path) -> np.ndarray:
    """All-sky image as 2-D greyscale at full depth (uint8 or uint16; 16-bit is never reduced).

    RGB files are reduced to their green channel (557.7 nm emission is green; OATH/THEMIS crops).
    """
    arr = load_image_array(path)
    return arr[..., 1] if arr.ndim == 3 else arr


def check_image(path: str | Path) -> str | None:
    """None when ``path`` decodes completely, else the reason (truncated, corrupt, …)."""
    try:
        load_image_array(path)
    except ImageReadError as exc:
        return exc.reason
    return None
