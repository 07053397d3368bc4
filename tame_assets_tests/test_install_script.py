"""scripts/install.py: README's install step hands uv the indexes, links, constraints and
certificate pip is configured with (read with the real ``pip config list``)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install.py"


def _install_module():
    spec = importlib.util.spec_from_file_location("install_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_uv_gets_pips_indexes_links_constraints_and_certificate(tmp_path, monkeypatch):
    install = _install_module()
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\n"
        "index-url = https://mirror.invalid/simple\n"
        "extra-index-url = file:///a/simple file:///b/simple\n"
        "constraint = /c/constraints.txt\n"
        "cert = /d/ca.pem\n"
        "timeout = 5\n"
    )
    for name in [n for n in os.environ if n.startswith("PIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_FIND_LINKS", "/e/wheels")  # the environment wins over files, as in pip
    settings = install.pip_settings()
    assert settings["extra-index-url"] == ["file:///a/simple", "file:///b/simple"]
    assert settings["find-links"] == ["/e/wheels"] and settings["cert"] == ["/d/ca.pem"]
    options = install.uv_options(settings)
    assert options[:3] == ["--index-strategy", "unsafe-best-match", "--compile-bytecode"]
    pairs = list(zip(options[3::2], options[4::2]))
    assert pairs == [
        ("--index-url", "https://mirror.invalid/simple"),
        ("--extra-index-url", "file:///a/simple"),
        ("--extra-index-url", "file:///b/simple"),
        ("--find-links", "/e/wheels"),
        ("--constraint", "/c/constraints.txt"),
    ]


def test_without_arguments_it_prints_usage(capsys):
    assert _install_module().main([]) == 2
    assert "usage:" in capsys.readouterr().err


def test_the_editable_projects_packages_are_compiled(tmp_path):
    for package in ("pkg", "pkg_tests", ".hidden"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("VALUE = 1\n")
    (tmp_path / "pkg" / "module.py").write_text("def f():\n    return 2\n")
    (tmp_path / "setup_helper.py").write_text("x = 1\n")  # a top-level module: not a package
    compiled = _install_module().compile_editable_sources(["-q", "-e", f"{tmp_path}[test]"])
    assert compiled == [tmp_path / "pkg", tmp_path / "pkg_tests"]
    assert {p.name.split(".")[0] for p in (tmp_path / "pkg" / "__pycache__").iterdir()} == {"__init__", "module"}
    assert not (tmp_path / ".hidden" / "__pycache__").exists() and not (tmp_path / "__pycache__").exists()
    assert _install_module().compile_editable_sources(["-q", "somepackage"]) == []
