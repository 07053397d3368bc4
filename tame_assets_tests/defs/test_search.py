"""The novelty check's ranking and verdict (tame_assets.defs.assets.search.check_novelty)."""

import datetime as dt

import polars as pl

from tame_assets.defs.assets.search import check_novelty


def _frames(novelty, score):
    n = len(novelty)
    return pl.DataFrame(
        {
            "time": [dt.datetime(2010, 12, 1) + dt.timedelta(minutes=i) for i in range(n)],
            "file_name": [f"f{i}.png" for i in range(n)],
            "novelty": pl.Series(novelty, dtype=pl.Float32),
            "novelty_score": pl.Series(score, dtype=pl.Float32),
        }
    )


def test_most_unusual_first_and_warning_when_most_frames_are_beyond_the_labelled_set():
    frames = _frames([0.5, 1.0, None, 0.2, 0.99], [0.3, 0.9, None, 0.1, 0.6])
    passed, description, metadata, top = check_novelty(frames, shown=2)
    assert passed and top["file_name"].to_list() == ["f1.png", "f4.png"]
    assert metadata["frames"] == 4 and metadata["beyond_reference_fraction"] == 0.25
    assert "25% beyond every labelled-set frame" in description and "f1.png" in metadata["most_unusual"].md_str
    passed, description, _, _ = check_novelty(_frames([1.0, 1.0, 0.3], [0.9, 0.8, 0.1]))
    assert not passed and "does not cover this sky" in description
    passed, description, metadata, top = check_novelty(_frames([None], [None]))
    assert passed and top.height == 0 and metadata == {"frames": 0}
