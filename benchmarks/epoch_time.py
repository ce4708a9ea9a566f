"""Where an epoch of the study goes: the plain epoch beside its steps, and (--profile) its parts.

    python benchmarks/epoch_time.py --data ../shared/data/coronahack                  # CPU
    python benchmarks/epoch_time.py --data data/coronahack --backend cupy             # on a GPU
    python benchmarks/epoch_time.py --data data/coronahack --backend cupy --profile   # the parts
    python benchmarks/epoch_time.py --data data/coronahack --backend cupy \\
        --variants baseline,device-augment,device-dropout,device-both --json epoch.json

Without --profile (the target's measurement): one epoch exactly as examples/train_xray.py runs
it (``model.fit`` on Batches with the background prefetch thread and the study's augmentation,
then its validation pass), with no synchronisation added; then, in the same process, the median
of --median-steps training steps on one fixed batch already on the device (synchronised before
and after each, as benchmarks/bench_study_model.py does). The issue's target is

    epoch (validation included) <= 1.2 x steps per epoch x median step,

printed as "epoch / (steps x median step)".

With --profile: the same epoch taken apart, one batch after the other with no prefetching and
``backend.synchronize()`` at every boundary, so that each part's time is its own (on a GPU a
call returns once its work is queued; without the waits a part's time would land in the next):

* batch assembly: picking the batch's images out of the training array (host indexing);
* augmentation: the random warp and the rescale to [0, 1] (on the host by NumPy, or on the
  device: variant device-augment);
* host-to-device copies: the float32 batch (host augmentation) or the uint8 batch (device
  augmentation, copied before it is warped);
* steps: ``train_on_batch``;
* validation: the validation pass, as ``fit`` runs it (its own copies included);
* Python overhead: the epoch's wall time minus all of the above (loop, timers, bookkeeping).

Variants (--variants, comma-separated; each with a fresh model of the same seed):
baseline (the library's defaults: on CuPy the augmentation runs on the device, on NumPy on the
host), host-augment (``ImageAugmenter(device=False)``: on CuPy, the host augmentation that ran
before), device-augment (``ImageAugmenter(device=True)``), device-dropout
(``Dropout(masks_on_device=True)``), device-both. On NumPy "device" is NumPy too; the variants
then only check that the code runs. TF32 (--tf32) is chosen for the whole process, since CuPy
reads its switch once: compare two processes. ``--steps N`` cuts the epoch to N batches (and the
validation to a quarter as many images) for a quick look or a dry run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from minicnn import backend, losses, optimizers
from minicnn.data import Batches, ImageAugmenter, load_split, rescale, stratified_split
from minicnn.layers import Dropout
from minicnn.models import study_cnn

VARIANTS = {  # name -> (augmentation on the device, dropout masks on the device)
    "baseline": (None, False),  # the library's defaults: ImageAugmenter(device=None), host masks
    "host-augment": (False, False),  # on CuPy: the augmentation as before #25, NumPy on the host
    "device-augment": (True, False),
    "device-dropout": (None, True),
    "device-both": (True, True),
}
TARGET_RATIO = 1.2  # the target: an epoch at most 1.2 x its steps at the median step's speed


def build_model(image_size: int, masks_on_device: bool):
    """The study's model and optimiser (seed 0), its Dropout drawing masks on the device if asked."""
    model = study_cnn(image_size)
    for layer in model.layers:
        if isinstance(layer, Dropout):
            layer.masks_on_device = masks_on_device
    model.compile(optimizer=optimizers.Adam(1e-4), loss=losses.BinaryCrossentropy(), metrics=["accuracy"])
    return model


def training_transform(device: bool | None) -> Callable[[np.ndarray, np.random.Generator], Any]:
    """uint8 batch -> float32 in [0, 1], augmented first: the study's transform, on the device if asked."""
    augmenter = ImageAugmenter(device=device)
    return lambda images, rng: rescale(augmenter(images, rng))


