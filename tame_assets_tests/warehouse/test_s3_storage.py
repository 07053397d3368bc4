"""Warehouse on an object store: moto's S3 server on 127.0.0.1, writes through s3fs, reads through
DuckDB (fsspec filesystem registered with the connection: httpfs cannot be installed offline)."""

from __future__ import annotations

import datetime as dt
import socket

import duckdb
import polars as pl
import pytest

from tame_assets.warehouse.store import QUARANTINE_SCHEMA, Warehouse, configure_object_store, httpfs_installed

pytestmark = pytest.mark.e2e  # every test talks to a moto S3 server
moto_server = pytest.importorskip("moto.server")
pytest.importorskip("s3fs")

BUCKET = "tame-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def warehouse(s3_endpoint, monkeypatch, tmp_path, request):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.chdir(tmp_path)  # an s3:// root's local root (downloads, models, tame.duckdb) is ./data
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    if BUCKET not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=BUCKET)
    wh = Warehouse(f"s3://{BUCKET}/{request.node.name}/")
    wh.fs.invalidate_cache()
    return wh, s3


def _magnetometer(month: str, n: int, offset: float = 0.0) -> pl.DataFrame:
    start = dt.datetime.strptime(month, "%Y-%m")
    return pl.DataFrame(
        {
            "time": [start + dt.timedelta(minutes=i) for i in range(n)],
            "station": ["NAL"] * n,
            "h_nt": [10000.0 + i + offset for i in range(n)],
        },
        schema={"time": pl.Datetime("us"), "station": pl.Utf8, "h_nt": pl.Float64},
    )


def test_partitions_round_trip_through_s3_and_duckdb(warehouse):
    wh, s3 = warehouse
    dec, jan = _magnetometer("2010-12", 5), _magnetometer("2011-01", 3)
    path = wh.write_partition("magnetometer", dec, "2010-12")
    wh.write_partition("magnetometer", jan, "2011-01")
    assert (
        path
        == f"s3://{BUCKET}/test_partitions_round_trip_through_s3_and_duckdb/warehouse/magnetometer/month=2010-12/part-0.parquet"
    )
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=wh.root.split("/", 3)[3])["Contents"])
    assert [k.split("/", 1)[1] for k in keys] == [
        "warehouse/magnetometer/month=2010-12/part-0.parquet",
        "warehouse/magnetometer/month=2011-01/part-0.parquet",
    ]
    assert wh.tables() == ["magnetometer"] and wh.months("magnetometer") == ["2010-12", "2011-01"]

    counts = wh.sql("SELECT month, count(*) AS n FROM magnetometer GROUP BY month ORDER BY month")
    assert counts.rows() == [("2010-12", 5), ("2011-01", 3)]
    back = wh.read_partition("magnetometer", "2010-12")
    assert back.equals(dec)
    assert back.schema["time"] == pl.Datetime("us")
    assert wh.read("magnetometer", ["2011-01", "2011-02"]).equals(jan)
    both = wh.sql("SELECT time, station, h_nt FROM magnetometer ORDER BY time")
    assert both.equals(pl.concat([dec, jan]))


def test_rewriting_a_partition_replaces_it(warehouse):
    wh, s3 = warehouse
    wh.write_partition("magnetometer", _magnetometer("2010-12", 5), "2010-12")
    wh.write_partition("magnetometer", _magnetometer("2011-01", 3), "2011-01")
    again = _magnetometer("2010-12", 4, offset=0.5)
    wh.write_partition("magnetometer", again, "2010-12")
    wh.write_partition("magnetometer", again, "2010-12")
    total = wh.sql("SELECT count(*) AS n, count(DISTINCT time) AS t FROM magnetometer").row(0)
    assert total == (7, 7)  # 4 + 3, no duplicates
    assert wh.read_partition("magnetometer", "2010-12")["h_nt"].to_list() == again["h_nt"].to_list()
    assert wh.row_counts() == {"magnetometer": 7}
    wh.delete_partition("magnetometer", "2011-01")
    assert wh.months("magnetometer") == ["2010-12"]
    with pytest.raises(FileNotFoundError, match="2011-01"):
        wh.read_partition("magnetometer", "2011-01")


