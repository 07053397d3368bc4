"""The view ``aurora_catalog_live``: ``aurora_catalog`` plus the live path's ``live_frames`` rows of
the (station, day)s the batch catalog does not have yet (``sql/catalog_live.sql``); live rows have the
catalog's ``novelty`` column NULL. Created next to the table views whenever ``live_frames`` exists
(in-memory connections and ``tame.duckdb``)."""

from __future__ import annotations

import duckdb

from tame_assets.warehouse.sql import load_sql

LIVE_TABLE, BATCH_TABLE, VIEW = "live_frames", "aurora_catalog", "aurora_catalog_live"


def create_catalog_live_view(con: duckdb.DuckDBPyConnection) -> bool:
    """Create or replace ``aurora_catalog_live`` in ``con`` when it has a readable ``live_frames``
    view; False (and no view) otherwise — an unreadable table never breaks the other views."""
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    if LIVE_TABLE not in views:
        return False
    try:
        con.execute(load_sql("catalog_live.sql" if BATCH_TABLE in views else "catalog_live_only.sql"))
        return True
    except duckdb.Error:
        try:  # e.g. the batch catalog's view is the error stub of an unreadable table
            con.execute(load_sql("catalog_live_only.sql"))
            return True
        except duckdb.Error:
            return False
