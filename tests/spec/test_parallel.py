"""minicnn.parallel: the memory-bound passes on several threads give the very same numbers as on one."""

from __future__ import annotations

import numpy as np
import pytest
from test_model import small_model, toy_data

import minicnn as mc
from minicnn import parallel


@pytest.fixture
def restore_threads():
    previous = parallel.get_threads()
    yield
    mc.set_threads(previous)


def trained_weights(threads: int) -> list[np.ndarray]:
    mc.set_threads(threads)
    x, y = toy_data(40)
    model = small_model(seed=7)
    model.fit(x, y, batch_size=13, epochs=2, verbose=0)  # 13: parts of unequal size
    return model.get_weights()


def test_training_gives_bit_identical_weights_for_any_number_of_threads(restore_threads):
    one = trained_weights(1)
    for threads in (2, 3):
        for a, b in zip(one, trained_weights(threads), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{threads} threads")


def test_over_batch_covers_every_row_once_and_raises_a_parts_error(restore_threads):
    mc.set_threads(3)
    seen = np.zeros(10, dtype=int)

    def count(rows: slice) -> None:
        seen[rows] += 1

    parallel.over_batch(count, 10)
    assert seen.tolist() == [1] * 10

    def fail(rows: slice) -> None:
        if rows.start > 0:
            raise RuntimeError(f"part {rows} failed")

    with pytest.raises(RuntimeError, match="part slice"):
        parallel.over_batch(fail, 10)


def test_set_threads_rejects_nonsense(restore_threads):
    with pytest.raises(ValueError, match="count must be a positive int, got 0"):
        mc.set_threads(0)
