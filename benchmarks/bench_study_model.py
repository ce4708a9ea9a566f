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
how long each layer's forward and backward take inside ``model.train_on_batch``, and
their share of the step.

Run it from the repository root::

    python benchmarks/bench_study_model.py                     # full size (slow on a laptop)
    python benchmarks/bench_study_model.py --image-size 64 --steps 2   # quick smoke run
    python benchmarks/bench_study_model.py --backend cupy      # on a GPU: minicnn on CuPy, PyTorch on CUDA

PyTorch and Keras are optional: a framework that cannot be imported is listed
as "not installed". They are never dependencies of minicnn. See
``benchmarks/README.md`` for how to read the numbers.

This file is the command: its options and ``main``. What it runs lives in the package
``benchmarks/study_bench/`` (its ``__init__`` lists the modules): the shared model numbers
and stopwatch, one module per framework, the per-layer breakdown, the child processes,
``--compare`` and the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# The package beside this file (already on sys.path when run as a script; not when imported from elsewhere).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from study_bench.child_process import benchmark_in_subprocess, run_child  # noqa: E402
from study_bench.common import BACKEND_FRAMEWORKS, FRAMEWORKS, feature_map_side  # noqa: E402
from study_bench.compare_revision import compare_with_revision  # noqa: E402
from study_bench.machine import machine_description  # noqa: E402
from study_bench.report import print_report, summarize  # noqa: E402


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
