"""Where the time of the study's four Conv2D layers goes, part by part, on NumPy or CuPy.

``bench_study_model.py`` times whole layers. This script opens the convolutions up and
times the parts of one forward and one backward of each, at the study's shapes (batch 32,
300x300 grey input):

* ``forward``: the whole ``Conv2D.forward`` (im2col, the product, the bias, the ReLU);
* ``backward``: the whole ``Conv2D.backward_from_dz``, as a model calls it (the first layer
  computes no dL/dx);
* ``im2col``: only rebuilding cols, chunk by chunk, as backward does;
* ``kernel gradient``: im2col plus ``cols.T @ dz`` for every chunk, and the same sum computed
  as one batched product per image (``(n, K, P) @ (n, P, F)``, then added over the images);
* ``dL/dx``: ``col2im_matmul`` for every chunk (not for the first layer);
* the bias gradient, three ways: ``einsum("mf->f")``, ``sum(axis=0)`` and ``ones @ dz``.

It then times the study's whole training step (``train_on_batch``) with the two
backend-dependent choices of ``minicnn/layers/conv.py`` switched one at a time: the
im2col workspace bound (``workspace_limit``) and the bias gradient (``sum_over_pixels``).
The switches replace those two functions for the length of one measurement, so each
row of that table differs from the next in exactly one choice.

    python benchmarks/conv_parts.py                        # NumPy, the study's size (slow on 2 cores)
    python benchmarks/conv_parts.py --backend cupy         # on a GPU
    python benchmarks/conv_parts.py --image-size 64 --batch-size 4 --repeats 1   # a smoke run

Every figure is the median of ``--repeats`` timed calls after one untimed call, with a
device synchronisation around each call on the GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from study_bench.common import make_batch, time_calls  # noqa: E402  (the same batch as the main benchmark)
from study_bench.minicnn_timing import build_minicnn_model  # noqa: E402  (and the same model)

from minicnn import backend  # noqa: E402
from minicnn.im2col import col2im_matmul  # noqa: E402
from minicnn.layers import conv  # noqa: E402
from minicnn.layers.base import model_owns_memory  # noqa: E402


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after one untimed call, waiting for the GPU."""
    return statistics.median(time_calls(fn, 1, repeats, backend.synchronize))


