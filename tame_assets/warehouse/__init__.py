"""The Parquet warehouse (``store``), DuckDB views, the as-of merge (``merge``) and the query API (``provider``)."""
