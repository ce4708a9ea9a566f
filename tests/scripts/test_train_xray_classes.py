"""train_xray's --classes 3 (Normal 0, bacterial 1, viral 2), --optimizer rmsprop and --split-file, end to end.

Each run is on the 72-image sample at 46 x 46 (the smallest size the study's network allows) for
one or two epochs: these check what is written and that it agrees with itself, not how well
38 training images teach the task. The wrong inputs are in test_cli.py.
"""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
from PIL import Image

import minicnn as mc
from minicnn.cli import train_xray

TINY = ["--image-size", "46", "--batch-size", "16", "--seed", "1"]


def run(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of train_xray.main(argv)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = train_xray.main(argv)
    return code, out.getvalue(), err.getvalue()


def read_csv_rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def weight_arrays(model: mc.Sequential) -> list[np.ndarray]:
    """The model's parameters as a list, whether get_weights gives a list (Keras) or a dict by name."""
    weights = model.get_weights()
    return list(weights.values()) if isinstance(weights, dict) else list(weights)


def weights_of(path) -> list[np.ndarray]:
    return weight_arrays(mc.load_model(path))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One decoding cache for the module's runs (and none in the user's home)."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINICNN_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def three_class_run(xray_mini_dir, cache, tmp_path_factory):
    """A 1-epoch --classes 3 run with the per-epoch test record: (out folder, what it printed)."""
    out = tmp_path_factory.mktemp("three")
    argv = ["--data", str(xray_mini_dir), "--out", str(out), "--epochs", "1", "--classes", "3", *TINY]
    code, printed, logged = run([*argv, "--record-test-each-epoch"])
    assert code == 0, logged
    return out, printed


def test_the_study_network_for_3_classes_ends_in_a_softmax_and_is_otherwise_the_same():
    two, three = mc.models.study_cnn(300), mc.models.study_cnn(300, classes=3)
    assert two.count_params() == 17_018_497 and two.output_shape == (1,)
    assert three.output_shape == (3,) and three.count_params() == 17_018_497 + 2 * 513
    assert three.get_config()["layers"][:-1] == two.get_config()["layers"][:-1]
    assert three.get_config()["layers"][-1]["config"]["activation"] == "softmax"
    # The same seed gives the same weights for every layer the two networks share (all but the last Dense).
    for value, expected in zip(weight_arrays(three)[:-2], weight_arrays(two)[:-2], strict=True):
        np.testing.assert_array_equal(value, expected)
    with pytest.raises(ValueError, match="classes"):
        mc.models.study_cnn(300, classes=1)


def test_a_3_class_run_says_what_each_label_is(three_class_run):
    _, printed = three_class_run
    lines = [" ".join(line.split()) for line in printed.splitlines()]
    # 48 training images (24 Normal, 12 bacterial, 12 viral), 20 % of each class held out.
    assert "train 39 images: 19 Normal, 10 bacterial, 10 viral" in lines
    assert any(line.startswith("validation 9 images: 5 Normal, 2 bacterial, 2 viral") for line in lines)
    assert "test 24 images: 12 Normal, 6 bacterial, 6 viral" in lines
    assert "3 classes (Normal 0, bacterial 1, viral 2)" in printed
    assert "each X-ray is called its most probable class of Normal (0), bacterial (1), viral (2)" in printed
    assert "bacterial vs viral, viral positive, the 2x2 block" in printed


def test_a_3_class_metrics_json_is_k_class(three_class_run):
    out, _ = three_class_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classes"] == 3 and metrics["class_names"] == {"0": "Normal", "1": "bacterial", "2": "viral"}
    assert "threshold" not in metrics and "softmax" in metrics["model_output"]
    for section in (metrics, metrics["best"]):
        matrix = np.array(section["confusion_matrix"]["matrix"])
        assert section["confusion_matrix"]["labels"] == ["Normal", "bacterial", "viral"]
        assert matrix.shape == (3, 3) and matrix.sum(axis=1).tolist() == [12, 6, 6]
        assert section["accuracy"] == pytest.approx(np.trace(matrix) / 24)
        assert set(section["per_class"]) == {"Normal", "bacterial", "viral"}
        for k, values in enumerate(section["per_class"].values()):
            assert values["support"] == matrix[k].sum()
            assert values["recall"] == pytest.approx(matrix[k, k] / matrix[k].sum())
            assert values["roc_auc"] is not None and 0 <= values["roc_auc"] <= 1
        recalls = [values["recall"] for values in section["per_class"].values()]
        assert section["macro_recall"] == pytest.approx(np.mean(recalls))
        kinds = section["bacterial_vs_viral"]
        assert kinds["positive_class"] == "viral"
        assert kinds["sub_matrix"]["matrix"] == matrix[1:, 1:].tolist()
        assert kinds["pneumonias_called_normal"] == matrix[1:, 0].sum()
        assert kinds["forced_choice"]["n"] == 12 and np.sum(kinds["forced_choice"]["matrix"], axis=1).tolist() == [6, 6]


