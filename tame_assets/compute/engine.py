"""Engines that map a function over chunks of per-frame work, in order, locally or on Dask.

:func:`open_engine` is the one entry point; Dask is imported only when a Dask mode is chosen.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from tame_assets.compute.settings import LOCAL_WHERE, ChunkProgress, ComputeSettings


class Engine(Protocol):
    """Maps ``fn`` over ``chunks``; results in input order."""

    #: False for the in-process engine (callers then use today's single-call path).
    distributed: bool
    #: One line saying where work runs (for logs).
    description: str

    def map_chunks(
        self,
        fn: Callable[[Any], Any],
        chunks: Iterable[Any],
        *,
        on_progress: ChunkProgress | None = None,
        retries: int = 2,
    ) -> list: ...


class LocalEngine:
    """In-process, one chunk after the other (today's path). ``retries`` is accepted for API
    symmetry and ignored: there is no worker to lose, and an exception is a real error."""

    distributed = False
    description = "local (in-process)"

    def map_chunks(
        self,
        fn: Callable[[Any], Any],
        chunks: Iterable[Any],
        *,
        on_progress: ChunkProgress | None = None,
        retries: int = 2,
    ) -> list:
        chunks = list(chunks)
        results = []
        for i, chunk in enumerate(chunks):
            results.append(fn(chunk))
            if on_progress is not None:
                on_progress(i + 1, len(chunks), LOCAL_WHERE)
        return results


@contextmanager
def open_engine(settings: ComputeSettings | None = None) -> Iterator[Engine]:
    """The engine for ``settings`` (default: local). Clusters started here (``dask-local``,
    ``slurm``, ``pbs``, ``kubernetes``) are closed on exit; a ``dask://`` scheduler is only
    disconnected from."""
    settings = settings or ComputeSettings()
    if settings.is_local:
        yield LocalEngine()
        return
    from tame_assets.compute.dask_engine import dask_engine

    with dask_engine(settings) as engine:
        yield engine


def split_chunks(items: Sequence, size: int) -> list:
    """``items`` cut into consecutive slices of at most ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"chunk size must be ≥ 1, not {size}")
    return [items[i : i + size] for i in range(0, len(items), size)]
