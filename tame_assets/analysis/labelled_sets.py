"""Which labelled image set ``labelled_set_evaluation`` uses."""

from __future__ import annotations

from pathlib import Path

from tame_assets.warehouse.store import Warehouse

#: The real UiO Ny-Ålesund set in the developers' shared folder (next to the project checkout).
#: ``parents[3]`` of ``<checkout>/tame_assets/analysis/labelled_sets.py`` is the folder holding the checkout.
SHARED_UIO_SET = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "uio_asi_nya6"
#: ``labelled_set_dir`` value that selects the OATH-format set from the configured source.
OATH_SET = "oath"


def resolve_labelled_set(labelled_set_dir: str, warehouse: Warehouse) -> tuple[list[str], list[str], str]:
    """(image paths, labels, provenance).

    ``labelled_set_dir``: a folder holding ``labels.csv`` (filename,label) and ``images/``; ``"oath"``
    for the ``oath_images`` table; ``""`` for the real UiO set when present, else ``"oath"``.
    """
    if not labelled_set_dir:
        labelled_set_dir = str(SHARED_UIO_SET) if (SHARED_UIO_SET / "labels.csv").exists() else OATH_SET
    if labelled_set_dir == OATH_SET:
        oath = warehouse.read_partition("oath_images", None)
        return oath["path"].to_list(), oath["label"].to_list(), "oath_images table (configured OATH source)"
    from tame_assets.sources.labelled import read_labelled_set

    folder = Path(labelled_set_dir)
    table = read_labelled_set(folder / "labels.csv", folder / "images")
    return table["path"].to_list(), table["label"].to_list(), f"{folder} ({table.height} labelled images)"
