"""The 72-image X-ray sample ships inside the package: complete, checksummed, in the wheel, and runnable."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import predict_xray
import pytest
import train_xray

import minicnn
from minicnn.data import read_metadata, sample_path
from minicnn.data.sample import SAMPLE_SPLITS

REPO_ROOT = Path(__file__).resolve().parents[2]


def listed_checksums() -> dict[str, str]:
    """{relative path: sha256} from the sample's SHA256SUMS file."""
    lines = (sample_path() / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split(maxsplit=1) for line in lines)}


def test_the_sample_is_found_inside_the_package():
    path = sample_path()
    assert path == Path(minicnn.__file__).resolve().parent / "datasets" / "xray_mini"
    assert (path / "README.md").read_text().count("CC BY 4.0") >= 1


def test_every_file_matches_its_checksum_and_none_is_missing_or_extra():
    checksums = listed_checksums()
    on_disk = {str(file.relative_to(sample_path())) for file in sample_path().rglob("*") if file.is_file()}
    assert on_disk - {"SHA256SUMS", "README.md"} == set(checksums)
    for name, digest in checksums.items():
        assert hashlib.sha256((sample_path() / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("split", sorted(SAMPLE_SPLITS))
def test_csv_rows_match_the_image_files_and_the_classes_are_balanced(split):
    frame = read_metadata(sample_path(), split)
    files = sorted(file.name for file in (sample_path() / split).iterdir())
    assert sorted(frame["file"]) == files
    assert len(files) == SAMPLE_SPLITS[split]
    assert frame["label"].value_counts().to_dict() == {1: len(files) // 2, 0: len(files) // 2}


def test_the_built_wheel_carries_the_sample(tmp_path):
    # Build from a copy, so the checkout gets no build/ or egg-info folders.
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT / "minicnn", source / "minicnn", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "PACKAGE.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(tmp_path / "wheel"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "wheel").glob("minicnn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"minicnn/datasets/xray_mini/{name}" for name in [*listed_checksums(), "README.md", "SHA256SUMS"]}
    assert expected <= names
    assert "minicnn/data/sample.py" in names


def test_demo_defaults_are_small_and_leave_the_study_defaults_alone():
    demo = train_xray.parse_args(["--demo"])
    study = train_xray.parse_args(["--data", "somewhere"])
    assert (demo.image_size, demo.epochs, demo.batch_size, demo.data) == (64, 30, 8, sample_path())
    assert (study.image_size, study.epochs, study.batch_size) == (300, 60, 32)
    assert train_xray.parse_args(["--demo", "--epochs", "2"]).epochs == 2


def test_demo_rejects_a_data_folder(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_xray.parse_args(["--demo", "--data", "somewhere"])
    assert exit_info.value.code == 2
    assert "--demo trains on the bundled sample" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_end_to_end_and_says_it_is_a_demo(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    assert train_xray.main(["--demo", "--epochs", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "DEMO" in printed and "not the study" in printed
    expected = {
        "history.csv",
        "curves.png",
        "checkpoint.npz",
        "best.npz",
        "metrics.json",
        "confusion_matrix.png",
        "roc.png",
        "predictions.png",
    }
    assert expected <= {file.name for file in out.iterdir()}
    assert json.loads((out / "metrics.json").read_text())["n_test"] == 24

    assert predict_xray.main(["--sample", "--weights", str(out / "best.npz")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 24 and all("(true: Normal)" in line or "(true: Pneumonia)" in line for line in lines)


def test_missing_data_message_points_to_the_demo(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        train_xray.find_data_dir(None)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert message.startswith("error: no --data given") and "--demo" in message
