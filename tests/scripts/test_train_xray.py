"""minicnn.cli.train_xray and predict_xray, end to end on the real xray-mini images (64x64, few epochs).

examples/train_xray.py and ``minicnn-xray train`` both run this code (test_console_script.py).

The wrong inputs, which must cost nothing, are in test_cli.py; here the runs that do train.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
from PIL import Image

import minicnn as mc
from minicnn.cli import predict_xray, train_xray

QUICK = ["--image-size", "64", "--batch-size", "16", "--seed", "1"]
# An umask no default would give: if every output has mode 0o640, every writer follows the umask.
UMASK = 0o027


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))


def weight_arrays(model: mc.Sequential) -> list[np.ndarray]:
    """The model's parameters as a list, whether get_weights gives a list (Keras) or a dict by name."""
    weights = model.get_weights()
    return list(weights.values()) if isinstance(weights, dict) else list(weights)


def run(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of train_xray.main(argv); stderr is not a terminal, as in a log file."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = train_xray.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def finished_run(xray_mini_dir, tmp_path_factory):
    """One complete 2-epoch run under an unusual umask, shared by the output checks below.

    Returns the --out folder, the cache folder, and what the run printed (stdout, stderr).
    """
    out = tmp_path_factory.mktemp("run")
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINICNN_CACHE", str(cache))
        previous_umask = os.umask(UMASK)
        try:
            code, printed, logged = run(["--data", str(xray_mini_dir), "--epochs", "2", "--out", str(out), *QUICK])
        finally:
            os.umask(previous_umask)
    assert code == 0, logged
    return out, cache, printed, logged


def test_the_example_builds_the_studys_model():
    model = train_xray.build_study_model(300)
    assert model.count_params() == 17_018_497


def test_history_csv_has_one_row_per_epoch(finished_run):
    out, *_ = finished_run
    with open(out / "history.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for row in rows:
        assert float(row["loss"]) > 0 and 0 <= float(row["accuracy"]) <= 1 and 0 <= float(row["val_accuracy"]) <= 1
        assert float(row["seconds"]) > 0


def test_metrics_json_has_the_clinical_figures_of_the_final_and_the_best_weights(finished_run):
    out, *_ = finished_run
    report = json.loads((out / "metrics.json").read_text())
    assert report["weights"] == {
        "file": "checkpoint.npz",
        "which": "final",
        "epochs_done": 2,
        "trained": "after 2 epochs",
    }
    for section in (report, report["best"]):
        for key in ("accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc"):
            assert section[key] is None or 0.0 <= section[key] <= 1.0, key  # None: undefined, never a fake 0
        assert section["n_test"] == 24 and section["threshold"] == 0.5 and section["positive_class"] == "Pneumonia"
        matrix = section["confusion_matrix"]
        assert matrix["labels"] == ["Pneumonia", "Normal"] and matrix["rows"] == "actual"
        assert np.sum(matrix["matrix"]) == 24 and np.sum(matrix["matrix"], axis=1).tolist() == [12, 12]
    best = report["best"]
    history = list(csv.DictReader(open(out / "history.csv", newline="")))
    val_losses = [float(row["val_loss"]) for row in history]
    assert best["file"] == "best.npz" and best["monitor"] == "val_loss"
    assert best["epoch"] == 1 + int(np.argmin(val_losses)) and best["value"] == pytest.approx(min(val_losses))
    assert mc.load_model(out / "best.npz").completed_epochs == best["epoch"]
    assert report["run"] == {
        "partial": False,
        "epochs_done": 2,
        "epochs_planned": 2,
        "time_budget_s": None,
        "stopped_in_epoch": None,
    }
    assert report["class_names"] == {"0": "Pneumonia", "1": "Normal"}


def test_figures_and_checkpoints_are_written(finished_run):
    out, *_ = finished_run
    for name in ("curves.png", "confusion_matrix.png", "roc.png", "predictions.png"):
        with Image.open(out / name) as image:
            image.verify()
    checkpoint = mc.load_model(out / "checkpoint.npz")
    assert checkpoint.completed_epochs == 2 and checkpoint.input_shape == (64, 64, 1)
    mc.load_model(out / "best.npz")


def test_every_output_follows_the_umask(finished_run):
    out, cache, *_ = finished_run
    files = [path for folder in (out, cache) for path in folder.rglob("*") if path.is_file()]
    names = {path.name for path in files}
    assert {"history.csv", "metrics.json", "settings.json", "checkpoint.npz", "best.npz", "curves.png"} <= names
    assert any(name.endswith(".npy") for name in names)  # the decode cache
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~UMASK, path.name


def test_the_run_says_what_it_trains_on_and_what_its_numbers_describe(finished_run):
    _, _, printed, _ = finished_run
    lines = [" ".join(line.split()) for line in printed.splitlines()]
    # 48 training images, 20 % held out per class: 5 + 5 validate, 19 + 19 train.
    assert "train 38 images: 19 Pneumonia, 19 Normal" in lines
    assert (
        "validation 10 images: 5 Pneumonia, 5 Normal (--val-split 0.2 of the 48 training images, stratified)" in lines
    )
    assert "test 24 images: 12 Pneumonia, 12 Normal" in lines
    assert "backend numpy, dtype float32, images 64x64 grayscale, batch 16" in printed
    assert "Pneumonia is the positive class; an X-ray is called Normal when P(Normal) > 0.5" in printed
    assert "final weights (checkpoint.npz, after 2 epochs): metrics.json" in printed
    assert "best weights (best.npz, epoch " in printed


def test_a_log_file_gets_one_line_per_epoch_and_no_progress_bars(finished_run):
    _, _, _, logged = finished_run
    assert "\r" not in logged
    assert [line.split(" - ")[0] for line in logged.splitlines() if line.startswith("Epoch ")] == [
        "Epoch 1/2",
        "Epoch 2/2",
    ]


def test_resume_ends_with_the_same_weights(finished_run, xray_mini_dir, tmp_path, isolated_cache):
    finished, *_ = finished_run
    out = tmp_path / "resumed"
    common = ["--data", str(xray_mini_dir), "--out", str(out), *QUICK]
    assert run([*common, "--epochs", "1"])[0] == 0
    code, printed, _ = run([*common, "--epochs", "2", "--resume"])
    assert code == 0
    assert f"resuming from {out / 'checkpoint.npz'}: 1 of 2 epochs done; picking up at epoch 2" in printed
    resumed = weight_arrays(mc.load_model(out / "checkpoint.npz"))
    uninterrupted = weight_arrays(mc.load_model(finished / "checkpoint.npz"))
    for resumed_value, value in zip(resumed, uninterrupted, strict=True):
        np.testing.assert_array_equal(resumed_value, value)
    with open(out / "history.csv", newline="") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["1", "2"]


def test_a_time_budget_stops_cleanly_and_resume_picks_up_where_it_stopped(xray_mini_dir, tmp_path, isolated_cache):
    out = tmp_path / "budget"
    # 16 images: 12 train (3 batches of 4) and 4 validate, so a stop can fall inside an epoch.
    common = [
        "--data",
        str(xray_mini_dir),
        "--out",
        str(out),
        "--image-size",
        "64",
        "--limit",
        "16",
        "--batch-size",
        "4",
    ]

    def metrics() -> dict:
        return json.loads((out / "metrics.json").read_text())

    # A budget spent at once: stop after the first batch, save, and still evaluate.
    code, printed, _ = run([*common, "--epochs", "2", "--time-budget", "1e-9"])
    assert code == 0
    assert "PARTIAL RESULT: the --time-budget of 1e-09 s ran out in epoch 1, after batch 1 of 3; 0 of 2" in printed
    assert metrics()["run"] == {
        "partial": True,
        "epochs_done": 0,
        "epochs_planned": 2,
        "time_budget_s": 1e-9,
        "stopped_in_epoch": 1,
    }
    assert metrics()["best"] is None and not (out / "best.npz").exists() and not (out / "curves.png").exists()
    assert (out / "history.csv").read_text() == "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n"
    assert mc.load_model(out / "checkpoint.npz").partial_epoch["batches"] == 1

    # A mid-epoch resume says where it picks up.
    code, printed, _ = run([*common, "--epochs", "1", "--resume"])
    assert code == 0
    assert f"resuming from {out / 'checkpoint.npz'}: 0 epochs done; picking up epoch 1 at batch 2 of 3" in printed
    assert metrics()["run"]["partial"] is False and metrics()["run"]["epochs_done"] == 1

    # Stopped again, now with an epoch behind it: curves, a best.npz, and a partial result.
    code, printed, _ = run([*common, "--epochs", "2", "--resume", "--time-budget", "1e-9"])
    assert code == 0 and "ran out in epoch 2, after batch 1 of 3; 1 of 2 epochs done" in printed
    assert metrics()["run"] == {
        "partial": True,
        "epochs_done": 1,
        "epochs_planned": 2,
        "time_budget_s": 1e-9,
        "stopped_in_epoch": 2,
    }
    assert metrics()["weights"]["trained"] == "after 1 epoch and 1 batch of epoch 2"
    assert metrics()["best"]["epoch"] == 1 and (out / "curves.png").exists()

    # Finish, then ask again: nothing is trained, the metrics are reported, and the status is 0.
    assert run([*common, "--epochs", "2", "--resume"])[0] == 0
    finished_checkpoint = (out / "checkpoint.npz").stat().st_mtime_ns
    code, printed, _ = run([*common, "--epochs", "2", "--resume"])
    assert code == 0
    assert f"nothing left to train: 2 of 2 epochs done in {out / 'checkpoint.npz'}" in printed
    assert "final weights (checkpoint.npz, after 2 epochs)" in printed
    assert (out / "checkpoint.npz").stat().st_mtime_ns == finished_checkpoint
    assert metrics()["run"]["partial"] is False and metrics()["run"]["epochs_done"] == 2


def test_undefined_metrics_are_null_in_metrics_json_and_n_a_on_the_console(xray_mini_dir, tmp_path, isolated_cache):
    # --limit 1 keeps one image per split, the first Pneumonia one: a test set without a single Normal X-ray,
    # so specificity (TN / (TN + FP)) and the ROC AUC are undefined, not 0.
    out = tmp_path / "one"
    code, printed, logged = run(
        ["--data", str(xray_mini_dir), "--out", str(out), "--image-size", "64", "--limit", "1", "--epochs", "1"]
    )
    assert code == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["n_test"] == 1 and report["confusion_matrix"]["matrix"][1] == [0, 0]
    assert report["specificity"] is None and report["roc_auc"] is None
    assert '"specificity": null' in (out / "metrics.json").read_text()
    assert "specificity n/a" in printed and "ROC AUC n/a" in printed
    assert "roc.png not drawn" in logged
    assert report["best"]["monitor"] == "loss"  # no validation image is left, so best.npz follows the loss


def test_a_fresh_run_in_a_used_folder_says_it_replaces_the_earlier_one(xray_mini_dir, tmp_path, isolated_cache):
    out = tmp_path / "used"
    common = [
        "--data",
        str(xray_mini_dir),
        "--out",
        str(out),
        "--image-size",
        "64",
        "--limit",
        "4",
        "--val-split",
        "0",
        "--epochs",
        "1",
    ]
    assert run(common)[0] == 0
    code, printed, _ = run([*common, "--time-budget", "1e-9"])
    assert code == 0
    assert f"note: {out} holds an earlier run; this fresh run replaces it (add --resume" in printed
    assert not (out / "best.npz").exists()  # the earlier run's best would pass for this one's


def test_predict_prints_probability_and_label(finished_run, xray_mini_dir, tmp_path, capsys):
    out, *_ = finished_run
    images = sorted((xray_mini_dir / "test").iterdir())[:2]
    broken = tmp_path / "broken.jpeg"
    broken.write_bytes(b"not an image")
    code = predict_xray.main([*map(str, images), str(broken), "--weights", str(out / "best.npz")])
    printed, err = capsys.readouterr()
    assert code == 1  # one unreadable file
    lines = printed.strip().splitlines()
    assert len(lines) == 2 and all("P(Normal) = " in line for line in lines)
    assert all(line.split("\t")[-1] in ("Normal", "Pneumonia") for line in lines)
    assert "broken.jpeg: cannot read this image" in err
    assert "grayscale input; an X-ray is called Normal when P(Normal) > 0.5, else Pneumonia" in err
    normal = sum(line.endswith("\tNormal") for line in lines)
    assert err.splitlines()[-1] == f"2 images classified: {2 - normal} Pneumonia, {normal} Normal; 1 not readable"


def test_predict_on_the_sample_ends_with_how_many_it_got_right(finished_run, capsys):
    out, *_ = finished_run
    assert predict_xray.main(["--sample", "--weights", str(out / "best.npz")]) == 0
    printed, err = capsys.readouterr()
    lines = printed.strip().splitlines()
    assert len(lines) == 24
    right = sum(line.split("\t")[2] == line.split("\t")[3].removeprefix("(true: ").removesuffix(")") for line in lines)
    normal = sum(line.split("\t")[2] == "Normal" for line in lines)
    summary = err.splitlines()[-1]
    assert summary == (
        f"24 images classified: {24 - normal} Pneumonia, {normal} Normal; "
        f"{right} of the 24 with a known label right ({100 * right / 24:.1f} %)"
    )


def test_missing_data_explains_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        train_xray.main(["--epochs", "1"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert message.startswith("error: no --data given")
    assert "CoronaHack" in message and "kaggle" in message.lower() and "data/coronahack" in message
    assert not (tmp_path / "runs").exists()


def test_a_training_split_of_unreadable_files_stops_before_any_folder_is_made(
    xray_mini_dir, tmp_path, isolated_cache, capsys
):
    # The listing looks fine (so the checks before decoding pass), but no training file is an image.
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "test").mkdir()
    rows = [",X_ray_image_name,Label,Dataset_type,Label_2_Virus_category,Label_1_Virus_category"]
    for index, label in enumerate(["Normal", "Pnemonia"]):
        (data / "train" / f"broken{index}.jpeg").write_text("not an image")
        rows.append(f"{index},broken{index}.jpeg,{label},TRAIN,,")
    test_image = sorted((xray_mini_dir / "test").iterdir())[0]
    (data / "test" / test_image.name).write_bytes(test_image.read_bytes())
    rows.append(f"2,{test_image.name},Normal,TEST,,")
    (data / "Chest_xray_Corona_Metadata.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        train_xray.main(["--data", str(data), "--out", str(out), "--image-size", "64", "--val-split", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: --data {data}: no readable image left to train on" in err and "Traceback" not in err
    assert not out.exists()


def read_csv_rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_split_csv_names_every_training_image_and_its_side_of_the_split(finished_run, xray_mini_dir):
    out, *_ = finished_run
    rows = read_csv_rows(out / "split.csv")
    train = mc.data.load_split(xray_mini_dir, "train", image_size=64, cache_dir=False, progress=False)
    train_index, val_index = mc.data.xray.stratified_split(train.labels, 0.2, seed=1)  # QUICK's seed
    assert [row["file"] for row in rows] == list(train.frame["file"])
    assert [int(row["label"]) for row in rows] == train.labels.tolist()
    assert [i for i, row in enumerate(rows) if row["subset"] == "validation"] == val_index.tolist()
    assert [i for i, row in enumerate(rows) if row["subset"] == "train"] == train_index.tolist()


def test_the_per_epoch_test_record_changes_nothing_in_training_and_agrees_with_metrics_json(
    finished_run, xray_mini_dir, tmp_path, isolated_cache
):
    """--record-test-each-epoch only measures: the weights equal those of the same run without it
    (bit for bit, on this machine), and its last row is the final evaluation of metrics.json."""
    finished, *_ = finished_run
    assert not (finished / "test_history.csv").exists()
    out = tmp_path / "recorded"
    argv = ["--data", str(xray_mini_dir), "--epochs", "2", "--out", str(out), *QUICK, "--record-test-each-epoch"]
    code, printed, _ = run(argv)
    assert code == 0 and "the test split measured after every epoch (for the record only)" in printed
    for recorded, plain in zip(
        weight_arrays(mc.load_model(out / "checkpoint.npz")),
        weight_arrays(mc.load_model(finished / "checkpoint.npz")),
        strict=True,
    ):
        np.testing.assert_array_equal(recorded, plain)
    rows = read_csv_rows(out / "test_history.csv")
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert list(rows[0]) == train_xray.TEST_HISTORY_COLUMNS
    final = json.loads((out / "metrics.json").read_text())
    for column in train_xray.TEST_HISTORY_COLUMNS[1:]:
        expected = final[column]
        assert rows[-1][column] == ("" if expected is None else str(expected)), column


def test_a_resume_keeps_the_per_epoch_test_record_of_the_epochs_done(xray_mini_dir, tmp_path, isolated_cache):
    out = tmp_path / "resumed-record"
    common = ["--data", str(xray_mini_dir), "--out", str(out), *QUICK, "--record-test-each-epoch"]
    assert run([*common, "--epochs", "1"])[0] == 0
    first_row = read_csv_rows(out / "test_history.csv")
    assert run([*common, "--epochs", "2", "--resume"])[0] == 0
    rows = read_csv_rows(out / "test_history.csv")
    assert [row["epoch"] for row in rows] == ["1", "2"] and rows[0] == first_row[0]
    # The record is part of the run: a resume without the option would leave a gap, so it is refused.
    with pytest.raises(SystemExit) as exit_info, redirect_stderr(io.StringIO()) as logged:
        train_xray.main([*common[:-1], "--epochs", "3", "--resume"])
    assert exit_info.value.code == 2
    assert "was started with --record-test-each-epoch, but this command has no --record-test-each-epoch" in (
        logged.getvalue()
    )
