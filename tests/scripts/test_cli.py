"""Every wrong input to the X-ray commands gets one line, "error: ...", exit status 2, and costs nothing.

The commands are minicnn.cli's: examples/train_xray.py and predict_xray.py run them from a clone,
``minicnn-xray train`` and ``predict`` once installed.

"Costs nothing" is checked, not assumed: no image is decoded (decoding is made to record
any call), and nothing is left in the working folder, no --out folder in particular.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import minicnn.data.xray
from minicnn import losses, optimizers
from minicnn.cli import predict_xray, train_xray

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_decoding(monkeypatch, tmp_path):
    """Run in an empty folder with an empty cache, recording every attempt to decode an image.

    The recorders raise as well, but load_split turns a failing decode into a skipped
    file, so it is the record that the tests check.
    """
    calls: list[str] = []

    def forbidden(name):
        def record(*args, **kwargs):
            calls.append(name)
            raise RuntimeError(f"{name} called for a wrong input")

        return record

    monkeypatch.setattr(minicnn.data.xray, "decode_image", forbidden("decode_image"))
    monkeypatch.setattr(train_xray, "load_split", forbidden("load_split"))
    monkeypatch.setattr(predict_xray, "decode_image", forbidden("decode_image"))
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # the default --out, runs/xray, would land here
    return calls


def run_cli(main, argv) -> int:
    """The exit status of ``main(argv)``, whether it returns it or exits with it."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


def folder_snapshot(folder: Path) -> dict[str, int]:
    """Every file and folder below ``folder``, with its modification time: what 'nothing changed' compares."""
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*")}


