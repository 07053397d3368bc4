"""Compiled per-pixel loops: :func:`compiled` turns a plain-Python loop over numpy arrays into
machine code with numba (``nogil``, no bounds checks: callers check shapes), once per process.

The machine code is cached on disk (numba's cache: next to the source, or the user's cache directory
where the package folder is read-only), so a new process loads it in ~0.3 s instead of compiling for
~1 s; without any writable cache directory it is compiled in memory. Call the loop once before
forking worker processes, so that they inherit it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable


@lru_cache(maxsize=None)
def compiled(loop: Callable) -> Callable:
    """The numba-compiled version of ``loop`` (a module-level function), built on first use."""
    import numba

    try:
        return numba.njit(cache=True, nogil=True, boundscheck=False)(loop)
    except RuntimeError:  # "cannot cache function …: no locator available"
        return numba.njit(nogil=True, boundscheck=False)(loop)
