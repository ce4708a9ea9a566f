"""minicnn's row: ``train_on_batch`` and ``predict`` of the study's model, on NumPy or CuPy.

The minicnn measured is the one in ``--minicnn-root``: this checkout, or with ``--compare``
a commit exported by git (:mod:`study_bench.compare_revision`), whether or not a minicnn is
installed. So that the exported one is the one imported, this module imports minicnn only
inside :func:`import_minicnn`, after putting the root first on ``sys.path``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from study_bench.common import LEARNING_RATE, REPO_ROOT, make_batch, time_calls
from study_bench.layer_breakdown import minicnn_layer_breakdown


def import_minicnn(root: Path, must_come_from_root: bool) -> Any:
    """``import minicnn`` from ``root`` (put first on ``sys.path``); the module.

    With ``must_come_from_root`` (``--compare``), a minicnn found anywhere else (an installed
    copy that wins over ``sys.path``) is an error: the comparison would time the wrong code.
    """
    sys.path.insert(0, str(root))
    minicnn = importlib.import_module("minicnn")
    importlib.import_module("minicnn.backend")  # the parts run_minicnn uses must exist too
    minicnn.Sequential  # noqa: B018  (the model class as well)
    if must_come_from_root and not Path(minicnn.__file__).resolve().is_relative_to(root.resolve()):
        raise ImportError(f"minicnn was imported from {minicnn.__file__}, not from {root}")
    return minicnn


def build_minicnn_model(image_size: int, root: Path = REPO_ROOT) -> Any:
    """The study's model built by ``root``'s minicnn, compiled with Adam(1e-4) and binary cross-entropy.

    Since #21 the library builds it (``minicnn.models.study_cnn``); commits from before that
    build it in ``root``/examples/train_xray.py (``build_study_model``, the same layers and
    seeds: the same initial weights).
    """
    from minicnn import losses, optimizers

    try:
        from minicnn.models import study_cnn as build_study_model
    except ImportError:  # a commit from before minicnn.models
        sys.path.insert(0, str(root / "examples"))
        from train_xray import build_study_model

    model = build_study_model(image_size, seed=0)
    model.compile(
        optimizer=optimizers.Adam(learning_rate=LEARNING_RATE),
        loss=losses.BinaryCrossentropy(),
        metrics=["accuracy"],
    )
    return model


def minicnn_sync_function(backend_name: str) -> Callable[[], None]:
    """A function that waits for the GPU when the backend is CuPy, and does nothing on NumPy."""
    if backend_name == "cupy":
        import cupy

        return cupy.cuda.Device().synchronize
    return lambda: None


def cupy_versions() -> dict[str, Any]:
    """CuPy's version, the CUDA runtime it uses and the CUDA version of the driver ("?" where unknown)."""
    import cupy

    def cuda_version(get_version: Callable[[], int]) -> str:
        try:
            number = get_version()  # CUDA encodes 13.0 as 13000
        except Exception:  # e.g. no CUDA runtime library to ask: a missing version must not lose the timings
            return "?"
        return f"{number // 1000}.{number % 1000 // 10}"

    runtime = cupy.cuda.runtime
    return {
        "cupy": cupy.__version__,
        "cuda_runtime": cuda_version(runtime.runtimeGetVersion),
        "cuda_driver": cuda_version(runtime.driverGetVersion),
    }


def run_minicnn(args: argparse.Namespace, backend_name: str) -> dict:
    """Benchmark minicnn on the given backend ("numpy" or "cupy"): forward, training step, breakdown."""
    root = Path(args.minicnn_root or REPO_ROOT)
    try:
        minicnn = import_minicnn(root, must_come_from_root=args.minicnn_root is not None)
    except (ImportError, AttributeError) as error:
        return {"status": "not importable", "detail": f"{type(error).__name__}: {error}"}
    from minicnn import backend

    if backend_name == "cupy":
        if importlib.util.find_spec("cupy") is None:
            detail = "CuPy is not installed (pip install 'minicnn[gpu-cuda13]', or [gpu-cuda12]; see docs/gpu.md)"
            return {"status": "not installed", "detail": detail}
        try:
            backend.set_backend("cupy")
        except backend.BackendError as error:
            return {"status": "not available", "detail": str(error)}
    else:
        backend.set_backend("numpy")
    sync = minicnn_sync_function(backend_name)
    if hasattr(minicnn, "set_threads"):  # the threads of the memory-bound passes (since the parallel module)
        minicnn.set_threads(args.threads)

    x, y = make_batch(args.batch_size, args.image_size)
    model = build_minicnn_model(args.image_size, root)

    def forward() -> None:
        model.predict(x, batch_size=args.batch_size)

    step_losses: list[float] = []  # each step's loss: --compare checks that both sides compute the same numbers

    def train_step() -> None:
        step_losses.append(float(model.train_on_batch(x, y)["loss"]))  # returns {"loss": ..., "accuracy": ...}

    forward_times = time_calls(forward, args.warmup, args.steps, sync)
    train_times = time_calls(train_step, args.warmup, args.steps, sync)

    if args.weights_out:  # --compare: the weights after the same steps, for the parent to compare
        weights = [backend.to_numpy(value) for layer in model.layers for value in layer.params.values()]
        np.savez(args.weights_out, *weights)
    result = {
        "status": "ok",
        "version": getattr(minicnn, "__version__", "unknown"),
        "minicnn_file": minicnn.__file__,
        "params": int(model.count_params()),
        "forward_times_s": forward_times,
        "train_times_s": train_times,
        "train_losses": step_losses,
    }
    if not args.no_breakdown:  # after the weights are saved: the breakdown trains on
        result["breakdown"] = minicnn_layer_breakdown(model, x, y, args.warmup, args.steps, sync)
    if backend_name == "cupy":
        import cupy

        # CuPy keeps freed blocks in its pool, so its size at the end is close to the peak.
        result["gpu_pool_bytes"] = int(cupy.get_default_memory_pool().total_bytes())
        result["device"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        result.update(cupy_versions())
        result["version"] = f"minicnn {result['version']} / cupy {result['cupy']} (CUDA {result['cuda_runtime']})"
    return result
