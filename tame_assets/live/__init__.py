"""The live path: frames landing in a watched folder (UiO PNG files, or the frames of THEMIS CDF/PGM files)
become catalog rows (``live_frames``, read with ``aurora_catalog`` by the view ``aurora_catalog_live``),
alerts, a rolling keogram and a rolling daily summary during the night (:mod:`~tame_assets.live.runner`;
``tame live``, ``tame replay``; docs/live.md). Plain Python, no Dagster."""
