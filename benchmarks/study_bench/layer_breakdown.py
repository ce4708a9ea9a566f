"""Where one minicnn training step spends its time: the library's own step, with a stopwatch on each call.

The step measured is ``model.train_on_batch(x, y)`` itself (``Trainer.train_step`` in
minicnn/training.py: inside the model's fast mode, every layer's ``forward(training=True)``,
the loss, where backward starts (``losses.start_backward``: the fused sigmoid + BCE gradient
into the last layer's ``backward_from_dz``), every other layer's ``backward`` in reverse
order, the check of the gradients, the optimizer's ``step``, the metrics). Nothing of it is
written again here. For the length of the measurement, each of those methods is replaced *on
its object* (a layer, the loss, the optimizer) by the same bound method with a stopwatch
around it, and removed again afterwards (:func:`stopwatches_on`): an instance attribute
shadows the class's method, so ``model.forward``'s ``layer.forward(x, ...)`` finds the timed
one. Whatever the step does outside those calls (the argument checks, the copy of the batch
to the device, the gradient check, the metrics) is the row "rest of train_on_batch": the
whole call's time minus the timed calls, so that the rows add up to one step.

A change of the step in the library therefore shows up here with no line changed, and a
method the step stops calling leaves its column empty ("-") instead of timing something else.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

# The methods of each object that the training step calls, and the column each one is counted in.
LAYER_METHODS = {"forward": "forward", "backward": "backward", "backward_from_dz": "backward"}
LOSS_METHODS = ("forward", "gradient_before_activation", "backward")  # its value, and where backward starts
OPTIMIZER_METHODS = ("step",)


class Stopwatches:
    """Seconds spent in each timed call, added up per key over one repetition of the step.

    A timed call made from inside another timed call (a layer's ``backward_from_dz`` that calls
    its own ``backward``) runs untimed: its time is already in the outer call's.

    Parameters
    ----------
    sync : callable
        Waits until queued device work is finished (a no-op on NumPy), before and after each
        timed call: a GPU call returns as soon as its work is queued.
    """

    def __init__(self, sync: Callable[[], None]) -> None:
        self.sync = sync
        self.inside_a_timed_call = False
        self.this_repetition: dict[Hashable, float] = defaultdict(float)

    def timed(self, key: Hashable, method: Callable[..., Any]) -> Callable[..., Any]:
        """``method`` with a stopwatch around it; its seconds are added to ``self.this_repetition[key]``."""

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.inside_a_timed_call:
                return method(*args, **kwargs)
            self.inside_a_timed_call = True
            try:
                self.sync()
                start = time.perf_counter()
                value = method(*args, **kwargs)
                self.sync()
                self.this_repetition[key] += time.perf_counter() - start
            finally:
                self.inside_a_timed_call = False
            return value

        return call

    def take_repetition(self) -> dict[Hashable, float]:
        """The seconds of the repetition just run, by key; starts the next one at zero."""
        seconds, self.this_repetition = dict(self.this_repetition), defaultdict(float)
        return seconds


@contextmanager
def stopwatches_on(targets: list[tuple[Any, str, Hashable]], watches: Stopwatches) -> Iterator[None]:
    """Inside the block, ``owner.method`` is timed into ``watches`` under ``key``, for each (owner, method, key).

    Owners that lack the method are left alone. Afterwards every owner is as it was.
    """
    missing = object()
    replaced: list[tuple[Any, str, Any]] = []
    try:
        for owner, method_name, key in targets:
            if not callable(getattr(owner, method_name, None)):
                continue
            replaced.append((owner, method_name, vars(owner).get(method_name, missing)))
            setattr(owner, method_name, watches.timed(key, getattr(owner, method_name)))
        yield
    finally:
        for owner, method_name, before in reversed(replaced):
            if before is missing:
                delattr(owner, method_name)  # the class's method shows through again
            else:
                setattr(owner, method_name, before)


def timed_calls_of_the_step(model: Any) -> list[tuple[Any, str, Hashable]]:
    """(object, method, key) for every call of the training step that gets a row: the layers, the loss, the update."""
    targets: list[tuple[Any, str, Hashable]] = [
        (layer, method_name, (index, column))
        for index, layer in enumerate(model.layers)
        for method_name, column in LAYER_METHODS.items()
    ]
    targets += [(model.loss, method_name, "loss") for method_name in LOSS_METHODS]
    targets += [(model.optimizer, method_name, "update") for method_name in OPTIMIZER_METHODS]
    return targets


def minicnn_layer_breakdown(model: Any, x: Any, y: Any, warmup: int, steps: int, sync: Callable[[], None]) -> dict:
    """Median seconds of every layer's forward and backward inside ``model.train_on_batch(x, y)``.

    Parameters
    ----------
    model : Sequential
        A built and compiled model; it trains on (``warmup + steps`` more steps).
    x : ndarray of shape (N, H, W, C)
        The host batch, as ``train_on_batch`` takes it.
    y : ndarray of shape (N,)
        Its labels.
    warmup, steps : int
        Untimed repetitions first, then the repetitions whose median each row reports.
    sync : callable
        Waits for the GPU (a no-op on NumPy).

    Returns
    -------
    dict
        ``rows``: one per layer (``layer``, ``output_shape``, ``forward_s``, ``backward_s``; None
        for a call the step did not make), then the loss, the optimizer update and the rest of
        the step (``other_s``); ``train_on_batch_s``: the median of the whole calls;
        ``upstream_gradient``: where backward started.
    """
    watches = Stopwatches(sync)
    repetitions: list[dict[Hashable, float]] = []
    whole_steps: list[float] = []
    with stopwatches_on(timed_calls_of_the_step(model), watches):
        for repetition in range(warmup + steps):
            sync()
            start = time.perf_counter()
            model.train_on_batch(x, y)
            sync()
            whole = time.perf_counter() - start
            seconds = watches.take_repetition()
            if repetition >= warmup:  # the first `warmup` repetitions are not timed
                repetitions.append(seconds)
                whole_steps.append(whole)

    def median(key: Hashable) -> float | None:
        values = [seconds[key] for seconds in repetitions if key in seconds]
        return statistics.median(values) if values else None

    rows: list[dict[str, Any]] = [
        {
            "layer": layer.describe(),
            "output_shape": list(layer.output_shape),
            "forward_s": median((index, "forward")),
            "backward_s": median((index, "backward")),
        }
        for index, layer in enumerate(model.layers)
    ]
    # Not layers, but part of every training step: shown so that the rows add up to one step.
    rows.append({"layer": "loss (BCE + its gradient)", "forward_s": median("loss"), "backward_s": None})
    name = type(model.optimizer).__name__
    rows.append(
        {"layer": f"optimizer update ({name})", "forward_s": None, "backward_s": None, "other_s": median("update")}
    )
    rest = [whole - sum(seconds.values()) for whole, seconds in zip(whole_steps, repetitions, strict=True)]
    rows.append(
        {
            "layer": "rest of train_on_batch (checks, copy, metrics)",
            "forward_s": None,
            "backward_s": None,
            "other_s": statistics.median(rest),
        }
    )
    fused = bool(getattr(model, "fused_sigmoid", False))
    start = "fused sigmoid + BCE (p - y) / N" if fused else "the loss's dL/dy"
    return {
        "rows": rows,
        "train_on_batch_s": statistics.median(whole_steps),
        "upstream_gradient": f"{start}, in model.train_on_batch (the model's fast mode)",
    }
