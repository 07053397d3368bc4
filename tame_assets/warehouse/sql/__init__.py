"""SQL files run by DuckDB (package data); :func:`load_sql` returns one by name."""

from importlib.resources import files


def load_sql(name: str) -> str:
    """Text of ``tame_assets/warehouse/sql/<name>``."""
    return files(__name__).joinpath(name).read_text()
