"""Time the chest X-ray study's CNN in minicnn, PyTorch and Keras on the same machine.

The study's network (17,018,497 parameters, float32, channels-last input)::

    Conv2D(32, 3x3, relu) -> MaxPool(2) -> Conv2D(64, 3x3, relu) -> MaxPool(2)
    -> Conv2D(128, 3x3, relu) -> MaxPool(2) -> Conv2D(128, 3x3, relu) -> MaxPool(2)
    -> Flatten -> Dropout(0.5) -> Dense(512, relu) -> Dense(1, sigmoid)

trained with binary cross-entropy and Adam (learning rate 1e-4) on batches of 32
grey 300x300 images.

For every framework the script measures, on one fixed random batch:

* the **training step**: forward + loss + backward + Adam update;
* the **forward pass** alone (inference, dropout off);
* the **peak resident memory** of the process.

Each framework runs in its own child process (this script calls itself with
``--framework NAME``), so that the peak memory of one framework is not mixed
with another's and so that every child starts with the same thread settings.
After the comparison table the script prints a per-layer breakdown of minicnn:
how long each layer's forward and backward take, and their share of the total.

Run it from the repository root::

    python benchmarks/bench_study_model.py                     # full size (slow on a laptop)
    python benchmarks/bench_study_model.py --image-size 64 --steps 2   # quick smoke run
    python benchmarks/bench_study_model.py --backend cupy      # on a GPU: minicnn on CuPy, PyTorch on CUDA

PyTorch and Keras are optional: a framework that cannot be imported is listed
as "not installed". They are never dependencies of minicnn. See
``benchmarks/README.md`` for how to read the numbers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

try:
    import resource  # Unix only: peak memory and the CPU time of child processes
except ImportError:  # Windows: those two columns stay empty
    resource = None

REPO_ROOT = Path(__file__).resolve().parent.parent

# The order of rows in the table. Ratios are taken against "minicnn" (NumPy), or against
# "minicnn-cupy" when only the GPU rows ran.
FRAMEWORKS = ("minicnn", "minicnn-cupy", "torch", "torch-cuda", "keras")

# --backend NAME runs minicnn on that backend beside PyTorch on the matching device.
BACKEND_FRAMEWORKS = {"numpy": ("minicnn", "torch"), "cupy": ("minicnn-cupy", "torch-cuda")}

# Environment variables read by the BLAS / OpenMP libraries that NumPy, PyTorch and
# TensorFlow link against. They must be set *before* those libraries load, which is
# one more reason every framework runs in a fresh child process.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)

# What a child prints in front of its one line of JSON, so the parent can find it
# among whatever else the framework writes to stdout.
RESULT_MARKER = "BENCH_RESULT_JSON: "

# Other programs using more CPUs than this (on average) while a framework runs trigger a
# warning: its timings are then not comparable with a quiet run.
BUSY_MACHINE_CPUS = 0.25

LEARNING_RATE = 1e-4
DROPOUT_RATE = 0.5


# --------------------------------------------------------------------------- shared helpers


def feature_map_side(image_size: int) -> int:
    """Side of the last feature map: four times (3x3 valid conv, then 2x2 pool)."""
    side = image_size
    for _ in range(4):
        side = (side - 2) // 2
    if side < 1:
        raise ValueError(f"--image-size {image_size} is too small for four conv+pool blocks (use >= 46)")
    return side


def study_param_count(image_size: int) -> int:
    """Number of trainable parameters of the study's model for a square grey input."""
    convs = [(1, 32), (32, 64), (64, 128), (128, 128)]
    count = sum(3 * 3 * c_in * c_out + c_out for c_in, c_out in convs)
    flat = feature_map_side(image_size) ** 2 * 128
    count += flat * 512 + 512  # Dense(512)
    count += 512 * 1 + 1  # Dense(1)
    return count


