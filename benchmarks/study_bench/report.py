"""The tables: frameworks side by side, minicnn's per-layer breakdown, and two commits side by side.

Each table is Markdown with padded columns: readable in a terminal, pasteable into a README.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

import numpy as np

from study_bench.common import study_param_count
from study_bench.machine import machine_description

# Other programs using more CPUs than this (on average) while a framework runs trigger a
# warning: its timings are then not comparable with a quiet run.
BUSY_MACHINE_CPUS = 0.25


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
            breakdown = r["breakdown"]
            print(f"\nPer-layer breakdown of {r['framework']}: model.train_on_batch with a stopwatch on every layer's")
            print(f"forward and backward, the loss and the update; median of {args.steps} repetitions", end="")
            print(f" after {args.warmup} warm-up;")
            print(f"upstream gradient: {breakdown['upstream_gradient']}.\n")
            print(breakdown_table(breakdown))
            if "train_on_batch_s" in breakdown:
                print(f"\nwhole train_on_batch calls with the stopwatches on: {breakdown['train_on_batch_s']:.4f} s")


def print_comparison(
    args: argparse.Namespace, sides: list[tuple[str, Any, str]], rounds: dict[str, list[dict]], difference: dict
) -> None:
    """Print (and with ``--json`` save) the ``--compare`` table: per side, the median of the rounds' medians.

    Parameters
    ----------
    args : argparse.Namespace
        The command line (steps, warm-up, rounds, threads, batch and image size, ``--json``).
    sides : list of (label, root, commit)
        This tree first, then the revision; the speed-up is taken against the revision.
    rounds : dict of label to list of dict
        Each side's results, one per round (with ``train_s``, ``forward_s``, ``peak_rss_bytes``).
    difference : dict
        How far apart the two sides' final weights and losses are (``weight_difference``).
    """
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