def test_partition_written_by_another_client_is_seen(warehouse):
    """Listings are not served from a stale cache: a partition another process uploaded appears."""
    wh, s3 = warehouse
    wh.write_partition("ceilometer", _magnetometer("2010-12", 2), "2010-12")
    assert wh.months("ceilometer") == ["2010-12"]
    import io

    buf = io.BytesIO()
    _magnetometer("2011-01", 6).write_parquet(buf)
    prefix = wh.root.split("/", 3)[3]
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/warehouse/ceilometer/month=2011-01/part-0.parquet", Body=buf.getvalue())
    assert wh.months("ceilometer") == ["2010-12", "2011-01"]
    assert wh.sql("SELECT count(*) FROM ceilometer").item() == 8


def test_quarantine_records_on_s3(warehouse):
    wh, _ = warehouse
    bad = pl.DataFrame(
        {
            "time": [dt.datetime(2010, 12, 15, 3, 0)],
            "station": ["NYA"],
            "file": ["nya4_20101215_030000_5577_cal.png"],
            "reason": ["truncated PNG"],
        },
        schema={"time": pl.Datetime("us"), "station": pl.Utf8, "file": pl.Utf8, "reason": pl.Utf8},
    )
    wh.record_quarantine("asim_images", "2010-12", bad)
    wh.record_quarantine("asim_images", "2010-12", bad)  # replaced, not appended
    wh.record_quarantine("magnetometer", "2011-01", bad.with_columns(pl.lit("bad record").alias("reason")))
    q = wh.sql("SELECT asset, month, file, reason FROM quarantine ORDER BY asset")
    assert q.rows() == [
        ("asim_images", "2010-12", "nya4_20101215_030000_5577_cal.png", "truncated PNG"),
        ("magnetometer", "2011-01", "nya4_20101215_030000_5577_cal.png", "bad record"),
    ]
    schema = wh.sql("SELECT * FROM quarantine").schema
    assert list(schema)[: len(QUARANTINE_SCHEMA)] == list(QUARANTINE_SCHEMA)


def test_views_database_is_local_and_reads_s3(warehouse, tmp_path):
    wh, _ = warehouse
    wh.write_partition("labels", pl.DataFrame({"label": ["arc", "moon"]}))  # unpartitioned table
    assert wh.duckdb_path == (tmp_path / "data" / "tame.duckdb").resolve()  # ./data: the fixture's working directory
    assert wh.duckdb_path.exists()
    con = duckdb.connect(str(wh.duckdb_path))
    try:
        configure_object_store(con, wh.root)  # the view reads s3:// through the same mechanism
        assert con.execute("SELECT count(*) FROM labels").fetchone()[0] == 2
    finally:
        con.close()


def test_object_store_mode_selection(warehouse, monkeypatch):
    wh, _ = warehouse
    con = duckdb.connect()
    with pytest.raises(ValueError, match=r"\[storage\] duckdb_s3 = 'carrier-pigeon': expected one of auto, httpfs"):
        configure_object_store(con, wh.root, "carrier-pigeon")  # setting [storage] duckdb_s3
    if not httpfs_installed(con):
        with pytest.raises(RuntimeError, match="INSTALL httpfs"):
            configure_object_store(con, wh.root, "httpfs")
    configure_object_store(con, "/local/path")  # local roots: nothing to configure
    con.close()


