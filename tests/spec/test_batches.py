"""Specification of minicnn.data.batches: seeded, reproducible mini-batches."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn.data.augment import ImageAugmenter, rescale
from minicnn.data.batches import Batches


def numbered(count: int) -> tuple[np.ndarray, np.ndarray]:
    """x[i] holds the number i as a tiny image and y[i] = i, so batches show their samples."""
    x = np.arange(count, dtype=np.int64).reshape(count, 1, 1, 1)
    return x, np.arange(count)


def noisy(x_batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A transform whose result depends on the random generator it is given."""
    return x_batch + rng.random(x_batch.shape)


def all_batches(batches: Batches, epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(batches.epoch(epoch))


def assert_same_batches(first, second) -> None:
    assert len(first) == len(second)
    for (x_first, y_first), (x_second, y_second) in zip(first, second, strict=True):
        np.testing.assert_array_equal(x_first, x_second)
        np.testing.assert_array_equal(y_first, y_second)


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(0, 100),
    batch_size=st.integers(1, 40),
    shuffle=st.booleans(),
    prefetch=st.booleans(),
)
def test_every_sample_appears_exactly_once_per_epoch(count, batch_size, shuffle, prefetch):
    batches = Batches(*numbered(count), batch_size, shuffle=shuffle, prefetch=prefetch)
    epoch = all_batches(batches, 3)
    assert len(epoch) == len(batches) == -(-count // batch_size)
    assert batches.num_samples == count
    seen = np.concatenate([y for _, y in epoch]) if epoch else np.array([], int)
    np.testing.assert_array_equal(np.sort(seen), np.arange(count))
    assert all(len(y) == batch_size for _, y in epoch[:-1])
    for x, y in epoch:
        np.testing.assert_array_equal(x.reshape(-1), y)  # inputs and targets stay paired


def test_the_last_batch_holds_the_remainder():
    sizes = [len(y) for _, y in Batches(*numbered(70), batch_size=32).epoch(0)]
    assert sizes == [32, 32, 6]


def test_without_shuffle_samples_come_in_order():
    epoch = all_batches(Batches(*numbered(10), batch_size=4, shuffle=False), 5)
    assert [list(y) for _, y in epoch] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_without_transform_the_batch_is_indexed_from_x():
    x, y = numbered(20)
    batches = Batches(x, y, batch_size=8, seed=4)
    for x_batch, y_batch in batches.epoch(0):
        np.testing.assert_array_equal(x_batch, x[y_batch])
        assert x_batch.dtype == x.dtype


def test_batches_depend_only_on_seed_epoch_and_position():
    x, y = numbered(50)
    reference = Batches(x, y, batch_size=8, seed=11, transform=noisy, prefetch=False)
    for prefetch in (False, True):
        other = Batches(x, y, batch_size=8, seed=11, transform=noisy, prefetch=prefetch)
        for epoch in (0, 4):  # a run resumed at epoch 4 sees the same epoch 4
            assert_same_batches(all_batches(other, epoch), all_batches(reference, epoch))


def test_the_transform_gets_a_generator_seeded_by_seed_epoch_and_batch():
    seen = []
    batches = Batches(
        *numbered(10),
        batch_size=4,
        seed=3,
        transform=lambda x_batch, rng: seen.append(rng.random()) or x_batch,
    )
    all_batches(batches, 2)
    assert seen == [np.random.default_rng([3, 2, index]).random() for index in range(3)]


def test_epochs_and_seeds_shuffle_differently():
    x, y = numbered(50)
    batches = Batches(x, y, batch_size=50, seed=0)
    orders = [all_batches(batches, epoch)[0][1] for epoch in range(3)]
    other_seed = all_batches(Batches(x, y, batch_size=50, seed=1), 0)[0][1]
    for order in orders[1:] + [other_seed]:
        assert not np.array_equal(order, orders[0])


def test_augmented_batches_are_identical_with_and_without_prefetch():
    images = np.random.default_rng(0).integers(0, 256, (10, 24, 24, 1), dtype=np.uint8)
    labels = np.arange(10) % 2
    augment = ImageAugmenter()

    def transform(x_batch, rng):
        return rescale(augment(x_batch, rng))

    runs = [
        all_batches(Batches(images, labels, 4, seed=5, transform=transform, prefetch=prefetch), 1)
        for prefetch in (False, True)
    ]
    assert_same_batches(*runs)
    assert runs[0][0][0].dtype == np.float32


def test_leaving_the_loop_early_stops_the_background_thread():
    threads_before = threading.active_count()
    batches = Batches(*numbered(100), batch_size=10, transform=noisy, prefetch=True)
    for _ in batches.epoch(0):
        assert threading.active_count() == threads_before + 1
        break
    assert threading.active_count() == threads_before

    with pytest.raises(KeyError):
        for _ in batches.epoch(1):
            raise KeyError("the training step failed")
    assert threading.active_count() == threads_before


def test_an_error_in_the_transform_reaches_the_caller():
    threads_before = threading.active_count()

    def broken(x_batch, rng):
        raise RuntimeError("augmentation failed")

    batches = Batches(*numbered(10), batch_size=4, transform=broken, prefetch=True)
    with pytest.raises(RuntimeError, match="augmentation failed"):
        all_batches(batches, 0)
    assert threading.active_count() == threads_before


def test_a_failure_after_some_batches_still_delivers_the_earlier_ones():
    def fails_on_third(x_batch, rng):
        if 8 in x_batch:
            raise ValueError("bad sample 8")
        return x_batch

    received = []
    batches = Batches(*numbered(12), batch_size=4, shuffle=False, transform=fails_on_third)
    with pytest.raises(ValueError, match="bad sample 8"):
        for _, y in batches.epoch(0):
            received.append(list(y))
    assert received == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_bad_arguments_are_refused_with_the_numbers():
    x, y = numbered(10)
    with pytest.raises(ValueError, match="10 and 9"):
        Batches(x, y[:9])
    with pytest.raises(ValueError, match="batch_size.*0"):
        Batches(x, y, batch_size=0)
    with pytest.raises(ValueError, match="seed"):
        Batches(x, y, seed=-1)
    with pytest.raises(ValueError, match="epoch"):
        Batches(x, y).epoch(-1)


@pytest.mark.parametrize("prefetch", [False, True])
def test_starting_mid_epoch_yields_the_remaining_batches_unchanged(prefetch):
    """A run resumed after batch 2 sees exactly batches 2, 3, ... of the uninterrupted epoch."""
    x = np.arange(50, dtype=np.float32).reshape(50, 1)
    y = np.arange(50) % 2
    batches = Batches(x, y, batch_size=8, seed=4, transform=lambda b, rng: b + rng.random(), prefetch=prefetch)
    whole = list(batches.epoch(3))
    rest = list(batches.epoch(3, start=2))
    assert len(rest) == len(whole) - 2
    for (xa, ya), (xb, yb) in zip(whole[2:], rest, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
