"""PyTorch's row: the same model, the same batch, the usual training loop, channels-last memory format.

On "cuda" the copy of the batch to the GPU is part of every step, as it is for minicnn-cupy.
"""

from __future__ import annotations

import argparse
from typing import Any

from study_bench.common import DROPOUT_RATE, LEARNING_RATE, feature_map_side, make_batch, time_calls


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
