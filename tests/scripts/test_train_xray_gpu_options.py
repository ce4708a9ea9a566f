"""train_xray's options for a GPU run (--augment-on, --dropout-masks, --tf32), as far as a CPU can check them.

On the CPU the defaults must leave the study's numbers exactly as they were: --augment-on auto is
the host path on NumPy, --dropout-masks host keeps the masks CPU and GPU share, and --tf32 is
refused without --backend cupy. What each option does on a GPU is measured by
benchmarks/gpu_check.sh --stage breakdown.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

import minicnn as mc
from minicnn.cli import train_xray

TINY = ["--image-size", "46", "--batch-size", "16", "--seed", "2", "--epochs", "1", "--limit", "24"]


def run(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of train_xray.main(argv)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = train_xray.main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One decoding cache for the module's runs (and none in the user's home)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINICNN_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def train(xray_mini_dir, out, *options: str) -> mc.Sequential:
    code, _, logged = run(["--data", str(xray_mini_dir), "--out", str(out), *TINY, *options])
    assert code == 0, logged
    return mc.load_model(out / "checkpoint.npz")


def test_augment_on_host_is_what_auto_does_on_numpy(xray_mini_dir, cache, tmp_path):
    auto = train(xray_mini_dir, tmp_path / "auto")
    host = train(xray_mini_dir, tmp_path / "host", "--augment-on", "host")
    for first, second in zip(auto.get_weights(), host.get_weights(), strict=True):
        np.testing.assert_array_equal(first, second)  # the same machine, the same arithmetic
    settings = json.loads((tmp_path / "host" / "settings.json").read_text())
    assert settings["augment_on"] == "host" and settings["dropout_masks"] == "host" and settings["tf32"] is False
    assert settings["computation"] == {"backend": "numpy", "dtype": "float32", "tf32": False}


def test_dropout_masks_on_the_device_are_kept_by_the_checkpoint(xray_mini_dir, cache, tmp_path):
    model = train(xray_mini_dir, tmp_path / "device", "--dropout-masks", "device")
    dropouts = [layer for layer in model.layers if isinstance(layer, mc.layers.Dropout)]
    assert dropouts and all(layer.masks_on_device for layer in dropouts)
    default = train(xray_mini_dir, tmp_path / "default")
    assert not any(layer.masks_on_device for layer in default.layers if isinstance(layer, mc.layers.Dropout))


def test_resume_refuses_other_dropout_masks(xray_mini_dir, cache, tmp_path):
    train(xray_mini_dir, tmp_path / "run")
    argv = ["--data", str(xray_mini_dir), "--out", str(tmp_path / "run"), *TINY, "--resume", "--epochs", "2"]
    code, _, logged = run([*argv, "--dropout-masks", "device"])
    assert code == 2 and "--dropout-masks" in logged


def test_tf32_needs_the_cupy_backend(xray_mini_dir, tmp_path):
    code, _, logged = run(["--data", str(xray_mini_dir), "--out", str(tmp_path / "out"), *TINY, "--tf32"])
    assert code == 2
    assert (
        "--tf32 (or MINICNN_TF32=1) changes CuPy's products only; it needs --backend cupy, got --backend numpy"
        in logged
    )
    assert not (tmp_path / "out").exists()  # refused before any folder is made
    assert mc.backend.tf32_enabled() is False
