"""The fast greyscale PNG decoder against Pillow: the real UiO images, every row filter written by
hand, other kinds of PNG left to Pillow, and damaged or oversized files."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tame_assets.sources.images import ImageReadError, load_image_array
from tame_assets.sources.png import decode_grey_png, unfilter_rows

CAP = 4096 * 4096


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _filtered(rows: np.ndarray, bpp: int, kinds: list[int]) -> bytes:
    """Rows of bytes encoded with the given PNG filter per row (the specification's forward filters)."""
    out = bytearray()
    prev = np.zeros(rows.shape[1], np.int32)
    for row, kind in zip(rows.astype(np.int32), kinds):
        left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
        predictor = [np.zeros_like(row), left, prev, (left + prev) // 2, _paeth(left, prev, upleft)][kind]
        out.append(kind)
        out += ((row - predictor) % 256).astype(np.uint8).tobytes()
        prev = row
    return bytes(out)


def _grey_png(pixels: np.ndarray, kinds: list[int], interlace: int = 0) -> bytes:
    height, width = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    rows = pixels.astype(">u2" if depth == 16 else np.uint8).view(np.uint8).reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(_filtered(rows, depth // 8, kinds)))
        + _chunk(b"IEND", b"")
    )


def test_every_real_uio_image_decodes_to_pillows_pixels(real_dir):
    paths = sorted((real_dir / "uio_asi_nya6" / "images").glob("*.png"))
    assert len(paths) == 300
    for path in paths:
        fast = decode_grey_png(path.read_bytes(), CAP)
        with Image.open(path) as im:
            assert fast is not None and fast.dtype == np.uint16, path.name
            np.testing.assert_array_equal(fast, np.asarray(im), err_msg=path.name)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8])
@pytest.mark.parametrize("shape", [(13, 17), (1, 1), (6, 1), (1, 9)])
def test_each_row_filter_written_by_hand(tmp_path, dtype, shape):
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=np.int64).astype(dtype)
    pixels[: shape[0] // 2] //= 7  # smooth and rough rows, so the predictors differ
    kinds = [i % 5 for i in range(shape[0])]  # None, Sub, Up, Average, Paeth in turn
    data = _grey_png(pixels, kinds)
    path = tmp_path / "hand.png"
    path.write_bytes(data)
    with Image.open(path) as im:
        np.testing.assert_array_equal(np.asarray(im), pixels)  # the encoder above is right ...
    decoded = decode_grey_png(data, CAP)
    assert decoded is not None and decoded.dtype == dtype
    np.testing.assert_array_equal(decoded, pixels)  # ... and so is the decoder
    np.testing.assert_array_equal(load_image_array(path), pixels)


def test_other_pngs_are_left_to_pillow(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 1] = 200
    for name, image in (
        ("rgb.png", Image.fromarray(rgb)),
        ("palette.png", Image.fromarray(rgb).convert("P")),
        ("bilevel.png", Image.fromarray(np.eye(8, dtype=bool))),
    ):
        image.save(tmp_path / name)
        assert decode_grey_png((tmp_path / name).read_bytes(), CAP) is None, name
    assert load_image_array(tmp_path / "rgb.png").shape == (8, 8, 3)
    interlaced = _grey_png(np.zeros((8, 8), np.uint16), [0] * 8, interlace=1)
    assert decode_grey_png(interlaced, CAP) is None
    assert decode_grey_png(b"GIF89a", CAP) is None


def test_damaged_files_fall_back_to_pillow_which_names_the_file(tmp_path):
    pixels = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 9
    good = _grey_png(pixels, [4] * 64)
    idat, iend = good.index(b"IDAT"), good.index(b"IEND")
    stream = good[idat + 4 : iend - 8]  # the zlib stream inside the one IDAT chunk
    bad_filter = bytearray(zlib.decompress(stream))
    bad_filter[0] = 7

    def with_stream(data: bytes) -> bytes:
        return good[: idat - 4] + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")

    damaged = {
        "truncated.png": good[: len(good) // 2],
        "bad_adler.png": with_stream(stream[:-1] + bytes([stream[-1] ^ 0xFF])),
        "short_stream.png": with_stream(zlib.compress(zlib.decompress(stream)[:-10])),
        "bad_filter.png": with_stream(zlib.compress(bytes(bad_filter))),
    }
    for name, data in damaged.items():
        assert decode_grey_png(data, CAP) is None, name
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ImageReadError, match=f"{name}: unreadable image"):
            load_image_array(path)
    with pytest.raises(ValueError, match="row 0: unknown PNG filter type 7"):
        unfilter_rows(np.frombuffer(bytes(bad_filter), np.uint8), 64, 128, 2)
    # no IEND: not ours to accept, but Pillow reads it as before
    no_end = tmp_path / "no_iend.png"
    no_end.write_bytes(good[: iend - 4])
    assert decode_grey_png(no_end.read_bytes(), CAP) is None
    np.testing.assert_array_equal(load_image_array(no_end), pixels)


def test_the_pixel_cap_is_read_from_the_header_before_inflating(tmp_path):
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 16, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"") + _chunk(b"IEND", b"")
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    with pytest.raises(ImageReadError, match="bomb.png: image too large: 100000×100000"):
        load_image_array(path)
