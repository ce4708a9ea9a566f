"""Each framework in a fresh process of its own: the parent starts the script again with ``--framework NAME``.

So the peak memory (``ru_maxrss``) of a row belongs to that framework alone, libraries loaded by
one framework cannot slow down or speed up another, and every child starts with the same thread
settings (which BLAS and OpenMP read when they load, so they must be set before the child starts).
The child prints its result as one marked line of JSON; the parent reads it back.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

from study_bench.common import SCRIPT
from study_bench.keras_timing import run_keras
from study_bench.machine import blas_info, busy_cpu_seconds, children_cpu_seconds, peak_rss_bytes
from study_bench.minicnn_timing import run_minicnn
from study_bench.torch_timing import run_torch

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


def child_environment(threads: int) -> dict[str, str]:
    """A copy of this environment with every thread-count variable set to ``threads``."""
    env = dict(os.environ)
    for name in THREAD_ENV_VARS:
        env[name] = str(threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter short
    return env


def benchmark_in_subprocess(framework: str, args: argparse.Namespace) -> dict:
    """Run ``bench_study_model.py`` again with ``--framework`` and read back the JSON line it prints."""
    command = [
        sys.executable,
        str(SCRIPT),
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
