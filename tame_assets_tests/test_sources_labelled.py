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
    (tmp_path / "labels.csv").write_text("filename,label,observer\na.png,Patchy,kim\na.png,none,kim\n")
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
