"""``--compare REV``: this working tree's minicnn beside commit REV's, in alternating child processes.

REV's files are exported with ``git archive`` into a temporary folder. Both sides are then
timed by *this* tree's benchmark (the child processes run this tree's
``bench_study_model.py``); only the minicnn differs: each child is told, with
``--minicnn-root``, whose minicnn to import (:func:`study_bench.minicnn_timing.import_minicnn`),
and builds the study's model with that minicnn. So a commit from before this package existed
(when the benchmark was one file) is compared just the same: of its files only ``minicnn/``
(and, before ``minicnn.models``, ``examples/train_xray.py``) are used.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from study_bench.child_process import benchmark_in_subprocess
from study_bench.common import REPO_ROOT
from study_bench.report import print_comparison, summarize


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
    each round's median, the spread (lowest to highest round), and the peak RSS; then how
    far apart the two sides' final weights and each step's loss are.
    """
    if args.rounds < 5:
        raise SystemExit(f"error: --rounds {args.rounds}: a comparison needs at least 5 rounds")
    args.no_breakdown = True  # whole steps only: REV's layers may not have the methods the breakdown times
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
    print_comparison(args, sides, rounds, difference)


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