def assert_refused(main, argv, message, capsys, calls, folder) -> str:
    """``main(argv)`` exits 2 with one line holding ``message``, decodes nothing and leaves ``folder`` as it was.

    Returns the line, for further checks.
    """
    before = folder_snapshot(folder)
    code = run_cli(main, argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err  # one line, no traceback, no usage text
    assert message in err
    assert out == ""
    assert calls == []
    assert folder_snapshot(folder) == before
    return err


# (options, what the message must say); every case adds --out OUT unless it sets --out itself.
TRAIN_CASES = [
    (["--epochs", "0"], "--epochs 0: must be a whole number of at least 1"),
    (["--epochs", "-3"], "--epochs -3: must be a whole number of at least 1"),
    (["--epochs", "1.5"], "--epochs 1.5: must be a whole number"),
    (["--epochs", "ten"], "--epochs ten: must be a whole number"),
    (["--batch-size", "0"], "--batch-size 0: must be a whole number of at least 1"),
    (["--learning-rate", "-1"], "--learning-rate -1: must be a number greater than 0"),
    (["--learning-rate", "0"], "--learning-rate 0: must be a number greater than 0"),
    (["--learning-rate", "nan"], "--learning-rate nan: must be a number greater than 0"),
    (["--learning-rate", "inf"], "--learning-rate inf: must be a number greater than 0"),
    (["--val-split", "1.5"], "--val-split 1.5: must be a fraction from 0"),
    (["--val-split", "1"], "--val-split 1: must be a fraction from 0"),
    (["--val-split", "-0.1"], "--val-split -0.1: must be a fraction from 0"),
    (["--limit", "0"], "--limit 0: must be a whole number of at least 1"),
    (["--image-size", "45"], "--image-size 45: must be a whole number from 46"),
    (["--image-size", "5000"], "--image-size 5000: must be a whole number from 46 (the smallest"),
    (["--threshold", "0"], "--threshold 0: must be a probability strictly between 0 and 1"),
    (["--threshold", "1"], "--threshold 1: must be a probability strictly between 0 and 1"),
    (["--threshold", "1.5"], "--threshold 1.5: must be a probability"),
    (["--seed", "-1"], "--seed -1: must be a whole number of at least 0"),
    (["--time-budget", "0"], "--time-budget 0: must be a number of seconds greater than 0"),
    (["--time-budget", "-5"], "--time-budget -5: must be a number of seconds greater than 0"),
    (["--backend", "tpu"], "argument --backend: invalid choice: 'tpu'"),
    (["--class-weight", "equal"], "argument --class-weight: invalid choice: 'equal'"),
    (["--classes", "4"], "argument --classes: invalid choice: 4"),
    (["--classes", "three"], "argument --classes: invalid int value: 'three'"),
    (["--optimizer", "sgd"], "argument --optimizer: invalid choice: 'sgd'"),
    # With 3 classes the prediction is the argmax: a threshold, even the default's value, is refused
    (["--classes", "3", "--threshold", "0.3"], "--threshold 0.3: with --classes 3 each X-ray is called its most"),
    (["--classes", "3", "--threshold", "0.5"], "--threshold 0.5: with --classes 3 each X-ray is called its most"),
    (["--classes", "3", "--thr", "0.5"], "leave out --threshold (it applies to --classes 2 only)"),
    (["--demo", "--classes", "3", "--threshold", "0.5"], "--threshold 0.5: with --classes 3"),
    (["--epochs"], "argument --epochs: expected one argument"),
    (["--colour"], "unrecognized arguments: --colour"),
    (["--demo", "--data", "DATA"], "--demo trains on the bundled sample; leave out --data"),
    (["--demo", "--epochs", "0"], "--epochs 0: must be a whole number of at least 1"),
    # Paths and what they hold
    (["--data", "NOWHERE"], "no such folder"),
    (["--data", "A_FILE"], "is a file"),
    (["--data", "PHOTOS"], "is not an X-ray data folder. Accepted layouts: (1) CoronaHack"),
    (["--out", "A_FILE"], "--out A_FILE: is a file, not a folder"),
    (["--split-file", "NOWHERE"], "--split-file NOWHERE: no such file"),
    (
        ["--resume"],
        "--resume: no checkpoint in OUT (looked for OUT/checkpoint.npz); check --out, "
        "or leave out --resume to start a fresh run",
    ),
    # Combinations that leave nothing to train on
    (["--limit", "2", "--val-split", "0.5"], "--val-split 0.5: holds out all 2 training images (of --limit 2)"),
    (["--val-split", "0.99"], "--val-split 0.99: holds out all 48 training images, leaving none to train on"),
]


@pytest.mark.parametrize("options, message", TRAIN_CASES, ids=[" ".join(options) for options, _ in TRAIN_CASES])
def test_train_refuses_a_wrong_input_at_once(options, message, xray_mini_dir, no_decoding, tmp_path, capsys):
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "photos" / "holiday").mkdir(parents=True)
    names = {
        "NOWHERE": tmp_path / "nowhere",
        "A_FILE": tmp_path / "a_file",
        "PHOTOS": tmp_path / "photos",
        "DATA": xray_mini_dir,
        "OUT": tmp_path / "out",
    }
    argv = [str(names.get(option, option)) for option in options]
    for name in ("OUT", "A_FILE", "NOWHERE"):
        message = message.replace(name, str(names[name]))
    if "--data" not in options and "--demo" not in options:
        argv += ["--data", str(xray_mini_dir)]
    if "--out" not in options:
        argv += ["--out", str(names["OUT"])]
    assert_refused(train_xray.main, argv, message, capsys, no_decoding, tmp_path)
    assert not names["OUT"].exists()


def test_missing_cupy_gets_advice_for_the_command_line(monkeypatch, xray_mini_dir, no_decoding, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "cupy", None)  # as if CuPy were not installed
    out, weights = tmp_path / "out", tmp_path / "model.npz"
    weights.write_bytes(b"")  # predict_xray checks the backend before it reads the model
    for main, argv in [
        (train_xray.main, ["--data", str(xray_mini_dir), "--out", str(out), "--backend", "cupy"]),
        (predict_xray.main, ["--sample", "--weights", str(weights), "--backend", "cupy"]),
    ]:
        err = assert_refused(
            main,
            argv,
            "--backend cupy: backend 'cupy' needs the CuPy package, which is not installed",
            capsys,
            no_decoding,
            tmp_path,
        )
        assert 'pip install -e ".[gpu-cuda13]"' in err and "--backend numpy" in err and "set_backend" not in err
    assert not out.exists()


# ---------------------------------------------------------------------------
# --resume with a checkpoint that is not this run's: refused before decoding
# ---------------------------------------------------------------------------