def test_a_3_class_run_writes_three_probabilities_per_test_image_that_give_back_the_matrix(three_class_run):
    out, _ = three_class_run
    rows = read_csv_rows(out / "test_predictions.csv")
    assert list(rows[0]) == [
        "file",
        "label",
        "p_normal_final",
        "p_bacterial_final",
        "p_viral_final",
        "p_normal_best",
        "p_bacterial_best",
        "p_viral_best",
    ]
    prob = np.array([[float(row[f"p_{name}_final"]) for name in ("normal", "bacterial", "viral")] for row in rows])
    labels = np.array([int(row["label"]) for row in rows])
    np.testing.assert_allclose(prob.sum(axis=1), 1, rtol=1e-5)
    matrix = json.loads((out / "metrics.json").read_text())["confusion_matrix"]["matrix"]
    assert mc.metrics.confusion_matrix(labels, prob.argmax(axis=1), labels=range(3)).tolist() == matrix


def test_a_3_class_run_records_its_classes_figures_and_per_epoch_record(three_class_run):
    out, _ = three_class_run
    settings = json.loads((out / "settings.json").read_text())
    assert settings["classes"] == 3 and settings["optimizer"] == "adam"
    assert settings["class_names"] == {"0": "Normal", "1": "bacterial", "2": "viral"}
    assert sorted({row["label"] for row in read_csv_rows(out / "split.csv")}) == ["0", "1", "2"]
    for name in ("curves.png", "confusion_matrix.png", "roc.png", "predictions.png"):
        with Image.open(out / name) as image:
            image.verify()
    history = read_csv_rows(out / "test_history.csv")
    assert list(history[0]) == train_xray.THREE_CLASS_TEST_HISTORY_COLUMNS and len(history) == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert float(history[0]["accuracy"]) == pytest.approx(metrics["accuracy"])
    assert float(history[0]["recall_viral"]) == pytest.approx(metrics["per_class"]["viral"]["recall"])


def test_a_3_class_run_resumes_and_refuses_other_classes(three_class_run, xray_mini_dir, tmp_path):
    out, _ = three_class_run
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for name in ("checkpoint.npz", "best.npz", "settings.json", "history.csv", "split.csv", "test_history.csv"):
        (resumed / name).write_bytes((out / name).read_bytes())
    common = ["--data", str(xray_mini_dir), "--out", str(resumed), *TINY, "--record-test-each-epoch", "--resume"]
    with pytest.raises(SystemExit), redirect_stderr(io.StringIO()) as logged:
        train_xray.main([*common, "--epochs", "2"])  # no --classes 3: the binary network's, not this one
    assert "was trained with --classes 3, not --classes 2" in logged.getvalue()
    code, printed, logged = run([*common, "--epochs", "2", "--classes", "3"])
    assert code == 0, logged
    assert "1 of 2 epochs done; picking up at epoch 2" in printed
    assert [row["epoch"] for row in read_csv_rows(resumed / "test_history.csv")] == ["1", "2"]
    assert json.loads((resumed / "metrics.json").read_text())["weights"]["epochs_done"] == 2


