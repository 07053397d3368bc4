"""OATH label file (the real one), tarball extraction safety and the download client."""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from tame_assets.sources import oath
from tame_assets.sources.http import DownloadError, HttpClient


def test_real_label_file(real_dir):
    path = real_dir / "oath" / "classifications" / "classifications.csv"
    lines = path.read_text().splitlines()
    start = lines.index("class2,class6,picNum,picType,rotAng")
    records = list(csv.DictReader(lines[start:]))
    df = oath.parse_classifications(path, image_root=real_dir / "oath")
    assert df.height == len(records) == 5824 and df.columns == list(oath.OATH_SCHEMA)
    assert dict(df.group_by("pic_type").len().iter_rows()) == Counter(r["picType"] for r in records)
    by_number = Counter(int(r["class6"]) for r in records)
    names: dict[int, set[str]] = {}
    for r in records:
        names.setdefault(int(r["class6"]), set()).add(r["picType"])
    assert all(len(v) == 1 for v in names.values())  # the file itself fixes the numbering ...
    assert {k: v.pop() for k, v in names.items()} == {
        0: "arc",
        1: "diffuse",
        2: "discrete",
        3: "cloudy",
        4: "moon",
        5: "noaurora",
    }  # ... which the module documents
    counts = dict(df.group_by("class6").len().iter_rows())
    assert counts == dict(by_number)
    assert dict(df.group_by("label").len().iter_rows())["clear"] == by_number[5]
    assert (df["class2"] == (df["class6"] >= 3).cast(pl.Int64)).all()
    first = df.row(0, named=True)
    assert (first["pic_num"], first["label"], first["angle"]) == (1, "discrete", 334.0)
    present = df.filter(pl.col("path").map_elements(lambda p: Path(p).exists(), return_dtype=pl.Boolean))
    assert sorted(present["pic_num"]) == sorted(
        int(p.stem) for p in (real_dir / "oath" / "images" / "cropped_scaled").glob("*.png")
    )
    assert df["path_rotated"].null_count() == 5824  # not in the shared copy


def test_documented_variant_and_bad_rows(tmp_path):
    path = tmp_path / "classifications.csv"
    path.write_text(
        "licence text, with a comma\nclass2,class6,picNum,label,angle\n0,0,00001,arc,10\n1,5,00002,clear,20.5\n"
    )
    df = oath.parse_classifications(path)
    assert df["label"].to_list() == ["arc", "clear"] and df["angle"].to_list() == [10.0, 20.5]
    assert df["path"].null_count() == 2
    for row, message in [
        ("0,9,00003,arc,20", "line 5: class6 9"),
        ("1,0,00003,arc,20", "line 5: class6 0 / class2 1"),
        ("0,0,00003,moon,20", "line 5: 'moon' contradicts class6 0"),
        ("0,0,00003,arc", "line 5: expected 5"),
        ("0,0,x,arc,20", "line 5: not a number"),
        ("0,1,00001,diffuse,5", "duplicate picNum 1"),
    ]:
        path.write_text(
            "licence\nclass2,class6,picNum,label,angle\n0,0,00001,arc,10\n1,5,00002,clear,20\n" + row + "\n"
        )
        with pytest.raises(oath.OathFormatError, match=message):
            oath.parse_classifications(path)
    path.write_text("just,some,csv\n1,2,3\n")
    with pytest.raises(oath.OathFormatError, match="no column header"):
        oath.parse_classifications(path)


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname = (len(data) if kind == tarfile.REGTYPE else 0), kind, link
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


@pytest.mark.parametrize(
    "name,kind,link,message",
    [
        ("../evil.txt", tarfile.REGTYPE, "", "unsafe path"),
        ("/tmp/evil.txt", tarfile.REGTYPE, "", "unsafe path"),
        ("top/../../evil.txt", tarfile.REGTYPE, "", "unsafe path"),
        ("top/link", tarfile.SYMTYPE, "/etc/passwd", "link or special file"),
        ("top/hard", tarfile.LNKTYPE, "top/a.txt", "link or special file"),
    ],
)
def test_unsafe_tarballs_are_refused(tmp_path, name, kind, link, message):
    archive = tmp_path / "evil.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "top/a.txt")
        _add(tar, name, kind=kind, link=link)
    with pytest.raises(oath.OathFormatError, match=message):
        oath.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "top").exists()


def _oath_tarball(path: Path, n: int = 12) -> list[tuple[int, int]]:
    rng = np.random.default_rng(0)
    rows, truth = ["Licence header line", "class2,class6,picNum,picType,rotAng"], []
    with tarfile.open(path, "w:gz") as tar:
        for i in range(1, n + 1):
            class6 = (i - 1) % 6
            for folder in ("cropped_scaled", "cropped_scaled_rotated"):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(buf, format="PNG")
                _add(tar, f"oath_v1.1/images/{folder}/{i:05d}.png", buf.getvalue())
            name = oath.CLASS6_NAMES[class6] if class6 != 5 else "noaurora"
            rows.append(f"{int(class6 >= 3)},{class6},{i:05d},{name},{i * 7:03d}")
            truth.append((i, class6))
        _add(tar, "oath_v1.1/classifications/classifications.csv", ("\n".join(rows) + "\n").encode())
    return truth


def test_fetch_oath_over_http(tmp_path, loopback_server):
    www = tmp_path / "www"
    www.mkdir()
    truth = _oath_tarball(www / "oath_v1.1.tgz")
    served = loopback_server(www)
    df = oath.fetch_oath(HttpClient(), f"{served.url}/oath_v1.1.tgz", tmp_path / "raw")
    assert list(zip(df["pic_num"], df["class6"])) == truth
    assert all(Path(p).exists() and Path(q).exists() for p, q in zip(df["path"], df["path_rotated"]))
    assert (
        Path(df["path"][0]) == tmp_path / "raw" / "extracted" / "oath_v1.1" / "images" / "cropped_scaled" / "00001.png"
    )
    again = oath.fetch_oath(HttpClient(), f"{served.url}/oath_v1.1.tgz", tmp_path / "raw")  # cached: no new request
    assert again.equals(df) and served.count("/oath_v1.1.tgz") == 1


