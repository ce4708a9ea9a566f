"""Both CPU cores for the memory-bound passes: split the batch, one part per thread.

A max pool or a ReLU does almost no arithmetic per value, and NumPy runs such a loop
on one core. But NumPy releases Python's global lock inside its loops over large
arrays, so two Python threads that each run NumPy on half of a batch really run at the
same time: on the study's 2-core machine a 2x2 max pool over its 363 MB map runs 1.96x
faster that way (benchmarks/README.md). Matrix products need none of this: the BLAS
library already uses every core.

Only elementwise work is split. Every value is then computed by exactly the same
operations, whichever thread computes it, so the results are bit for bit the same
for any number of threads (a sum over the batch would not be: its order of additions
would depend on the split). ``set_threads(1)`` turns the splitting off; so does the
CuPy backend, since a GPU is parallel already.

Every call site says in a comment which plain statement it splits, for example

    # The plain statement: z += bias (broadcast over N, OH, OW). Split over the batch, ...
    parallel.over_batch(lambda rows: xp.add(z[rows], bias, out=z[rows]), len(z))

so ``work(slice(0, size))`` with one thread is exactly that statement. The "batch" is the
first axis of the arrays: the images for the layers (conv.py, activations.py, im2col.py,
pooling.py), the list of cache-sized blocks of a flattened parameter for Adam (optimizers.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from minicnn import backend

_state: dict = {"threads": min(2, os.cpu_count() or 1), "pool": None}


def set_threads(count: int) -> None:
    """Use ``count`` threads for the memory-bound passes of the layers and optimisers.

    Parameters
    ----------
    count : int
        Threads to split the batch over; 1 turns the splitting off. The default is the
        number of CPU cores, at most 2.

    Raises
    ------
    ValueError
        ``count`` is not a positive int.
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"set_threads: count must be a positive int, got {count!r}")
    _state["threads"] = count
    if _state["pool"] is not None:
        _state["pool"].shutdown()
        _state["pool"] = None


def get_threads() -> int:
    """The number of threads :func:`over_batch` splits work into (on NumPy)."""
    return _state["threads"]


def over_batch(work: Callable[[slice], object], size: int) -> None:
    """Call ``work(rows)`` for consecutive slices ``rows`` that cover ``range(size)``, one per thread.

    Returns when every part is done; an exception in any part is raised here. With one
    thread, on CuPy, or for a single row, it is simply ``work(slice(0, size))``.

    Parameters
    ----------
    work : callable
        ``work(rows)`` does the elementwise job for the rows ``rows`` (a slice) of the batch;
        what it returns is ignored.
    size : int
        The number of rows, usually the batch size N.
    """
    parts = min(_state["threads"], size) if backend.backend_name() == "numpy" else 1
    if parts <= 1:
        work(slice(0, size))
        return
    if _state["pool"] is None:
        _state["pool"] = ThreadPoolExecutor(max_workers=_state["threads"], thread_name_prefix="minicnn")
    bounds = [size * part // parts for part in range(parts + 1)]
    futures = [
        _state["pool"].submit(work, slice(start, stop)) for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    for future in futures:
        future.result()  # waits, and re-raises the part's exception if it failed
