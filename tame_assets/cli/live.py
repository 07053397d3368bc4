"""``tame live`` / ``tame replay``: frames to catalog rows and alerts during the night (:mod:`tame_assets.live`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

import typer

from tame_assets.cli.common import ConfigOption, DataRootOption, app, settings, usage_error


@app.command()
def live(
    station: Optional[str] = typer.Option(None, help="Station code (default: \\[primary_station] asi_station)."),
    watch: Optional[Path] = typer.Option(
        None, help="Folder the frames land in (default: \\[live] watch_folder); it may not exist yet."
    ),
    poll: Optional[float] = typer.Option(None, min=0.05, help="Seconds between listings (default: \\[live] poll_s)."),
    keogram_every: Optional[float] = typer.Option(
        None, min=0, help="Seconds between keogram and daily summary redraws (default: \\[live] keogram_every_s)."
    ),
    webhook: Optional[str] = typer.Option(None, help="Alert webhook URL (default: \\[alerts] webhook_url)."),
    idle_exit: Optional[float] = typer.Option(
        None, min=0, help="Stop after this many seconds without a new frame (default: run until Ctrl-C)."
    ),
    torch_threads: Optional[int] = typer.Option(
        None, min=1, help="Threads of the network (1 keeps a busy 2-core machine responsive; default: torch's)."
    ),
    dagster: bool = typer.Option(
        True, "--dagster/--no-dagster", help="Record live_frames asset events on the shared Dagster instance."
    ),
    data_root: DataRootOption = None,
    config: ConfigOption = None,
) -> None:
    """Watch a folder for new frame files of STATION (UiO PNG, THEMIS CDF/PGM): one live catalog row per frame,
    alerts, a rolling keogram and daily summary."""
    from tame_assets.live.runner import LiveRunner

    run_settings = settings(
        config, data_root, live_poll_s=poll, live_keogram_every_s=keogram_every, alerts_webhook_url=webhook
    )
    folder = watch or (Path(run_settings.live_watch_folder) if run_settings.live_watch_folder else None)
    if folder is None:
        usage_error("no folder to watch: give --watch FOLDER or set [live] watch_folder")
    if run_settings.paths.remote:
        usage_error("tame live writes its rows to a local data root (the data root is an object store)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    on_commit = None
    if dagster:
        from tame_assets.defs.live import live_event_reporter, live_instance

        on_commit = live_event_reporter(live_instance(run_settings))
    try:
        runner = LiveRunner(run_settings, station or run_settings.asi_station, folder, on_commit=on_commit)
    except (FileNotFoundError, ValueError) as exc:  # no classifier yet, or one for other features
        usage_error(str(exc).splitlines()[0])
    code = runner.station.code
    typer.echo(
        f"live {code}: watching {folder} every {run_settings.live_poll_s:g} s; {len(runner.table.done)} files done "
        f"before; rows → {run_settings.paths.warehouse}/live_frames, figures → "
        f"{runner.figures_dir / f'{code}_keogram.png'}, {code}_daily_summary.png"
    )
    totals = {"rows": 0, "failed": 0, "alerts": 0, "dup": 0}

    def report(result) -> None:
        totals["rows"] += result.new
        totals["failed"] += result.failed
        totals["alerts"] += len(result.alerts)
        totals["dup"] += result.duplicates
        if result.new:
            worst = max(result.latencies) if result.latencies else 0.0
            typer.echo(
                f"{time.strftime('%H:%M:%S')} +{result.new} rows ({totals['rows']} in all, {totals['failed']} "
                f"unreadable, {totals['dup']} duplicates skipped), latency ≤ {worst:.1f} s"
            )
        for alert in result.alerts:
            typer.echo(f"ALERT {alert.rule} {alert.station} {alert.time:%Y-%m-%d %H:%M:%S}: {', '.join(alert.frames)}")

    try:
        runner.run(idle_exit_s=idle_exit, report=report)
    except KeyboardInterrupt:
        pass
    typer.echo(f"live {code}: {totals['rows']} rows, {totals['alerts']} alerts")


@app.command()
def replay(
    source: list[Path] = typer.Option(..., "--from", exists=True, help="Frame files or folders of a recorded night."),
    to: Path = typer.Option(..., "--to", help="Folder to play them into (created)."),
    speed: float = typer.Option(1.0, help="Real time × SPEED (0 = as fast as possible)."),
    config: ConfigOption = None,
) -> None:
    """Play a recorded night's frame files (UiO PNG, THEMIS CDF/PGM) into a folder in time order (atomic
    renames), at real time × SPEED; a file appears at the time in its name (a THEMIS file: its start)."""
    from tqdm import tqdm

    from tame_assets.live.replay import recorded_frames
    from tame_assets.live.replay import replay as play

    settings(config)
    frames = recorded_frames(source)
    span = (frames[-1].time - frames[0].time).total_seconds()
    typer.echo(
        f"replay: {len(frames)} files {frames[0].time} → {frames[-1].time} into {to} at ×{speed:g} "
        f"({span / speed:.0f} s)"
        if speed > 0
        else f"replay: {len(frames)} files into {to} as fast as possible"
    )
    with tqdm(total=len(frames), unit="file", desc="replay") as bar:
        play(frames, to, speed, on_file=lambda item, done, total: bar.update(1))
    typer.echo(f"replayed {len(frames)} files into {to}")
