"""The live path: frames landing in a watched folder become catalog rows (``live_frames``, read with
``aurora_catalog`` by the view ``aurora_catalog_live``), alerts and a rolling keogram during the night
(:mod:`~tame_assets.live.runner`; ``tame live``, ``tame replay``; docs/live.md). Plain Python, no Dagster."""
