"""``tame`` command line, one module per command group (every command takes ``--config FILE``):

- :mod:`~tame_assets.cli.pipeline`: ``demo``, ``materialize``, ``months``, ``info``, ``ui``, ``init``
- :mod:`~tame_assets.cli.ml`: ``classify``, ``train``
- :mod:`~tame_assets.cli.sql`: ``sql``
- :mod:`~tame_assets.cli.products`: ``skymap``, ``keogram``, ``movie``, ``find``
- :mod:`~tame_assets.cli.live`: ``live``, ``replay``
- :mod:`~tame_assets.cli.context`: ``conjunctions``
- :mod:`~tame_assets.cli.similar`: ``similar``

:mod:`~tame_assets.cli.common` holds the app, the shared options and the typed-error handling.
"""

from tame_assets.cli import pipeline  # noqa: F401 - each module registers its commands; the pipeline's lead the help
from tame_assets.cli.common import app

# isort: split
from tame_assets.cli import context, live, ml, products, similar, sql  # noqa: F401


def main() -> None:  # pragma: no cover
    app()


__all__ = ["app", "main"]