@pytest.fixture
def saved_run(tmp_path, xray_mini_dir):
    """An --out folder holding an untrained 64x64 checkpoint and the settings of its run (no training needed)."""
    out = tmp_path / "run"
    out.mkdir()
    options = ["--data", str(xray_mini_dir), "--image-size", "64", "--batch-size", "16", "--out", str(out)]
    args = train_xray.parse_args(options)
    model = train_xray.build_study_model(64, seed=0)
    model.compile(optimizer=optimizers.Adam(learning_rate=1e-4), loss=losses.BinaryCrossentropy(), metrics=["accuracy"])
    model.save(out / "checkpoint.npz")
    settings = {name: getattr(args, name) for name in train_xray.RESUME_SETTINGS}
    (out / train_xray.SETTINGS_FILE).write_text(json.dumps(settings))
    return out, options


@pytest.mark.parametrize(
    "change, message",
    [
        (["--image-size", "72"], "checkpoint.npz was trained on 64x64 images, not --image-size 72"),
        (["--seed", "3"], "checkpoint.npz was trained with --seed 0, not --seed 3"),
        (["--batch-size", "8"], "was started with --batch-size 16, but this command has --batch-size 8"),
        (
            ["--no-augment", "--learning-rate", "0.001"],
            "was started with --learning-rate 0.0001, no --no-augment, but this command has --learning-rate 0.001, "
            "--no-augment; repeat the first run's options",
        ),
        (["--classes", "3"], "checkpoint.npz was trained with --classes 2, not --classes 3; resume with its --classes"),
        (
            ["--optimizer", "rmsprop"],
            "checkpoint.npz was trained with --optimizer adam, not --optimizer rmsprop; resume with its --optimizer",
        ),
    ],
)
def test_resume_refuses_a_checkpoint_of_another_run(change, message, saved_run, no_decoding, tmp_path, capsys):
    out, options = saved_run
    assert_refused(train_xray.main, [*options, "--resume", *change], message, capsys, no_decoding, tmp_path)


def test_resume_refuses_a_3_class_rmsprop_checkpoint_for_the_binary_adam_options(
    saved_run, no_decoding, tmp_path, capsys
):
    out, options = saved_run
    model = train_xray.build_study_model(64, seed=0, classes=3)
    model.compile(optimizer=optimizers.RMSprop(learning_rate=1e-4), loss="sparse_categorical_crossentropy")
    model.save(out / "checkpoint.npz")
    message = "checkpoint.npz was trained with --classes 3, not --classes 2"
    assert_refused(train_xray.main, [*options, "--resume"], message, capsys, no_decoding, tmp_path)
    message = "checkpoint.npz was trained with --optimizer rmsprop, not --optimizer adam"
    argv = [*options, "--resume", "--classes", "3"]
    assert_refused(train_xray.main, argv, message, capsys, no_decoding, tmp_path)


def test_settings_json_written_before_classes_and_optimizer_still_resumes(saved_run, capsys):
    """A run started before --classes, --optimizer and --split-file existed: a binary Adam run, no split file."""
    out, options = saved_run
    settings = json.loads((out / train_xray.SETTINGS_FILE).read_text())
    for name in ("classes", "optimizer", "split_file"):
        del settings[name]
    (out / train_xray.SETTINGS_FILE).write_text(json.dumps(settings))
    model = train_xray.load_checkpoint(train_xray.parse_args([*options, "--resume"]))
    assert train_xray.classes_of(model) == 2 and type(model.optimizer).__name__ == "Adam"
    with pytest.raises(SystemExit):  # and it still says which setting differs from the first run's
        train_xray.load_checkpoint(train_xray.parse_args([*options, "--resume", "--split-file", str(out)]))
    assert "was started with no --split-file" in capsys.readouterr().err


def test_resume_refuses_a_file_that_is_not_a_model(saved_run, no_decoding, tmp_path, capsys):
    out, options = saved_run
    (out / "checkpoint.npz").write_text("epoch 3 went well\n")
    assert_refused(
        train_xray.main, [*options, "--resume"], "is not a minicnn model file", capsys, no_decoding, tmp_path
    )


