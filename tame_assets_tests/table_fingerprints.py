"""Fingerprints of a data root's warehouse tables, to show that a change of the code left the tables
of the sample pipeline as they were (``tame_assets_tests/e2e/previous_release_tables.<simd>.json`` holds those
of the previous release, one file per SIMD family of the CPU: numpy's float32 sin/cos/exp kernels for
AVX-512 and for AVX2 differ in the last bit, and the sample generator's skies with them, so the sample's
pixels — and everything computed from them — differ between the two kinds of machine).

A table's fingerprint is, per station (tables with a ``station`` column) or for the whole table: the
row count and, per column, a SHA-256 of its values sorted — floats to 6 significant digits (the same
machine gives the same numbers; BLAS threading may move the last bits), timestamps as ISO text, paths
with the data root replaced by ``<root>``. Columns that record when or how long something ran are left
out (:data:`VOLATILE`). Read with polars straight from the Parquet files, so the fingerprints of a root
written by an older release are computed the same way. Run as a script: ``python -m
tame_assets_tests.table_fingerprints ROOT > tables.json``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import polars as pl

#: Columns whose values are clocks, durations or run ids, not results.
VOLATILE = re.compile(r"^(recorded_at|run_id|seconds|s_per_image|build_s|peak_\w+_mb|url)$")
SIGNIFICANT_DIGITS = 6


def _value(v, root: str):
    """One value in canonical form (floats rounded, nested values element by element)."""
    if v is None:
        return None
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.{SIGNIFICANT_DIGITS - 1}e}"
    if isinstance(v, (list, tuple)):
        return [_value(x, root) for x in v]
    if isinstance(v, dict):
        return {k: _value(x, root) for k, x in v.items()}
    return str(v).replace(root, "<root>")


def _canonical(series: pl.Series, root: str) -> list[str]:
    return [json.dumps(_value(v, root), sort_keys=True) for v in series.to_list()]


def _column_digest(series: pl.Series, root: str) -> str:
    digest = hashlib.sha256()
    for value in sorted(_canonical(series, root)):
        digest.update(value.encode() + b"\0")
    return digest.hexdigest()[:16]


def _frame_print(frame: pl.DataFrame, root: str) -> dict:
    return {
        "rows": frame.height,
        "columns": {c: _column_digest(frame[c], root) for c in sorted(frame.columns) if not VOLATILE.match(c)},
    }


def read_table(folder: Path) -> pl.DataFrame:
    """Every Parquet file of a warehouse table folder (hive ``month`` from the folder name)."""
    frames = []
    for path in sorted(folder.rglob("*.parquet")):
        frame = pl.read_parquet(path)
        month = next((p.split("=", 1)[1] for p in path.relative_to(folder).parts if p.startswith("month=")), None)
        if month is not None and "month" not in frame.columns:
            frame = frame.with_columns(pl.lit(month).alias("month"))
        frames.append(frame)
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def fingerprints(root: str | Path) -> dict[str, dict]:
    """table → {station or "*" → {"rows": n, "columns": {column: digest}}} for the warehouse of ``root``."""
    root = Path(root).resolve()
    out: dict[str, dict] = {}
    for folder in sorted(p for p in (root / "warehouse").iterdir() if p.is_dir()):
        frame = read_table(folder)
        if frame.is_empty():
            continue
        if "station" in frame.columns:
            groups = {str(key[0]): part for key, part in frame.group_by("station")}
        else:
            groups = {"*": frame}
        out[folder.name] = {name: _frame_print(part, str(root)) for name, part in sorted(groups.items())}
    return out


def simd_family() -> str:
    """``avx512`` or ``avx2`` (or ``baseline``): the vector instructions numpy's kernels use on this CPU."""
    from tame_assets.ml.loading import cpu_flags

    flags = cpu_flags()
    return "avx512" if "avx512f" in flags else "avx2" if {"avx2", "fma"} <= flags else "baseline"


def differences(before: dict[str, dict], after: dict[str, dict]) -> list[str]:
    """What changed from ``before`` to ``after``: tables, stations and columns that ``before`` has and
    ``after`` lacks or holds other values in. Additions (new tables, stations, columns) are not changes."""
    problems = []
    for table, groups in before.items():
        if table not in after:
            problems.append(f"{table}: table missing")
            continue
        for group, old in groups.items():
            new = after[table].get(group)
            where = f"{table}[{group}]"
            if new is None:
                problems.append(f"{where}: rows missing")
                continue
            if new["rows"] != old["rows"]:
                problems.append(f"{where}: {new['rows']} rows, previously {old['rows']}")
                continue
            for column, digest in old["columns"].items():
                if column not in new["columns"]:
                    problems.append(f"{where}.{column}: column missing")
                elif new["columns"][column] != digest:
                    problems.append(f"{where}.{column}: values differ")
    return problems


if __name__ == "__main__":
    json.dump(fingerprints(sys.argv[1]), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