def rescale_only(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rescale(images)


def median_step(model, x_batch: np.ndarray, y_batch: np.ndarray, repeats: int) -> float:
    """Median seconds of ``train_on_batch`` on one fixed batch already on the device, synchronised."""
    x_device = backend.to_device(rescale(x_batch), dtype="float32")
    times = []
    for _ in range(repeats):
        backend.synchronize()
        started = time.perf_counter()
        model.train_on_batch(x_device, y_batch)
        backend.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def plain_epoch(model, train: Batches, validation: Batches) -> tuple[float, float]:
    """(wall seconds, training loss) of one epoch as train_xray.py runs it: fit, with validation."""
    backend.synchronize()
    started = time.perf_counter()
    history = model.fit(train, epochs=1, validation_data=validation, verbose=0)
    backend.synchronize()
    return time.perf_counter() - started, float(history.history["loss"][-1])


def profiled_epoch(model, train: Batches, validation: Batches, augment_on_device: bool) -> dict[str, float]:
    """One epoch taken apart (no prefetching, a synchronisation at every boundary): seconds per part."""
    parts = dict.fromkeys(["batch_assembly", "augmentation", "host_to_device", "steps", "validation"], 0.0)
    augmenter = ImageAugmenter(device=augment_on_device)

    def timed(part: str, work: Callable[..., Any], *arguments: Any) -> Any:
        """``work(*arguments)``, its time (until the device is done) added to ``part``."""
        started = time.perf_counter()
        result = work(*arguments)
        backend.synchronize()
        parts[part] += time.perf_counter() - started
        return result

    def augment(images: Any, rng: np.random.Generator) -> Any:
        return rescale(augmenter(images, rng))

    backend.synchronize()
    started = time.perf_counter()
    order = train.order(0)
    for index in range(len(train)):
        chosen = order[index * train.batch_size : (index + 1) * train.batch_size]
        x_host = timed("batch_assembly", train.x.__getitem__, chosen)
        y_host = timed("batch_assembly", train.y.__getitem__, chosen)
        rng = np.random.default_rng([train.seed, 0, index])  # as Batches seeds batch `index` of epoch 0
        if augment_on_device:  # copy the uint8 batch, then warp it on the device
            x_uint8 = timed("host_to_device", backend.to_device, x_host)
            x_device = timed("augmentation", augment, x_uint8, rng)
        else:  # warp on the host, then copy the float32 batch
            x_float = timed("augmentation", augment, x_host, rng)
            x_device = timed("host_to_device", backend.to_device, x_float, "float32")
        timed("steps", model.train_on_batch, x_device, y_host)
    timed("validation", model.evaluate_source, validation)
    wall = time.perf_counter() - started
    parts["python_overhead"] = wall - sum(parts.values())
    parts["epoch"] = wall
    return parts


def run_variant(name: str, args: argparse.Namespace, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Measure one variant with a fresh model: a warm-up step, then the plain or the profiled epoch."""
    augment_on_device, masks_on_device = VARIANTS[name]
    model = build_model(args.image_size, masks_on_device)
    resolved_augment = ImageAugmenter(device=augment_on_device).on_device()
    train = Batches(
        data["x_train"],
        data["y_train"],
        batch_size=args.batch_size,
        seed=0,
        transform=training_transform(augment_on_device),
        prefetch=True,
    )
    validation = Batches(
        data["x_val"], data["y_val"], batch_size=args.batch_size, shuffle=False, transform=rescale_only, prefetch=True
    )
    first_x, first_y = data["x_train"][: args.batch_size], data["y_train"][: args.batch_size]
    model.train_on_batch(rescale(first_x), first_y)  # warm-up: first touch of every buffer, CuPy's kernels compiled
    model.evaluate_source(validation)
    result: dict[str, Any] = {
        "variant": name,
        "augmentation": "device" if resolved_augment else "host",
        "dropout_masks": "device" if masks_on_device else "host",
        "steps_per_epoch": len(train),
        "validation_images": len(data["y_val"]),
    }
    if args.profile:
        result["profile_s"] = profiled_epoch(model, train, validation, resolved_augment)
        return result
    result["epoch_s"], result["epoch_loss"] = plain_epoch(model, train, validation)
    result["median_step_s"] = median_step(model, first_x, first_y, args.median_steps)
    result["ratio"] = result["epoch_s"] / (len(train) * result["median_step_s"])
    return result


def describe(result: dict[str, Any]) -> str:
    """One variant's figures as printed lines."""
    head = (
        f"{result['variant']} (augmentation on the {result['augmentation']}, "
        f"dropout masks on the {result['dropout_masks']})"
    )
    if "profile_s" in result:
        parts = result["profile_s"]
        epoch = parts["epoch"]
        lines = [f"{head}: profiled epoch {epoch:.2f} s ({result['steps_per_epoch']} steps, synchronised at each part)"]
        for part, seconds in parts.items():
            if part != "epoch":
                lines.append(f"  {part.replace('_', ' '):<16} {seconds:8.3f} s  {100 * seconds / epoch:5.1f} %")
        return "\n".join(lines)
    verdict = "within" if result["ratio"] <= TARGET_RATIO else "over"
    return (
        f"{head}: epoch {result['epoch_s']:.2f} s (validation included, {result['validation_images']} images), "
        f"median step {result['median_step_s']:.4f} s; epoch / ({result['steps_per_epoch']} steps x median step) = "
        f"{result['ratio']:.2f} ({verdict} the target {TARGET_RATIO}); training loss {result['epoch_loss']:.4f}"
    )


def load_data(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """The study's training and validation images (20 % stratified, seed 0), cut to --steps batches."""
    started = time.perf_counter()
    train = load_split(args.data, "train", image_size=args.image_size, progress=False, log=lambda _: None)
    print(f"train split {train.images.shape} loaded in {time.perf_counter() - started:.1f} s")
    train_index, val_index = stratified_split(train.labels, 0.2, seed=0)
    if args.steps:
        train_index = train_index[: args.steps * args.batch_size]
        val_index = val_index[: max(1, args.steps * args.batch_size // 4)]
    return {
        "x_train": train.images[train_index],
        "y_train": train.labels[train_index],
        "x_val": train.images[val_index],
        "y_val": train.labels[val_index],
    }


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/coronahack"))
    parser.add_argument("--image-size", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=0, help="cut the epoch to this many batches (0: the whole epoch)")
    parser.add_argument("--median-steps", type=int, default=20, help="steps on a fixed batch for the median step")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default="numpy", help="where the model computes")
    parser.add_argument("--profile", action="store_true", help="take the epoch apart, synchronising at each part")
    parser.add_argument("--tf32", action="store_true", help="TF32 for CuPy's float32 products (whole process)")
    parser.add_argument("--variants", default="baseline", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    args.variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = [name for name in args.variants if name not in VARIANTS]
    if unknown or not args.variants:
        parser.error(f"--variants: unknown {unknown or 'none given'}; choose from {', '.join(VARIANTS)}")
    for name in ("steps", "median_steps", "batch_size", "image_size"):
        minimum = 0 if name == "steps" else 1
        if getattr(args, name) < minimum:
            parser.error(f"--{name.replace('_', '-')} must be at least {minimum}, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.tf32:  # before the backend: CuPy reads its TF32 switch at its first product
        backend.set_tf32(True)  # (without --tf32, MINICNN_TF32 from the environment still counts)
    backend.set_backend(args.backend)
    data = load_data(args)
    settings = {
        **backend.run_settings(),
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "median_steps": args.median_steps,
        "profile": args.profile,
        "target_ratio": TARGET_RATIO,
    }
    print("settings: " + ", ".join(f"{key} {value}" for key, value in settings.items()))
    results = []
    for name in args.variants:
        results.append(run_variant(name, args, data))
        print(describe(results[-1]), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
