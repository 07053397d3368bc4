"""``pip install`` for README's commands, done by uv when it can be had, with pip's own configuration.

Usage: ``.venv/bin/python scripts/install.py -e .`` (or ``-e '.[test]'``): the arguments are pip's.

Installing the project (torch and its CUDA wheels, ~5 GB unpacked) takes pip 285 s on the 2-core
development machine and uv 85 s (cold cache, bytecode compiled), with the same versions. uv does
not read pip's configuration, so this script hands it pip's (``pip config list``: index-url,
extra-index-url, find-links, constraint, cert) and pip's rule of taking the best version across all
indexes. Without uv (not installable, or it fails), pip installs, as before. Nothing here is needed
to use the project: ``pip install -e .`` gives the same environment, only slower.
"""

from __future__ import annotations

import compileall
import os
import shlex
import subprocess
import sys
from pathlib import Path

#: pip settings uv is told about: pip key → uv option (list-valued ones repeat the option).
PIP_TO_UV = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}


def pip_settings() -> dict[str, list[str]]:
    """pip's effective settings of interest, from ``pip config list`` (environment over files; later
    files over earlier ones, as pip reads them): key → whitespace-separated values."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    from_files: dict[str, list[str]] = {}
    from_env: dict[str, list[str]] = {}
    for line in listed.splitlines():
        name, _, value = line.partition("=")
        section, _, key = name.partition(".")
        if key not in (*PIP_TO_UV, "cert") or section not in (":env:", "global", "install"):
            continue
        values = shlex.split(value)
        values = values[0].split() if len(values) == 1 else values
        (from_env if section == ":env:" else from_files)[key] = values
    return {**from_files, **from_env}


def uv_options(settings: dict[str, list[str]]) -> list[str]:
    """uv's options for pip's ``settings`` (see :func:`pip_settings`), pip's rule of taking the best
    version across all indexes, and pip's bytecode compilation at install time (without it, where
    ``PYTHONDONTWRITEBYTECODE`` is set, as on the CI machine, every process compiles every module it
    imports: the fresh-clone suite took 1,497 s instead of ~1,050 s)."""
    options = ["--index-strategy", "unsafe-best-match", "--compile-bytecode"]
    for key, option in PIP_TO_UV.items():
        for value in settings.get(key, []):
            options += [option, value]
    return options


def uv_command(pip_args: list[str]) -> tuple[list[str], dict[str, str]] | None:
    """The uv command (and environment) that installs ``pip_args`` into this interpreter's
    environment, or None when uv is not installed and cannot be."""
    try:
        import uv  # noqa: F401
    except ImportError:
        got = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "uv"], check=False)
        if got.returncode != 0:
            return None
    from uv import find_uv_bin

    settings = pip_settings()
    command = [find_uv_bin(), "pip", "install", "--python", sys.executable, *uv_options(settings)]
    env = dict(os.environ)
    if settings.get("cert"):
        env.setdefault("SSL_CERT_FILE", settings["cert"][0])
    return [*command, *pip_args], env


def compile_editable_sources(pip_args: list[str]) -> list[Path]:
    """Compile the bytecode of every package of the projects installed editable (``-e DIR[extras]``).

    Neither uv nor pip compiles an editable project's own sources (they stay in the working tree), and
    where ``PYTHONDONTWRITEBYTECODE`` is set no process writes what it compiled: every ``tame``
    command, Dagster step process and test worker compiled the package's ~25,000 lines again
    (~0.3 s each). Stale files are ignored by Python, so later edits need no rerun. Returns the
    compiled package folders."""
    folders = []
    for flag, target in zip(pip_args, pip_args[1:]):
        if flag not in ("-e", "--editable"):
            continue
        project = Path(target.split("[", 1)[0]).resolve()
        for package in sorted(p.parent for p in project.glob("*/__init__.py")):
            if not package.name.startswith("."):
                compileall.compile_dir(package, quiet=1, workers=0)
                folders.append(package)
    return folders


def main(pip_args: list[str]) -> int:
    if not pip_args:
        print("usage: python scripts/install.py PIP_INSTALL_ARGUMENTS (e.g. -e .)", file=sys.stderr)
        return 2
    planned = uv_command(pip_args)
    returncode = None
    if planned is not None:
        command, env = planned
        returncode = subprocess.run(command, env=env, check=False).returncode
        if returncode != 0:
            print("uv could not install; installing with pip", file=sys.stderr)
    if returncode != 0:
        returncode = subprocess.run([sys.executable, "-m", "pip", "install", *pip_args], check=False).returncode
    if returncode == 0:
        compile_editable_sources(pip_args)
    return returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