#: Zeros per precompressed gzip member of a bomb (64 MiB → ~65 kB at level 9).
_ZERO_CHUNK = 64 * 2**20


@functools.cache
def _gzipped_zeros(size: int) -> bytes:
    return gzip.compress(bytes(size), compresslevel=9, mtime=0)


def _bomb(path: Path, member_sizes: list[int]) -> Path:
    """A .tgz with a label file and members of ``member_sizes`` zero bytes, written as a multi-member
    gzip stream (valid gzip: readers, tarfile's included, concatenate the members), the zeros as one
    precompressed chunk repeated: a 2 GiB member costs a few MB on disk and no 2 GiB of compression."""
    with open(path, "wb") as out:

        def blocks(data: bytes) -> None:  # tar data padded to 512-byte blocks, as its own gzip member
            out.write(gzip.compress(data + bytes(-len(data) % tarfile.BLOCKSIZE), mtime=0))

        label = b"class2,class6,picNum,picType,rotAng\n"
        info = tarfile.TarInfo("oath_v1.1/classifications/classifications.csv")
        info.size = len(label)
        blocks(info.tobuf() + label)
        for i, size in enumerate(member_sizes):
            info = tarfile.TarInfo(f"oath_v1.1/images/cropped_scaled/{i:05d}.png")
            info.size = size
            blocks(info.tobuf())
            padded = size + -size % tarfile.BLOCKSIZE
            for _ in range(padded // _ZERO_CHUNK):
                out.write(_gzipped_zeros(_ZERO_CHUNK))
            if padded % _ZERO_CHUNK:
                out.write(_gzipped_zeros(padded % _ZERO_CHUNK))
        blocks(bytes(2 * tarfile.BLOCKSIZE))  # end of archive
    return path


def test_tarball_expanding_to_2_gib_is_refused_before_writing(tmp_path):
    archive = _bomb(tmp_path / "bomb.tgz", [2 * 2**30])
    assert archive.stat().st_size < 12 * 2**20  # a few MB on the wire
    with pytest.raises(
        oath.OathFormatError,
        match=r"bomb.tgz: member oath_v1.1/images/cropped_scaled/00000.png is "
        r"2,147,483,648 bytes, above the cap of 268,435,456",
    ):
        oath.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written


def test_many_small_members_adding_up_to_a_bomb_are_refused(tmp_path):
    archive = _bomb(tmp_path / "many.tgz", [4 * 2**20] * 40)  # 160 MiB of zeros, well below the member cap
    with pytest.raises(oath.OathFormatError, match="decompression bomb"):
        oath.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    top = oath.safe_extract(archive, tmp_path / "out", max_expansion_ratio=10_000)  # an explicit, larger allowance
    assert len(list((top / "images" / "cropped_scaled").iterdir())) == 40


def test_pinned_checksum_mismatch_names_the_url(tmp_path, loopback_server):
    www = tmp_path / "www"
    www.mkdir()
    _oath_tarball(www / "oath_v1.1.tgz")
    served = loopback_server(www)
    url = f"{served.url}/oath_v1.1.tgz"
    with pytest.raises(DownloadError, match=rf"^{url}: sha256 mismatch: got [0-9a-f]{{64}}, expected {'ab' * 32}$"):
        oath.fetch_oath(HttpClient(backoff_s=0.01), url, tmp_path / "raw", sha256="AB" * 32)
    assert not (tmp_path / "raw" / "extracted").exists()
    good = hashlib.sha256((www / "oath_v1.1.tgz").read_bytes()).hexdigest()
    assert oath.fetch_oath(HttpClient(), url, tmp_path / "raw", sha256=good).height == 12


@pytest.mark.parametrize("damage", ["truncated", "not a tarball", "empty", "gzip of no tar"])
def test_a_damaged_tarball_is_an_error_naming_the_file(tmp_path, damage):
    """tarfile's own errors (EOFError, ReadError listing four methods over five lines) named no file."""
    import gzip

    good = tmp_path / "good.tgz"
    _oath_tarball(good)
    data = good.read_bytes()
    archive = tmp_path / "oath_v1.1.tgz"
    archive.write_bytes(
        {
            "truncated": data[: len(data) // 2],
            "not a tarball": b"<html>busy</html>" * 40,
            "empty": b"",
            "gzip of no tar": gzip.compress(b"x" * 5000),
        }[damage]
    )
    with pytest.raises(oath.OathFormatError) as error:
        oath.safe_extract(archive, tmp_path / "out")
    message = str(error.value)
    assert message.startswith(f"{archive}: ") and "\n" not in message, message
    assert ("truncated or corrupt" if damage == "truncated" else "not a tar archive") in message, message


def test_fetch_oath_of_a_truncated_tarball_names_the_downloaded_file(tmp_path, loopback_server):
    www = tmp_path / "www"
    www.mkdir()
    _oath_tarball(www / "oath_v1.1.tgz")
    data = (www / "oath_v1.1.tgz").read_bytes()
    (www / "oath_v1.1.tgz").write_bytes(data[: len(data) * 2 // 3])
    served = loopback_server(www)
    with pytest.raises(oath.OathFormatError, match=rf"^{tmp_path / 'raw' / 'oath_v1.1.tgz'}: truncated or corrupt"):
        oath.fetch_oath(HttpClient(), f"{served.url}/oath_v1.1.tgz", tmp_path / "raw")
