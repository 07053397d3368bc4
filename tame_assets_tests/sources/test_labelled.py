"""User labelled image sets: the real UiO set and clear errors for bad CSVs."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from tame_assets.labels import is_auroral
from tame_assets.sources.labelled import LabelsFormatError, read_labelled_set


def test_real_uio_labelled_set(real_dir):
    folder = real_dir / "uio_asi_nya6"
    with open(folder / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    table = read_labelled_set(folder / "labels.csv")  # images/ found next to the CSV
    assert table.height == len(rows) == 300
    assert table.columns == ["file", "path", "label", "is_aurora", "station", "wavelength_0.1nm", "datetime_utc"]
    assert table["file"].to_list() == [r["filename"] for r in rows]
    assert dict(table.group_by("label").len().iter_rows()) == Counter(r["label"] for r in rows)
    assert table["is_aurora"].sum() == sum(r["label"] != "aurora-less" for r in rows)
    assert all(p.startswith(str(folder / "images")) for p in table["path"])


def test_custom_aurora_mapping(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"x")
    (tmp_path / "labels.csv").write_text("filename,label,observer\na.png,Patchy,kim\nb.png,none,kim\n")
    table = read_labelled_set(tmp_path / "labels.csv", tmp_path, non_auroral={"None"})
    assert table["is_aurora"].to_list() == [True, False] and table["observer"].to_list() == ["kim", "kim"]
    assert is_auroral(["arc", "CLOUDY", "noaurora", "moon", "diffuse"]) == [True, False, False, False, True]


def test_errors_name_csv_and_line(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"x")
    csv_path = tmp_path / "labels.csv"
    cases = [
        ("filename,label\na.png,arc\nmissing.png,arc\n", r"labels.csv, line 3: image .*missing.png does not exist"),
        ("file,kind\na.png,arc\n", r"labels.csv, line 1: missing required column\(s\): filename, label"),
        ("filename,station\na.png,nya\n", r"labels.csv, line 1: missing required column\(s\): label"),
        ("filename,label\na.png,arc\n\na.png,\n", r"labels.csv, line 4: empty filename or label"),
        ("filename,label\na.png,arc,extra\n", r"labels.csv, line 2: expected 2 cells, found 3"),
    ]
    for text, message in cases:
        csv_path.write_text(text)
        with pytest.raises(LabelsFormatError, match=message):
            read_labelled_set(csv_path)
    with pytest.raises(LabelsFormatError, match="nothing.csv: cannot read"):
        read_labelled_set(tmp_path / "nothing.csv")


@pytest.fixture()
def two_images(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / "images" / name).write_bytes(b"x")
    return tmp_path / "labels.csv"


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "filename,label\na.png,arc\nb.png,arc\na.png,diffuse\n",
            r"labels.csv, line 4: image a.png listed with different labels: 'arc' \(line 2\) and 'diffuse'",
        ),
        (
            "filename,label\na.png,arc\nb.png,arc\n./a.png,arc\n",
            r"labels.csv, line 4: image ./a.png listed twice \(lines 2 and 4\)",
        ),
        (
            "filename,label\na.png,Arc\nb.png,diffuse\nc.png,arc\n",
            r"labels.csv, line 4: label 'arc' and 'Arc' \(line 2\) differ only in case",
        ),
        ("filename,label,label\na.png,arc,diffuse\n", r"labels.csv, line 1: column\(s\) 'label' appear more than once"),
    ],
)
def test_duplicates_case_variants_and_repeated_columns_are_refused(two_images, text, message):
    two_images.write_text(text)
    with pytest.raises(LabelsFormatError, match=message):
        read_labelled_set(two_images)


def test_utf16_csvs_are_read_and_latin1_is_a_one_line_error(real_dir, tmp_path):
    folder = real_dir / "uio_asi_nya6"
    expected = read_labelled_set(folder / "labels.csv")
    text = (folder / "labels.csv").read_text(encoding="utf-8")
    for encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"):  # with BOM, and BOM-less UTF-16
        copy = tmp_path / f"labels_{encoding}.csv"
        copy.write_bytes(text.encode(encoding))
        assert read_labelled_set(copy, folder / "images").equals(expected), encoding
    latin = tmp_path / "latin.csv"
    latin.write_bytes(text.replace("aurora-less", "aurora-løs", 1).encode("latin-1"))
    line = text.splitlines().index(next(ln for ln in text.splitlines() if "aurora-less" in ln)) + 1
    with pytest.raises(
        LabelsFormatError, match=rf"latin.csv, line {line}: not valid UTF-8 \(byte 0xf8\); save the CSV as UTF-8"
    ):
        read_labelled_set(latin, folder / "images")


def test_one_class_or_too_small_label_is_refused_before_training(two_images):
    from tame_assets.sources.labelled import check_trainable

    two_images.write_text("filename,label\na.png,arc\nb.png,arc\n")
    with pytest.raises(
        LabelsFormatError, match=r"labels.csv: only the label 'arc': a classifier needs at least two labels"
    ):
        check_trainable(read_labelled_set(two_images), str(two_images))
    two_images.write_text("filename,label\na.png,arc\nb.png,arc\nc.png,diffuse\n")
    with pytest.raises(LabelsFormatError, match=r"fewer than 2 images: \{'diffuse': 1\}"):
        check_trainable(read_labelled_set(two_images), str(two_images))