def test_bacterial_versus_viral_on_a_constructed_case():
    # Actual: 2 Normal, 3 bacterial, 3 viral. Predicted (argmax): see each row.
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 2])
    prob = np.array(
        [
            [0.8, 0.1, 0.1],  # Normal -> Normal
            [0.2, 0.7, 0.1],  # Normal -> bacterial
            [0.1, 0.8, 0.1],  # bacterial -> bacterial
            [0.1, 0.3, 0.6],  # bacterial -> viral
            [0.6, 0.3, 0.1],  # bacterial -> Normal (forced choice: bacterial)
            [0.1, 0.2, 0.7],  # viral -> viral
            [0.1, 0.2, 0.7],  # viral -> viral
            [0.5, 0.1, 0.4],  # viral -> Normal (forced choice: viral)
        ]
    )
    block = train_xray.bacterial_versus_viral(labels, prob)
    assert block["sub_matrix"]["matrix"] == [[1, 1], [0, 2]] and block["pneumonias_called_normal"] == 2
    assert block["sub_matrix"]["accuracy"] == 0.75
    assert block["sub_matrix"]["sensitivity"] == 1.0 and block["sub_matrix"]["specificity"] == 0.5
    assert block["forced_choice"]["matrix"] == [[2, 1], [0, 3]] and block["forced_choice"]["n"] == 6
    assert block["forced_choice"]["sensitivity"] == 1.0 and block["forced_choice"]["specificity"] == pytest.approx(
        2 / 3
    )


def test_rmsprop_trains_records_itself_and_resumes_exactly(xray_mini_dir, cache, tmp_path):
    """RMSprop's running mean of squared gradients is in the checkpoint: 1 + 1 epochs give the 2 epochs' weights."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ["--data", str(xray_mini_dir), *TINY, "--optimizer", "rmsprop"]
    code, printed, logged = run([*common, "--out", str(straight), "--epochs", "2"])
    assert code == 0, logged
    assert "RMSprop learning rate 0.0001" in printed
    assert json.loads((straight / "settings.json").read_text())["optimizer"] == "rmsprop"
    assert type(mc.load_model(straight / "checkpoint.npz").optimizer).__name__ == "RMSprop"
    assert run([*common, "--out", str(resumed), "--epochs", "1"])[0] == 0
    with pytest.raises(SystemExit), redirect_stderr(io.StringIO()) as logged:
        train_xray.main([*common[:-2], "--out", str(resumed), "--epochs", "2", "--resume"])  # no --optimizer: Adam
    assert "was trained with --optimizer rmsprop, not --optimizer adam" in logged.getvalue()
    assert run([*common, "--out", str(resumed), "--epochs", "2", "--resume"])[0] == 0
    for value, expected in zip(
        weights_of(resumed / "checkpoint.npz"), weights_of(straight / "checkpoint.npz"), strict=True
    ):
        np.testing.assert_array_equal(value, expected)


def test_a_split_file_gives_the_other_runs_split_and_a_wrong_one_is_refused_before_decoding(
    three_class_run, xray_mini_dir, cache, tmp_path
):
    three, _ = three_class_run
    source, follower = tmp_path / "source", tmp_path / "follower"
    common = ["--data", str(xray_mini_dir), "--epochs", "1", *TINY]
    assert run([*common, "--out", str(source), "--seed", "4"])[0] == 0  # another seed: another split
    code, printed, logged = run([*common, "--out", str(follower), "--split-file", str(source / "split.csv")])
    assert code == 0, logged
    assert (follower / "split.csv").read_text() == (source / "split.csv").read_text()
    assert f"--split-file {source / 'split.csv'}, of the 48 training images" in " ".join(printed.split())
    # A 3-class run's split.csv numbers the classes otherwise: refused, and nothing is made.
    elsewhere = tmp_path / "elsewhere"
    with pytest.raises(SystemExit), redirect_stderr(io.StringIO()) as logged:
        train_xray.main([*common, "--out", str(elsewhere), "--split-file", str(three / "split.csv")])
    assert "it was written for other --classes" in logged.getvalue() and not elsewhere.exists()


def test_balanced_class_weights_cover_the_three_classes(xray_mini_dir, cache, tmp_path):
    out = tmp_path / "weighted"
    argv = ["--data", str(xray_mini_dir), "--out", str(out), "--epochs", "1", "--limit", "24", *TINY]
    code, printed, logged = run([*argv, "--classes", "3", "--class-weight", "balanced"])
    assert code == 0, logged
    assert "class weights balanced" in printed
    assert mc.training.balanced_class_weight(np.array([0, 0, 1, 2])) == {0: 2 / 3, 1: 4 / 3, 2: 4 / 3}
