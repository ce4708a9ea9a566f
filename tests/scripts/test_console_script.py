"""The commands of an installed minicnn: ``minicnn-xray train|predict`` and ``python -m minicnn``.

They run the same code as examples/train_xray.py and predict_xray.py (minicnn.cli), whose own
behaviour test_cli.py and test_train_xray.py check. Here: the console script is declared,
dispatches to that code, lists every option, and ``import minicnn`` stays light. That the
wheel installs the script into a fresh venv and runs ``--demo`` from an empty folder needs the
package index, so .ci/run checks it after the tests.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import minicnn.cli
from minicnn.cli import predict_xray, train_xray
from minicnn.cli.train_xray import epochs_done

REPO_ROOT = Path(__file__).resolve().parents[2]


def python(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run this Python with this checkout's minicnn first on the path."""
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=environment)


def test_pyproject_declares_the_console_script_and_it_names_the_dispatcher():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"minicnn-xray": "minicnn.cli:main"}
    module, _, function = scripts["minicnn-xray"].partition(":")
    assert getattr(importlib.import_module(module), function) is minicnn.cli.main


def option_strings(parser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


@pytest.mark.parametrize("name, module", [("train", train_xray), ("predict", predict_xray)])
def test_each_subcommand_help_lists_every_option_of_its_script(name, module, capsys):
    with pytest.raises(SystemExit) as exit_info:
        minicnn.cli.main([name, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: minicnn-xray {name} ")
    expected = option_strings(module.build_parser())
    assert len(expected) > 3 and all(option in text for option in expected)


def test_the_top_level_help_names_both_subcommands(tmp_path):
    result = python("-m", "minicnn", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m minicnn {train,predict} [options]")
    assert "  train " in result.stdout and "  predict " in result.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "error: no subcommand given; give train or predict (see minicnn-xray --help)\n"),
        (["--demo"], "error: --demo: not a subcommand; give train or predict (see minicnn-xray --help)\n"),
        (["fit"], "error: fit: not a subcommand; give train or predict (see minicnn-xray --help)\n"),
    ],
)
def test_a_missing_or_unknown_subcommand_is_one_line_with_status_2(argv, message, capsys):
    assert minicnn.cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", message)


def test_a_subcommand_gets_its_options_and_its_name(capsys):
    with pytest.raises(SystemExit) as exit_info:
        minicnn.cli.main(["train", "--demo", "--epochs", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: --epochs 0: must be a whole number of at least 1\n"


def test_the_example_scripts_are_the_package_modules(monkeypatch):
    """examples/train_xray.py re-exports the package module's names, for the scripts that import them."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "examples"))
    for name, package_module in [("train_xray", train_xray), ("predict_xray", predict_xray)]:
        example = importlib.import_module(name)
        assert example.main is package_module.main
    example_train = importlib.import_module("train_xray")
    # what study_results.py, benchmarks/keras_study.py, epoch_time.py and bench_study_model.py import
    for name in ["build_study_model", "training_transform", "write_split", "HistoryFile", "check_numbers"]:
        assert getattr(example_train, name) is getattr(train_xray, name)


def test_the_example_script_and_python_m_minicnn_print_the_same_options(tmp_path):
    example = python(str(REPO_ROOT / "examples" / "train_xray.py"), "--help", cwd=tmp_path)
    installed = python("-m", "minicnn", "train", "--help", cwd=tmp_path)
    assert example.returncode == installed.returncode == 0
    assert example.stdout.startswith("usage: train_xray.py ")
    assert installed.stdout.startswith("usage: python -m minicnn train ")
    body = example.stdout.split("\n\n", 1)[1]  # after the usage paragraph, whose width depends on the name
    assert installed.stdout.split("\n\n", 1)[1] == body


def test_import_minicnn_does_not_load_the_commands(tmp_path):
    result = python(
        "-c", "import sys, minicnn; print(sorted(m for m in sys.modules if m.startswith('minicnn.cli')))", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "done, planned, text", [(0, 1, "0 of 1 epoch done"), (1, 1, "1 of 1 epoch done"), (2, 5, "2 of 5 epochs done")]
)
def test_epoch_counts_take_the_plural_of_the_planned_count(done, planned, text):
    assert epochs_done(done, planned) == text
