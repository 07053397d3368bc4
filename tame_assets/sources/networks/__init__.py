"""Camera networks behind one interface, and the registry that maps a network name to it.

Each network is one module here exposing ``NETWORK``, an object satisfying :class:`CameraNetwork`:
``fetch_month`` (a station's month of frames as a :class:`FetchResult`, the same columns for every
network), ``parse_file_name``, ``owns_file``, ``read_frame`` / ``iter_frames``. The core asks the
registry, never which network it is: :func:`get_network` by a station's or row's ``network`` value,
:func:`network_of_file` by a file name. Adding a network = one module + one line in :data:`_BUILT_IN`
(see docs/networks.md, "Adding a network").
"""

from __future__ import annotations

from pathlib import Path

from tame_assets.sources.networks import themis, uio
from tame_assets.sources.networks.base import (
    FRAME_KEY_COLUMNS,
    QUARANTINE_SCHEMA,
    STATION_FRAMES_SCHEMA,
    CameraNetwork,
    FetchResult,
    FileName,
    Frame,
)

__all__ = [
    "FRAME_KEY_COLUMNS",
    "QUARANTINE_SCHEMA",
    "STATION_FRAMES_SCHEMA",
    "CameraNetwork",
    "FetchResult",
    "FileName",
    "Frame",
    "get_network",
    "known_networks",
    "network_of_file",
    "register_network",
    "unregister_network",
]

#: The networks that ship with the package, in the order error messages list them.
_BUILT_IN: tuple[CameraNetwork, ...] = (uio.NETWORK, themis.NETWORK)
_REGISTRY: dict[str, CameraNetwork] = {network.name: network for network in _BUILT_IN}
_METHODS = ("owns_file", "parse_file_name", "fetch_month", "read_frame", "iter_frames")


def register_network(network: CameraNetwork, replace: bool = False) -> CameraNetwork:
    """Add ``network`` under ``network.name`` (a plug-in or a test's toy network); ValueError when the
    object lacks the interface or the name is taken (unless ``replace``)."""
    if not isinstance(network, CameraNetwork):
        missing = [a for a in ("name", "multi_frame", *_METHODS) if not hasattr(network, a)]
        raise ValueError(f"{network!r} is not a camera network (missing {', '.join(missing)})")
    if network.name in _REGISTRY and not replace:
        raise ValueError(f"camera network {network.name!r} is already registered")
    _REGISTRY[network.name] = network
    return network


def unregister_network(name: str) -> None:
    """Remove a registered network (built-in ones stay)."""
    if any(n.name == name for n in _BUILT_IN):
        raise ValueError(f"camera network {name!r} is built in and cannot be removed")
    _REGISTRY.pop(name, None)


def known_networks() -> list[str]:
    """Names of the registered networks, built-in ones first."""
    return list(_REGISTRY)


def get_network(name: str) -> CameraNetwork:
    """The network called ``name``; one-line ValueError listing the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown camera network {name!r} (known: {', '.join(_REGISTRY)})") from None


def network_of_file(path: str | Path) -> CameraNetwork | None:
    """The network whose file names ``path``'s name follows (the first registered that owns it), or None."""
    return next((n for n in _REGISTRY.values() if n.owns_file(path)), None)
