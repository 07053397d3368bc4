"""Which labelled image set ``labelled_set_evaluation`` uses."""

from __future__ import annotations

from pathlib import Path

from tame_assets.warehouse.store import Warehouse

#: ``labelled_set_dir`` value that selects the OATH-format set from the configured source.
OATH_SET = "oath"


def resolve_labelled_set(labelled_set_dir: str, warehouse: Warehouse) -> tuple[list[str], list[str], str]:
    """(image paths, labels, provenance).

    ``labelled_set_dir`` (setting ``[model] labelled_set_dir``): a folder holding ``labels.csv``
    (filename,label) and ``images/``; ``""`` or ``"oath"`` for the ``oath_images`` table (the configured
    source's OATH-format set).
    """
    if not labelled_set_dir or labelled_set_dir == OATH_SET:
        oath = warehouse.read_partition("oath_images", None)
        return oath["path"].to_list(), oath["label"].to_list(), "oath_images table (configured OATH source)"
    from tame_assets.sources.labelled import read_labelled_set

    folder = Path(labelled_set_dir)
    table = read_labelled_set(folder / "labels.csv", folder / "images")
    return table["path"].to_list(), table["label"].to_list(), f"{folder} ({table.height} labelled images)"
