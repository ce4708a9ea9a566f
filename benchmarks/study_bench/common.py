"""What every framework shares: the study's model in numbers, the fixed batch and the stopwatch.

The study's network (17,018,497 parameters at 300 x 300 x 1, float32, channels-last input)::

    Conv2D(32, 3x3, relu) -> MaxPool(2) -> Conv2D(64, 3x3, relu) -> MaxPool(2)
    -> Conv2D(128, 3x3, relu) -> MaxPool(2) -> Conv2D(128, 3x3, relu) -> MaxPool(2)
    -> Flatten -> Dropout(0.5) -> Dense(512, relu) -> Dense(1, sigmoid)

trained with binary cross-entropy and Adam (learning rate 1e-4).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]

# The command each child process runs (it calls itself with --framework NAME).
SCRIPT = REPO_ROOT / "benchmarks" / "bench_study_model.py"

# The order of rows in the table. Ratios are taken against "minicnn" (NumPy), or against
# "minicnn-cupy" when only the GPU rows ran.
FRAMEWORKS = ("minicnn", "minicnn-cupy", "torch", "torch-cuda", "keras")

# --backend NAME runs minicnn on that backend beside PyTorch on the matching device.
BACKEND_FRAMEWORKS = {"numpy": ("minicnn", "torch"), "cupy": ("minicnn-cupy", "torch-cuda")}

LEARNING_RATE = 1e-4
DROPOUT_RATE = 0.5


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
    """The fixed random batch every framework trains on: x (N, H, W, 1) in [0, 1), y (N,) in {0, 1}, float32."""
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
