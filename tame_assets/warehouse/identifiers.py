"""SQL identifiers and literals built from data (folder names, column names, user input).

Every table or column name that reaches SQL text is validated with :func:`validate_identifier`
(or checked against the columns DuckDB reports) and written with :func:`quote_ident`; values go in
as ``?`` parameters or through :func:`quote_literal`. Nothing from a folder name or a user is
pasted into SQL unquoted.
"""

from __future__ import annotations

import re

#: A plain table name: ASCII letters, digits and underscores, not starting with a digit.
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IDENTIFIER_RULE = "letters, digits and _, not starting with a digit"


def is_identifier(name: object) -> bool:
    return isinstance(name, str) and bool(IDENTIFIER.match(name))


def validate_identifier(name: object, what: str = "table name") -> str:
    """``name`` unchanged if it is a plain identifier, else ``ValueError`` naming it."""
    if not is_identifier(name):
        raise ValueError(f"{name!r} is not a valid {what} ({IDENTIFIER_RULE})")
    return name


def quote_ident(name: str) -> str:
    """A DuckDB identifier in double quotes (embedded ``"`` doubled)."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(value) -> str:
    """A DuckDB string literal (embedded ``'`` doubled)."""
    return "'" + str(value).replace("'", "''") + "'"
