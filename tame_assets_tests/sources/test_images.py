"""Image loading at full depth, colour handling and corrupt-file detection, on real PNG files."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from PIL import Image

from tame_assets.sources.images import ImageReadError, check_image, load_asi_image, load_image_array


def test_real_16bit_uio_images_keep_full_depth(real_dir):
    paths = sorted((real_dir / "uio_asi_nya6" / "images").glob("*.png"))[:5]
    assert paths
    for path in paths:
        with Image.open(path) as im:
            assert im.mode == "I;16"
            reference = np.frombuffer(im.tobytes("raw", "I;16"), dtype="<u2").reshape(im.size[1], im.size[0])
        image = load_asi_image(path)
        assert image.dtype == np.uint16 and image.shape == reference.shape
        np.testing.assert_array_equal(image, reference)
        assert check_image(path) is None
    assert max(int(load_asi_image(p).max()) for p in paths) == 65535  # not clipped to 8 bits


def test_real_oath_crop_is_green_only(real_dir):
    path = real_dir / "oath" / "images" / "cropped_scaled" / "00001.png"
    rgb = load_image_array(path)
    assert rgb.shape == (256, 256, 3) and not rgb[..., 0].any() and not rgb[..., 2].any()
    np.testing.assert_array_equal(load_asi_image(path), rgb[..., 1])


def test_rgb_is_reduced_to_bt601_luminance(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    expected = np.rint(0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.uint8)
    got = load_asi_image(tmp_path / "c.png")
    assert got.dtype == np.uint8 and np.abs(got.astype(int) - expected).max() <= 1


def test_8bit_greyscale_and_palette(tmp_path):
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_array_equal(load_asi_image(tmp_path / "g.png"), grey)
    Image.fromarray(grey).convert("P").save(tmp_path / "p.png")
    got = load_asi_image(tmp_path / "p.png")
    assert got.dtype == np.uint8 and got.shape == grey.shape and check_image(tmp_path / "p.png") is None


def _png(tmp_path, name="img.png") -> bytes:
    path = tmp_path / name
    Image.fromarray(np.random.default_rng(0).integers(0, 65535, (64, 64), dtype=np.uint16)).save(path)
    return path.read_bytes()


def test_truncated_png_is_reported(tmp_path):
    data = _png(tmp_path)
    path = tmp_path / "nya4_20101201_000000_5577_cal.png"
    path.write_bytes(data[: len(data) // 2])
    reason = check_image(path)
    assert reason and "unreadable image" in reason
    with pytest.raises(ImageReadError, match=path.name):
        load_asi_image(path)


def test_crc_corruption_is_caught_by_verify(tmp_path):
    data = bytearray(_png(tmp_path))
    idat = data.index(b"IDAT")
    length = int.from_bytes(data[idat - 4 : idat], "big")
    crc_at = idat + 4 + length
    assert int.from_bytes(data[crc_at : crc_at + 4], "big") == zlib.crc32(data[idat:crc_at])  # really the CRC
    data[crc_at] ^= 0xFF
    path = tmp_path / "crc.png"
    path.write_bytes(bytes(data))
    assert load_image_array(path).shape == (64, 64)  # decoding alone does not notice ...
    assert "checksum" in check_image(path)  # ... verify() does


@pytest.mark.parametrize("content", [b"", b"not a png at all", b"\x89PNG\r\n\x1a\n"])
def test_garbage_and_missing_files(tmp_path, content):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    assert check_image(path) is not None
    with pytest.raises(ImageReadError, match="bad.png"):
        load_image_array(path)
    with pytest.raises(ImageReadError, match="file not found"):
        load_image_array(tmp_path / "absent.png")
