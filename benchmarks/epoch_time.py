"""How long one epoch of the study takes on real data, and how much of it is spent outside the model.

    python benchmarks/epoch_time.py --data ../shared/data/coronahack --steps 40
    python benchmarks/epoch_time.py --data data/coronahack --backend cupy      # on a GPU

1. Decode time: the train split at --image-size, first with an empty cache (decoding every
   JPEG), then again from the cache.
2. Training: --steps batches of the study's model on the real training split with the
   study's augmentation, exactly as examples/train_xray.py feeds it (Batches with a
   background prefetch thread), once without and once with prefetching. The time inside
   ``train_on_batch`` is the model; the rest of the wall time is loading, augmentation and
   batching. With prefetching that work overlaps the model, but it still takes CPU time
   from it, so compare the per-step times too. Extrapolates to a full epoch.

On a GPU (``--backend cupy``) the model's part shrinks to 0.022 s per step (an H200), so the
part outside it, done by NumPy on the CPU, decides how long an epoch takes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from train_xray import training_transform  # noqa: E402

from minicnn import backend, losses, optimizers  # noqa: E402
from minicnn.data import Batches, load_split, stratified_split  # noqa: E402
from minicnn.models import study_cnn  # noqa: E402


def timed_steps(model, batches: Batches, steps: int) -> tuple[float, float]:
    """(wall seconds, seconds inside train_on_batch) for the first ``steps`` batches of epoch 0."""
    inside = 0.0
    started = time.perf_counter()
    for index, (x_batch, y_batch) in enumerate(batches.epoch(0)):
        if index == steps:
            break
        t0 = time.perf_counter()
        model.train_on_batch(x_batch, y_batch)
        inside += time.perf_counter() - t0
    return time.perf_counter() - started, inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/coronahack"))
    parser.add_argument("--image-size", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--backend", choices=["numpy", "cupy"], default="numpy", help="where the model computes")
    args = parser.parse_args()
    backend.set_backend(args.backend)  # the data stays NumPy on the host; each batch is copied once per step

    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        load_split(args.data, "train", image_size=args.image_size, cache_dir=cache, progress=False, log=lambda _: None)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        train = load_split(
            args.data, "train", image_size=args.image_size, cache_dir=cache, progress=False, log=lambda _: None
        )
        cached = time.perf_counter() - t0
    print(f"train split {train.images.shape}: first run (decode + write cache) {first:.1f} s, cached {cached:.2f} s")

    train_index, _ = stratified_split(train.labels, 0.2, seed=0)
    model = study_cnn(args.image_size)
    model.compile(optimizer=optimizers.Adam(1e-4), loss=losses.BinaryCrossentropy(), metrics=["accuracy"])
    for prefetch in (False, True):
        batches = Batches(
            train.images[train_index],
            train.labels[train_index],
            batch_size=args.batch_size,
            seed=0,
            transform=training_transform(augment=True),
            prefetch=prefetch,
        )
        model.train_on_batch(*next(iter(batches.epoch(0))))  # warm-up: first touch of every buffer
        wall, inside = timed_steps(model, batches, args.steps)
        outside = wall - inside
        per_step = wall / args.steps
        print(
            f"prefetch {'on ' if prefetch else 'off'}: {args.steps} steps with augmentation: {wall:.1f} s wall, "
            f"{inside:.1f} s in train_on_batch, {outside:.2f} s outside the model "
            f"({100 * outside / wall:.1f} %); {per_step:.2f} s per step -> {len(batches)} steps = "
            f"{per_step * len(batches) / 60:.1f} min per training epoch (validation not included)"
        )


if __name__ == "__main__":
    main()
