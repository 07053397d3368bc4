"""Class vocabularies: the OATH six classes and which labels count as aurora.

The OATH classes (Clausen & Nickisch 2018) in the paper's order: three auroral, then three
non-auroral. A user's own label set may use any names; every label except those in
:data:`NON_AURORAL_LABELS` counts as auroral unless the caller says otherwise.
"""

from __future__ import annotations

from typing import Iterable

OATH_CLASSES = ("arc", "diffuse", "discrete", "cloudy", "moon", "clear")
AURORAL_CLASSES = ("arc", "diffuse", "discrete")
NON_AURORAL_LABELS = frozenset({"aurora-less", "clear", "cloudy", "moon", "noaurora", "no-aurora", "no aurora"})


def is_auroral(labels: Iterable[str], non_auroral: Iterable[str] = NON_AURORAL_LABELS) -> list[bool]:
    """True for every label not in ``non_auroral`` (case-insensitive, surrounding blanks ignored)."""
    non = {label.lower() for label in non_auroral}
    return [str(label).strip().lower() not in non for label in labels]