def conv_layer_parts(layer_and_pool: list[Any], x: Any, first: bool, repeats: int) -> dict[str, Any]:
    """Time the parts of one Conv2D's forward and backward on input ``x`` (N, H, W, C).

    The layer runs as in a model's training step: its buffers kept, its ReLU lent to the max
    pool after it (so the backward measured here starts at dL/dz), no dL/dx when it is first.
    """
    xp = backend.array_module()
    layer = layer_and_pool[0]
    batch = x.shape[0]
    row: dict[str, Any] = {
        "layer": layer.describe(),
        "output_shape": list(layer.output_shape),
        "chunks": -(-batch // layer.chunk_size(batch)),
        "workspace_MiB": layer.workspace_bytes(batch) / 2**20,
    }
    # model_owns_memory skips dL/dx of its first layer: a stand-in goes first unless this one is.
    owner = layer_and_pool if first else [conv.Conv2D(1, 1), *layer_and_pool]
    with model_owns_memory(owner):
        y = layer.forward(x, training=True)
        dz = xp.ones_like(y) / y.size  # any upstream gradient: the work does not depend on its values
        row["forward_s"] = median_seconds(lambda: layer.forward(x, training=True), repeats)
        row["backward_s"] = median_seconds(lambda: layer.backward_from_dz(dz), repeats)
        filters = layer.filters

        def only_im2col() -> None:
            for _rows, _cols in layer.im2col_chunks(layer.x_padded):
                pass

        def kernel_gradient() -> None:
            dkernel = xp.zeros((layer.params["kernel"].size // filters, filters), dtype=dz.dtype)
            for rows, cols in layer.im2col_chunks(layer.x_padded):
                dkernel += cols.T @ dz[rows].reshape(-1, filters)

        def kernel_gradient_per_image() -> None:
            # The same sum split by image: one batched product (n, K, P) @ (n, P, F), P = OH*OW,
            # then the n partial kernels added; a GPU can run the n products side by side.
            dkernel = xp.zeros((layer.params["kernel"].size // filters, filters), dtype=dz.dtype)
            for rows, cols in layer.im2col_chunks(layer.x_padded):
                images = rows.stop - rows.start
                per_image = cols.reshape(images, -1, cols.shape[1]).transpose(0, 2, 1)
                dkernel += (per_image @ dz[rows].reshape(images, -1, filters)).sum(axis=0)

        def input_gradient() -> None:
            dx = xp.zeros(layer.x_padded.shape, dtype=dz.dtype)
            chunk = layer.chunk_size(batch)
            for start in range(0, batch, chunk):
                rows = slice(start, min(start + chunk, batch))
                col2im_matmul(dz[rows], layer.params["kernel"], dx[rows].shape, layer.strides, out=dx[rows])

        dz_matrix = dz.reshape(-1, filters)
        ones = xp.ones(dz_matrix.shape[0], dtype=dz.dtype)
        row["im2col_s"] = median_seconds(only_im2col, repeats)
        row["kernel_gradient_s"] = median_seconds(kernel_gradient, repeats)
        row["kernel_gradient_per_image_s"] = median_seconds(kernel_gradient_per_image, repeats)
        row["input_gradient_s"] = None if first else median_seconds(input_gradient, repeats)
        row["bias_einsum_s"] = median_seconds(lambda: xp.einsum("mf->f", dz_matrix), repeats)
        row["bias_sum_s"] = median_seconds(lambda: dz_matrix.sum(axis=0), repeats)
        row["bias_ones_matmul_s"] = median_seconds(lambda: ones @ dz_matrix, repeats)
    return row


def layer_inputs(model: Any, x: Any) -> list[tuple[list[Any], Any, bool]]:
    """For each Conv2D of the model: ([the layer, the pool after it], the input it sees, whether it is first)."""
    found = []
    activation = x
    layer_list = list(model.layers)
    for index, layer in enumerate(layer_list):
        if isinstance(layer, conv.Conv2D):
            found.append((layer_list[index : index + 2], activation, index == 0))
        activation = layer.forward(activation, training=False)
    return found


def einsum_sum(dz: Any) -> Any:
    """The CPU's bias gradient, on any backend."""
    return backend.array_module().einsum("mf->f", dz.reshape(-1, dz.shape[-1]))


def training_step_variants(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The study's train_on_batch with conv.py's two backend-dependent choices switched one at a time."""
    x, y = make_batch(args.batch_size, args.image_size)
    model = build_minicnn_model(args.image_size)
    own_workspace, own_sum = conv.workspace_limit, conv.Conv2D.sum_over_pixels
    variants = [
        ("workspace 32 MiB, bias by einsum (the CPU's choices)", lambda: conv.WORKSPACE_BYTES, einsum_sum),
        ("workspace workspace_limit(), bias by einsum", own_workspace, einsum_sum),
        ("workspace 32 MiB, bias by sum_over_pixels", lambda: conv.WORKSPACE_BYTES, own_sum),
        ("workspace_limit() and sum_over_pixels (this tree)", own_workspace, own_sum),
    ]
    rows = []
    try:
        for name, workspace, bias_sum in variants:
            conv.workspace_limit = workspace
            conv.Conv2D.sum_over_pixels = staticmethod(bias_sum)
            seconds = median_seconds(lambda: model.train_on_batch(x, y), args.repeats)
            rows.append({"variant": name, "train_step_s": seconds})
    finally:
        conv.workspace_limit, conv.Conv2D.sum_over_pixels = own_workspace, staticmethod(own_sum)
    return rows


def print_tables(parts: list[dict[str, Any]], steps: list[dict[str, Any]]) -> None:
    """The two tables as Markdown."""

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    columns = [
        ("forward", "forward_s"),
        ("backward", "backward_s"),
        ("im2col", "im2col_s"),
        ("im2col + cols.T@dz", "kernel_gradient_s"),
        ("im2col + per-image products", "kernel_gradient_per_image_s"),
        ("dL/dx (col2im_matmul)", "input_gradient_s"),
        ("bias: einsum", "bias_einsum_s"),
        ("bias: sum(axis=0)", "bias_sum_s"),
        ("bias: ones @ dz", "bias_ones_matmul_s"),
    ]
    print("| layer | chunks | " + " | ".join(title for title, _ in columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    for row in parts:
        cells = [cell(row[key]) for _, key in columns]
        print(f"| {row['layer']} | {row['chunks']} | " + " | ".join(cells) + " |")
    print("\n(seconds, median)\n")
    print("| training step (train_on_batch) | seconds |")
    print("|---|---:|")
    for row in steps:
        print(f"| {row['variant']} | {row['train_step_s']:.4f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure (the median is shown)")
    parser.add_argument("--json", type=Path, help="also save the figures to this JSON file")
    args = parser.parse_args(argv)

    backend.set_backend(args.backend)
    x, _ = make_batch(args.batch_size, args.image_size)
    model = build_minicnn_model(args.image_size)
    parts = [
        conv_layer_parts(layer_and_pool, layer_input, first, args.repeats)
        for layer_and_pool, layer_input, first in layer_inputs(model, backend.to_device(x))
    ]
    steps = training_step_variants(args)
    print(
        f"backend {args.backend}, batch {args.batch_size}, {args.image_size}x{args.image_size}, "
        f"median of {args.repeats}; workspace_limit() = {conv.workspace_limit() / 2**20:.0f} MiB\n"
    )
    print_tables(parts, steps)
    if args.json:
        report = {"backend": args.backend, "batch_size": args.batch_size, "image_size": args.image_size}
        args.json.write_text(json.dumps({**report, "conv_layers": parts, "training_step": steps}, indent=2))


if __name__ == "__main__":
    main()