# ---------------------------------------------------------------------------
# predict_xray.py
# ---------------------------------------------------------------------------

PREDICT_CASES = [
    ([], "the following arguments are required: --weights"),
    (["--weights", "MODEL"], "give image files, or --sample for the bundled test images"),
    (["--sample", "--weights", "NOWHERE"], "--weights NOWHERE: no such file"),
    (["--sample", "--weights", "FOLDER"], "--weights FOLDER: is a folder"),
    (["--sample", "--weights", "TEXT"], "is not a minicnn model file (not an .npz archive)"),
    (["--sample", "--weights", "MODEL", "--threshold", "1.5"], "--threshold 1.5: must be a probability"),
    (["--sample", "--weights", "MODEL", "--threshold", "0"], "--threshold 0: must be a probability"),
    (["--sample", "--weights", "MODEL", "--threshold", "half"], "--threshold half: must be a probability"),
    (["NOWHERE", "--weights", "MODEL"], "NOWHERE: no such file"),
    (["FOLDER", "--weights", "MODEL"], "FOLDER: is a folder; give the image files in it"),
    (["--sample", "--weights", "MODEL", "--backend", "tpu"], "argument --backend: invalid choice: 'tpu'"),
]


@pytest.mark.parametrize("options, message", PREDICT_CASES, ids=[" ".join(options) for options, _ in PREDICT_CASES])
def test_predict_refuses_a_wrong_input_at_once(options, message, saved_run, no_decoding, tmp_path, capsys):
    out, _ = saved_run
    (tmp_path / "notes.txt").write_text("not a model")
    names = {
        "MODEL": out / "checkpoint.npz",
        "NOWHERE": tmp_path / "nowhere.jpeg",
        "FOLDER": out,
        "TEXT": tmp_path / "notes.txt",
    }
    argv = [str(names.get(option, option)) for option in options]
    for name, path in names.items():
        message = message.replace(name, str(path))
    assert_refused(predict_xray.main, argv, message, capsys, no_decoding, tmp_path)


# ---------------------------------------------------------------------------
# As a real command: exit status, one line, no traceback; and --help
# ---------------------------------------------------------------------------


def test_a_wrong_value_from_the_shell_is_one_line_with_status_2(tmp_path):
    out = tmp_path / "out"
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}  # this checkout's minicnn
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "examples" / "train_xray.py"),
            "--demo",
            "--batch-size",
            "0",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
    )
    assert result.returncode == 2
    assert result.stderr == "error: --batch-size 0: must be a whole number of at least 1\n"
    assert result.stdout == "" and not out.exists()


def help_text(main, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # undo the line wrapping


def test_train_help_shows_every_default_once(capsys):
    text = help_text(train_xray.main, capsys)
    expected = [
        "(default: $MINICNN_DATA, then data/coronahack)",
        "(default: runs/xray)",
        "(default: numpy)",
        "(default: 60, the study's)",
        "(default: 32)",
        "(default: 0.0001)",
        "(default: 300)",
        "(default: 0.2)",
        "(default: 0)",
        "(default: 0.5)",
        "(default: adam)",
        "(default: 2)",
        "(default: auto)",
        "(default: host)",
    ]
    for default in expected:
        assert text.count(default) == 1, default
    assert text.count("(default:") == len(expected)  # none shown twice, no "default: None" or "False"
    assert "--image-size 64, --epochs 30, --batch-size 8, --out runs/demo" in text  # what --demo changes
    # --classes: each class's integer, and what becomes of the pneumonias of neither kind
    assert "Pneumonia 0 and Normal 1" in text and "Normal 0, bacterial pneumonia 1, viral pneumonia 2" in text
    assert "2 Stress-Smoking ARDS X-rays, both in train) is skipped" in text.replace("Stress- ", "Stress-")
    assert "Adam's step size" not in text and "the optimiser's step size" in text


def test_predict_help_shows_every_default_once(capsys):
    text = help_text(predict_xray.main, capsys)
    assert text.count("(default: 0.5)") == 1 and text.count("(default: numpy)") == 1
    assert text.count("(default:") == 2
