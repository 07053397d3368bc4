"""Peak memory of the inputs that used to decide it (issue 25), each case a fresh ``tame`` process.

Every case runs in its own wrapper process that starts the command and reads its peak RSS with
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` (the largest resident set of the waited-for
child: the whole ``tame`` process, Python and its imports included). Cases:

- ``csv-export N``: ``tame sql "SELECT … FROM range(N)" --format csv --out F`` — the result streamed
  in record batches; run for two sizes to show memory flat in the row count. Baseline (``--baseline``):
  the same query read whole into polars and written at once (what ``tame sql`` did before).
- ``pgm-bomb``: ``tame movie`` of a 1 MB ``.pgm.gz`` inflating to 1 GiB (refused at the cap of
  ``[archives] max_image_pixels`` × 4 bytes = 64 MiB); before: 2.2 GB RSS.
- ``union-20000``: ``tame sql -f`` of 20,000 ``UNION ALL`` (380 KB; refused before DuckDB parses it);
  before: 141 s and 10.7 GB.
- ``idle``: ``tame sql "SELECT 1"`` — the floor every ``tame`` process pays.

    .venv/bin/python bench/hardening_rss.py                      # 3 M and 30 M rows (~1-2 min)
    .venv/bin/python bench/hardening_rss.py --rows 1000000 3000000 --baseline
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TAME = str(Path(sys.executable).with_name("tame"))
EXPORT = (
    "SELECT i, i * 2 AS j, 'frame_' || i AS name, TIMESTAMP '2010-12-01' + to_seconds(i) AS time FROM range({n}) t(i)"
)
#: Runs ``argv`` and prints its exit code, peak RSS (KiB on Linux) and wall time as JSON.
WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "run = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "print(json.dumps({'rc': run.returncode, 'rss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
    " 's': time.perf_counter() - t, 'err': run.stderr.strip().splitlines()[-1:] }))\n"
)
BASELINE = "import sys, duckdb\ncon = duckdb.connect()\ncon.sql(sys.argv[1]).pl().write_csv(sys.argv[2])\n"


def measure(argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def warehouse(root: Path) -> Path:
    import datetime as dt

    import polars as pl

    from tame_assets.warehouse.store import Warehouse

    wh = Warehouse(root)
    wh.write_partition("magnetometer", pl.DataFrame({"time": [dt.datetime(2010, 12, 1)], "x_nt": [1.0]}), "2010-12")
    wh.refresh_views()
    return root


def report(case: str, result: dict, extra: str = "") -> None:
    err = f"  [{result['err'][0][:100]}]" if result["err"] else ""
    print(
        f"{case:<26} rc={result['rc']}  peak RSS {result['rss_kib'] / 1024:7.0f} MiB  {result['s']:6.1f} s{extra}{err}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[3_000_000, 30_000_000])
    parser.add_argument("--baseline", action="store_true", help="also the whole-result-in-memory export")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tame-rss-") as tmp:
        tmp = Path(tmp)
        root = warehouse(tmp / "data")
        report("idle (SELECT 1)", measure([TAME, "sql", "SELECT 1", "--data-root", str(root)]))
        for n in args.rows:
            out = tmp / "export.csv"
            result = measure(
                [TAME, "sql", EXPORT.format(n=n), "--format", "csv", "--out", str(out), "--data-root", str(root)]
            )
            size = out.stat().st_size / 2**20 if out.exists() else 0
            report(f"csv-export {n:,}", result, f"  ({size:,.0f} MiB of CSV)")
            out.unlink(missing_ok=True)
            if args.baseline:
                result = measure([sys.executable, "-c", BASELINE, EXPORT.format(n=n), str(out)])
                report(f"  baseline in memory {n:,}", result)
                out.unlink(missing_ok=True)

        from tame_assets_tests.sources.test_themis_faults import pgm_bomb

        bomb = pgm_bomb(tmp / "20101201_0001_gill_themis19_full.pgm.gz")
        result = measure([TAME, "movie", str(bomb), "--out", str(tmp / "m.mp4")])
        report("pgm-bomb (tame movie)", result, f"  ({bomb.stat().st_size / 1e6:.1f} MB → 1 GiB)")

        query = tmp / "union.sql"
        query.write_text(" UNION ALL ".join(["SELECT 1"] * 20_000))
        started = time.perf_counter()
        result = measure([TAME, "sql", "-f", str(query), "--data-root", str(root)])
        report("union-20000 (tame sql -f)", result, f"  ({query.stat().st_size / 1e3:.0f} KB)")
        del started
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