def make_batch(batch_size: int, image_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The fixed random batch every framework trains on: x in [0, 1), y in {0, 1}, float32."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch_size, image_size, image_size, 1), dtype=np.float32)
    y = rng.integers(0, 2, size=(batch_size,)).astype(np.float32)
    return x, y


def time_calls(fn: Callable[[], Any], warmup: int, steps: int, sync: Callable[[], None]) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``steps`` times timed; return the timings in seconds.

    ``sync`` waits until queued device work is finished (a no-op on the CPU). Without
    it a GPU call returns as soon as the work is *queued* and the clock would lie.
    """
    for _ in range(warmup):
        fn()
    sync()
    timings = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        sync()
        timings.append(time.perf_counter() - start)
    return timings


def peak_rss_bytes() -> int | None:
    """Peak resident memory of this process so far, in bytes (None where unknown)."""
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kibibytes, macOS reports bytes.
    return peak if sys.platform == "darwin" else peak * 1024


def blas_info() -> list[dict[str, Any]]:
    """Which BLAS libraries are loaded and with how many threads (needs threadpoolctl; else empty)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return _numpy_build_blas()
    keys = ("internal_api", "version", "num_threads", "architecture", "threading_layer")
    return [{key: info.get(key) for key in keys} for info in threadpool_info()]


def _numpy_build_blas() -> list[dict[str, Any]]:
    """Without threadpoolctl: the BLAS NumPy was built against (thread count unknown)."""
    try:
        config = np.show_config(mode="dicts")  # NumPy >= 1.26
        blas = config["Build Dependencies"]["blas"]
    except Exception:  # older NumPy or an unexpected layout: better no answer than a crash
        return []
    return [{"internal_api": blas.get("name"), "version": blas.get("version"), "num_threads": "?"}]


# --------------------------------------------------------------------------- minicnn


def _minicnn_sync_function(backend_name: str) -> Callable[[], None]:
    """A function that waits for the GPU when the backend is CuPy, and does nothing on NumPy."""
    if backend_name == "cupy":
        import cupy

        return cupy.cuda.Device().synchronize
    return lambda: None


def _cupy_versions() -> dict[str, Any]:
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


def build_minicnn_model(image_size: int, root: Path = REPO_ROOT) -> Any:
    """The study's model as ``root``/examples/train_xray.py builds it, compiled with Adam(1e-4) and BCE."""
    from minicnn import losses, optimizers

    sys.path.insert(0, str(root / "examples"))
    from train_xray import build_study_model

    model = build_study_model(image_size, seed=0)
    model.compile(
        optimizer=optimizers.Adam(learning_rate=LEARNING_RATE),
        loss=losses.BinaryCrossentropy(),
        metrics=["accuracy"],
    )
    return model


def minicnn_layer_breakdown(model: Any, x_dev: Any, y_dev: Any, warmup: int, steps: int, sync) -> dict:
    """Median forward and backward time of every layer of ``model`` on one batch, in the model's fast mode.

    Each repetition does what ``model.train_on_batch`` does, one call at a time: inside
    ``model_owns_memory`` (kept buffers, in-place ReLU gradients, no dL/dx for the first
    layer), every layer's ``forward(training=True)``, the loss, the fused sigmoid + BCE
    gradient into the last layer's ``backward_from_dz``, every other layer's ``backward``
    in reverse order, then the optimizer update. Each call is timed on its own (with a
    device synchronisation around it on the GPU), so the rows add up to one training step.

    The hooks are called by name, with no fallback: if one is renamed, this fails loudly
    instead of quietly timing something else.
    """
    from minicnn.layers.base import model_owns_memory

    layer_list = list(model.layers)
    forward_times: list[list[float]] = [[] for _ in layer_list]
    backward_times: list[list[float]] = [[] for _ in layer_list]
    loss_times: list[float] = []
    update_times: list[float] = []
    if not model.fused_sigmoid:
        raise RuntimeError(
            "the breakdown follows the study's fused sigmoid + BCE start of backward; this model has none"
        )

    def timed(into: list[float], record: bool, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Return ``fn(*args, **kwargs)``; append its duration to ``into`` when ``record`` is true."""
        sync()
        start = time.perf_counter()
        value = fn(*args, **kwargs)
        sync()
        if record:
            into.append(time.perf_counter() - start)
        return value

    def loss_and_gradient(output: Any, y_col: Any) -> Any:
        model.loss.forward(output, y_col)
        return model.loss.gradient_before_sigmoid()  # dL/dz = (p - y) / N

    with model_owns_memory(layer_list):
        for repetition in range(warmup + steps):
            record = repetition >= warmup  # the first `warmup` repetitions are not timed
            activation = x_dev
            for index, layer in enumerate(layer_list):
                activation = timed(forward_times[index], record, layer.forward, activation, training=True)
            y_col = y_dev.reshape(activation.shape).astype(activation.dtype)
            gradient = timed(loss_times, record, loss_and_gradient, activation, y_col)
            gradient = timed(backward_times[-1], record, layer_list[-1].backward_from_dz, gradient)
            for index in reversed(range(len(layer_list) - 1)):
                gradient = timed(backward_times[index], record, layer_list[index].backward, gradient)
            timed(update_times, record, model.optimizer.step, model.parameters())

    rows = [
        {
            "layer": layer.describe() if hasattr(layer, "describe") else type(layer).__name__,
            "output_shape": list(getattr(layer, "output_shape", None) or []),
            "forward_s": statistics.median(forward_times[index]),
            "backward_s": statistics.median(backward_times[index]),
        }
        for index, layer in enumerate(layer_list)
    ]
    # Not layers, but part of every training step: shown so the rows add up to one step.
    rows.append({"layer": "loss (BCE + its gradient)", "forward_s": statistics.median(loss_times), "backward_s": None})
    name = type(model.optimizer).__name__
    update_s = statistics.median(update_times)
    rows.append({"layer": f"optimizer update ({name})", "forward_s": None, "backward_s": None, "other_s": update_s})
    return {"rows": rows, "upstream_gradient": "fused sigmoid + BCE (p - y) / N, in the model's fast mode"}


def run_minicnn(args: argparse.Namespace, backend_name: str) -> dict:
    """Benchmark minicnn on the given backend ("numpy" or "cupy").

    The minicnn measured is the one in ``args.minicnn_root``: this checkout, or with
    ``--compare`` an exported commit (whether or not a minicnn is installed).
    """
    root = Path(args.minicnn_root or REPO_ROOT)
    sys.path.insert(0, str(root))
    try:
        import minicnn
        from minicnn import backend, layers, losses, optimizers  # noqa: F401  (checks they exist)

        minicnn.Sequential  # noqa: B018  (the model class must exist too)
    except (ImportError, AttributeError) as error:
        return {"status": "not importable", "detail": f"{type(error).__name__}: {error}"}

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
    sync = _minicnn_sync_function(backend_name)
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
    if not args.no_breakdown:
        x_dev = backend.to_device(x)
        y_dev = backend.to_device(y)
        result["breakdown"] = minicnn_layer_breakdown(model, x_dev, y_dev, args.warmup, args.steps, sync)
    if backend_name == "cupy":
        import cupy

        # CuPy keeps freed blocks in its pool, so its size at the end is close to the peak.
        result["gpu_pool_bytes"] = int(cupy.get_default_memory_pool().total_bytes())
        result["device"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        result.update(_cupy_versions())
        result["version"] = f"minicnn {result['version']} / cupy {result['cupy']} (CUDA {result['cuda_runtime']})"
    return result


# --------------------------------------------------------------------------- PyTorch


def run_torch(args: argparse.Namespace, device: str = "cpu") -> dict:
    """Benchmark the same model in PyTorch on ``device`` ("cpu" or "cuda"), channels-last memory format."""
    try:
        import torch
        from torch import nn
    except ImportError as error:
        return {"status": "not installed", "detail": str(error)}
    if device == "cuda" and not torch.cuda.is_available():
        return {"status": "not available", "detail": f"torch {torch.__version__} sees no CUDA device"}

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    flat = feature_map_side(args.image_size) ** 2 * 128
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(128, 128, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(DROPOUT_RATE),
        nn.Linear(flat, 512), nn.ReLU(),
        nn.Linear(512, 1), nn.Sigmoid(),
    )  # fmt: skip
    # channels_last stores NCHW tensors as NHWC in memory, the layout Keras and minicnn use.
    model = model.to(device=device, memory_format=torch.channels_last)
    loss_fn = nn.BCELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)

    x_np, y_np = make_batch(args.batch_size, args.image_size)
    # (N, H, W, 1) -> logical (N, 1, H, W), stored channels-last.
    x_host = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    y_host = torch.from_numpy(y_np).reshape(-1, 1)

    def batch() -> tuple[Any, Any]:
        """The batch on ``device``. On the GPU the copy from the host is part of every step, as it is
        for minicnn-cupy (and in real training); on the CPU there is nothing to copy."""
        if device == "cpu":
            return x_host, y_host
        return x_host.to(device), y_host.to(device)

    def forward() -> None:
        model.eval()  # dropout off, as in inference
        with torch.no_grad():
            model(batch()[0])

    def train_step() -> None:
        x, y = batch()
        model.train()
        optimizer.zero_grad(set_to_none=True)
        output = model(x)
        loss = loss_fn(output, y)
        loss.backward()
        optimizer.step()
        # The accuracy metric, as the Keras and minicnn steps compute it too.
        ((output > 0.5).float() == y).float().mean().item()

    # CUDA calls return once the work is queued: wait for the GPU before reading the clock.
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    forward_times = time_calls(forward, args.warmup, args.steps, sync)
    train_times = time_calls(train_step, args.warmup, args.steps, sync)
    result = {
        "status": "ok",
        "version": torch.__version__,
        "params": sum(p.numel() for p in model.parameters()),
        "threads": torch.get_num_threads(),
        "forward_times_s": forward_times,
        "train_times_s": train_times,
    }
    if device == "cuda":
        result["device"] = torch.cuda.get_device_name(0)
        result["gpu_peak_bytes"] = int(torch.cuda.max_memory_allocated())
        result["cuda_runtime"] = torch.version.cuda
        # PyTorch's defaults, kept as they are (what a PyTorch user gets) and recorded: cuDNN may run the
        # convolutions in TF32 (10-bit mantissa) where minicnn-cupy's cuBLAS products are plain float32.
        result["settings"] = {
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
        }
    return result


# --------------------------------------------------------------------------- Keras


def run_keras(args: argparse.Namespace) -> dict:
    """Benchmark the same model in Keras 3 on TensorFlow, CPU only."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # this row is the CPU reference, even on a GPU machine
    try:
        import keras
        import tensorflow as tf
    except ImportError as error:
        return {"status": "not installed", "detail": str(error)}

    # Must happen before TensorFlow runs its first operation.
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(0)

    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input(shape=(args.image_size, args.image_size, 1)),
            layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(128, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(128, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(DROPOUT_RATE),
            layers.Dense(512, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )  # fmt: skip
    # Keras' defaults otherwise (jit_compile="auto"): what the study's code gets.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )

    x, y = make_batch(args.batch_size, args.image_size)

    def forward() -> None:
        model.predict_on_batch(x)

    def train_step() -> None:
        model.train_on_batch(x, y)

    forward_times = time_calls(forward, args.warmup, args.steps, lambda: None)
    train_times = time_calls(train_step, args.warmup, args.steps, lambda: None)
    return {
        "status": "ok",
        "version": f"keras {keras.__version__} / tensorflow {tf.__version__}",
        "params": int(model.count_params()),
        "forward_times_s": forward_times,
        "train_times_s": train_times,
    }


# --------------------------------------------------------------------------- child process


def run_child(args: argparse.Namespace) -> None:
    """Benchmark one framework in this process and print the result as one marked JSON line."""
    runners: dict[str, Callable[[], dict]] = {
        "minicnn": lambda: run_minicnn(args, "numpy"),
        "minicnn-cupy": lambda: run_minicnn(args, "cupy"),
        "torch": lambda: run_torch(args),
        "torch-cuda": lambda: run_torch(args, device="cuda"),
        "keras": lambda: run_keras(args),
    }
    try:
        result = runners[args.framework]()
    except Exception as error:  # report the failure as a row instead of losing the whole run
        import traceback

        traceback.print_exc()
        result = {"status": "error", "detail": f"{type(error).__name__}: {error}"}
    result["framework"] = args.framework
    result["peak_rss_bytes"] = peak_rss_bytes()
    result["blas"] = blas_info()
    print(RESULT_MARKER + json.dumps(result), flush=True)


def busy_cpu_seconds() -> float | None:
    """CPU seconds spent by *all* processes since boot (Linux ``/proc/stat``); None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait is busy.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU seconds used so far by the child processes this script has waited for."""
    if resource is None:
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child_environment(threads: int) -> dict[str, str]:
    """A copy of this environment with every thread-count variable set to ``threads``."""
    env = dict(os.environ)
    for name in THREAD_ENV_VARS:
        env[name] = str(threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter short
    return env


def benchmark_in_subprocess(framework: str, args: argparse.Namespace) -> dict:
    """Run this script again with ``--framework`` and read back the JSON line it prints."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--framework", framework,
        "--threads", str(args.threads),
        "--steps", str(args.steps),
        "--warmup", str(args.warmup),
        "--batch-size", str(args.batch_size),
        "--image-size", str(args.image_size),
    ]  # fmt: skip
    if args.no_breakdown:
        command.append("--no-breakdown")
    if args.minicnn_root:
        command += ["--minicnn-root", str(args.minicnn_root)]
    if args.weights_out:
        command += ["--weights-out", str(args.weights_out)]
    print(f"running {framework} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    # To notice other programs competing for the CPU: all busy CPU time minus our child's.
    busy_before, children_before = busy_cpu_seconds(), children_cpu_seconds()
    try:
        completed = subprocess.run(
            command,
            env=child_environment(args.threads),
            capture_output=True,
            text=True,
            timeout=args.timeout,
        )
    except subprocess.TimeoutExpired:
        return {"framework": framework, "status": "timeout", "detail": f"over {args.timeout} s"}
    elapsed = time.perf_counter() - started
    busy_after, children_after = busy_cpu_seconds(), children_cpu_seconds()
    other_load = None
    if busy_before is not None and busy_after is not None:
        other_cpu = (busy_after - busy_before) - (children_after - children_before)
        other_load = max(0.0, other_cpu / elapsed)  # average number of CPUs busy with other work
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            result = json.loads(line[len(RESULT_MARKER) :])
            result["wall_s"] = elapsed
            result["other_cpu_load"] = other_load
            if result["status"] == "error" or args.verbose:
                sys.stderr.write(completed.stderr[-4000:])
            return result
    # The child died before printing a result (crash, out of memory, ...).
    sys.stderr.write(completed.stderr[-4000:])
    return {
        "framework": framework,
        "status": "error",
        "detail": f"child exited with code {completed.returncode} and no result",
    }


# --------------------------------------------------------------------------- --compare REV


def describe_tree(root: Path) -> str:
    """The commit a tree holds: its 40-hex HEAD, plus " + uncommitted changes" when it has any."""
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
    return commit.stdout.strip() + (" + uncommitted changes" if changed else "")


def export_revision(revision: str, into: Path) -> str:
    """Write the files of ``revision`` into ``into`` (git archive); return its 40-hex commit."""
    commit = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--verify", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if commit.returncode != 0:
        raise SystemExit(f"error: --compare {revision}: not a commit of {REPO_ROOT} ({commit.stderr.strip()})")
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", commit.stdout.strip()], capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return commit.stdout.strip()


def compare_with_revision(args: argparse.Namespace) -> None:
    """Time this working tree's minicnn and REV's side by side, in alternating processes.

    Each round runs one child process per side (in alternating order, so that a slow
    spell of the machine hits both), each timing ``--steps`` training steps and forward
    passes after ``--warmup``. The table gives, per side, the median over the rounds of
    each round's median, the spread (lowest to highest round), and the peak RSS.
    """
    import tempfile

    if args.rounds < 5:
        raise SystemExit(f"error: --rounds {args.rounds}: a comparison needs at least 5 rounds")
    args.no_breakdown = True  # the two sides may not share the layer hooks the breakdown calls
    with tempfile.TemporaryDirectory(prefix="minicnn-compare-") as folder:
        sides = [("this tree", REPO_ROOT, describe_tree(REPO_ROOT)),
                 (args.compare, Path(folder), export_revision(args.compare, Path(folder)))]  # fmt: skip
        rounds: dict[str, list[dict]] = {label: [] for label, _, _ in sides}
        weight_files = {label: Path(folder) / f"weights-{index}.npz" for index, (label, _, _) in enumerate(sides)}
        for round_index in range(args.rounds):
            order = sides if round_index % 2 == 0 else sides[::-1]
            for label, root, _ in order:
                args.minicnn_root, args.weights_out = root, weight_files[label]
                result = summarize(benchmark_in_subprocess("minicnn", args), args.batch_size)
                if result.get("status") != "ok":
                    raise SystemExit(f"error: {label}: {result.get('status')}: {result.get('detail')}")
                rounds[label].append(result)
        args.minicnn_root = args.weights_out = None
        difference = weight_difference(*(weight_files[label] for label, _, _ in sides))
        losses_a, losses_b = (rounds[label][-1]["train_losses"] for label, _, _ in sides)
        difference["loss_max_relative"] = max(abs(a - b) / abs(b) for a, b in zip(losses_a, losses_b, strict=True))

    machine = machine_description(args.threads)
    print(
        f"\nminicnn side by side: {args.rounds} alternating rounds of {args.steps} steps after {args.warmup} "
        f"warm-up, batch {args.batch_size}, {args.image_size}x{args.image_size}x1, {args.threads} threads"
    )
    print(f"machine: {machine['processor']}; vector extensions: {machine['vector_extensions']}")
    summary = []
    for label, _, commit in sides:
        train = [r["train_s"] for r in rounds[label]]
        forward = [r["forward_s"] for r in rounds[label]]
        peak = [r["peak_rss_bytes"] for r in rounds[label] if r.get("peak_rss_bytes")]
        summary.append({
            "side": label, "commit": commit, "minicnn_file": rounds[label][0]["minicnn_file"],
            "train_s": statistics.median(train), "train_min_s": min(train), "train_max_s": max(train),
            "forward_s": statistics.median(forward), "forward_min_s": min(forward), "forward_max_s": max(forward),
            "peak_rss_bytes": statistics.median(peak) if peak else None, "rounds": rounds[label],
        })  # fmt: skip
        print(f"  {label}: commit {commit}\n    minicnn.__file__ = {rounds[label][0]['minicnn_file']}")
    reference = summary[1]["train_s"]
    headers = ["minicnn", "train step (median)", "spread", "forward", "spread", "peak RSS", "speed-up"]
    rows = [
        [
            entry["side"],
            f"{entry['train_s']:.3f} s",
            f"{entry['train_min_s']:.3f}-{entry['train_max_s']:.3f}",
            f"{entry['forward_s']:.3f} s",
            f"{entry['forward_min_s']:.3f}-{entry['forward_max_s']:.3f}",
            f"{entry['peak_rss_bytes'] / 1e9:.2f} GB" if entry["peak_rss_bytes"] else "-",
            f"{reference / entry['train_s']:.2f}x",
        ]
        for entry in summary
    ]
    print(format_table(headers, rows))
    trained = f"after {args.warmup + args.steps} training steps on the same batch from the same initial weights"
    if difference["bit_for_bit"]:
        print(f"weights {trained}: equal bit for bit")
    else:
        print(
            f"weights {trained}: largest difference {difference['max_abs']:.3g} "
            f"({difference['max_relative']:.3g} of the largest weight of its array, in {difference['array']})"
        )
    print(
        f"loss of each step: largest relative difference {difference['loss_max_relative']:.3g} "
        f"(float32 resolution: {np.finfo(np.float32).eps:.3g})"
    )
    if args.json:
        payload = {"settings": {k: str(v) for k, v in vars(args).items()}, "machine": machine, "compare": summary}
        payload["weight_difference"] = difference
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"\nresults saved to {args.json}")


def weight_difference(path_a: Path, path_b: Path) -> dict[str, Any]:
    """How far apart two sides' final weights are: bit for bit, or the largest difference.

    ``max_relative`` divides each array's largest absolute difference by the largest
    absolute weight of that array, so a kernel and a bias are judged on their own scale.
    """
    with np.load(path_a) as a, np.load(path_b) as b:
        if a.files != b.files or any(a[key].shape != b[key].shape for key in a.files):
            raise SystemExit("error: --compare: the two sides' models have different weights")
        worst = {"bit_for_bit": True, "max_abs": 0.0, "max_relative": 0.0, "array": None}
        for index, key in enumerate(a.files):
            if np.array_equal(a[key], b[key]):
                continue
            worst["bit_for_bit"] = False
            gap = float(np.max(np.abs(a[key].astype(np.float64) - b[key])))
            relative = gap / max(float(np.max(np.abs(a[key]))), np.finfo(np.float32).tiny)
            if relative > worst["max_relative"]:
                worst.update(max_abs=gap, max_relative=relative, array=f"weight array {index} ({a[key].shape})")
    return worst


# --------------------------------------------------------------------------- report


def summarize(result: dict, batch_size: int) -> dict:
    """Add the medians and the training throughput to one framework's result."""
    if result.get("status") == "ok":
        result["train_s"] = statistics.median(result["train_times_s"])
        result["forward_s"] = statistics.median(result["forward_times_s"])
        result["train_images_per_s"] = batch_size / result["train_s"]
    return result


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table with padded columns (readable in a terminal, pasteable into a README)."""
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(headers), separator, *(line(row) for row in rows)])


def reference_result(results: list[dict]) -> dict | None:
    """The row every ratio is taken against: minicnn on NumPy, else minicnn on CuPy (a GPU-only run)."""
    for name in ("minicnn", "minicnn-cupy"):
        found = next((r for r in results if r["framework"] == name and r["status"] == "ok"), None)
        if found is not None:
            return found
    return None


def comparison_table(results: list[dict]) -> str:
    """The main table: one row per framework, ratios taken against minicnn (see reference_result)."""
    reference = reference_result(results)
    reference_name = reference["framework"] if reference else "minicnn"
    headers = [
        "framework",
        "train step s",
        "forward s",
        "images/s (train)",
        "peak RSS GB",
        f"train time / {reference_name}",
        f"forward time / {reference_name}",
    ]
    rows = []
    for r in results:
        if r["status"] != "ok":
            detail = r["status"]
            rows.append([r["framework"], detail, "-", "-", "-", "-", "-"])
            continue
        if reference is not None:
            train_ratio = f"{r['train_s'] / reference['train_s']:.2f}x"
            forward_ratio = f"{r['forward_s'] / reference['forward_s']:.2f}x"
        else:
            train_ratio = forward_ratio = "-"
        rows.append(
            [
                r["framework"],
                f"{r['train_s']:.3f}",
                f"{r['forward_s']:.3f}",
                f"{r['train_images_per_s']:.1f}",
                f"{r['peak_rss_bytes'] / 1e9:.2f}" if r.get("peak_rss_bytes") else "-",
                train_ratio,
                forward_ratio,
            ]
        )
    return format_table(headers, rows)


def breakdown_table(breakdown: dict) -> str:
    """Per-layer table: forward and backward seconds of each layer and its share of the total."""

    def seconds(row: dict) -> float:
        return sum(row.get(key) or 0.0 for key in ("forward_s", "backward_s", "other_s"))

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    rows_in = breakdown["rows"]
    total = sum(seconds(row) for row in rows_in)
    headers = ["layer", "output shape", "forward s", "backward s", "total s", "share of step"]
    rows = [
        [
            row["layer"],
            "x".join(str(size) for size in row["output_shape"]) if row.get("output_shape") else "",
            cell(row.get("forward_s")),
            cell(row.get("backward_s")),
            f"{seconds(row):.4f}",
            f"{100 * seconds(row) / total:.1f}%" if total > 0 else "-",
        ]
        for row in rows_in
    ]
    forward_total = sum(row.get("forward_s") or 0.0 for row in rows_in)
    backward_total = sum(row.get("backward_s") or 0.0 for row in rows_in)
    rows.append(["sum", "", f"{forward_total:.4f}", f"{backward_total:.4f}", f"{total:.4f}", "100.0%"])
    return format_table(headers, rows)


def machine_description(threads: int) -> dict:
    """Facts about the machine and settings that the numbers depend on."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "vector_extensions": _vector_extensions(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "numpy": np.__version__,
    }


def _vector_extensions() -> str:
    """The SIMD extensions GEMMs and NumPy loops can use (AVX2, AVX-512 ...), from /proc/cpuinfo on Linux."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    wanted = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512F", "avx512bw": "AVX-512BW", "amx_tile": "AMX"}
    return ", ".join(name for flag, name in wanted.items() if flag in flags) or "none of AVX2/AVX-512"


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo on Linux, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_report(results: list[dict], machine: dict, args: argparse.Namespace) -> None:
    """Print the settings, the comparison table, notes on skipped rows and the breakdowns."""
    print(
        f"\nStudy model, batch {args.batch_size}, input {args.image_size}x{args.image_size}x1 float32, "
        f"{study_param_count(args.image_size):,} parameters; "
        f"median of {args.steps} steps after {args.warmup} warm-up steps; {args.threads} thread(s)."
    )
    print(
        f"Machine: {machine['processor']}, {machine['cpu_count']} CPUs, "
        f"Python {machine['python']}, NumPy {machine['numpy']}\n"
    )
    print(comparison_table(results))
    print()
    for r in results:
        if r["status"] == "ok":
            blas = ", ".join(
                f"{b['internal_api']} {b['version'] or ''}".strip() + f" ({b['num_threads']} threads)"
                for b in r["blas"]
            )
            extra = f"; GPU: {r['device']}" if "device" in r else ""
            gpu_bytes = r.get("gpu_pool_bytes", r.get("gpu_peak_bytes"))
            if gpu_bytes is not None:
                extra += f", {gpu_bytes / 1e9:.2f} GB of GPU memory"
            print(f"  {r['framework']}: {r['version']}; BLAS: {blas or 'unknown'}{extra}")
            other = r.get("other_cpu_load")
            if other is not None and other > BUSY_MACHINE_CPUS:
                print(
                    f"    WARNING: other programs kept {other:.2f} CPUs busy on average during this run; "
                    "its timings are slower than on a quiet machine"
                )
        else:
            print(f"  {r['framework']}: {r['status']} ({r.get('detail', '')})")

    for r in results:
        if r["status"] == "ok" and "breakdown" in r:
            print(f"\nPer-layer breakdown of {r['framework']}: forward(training=True) of every layer, the loss,")
            print(f"backward in reverse order, the update; median of {args.steps} repetitions", end="")
            print(f" after {args.warmup} warm-up;")
            print(f"upstream gradient: {r['breakdown']['upstream_gradient']}.\n")
            print(breakdown_table(r["breakdown"]))


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads for every framework")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (the median is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=300, help="side of the square grey input")
    parser.add_argument(
        "--frameworks",
        nargs="+",
        choices=FRAMEWORKS,
        help="which frameworks to run (default: all; missing ones are reported as not installed)",
    )
    parser.add_argument(
        "--backend",
        choices=sorted(BACKEND_FRAMEWORKS),
        help="instead of --frameworks: minicnn on this backend beside PyTorch on the matching device "
        "(numpy: minicnn and torch on the CPU; cupy: minicnn-cupy and torch-cuda on the GPU)",
    )
    parser.add_argument("--json", type=Path, help="also save all results to this JSON file")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the per-layer breakdown of minicnn")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per framework")
    parser.add_argument("--verbose", action="store_true", help="show each child's stderr")
    parser.add_argument(
        "--compare",
        metavar="REV",
        help="time minicnn at git revision REV beside this working tree (train step and forward, NumPy)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="with --compare: alternating rounds (at least 5)")
    parser.add_argument("--framework", choices=FRAMEWORKS, help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--minicnn-root", type=Path, help=argparse.SUPPRESS)  # child mode: whose minicnn
    parser.add_argument("--weights-out", type=Path, help=argparse.SUPPRESS)  # child mode: save the final weights
    args = parser.parse_args(argv)
    if args.backend and args.frameworks:
        parser.error("give --backend or --frameworks, not both")
    if args.framework is None:  # the parent: settle which rows to run
        args.frameworks = list(BACKEND_FRAMEWORKS[args.backend] if args.backend else args.frameworks or FRAMEWORKS)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1 or args.threads < 1:
        parser.error("--steps, --batch-size and --threads must be >= 1 and --warmup >= 0")
    try:
        feature_map_side(args.image_size)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> None:
    """Benchmark every requested framework in its own process and print the report."""
    args = parse_args(argv)
    if args.framework:
        run_child(args)
        return
    if args.compare:
        compare_with_revision(args)
        return

    results = []
    for framework in FRAMEWORKS:
        if framework in args.frameworks:
            results.append(summarize(benchmark_in_subprocess(framework, args), args.batch_size))
    machine = machine_description(args.threads)
    print_report(results, machine, args)

    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ("json", "framework")}
        payload = {"settings": settings, "machine": machine, "results": results}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"\nresults saved to {args.json}")


if __name__ == "__main__":
    main()
