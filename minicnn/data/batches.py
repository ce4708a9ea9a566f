"""Seeded mini-batches over in-memory arrays, optionally prepared in the background.

Every random choice is derived from the seed and the batch's position:

* the order of epoch ``e`` comes from ``np.random.default_rng([seed, e])``;
* the transform of batch ``k`` of epoch ``e`` gets ``np.random.default_rng([seed, e, k])``.

So batch k of epoch e is the same in every run, whether the batches are
prepared in a background thread or not, and whether the run started at epoch 0
or was resumed at epoch e.

Examples
--------
Ten samples in batches of four: the last batch holds the two left over.

>>> x = np.arange(10).reshape(10, 1)
>>> y = np.arange(10) % 2
>>> batches = Batches(x, y, batch_size=4, seed=1)
>>> [len(x_batch) for x_batch, y_batch in batches.epoch(0)]
[4, 4, 2]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import numpy as np

from minicnn.checks import check_whole_number

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]

# Tags of the messages the background thread sends to the consumer.
_BATCH, _ERROR, _DONE = "batch", "error", "done"


class Batches:
    """Seeded mini-batches over in-memory arrays; batch k of epoch e depends only
    on (seed, e, k), so a resumed run sees exactly the same batches.

    Parameters
    ----------
    x : numpy.ndarray of shape (N, ...)
        Inputs, e.g. images (N, H, W, 1) uint8.
    y : numpy.ndarray of shape (N, ...)
        Targets, e.g. labels (N,).
    batch_size : int, default 32
        Samples per batch; the last batch of an epoch may be smaller (none are dropped).
    shuffle : bool, default True
        Visit the samples in a new seeded order each epoch, else in order 0..N-1.
    seed : int, default 0
        Non-negative; fixes every epoch's order and every batch's transform.
    transform : callable, optional
        ``transform(x_batch, rng) -> array``, applied to every input batch, e.g.
        augmentation followed by :func:`~minicnn.data.augment.rescale`. Without
        it, batches are returned as indexed from ``x``.
    prefetch : bool, default True
        Prepare the next batch in a background thread while the caller works
        on the current one. The batches are identical either way.

    Raises
    ------
    ValueError
        ``x`` and ``y`` have different lengths, ``batch_size`` < 1 or ``seed`` < 0.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        transform: Transform | None = None,
        prefetch: bool = True,
    ) -> None:
        for name, array in (("x", x), ("y", y)):
            if not (hasattr(array, "__len__") and hasattr(array, "__getitem__")) or isinstance(array, (str, dict)):
                raise TypeError(f"Batches: {name} must be an array with one row per sample, got {array!r:.60}")
        if len(x) != len(y):
            raise ValueError(f"Batches: x and y must have the same length, got {len(x)} and {len(y)}")
        batch_size = check_whole_number("Batches", "batch_size", batch_size, 1)
        seed = check_whole_number("Batches", "seed", seed, 0)
        if transform is not None and not callable(transform):
            raise TypeError(f"Batches: transform must be a function (x_batch, rng) -> array, got {transform!r:.60}")
        self.x = x
        self.y = y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.transform = transform
        self.prefetch = prefetch

    def __len__(self) -> int:
        """Batches per epoch, counting a last, smaller batch."""
        return -(-self.num_samples // self.batch_size)  # ceiling division

    @property
    def num_samples(self) -> int:
        """N, the number of samples."""
        return len(self.x)

    def __repr__(self) -> str:
        return (
            f"Batches({self.num_samples} samples, batch_size={self.batch_size}, "
            f"{len(self)} batches, shuffle={self.shuffle}, seed={self.seed}, "
            f"prefetch={self.prefetch})"
        )

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices of one epoch, in visiting order: (N,) int64."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        if not self.shuffle:
            return np.arange(self.num_samples)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(self.num_samples)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield the (x_batch, y_batch) pairs of one epoch, as NumPy arrays.

        ``start`` skips the first batches (a run resumed mid-epoch); the rest are
        exactly the batches an uninterrupted epoch would have yielded.

        With prefetching, leaving the loop early (``break``, an exception) stops
        the background thread as soon as the iterator is closed or dropped,
        which a ``for`` loop does by itself.
        """
        order = self.order(epoch)
        indices = range(start, len(self))
        if self.prefetch:
            return self._prefetched_batches(order, int(epoch), indices)
        return (self._batch(order, int(epoch), index) for index in indices)

    def _batch(self, order: np.ndarray, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        chosen = order[index * self.batch_size : (index + 1) * self.batch_size]
        x_batch, y_batch = self.x[chosen], self.y[chosen]
        if self.transform is not None:
            x_batch = self.transform(x_batch, np.random.default_rng([self.seed, epoch, index]))
        return x_batch, y_batch

    def _prefetched_batches(
        self, order: np.ndarray, epoch: int, indices: range
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # One slot: the thread prepares batch k+1 while the caller uses batch k,
        # and never runs further ahead (which would only cost memory).
        messages: queue.Queue = queue.Queue(maxsize=1)
        stop = threading.Event()
        worker = threading.Thread(target=self._produce, args=(order, epoch, indices, messages, stop), daemon=True)
        worker.start()
        try:
            while True:
                tag, payload = messages.get()
                if tag == _DONE:
                    return
                if tag == _ERROR:
                    raise payload
                yield payload
        finally:
            # Reached on normal end, on an exception, and when the caller
            # stops early (the generator is closed): always end the thread.
            stop.set()
            _empty(messages)  # frees the slot the thread may be waiting on
            worker.join()

    def _produce(
        self, order: np.ndarray, epoch: int, indices: range, messages: queue.Queue, stop: threading.Event
    ) -> None:
        """Body of the background thread: make each batch and hand it over."""
        try:
            for index in indices:
                if stop.is_set():
                    return
                batch = self._batch(order, epoch, index)
                if not _put(messages, (_BATCH, batch), stop):
                    return
        except Exception as error:  # handed to the consumer, which re-raises it
            _put(messages, (_ERROR, error), stop)
            return
        _put(messages, (_DONE, None), stop)


def _put(messages: queue.Queue, message: tuple, stop: threading.Event) -> bool:
    """Wait for a free slot, giving up when ``stop`` is set; True if the message was put."""
    while not stop.is_set():
        try:
            messages.put(message, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _empty(messages: queue.Queue) -> None:
    while True:
        try:
            messages.get_nowait()
        except queue.Empty:
            return