def test_classify_finds_the_model_trained_on_an_s3_root(warehouse, tmp_path, sample_archive):
    """The real Definitions materialized on an s3:// root train the OATH classifier (one backbone and
    feature kind, to keep the test short); a second launch of the same assets (as from the UI) reuses
    the up-to-date results, the run tag tame/force recomputes; ``tame classify --data-root s3://…`` then
    finds the model (models live in the local root)."""
    from dagster import DagsterInstance, materialize
    from typer.testing import CliRunner

    from tame_assets.cli import app
    from tame_assets.defs.assets.common import FORCE_TAG, REUSED_METADATA_KEY
    from tame_assets.defs.definitions import all_assets
    from tame_assets.defs.resources import TameResource

    wh, _ = warehouse
    runner = CliRunner()
    tame = TameResource(data_root=wh.root, benchmark_backbones=["efficientnet_lite0"], feature_kinds=["logits"])
    chain = ["oath_images", "oath_features", "svm_search", "oath_classifier"]
    instance = DagsterInstance.ephemeral()

    def launch(selection, tags=None) -> dict[str, bool]:
        result = materialize(all_assets, selection=selection, resources={"tame": tame}, instance=instance, tags=tags)
        assert result.success
        return {
            event.asset_key.to_user_string(): getattr(
                event.event_specific_data.materialization.metadata.get(REUSED_METADATA_KEY), "value", False
            )
            for event in result.get_asset_materialization_events()
        }

    first = launch(chain)
    assert not any(first.values())
    features = wh.read_partition("oath_features", None)
    assert launch(chain) == {"oath_images": False, "oath_features": True, "svm_search": True, "oath_classifier": True}
    assert wh.read_partition("oath_features", None).equals(features)
    assert launch(["oath_classifier"], tags={FORCE_TAG: "true"}) == {"oath_classifier": False}
    assert "oath_images" in wh.tables() and wh.root.startswith("s3://")
    images = sorted((sample_archive / "asim").rglob("*.png"))[:5]
    folder = tmp_path / "imgs"
    folder.mkdir()
    for image in images:
        (folder / image.name).write_bytes(image.read_bytes())
    out = tmp_path / "preds.parquet"
    result = runner.invoke(app, ["classify", str(folder), "--data-root", wh.root, "--out", str(out)])
    assert result.exit_code == 0, result.output
    preds = pl.read_parquet(out)
    assert preds.height == len(images) and preds["pred"].null_count() <= 2


def test_read_only_sql_door_on_an_s3_root(warehouse, tmp_path):
    """The sandbox (external access off, allowed_directories = the s3 warehouse prefix) still reads the
    tables; local files and other prefixes are refused; COPY into the warehouse is refused."""
    from tame_assets.warehouse.sql_door import RefusedStatement, run_read_only

    wh, s3 = warehouse
    wh.write_partition("magnetometer", _magnetometer("2010-12", 4), "2010-12")
    rows, more = run_read_only(wh, "SELECT count(*) AS n FROM magnetometer")
    assert rows["n"][0] == 4 and not more
    local = tmp_path / "local.csv"
    local.write_text("a\n1\n")
    with pytest.raises(duckdb.Error, match="local.csv"):
        run_read_only(wh, f"SELECT * FROM read_csv('{local}')")
    with pytest.raises(duckdb.Error, match="other-prefix"):
        run_read_only(wh, f"SELECT * FROM read_parquet('s3://{BUCKET}/other-prefix/x.parquet')")
    with pytest.raises(RefusedStatement, match="COPY"):
        run_read_only(wh, f"COPY (SELECT 1) TO '{wh.warehouse}/magnetometer/month=2010-12/part-0.parquet'")


def test_secret_with_quotes_is_quoted_and_never_printed():
    import duckdb

    from tame_assets.warehouse.store import create_s3_secret, sql_string

    secret = "wJalr'XUtn\"FEMI/K7MDENG' OR 1=1 --"
    assert duckdb.sql(f"SELECT {sql_string(secret)}").fetchall()[0][0] == secret  # a literal, whatever it holds
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    with pytest.raises(RuntimeError) as failure:  # no httpfs here: the statement parses, then fails
        create_s3_secret(con, {"KEY_ID": "AKIA'EXAMPLE", "SECRET": secret, "REGION": "us-east-1"}, "http://127.0.0.1:9")
    text = str(failure.value) + repr(failure.value.__cause__) + repr(failure.value.__context__)
    assert "cannot configure DuckDB's S3 access" in text
    assert "wJalr" not in text and "FEMI" not in text and "AKIA" not in text
    assert "Parser Error" not in text  # the quote no longer breaks the statement
