"""Figure previews in the materialization metadata: every figure of a partition gets a short markdown
image whose URL the Dagster web server serves (``/logs/...`` from the instance's compute-log folder),
so the UI shows it inline (markdown of 1,000 characters or more hides behind "[Show Markdown]")."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from tame_assets.analysis.figures import save_figure  # noqa: E402
from tame_assets.defs.assets.common import PREVIEW_NAMESPACE, figure_metadata  # noqa: E402

#: The Dagster 1.13 UI renders markdown metadata inline only below this length (MetadataEntry.tsx).
UI_INLINE_MARKDOWN_LIMIT = 1000


def _figure(out: Path, name: str, value: float):
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1, 2], [0, value, 0])
    ax.set(title=f"{name} 2010-12", xlabel="x (1)", ylabel="y (1)")
    return save_figure(fig, out, name)


def test_every_day_gets_an_inline_preview_served_from_the_compute_log_folder(tmp_path):
    days = ["NYA_20101202", "NYA_20101203", "NYA_20101204"]

    @dg.asset
    def daily_figures(context):
        files = [_figure(tmp_path / "figures", day, k + 1.0) for k, day in enumerate(days)]
        return dg.MaterializeResult(metadata=figure_metadata(files, {"days": len(files)}, context=context))

    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        result = dg.materialize([daily_figures], instance=instance)
        meta = result.asset_materializations_for_node("daily_figures")[0].metadata
        manager = instance.compute_log_manager
        seen = set()
        for day in days:
            md = meta[f"{day}_preview"]
            assert isinstance(md, dg.MarkdownMetadataValue)
            text = md.value
            assert len(text) < UI_INLINE_MARKDOWN_LIMIT and "base64" not in text
            assert text.startswith(f"![{day}](/logs/{PREVIEW_NAMESPACE}/{day}-") and text.endswith("/png)")
            name = text.split("/")[-2]
            served = Path(manager.get_captured_local_path([PREVIEW_NAMESPACE, name], "png"))  # what /logs serves
            with Image.open(served) as im:
                assert im.format == "PNG" and 300 <= im.width <= 720 and im.height > 100
            seen.add(served.read_bytes())
            assert meta[f"{day}_png"].value == str(tmp_path / "figures" / f"{day}.png")
            assert meta[f"{day}_svg"].value == str(tmp_path / "figures" / f"{day}.svg")
        assert len(seen) == len(days)  # one preview per day, not the first day's for all
        assert meta["days"].value == 3


def test_without_a_local_compute_log_folder_the_base64_preview_remains(tmp_path):
    fig = _figure(tmp_path, "alone", 1.0)
    meta = figure_metadata([fig])  # no run context (e.g. a figure made outside Dagster)
    assert meta["alone_preview"].value.startswith("![alone](data:image/png;base64,")
    assert meta["alone_png"].value == str(tmp_path / "alone.png")
