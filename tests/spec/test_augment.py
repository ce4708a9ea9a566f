"""Specification of minicnn.data.augment: random rotation, shift and zoom of whole batches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minicnn.data.augment import ImageAugmenter, affine_matrices, rescale, warp_affine

NO_CHANGE = dict(rotation_range=0, width_shift_range=0, height_shift_range=0, zoom_range=0)

batch_shapes = st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12), st.integers(1, 2))
uint8_batches = batch_shapes.flatmap(lambda shape: arrays(np.uint8, shape))
float_batches = batch_shapes.flatmap(lambda shape: arrays(np.float32, shape, elements=st.floats(-10, 10, width=32)))


def shifted(images: np.ndarray, rows: float, columns: float) -> np.ndarray:
    """Warp with a pure shift: content moves down by `rows` and right by `columns`."""
    count, height, width, _ = images.shape
    matrices = affine_matrices(
        height,
        width,
        np.zeros(count),
        np.full(count, rows),
        np.full(count, columns),
        np.ones(count),
    )
    return warp_affine(images, matrices)


# ----------------------------------------------------------------------------
# rescale
# ----------------------------------------------------------------------------


def test_rescale_maps_0_255_to_0_1_in_float32():
    scaled = rescale(np.array([[0, 51, 255]], dtype=np.uint8))
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, [[0, 0.2, 1]], rtol=1e-6)
    assert scaled.max() == 1.0


def test_rescale_accepts_augmented_float32_and_never_makes_float64():
    images = np.array([[0, 51, 255]], dtype=np.uint8)
    as_float = images.astype(np.float32)
    np.testing.assert_array_equal(rescale(as_float), rescale(images))
    assert rescale(as_float).dtype == np.float32
    np.testing.assert_array_equal(as_float, [[0, 51, 255]])  # input untouched


# ----------------------------------------------------------------------------
# ImageAugmenter
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_output_is_float32_of_the_same_shape(dtype):
    images = np.random.default_rng(0).integers(0, 256, (4, 20, 30, 1)).astype(dtype)
    augmented = ImageAugmenter()(images, np.random.default_rng(1))
    assert augmented.shape == images.shape
    assert augmented.dtype == np.float32
    assert 0 <= augmented.min() and augmented.max() <= 255  # same value scale


@settings(max_examples=50, deadline=None)
@given(images=st.one_of(uint8_batches, float_batches))
def test_zero_ranges_give_back_the_input_exactly(images):
    augmented = ImageAugmenter(**NO_CHANGE)(images, np.random.default_rng(0))
    np.testing.assert_array_equal(augmented, images.astype(np.float32))


def test_same_seed_same_result_other_seed_other_result():
    images = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 1), dtype=np.uint8)
    augment = ImageAugmenter(rotation_range=20, zoom_range=0.2)
    first = augment(images, np.random.default_rng(7))
    np.testing.assert_array_equal(augment(images, np.random.default_rng(7)), first)
    assert not np.array_equal(augment(images, np.random.default_rng(8)), first)


def test_every_image_of_a_batch_gets_its_own_transform():
    images = np.repeat(np.random.default_rng(0).random((1, 16, 16, 1), np.float32), 4, axis=0)
    augmented = ImageAugmenter(rotation_range=30)(images, np.random.default_rng(0))
    assert len({augmented[index].tobytes() for index in range(4)}) == 4


@settings(max_examples=50, deadline=None)
@given(images=uint8_batches, seed=st.integers(0, 1000))
def test_values_stay_within_the_input_range(images, seed):
    augment = ImageAugmenter(rotation_range=45, width_shift_range=0.3, height_shift_range=0.3, zoom_range=0.5)
    augmented = augment(images, np.random.default_rng(seed))
    assert images.min() <= augmented.min() and augmented.max() <= images.max()


def test_each_image_is_warped_as_if_it_were_alone():
    # 300 x 300 batches are warped a few images at a time; that must not show.
    images = np.random.default_rng(0).integers(0, 256, (5, 300, 300, 1), dtype=np.uint8)
    matrices = ImageAugmenter(rotation_range=30).random_matrices(5, 300, 300, np.random.default_rng(0))
    together = warp_affine(images, matrices)
    for index in range(5):
        alone = warp_affine(images[index : index + 1], matrices[index : index + 1])
        np.testing.assert_array_equal(together[index : index + 1], alone)


def test_a_pure_shift_moves_a_pattern_by_whole_pixels():
    images = np.zeros((1, 12, 12, 1), np.uint8)
    images[0, 4:6, 5:8, 0] = [[10, 20, 30], [40, 50, 60]]
    moved = shifted(images, rows=3, columns=-2)
    expected = np.zeros_like(images, dtype=np.float32)
    expected[0, 7:9, 3:6, 0] = [[10, 20, 30], [40, 50, 60]]
    np.testing.assert_array_equal(moved, expected)


def test_a_half_pixel_shift_averages_neighbours():
    images = np.zeros((1, 1, 4, 1), np.float32)
    images[0, 0, 1, 0] = 1.0
    np.testing.assert_allclose(shifted(images, 0, 0.5)[0, 0, :, 0], [0, 0.5, 0.5, 0])


def test_nearest_fill_repeats_the_edge_and_constant_fill_is_black():
    images = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 5, 1)  # one row: 1 2 3 4 5
    np.testing.assert_array_equal(shifted(images, 0, 2)[0, 0, :, 0], [1, 1, 1, 2, 3])
    matrices = affine_matrices(1, 5, np.zeros(1), np.zeros(1), np.array([2.0]), np.ones(1))
    constant = warp_affine(images, matrices, fill_mode="constant")
    np.testing.assert_array_equal(constant[0, 0, :, 0], [0, 0, 1, 2, 3])


def test_a_quarter_turn_matches_rot90():
    images = np.random.default_rng(0).integers(0, 256, (2, 7, 7, 1), dtype=np.uint8)
    matrices = affine_matrices(7, 7, np.full(2, np.pi / 2), np.zeros(2), np.zeros(2), np.ones(2))
    turned = warp_affine(images, matrices)
    np.testing.assert_allclose(turned, np.rot90(images, k=1, axes=(1, 2)), atol=1e-3)


def test_zoom_above_1_shows_a_larger_area():
    images = np.zeros((1, 21, 21, 1), np.float32)
    images[0, 5:16, 5:16] = 1  # an 11-pixel square in the middle
    matrices = affine_matrices(21, 21, np.zeros(1), np.zeros(1), np.zeros(1), np.array([2.0]))
    zoomed_out = warp_affine(images, matrices)
    assert 0 < zoomed_out.sum() < images.sum() / 2  # the square looks smaller


def test_no_flip_by_default_and_flips_are_exact_mirrors():
    images = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 1), dtype=np.uint8)
    np.testing.assert_array_equal(ImageAugmenter(**NO_CHANGE)(images, np.random.default_rng(0)), images)
    flipped = ImageAugmenter(**NO_CHANGE, horizontal_flip=True)(images, np.random.default_rng(0))
    mirrored = [np.array_equal(out, image[:, ::-1]) for out, image in zip(flipped, images, strict=True)]
    unchanged = [np.array_equal(out, image) for out, image in zip(flipped, images, strict=True)]
    assert all(m or u for m, u in zip(mirrored, unchanged, strict=True))
    assert 0 < sum(mirrored) < 16


@pytest.mark.parametrize(
    "options",
    [dict(rotation_range=-1), dict(zoom_range=1.0), dict(width_shift_range=float("nan")), dict(fill_mode="reflect")],
)
def test_bad_settings_are_refused(options):
    with pytest.raises(ValueError):
        ImageAugmenter(**options)


# ----------------------------------------------------------------------------
# the device version: the same warp with the backend's arrays
# ----------------------------------------------------------------------------


def device_and_host(images: np.ndarray, seed: int, fill_mode: str = "nearest"):
    """(device version, host version) of the same random transforms of ``images``, both on the host."""
    from minicnn import backend
    from minicnn.data.augment import DEVICE_TOLERANCE, warp_affine_on_device

    augment = ImageAugmenter(rotation_range=30, zoom_range=0.3, horizontal_flip=True, fill_mode=fill_mode)
    count, height, width, _ = images.shape
    matrices = augment.random_matrices(count, height, width, np.random.default_rng(seed))
    device = warp_affine_on_device(images, matrices, fill_mode)
    assert DEVICE_TOLERANCE == 0.01
    return backend.to_numpy(device), warp_affine(images, matrices, fill_mode)


@pytest.mark.parametrize("fill_mode", ["nearest", "constant"])
def test_the_device_version_equals_the_host_version_within_its_tolerance(backend_name, fill_mode):
    """On NumPy and on CuPy (the `gpu` case): same transforms, the same images to 0.01 of a grey level."""
    from minicnn.data.augment import DEVICE_TOLERANCE

    images = np.random.default_rng(1).integers(0, 256, (5, 37, 29, 1), dtype=np.uint8)
    on_device, on_host = device_and_host(images, seed=2, fill_mode=fill_mode)
    assert on_device.dtype == np.float32 and on_device.shape == images.shape
    np.testing.assert_allclose(on_device, on_host, rtol=0, atol=DEVICE_TOLERANCE)
    if backend_name == "numpy":  # the same operations on the same machine: the same numbers
        np.testing.assert_array_equal(on_device, on_host)


def test_the_device_version_stays_on_the_backend_and_equals_the_host_one(monkeypatch):
    """Through the CPU stand-in for CuPy: no NumPy call on a device array, a device array back,
    and (the stand-in computes with NumPy) exactly the host version's numbers."""
    from strict_backend import StrictArray, use_strict_backend

    from minicnn import backend

    images = np.random.default_rng(3).integers(0, 256, (3, 16, 20, 2), dtype=np.uint8)
    expected = device_and_host(images, seed=4)[1]
    use_strict_backend(monkeypatch)
    augment = ImageAugmenter(rotation_range=30, zoom_range=0.3, horizontal_flip=True)
    assert augment.on_device()  # device=None: the device on any backend but NumPy
    result = augment(images, np.random.default_rng(4))
    assert type(result) is StrictArray
    scaled = rescale(result)  # rescaled on the device too
    assert type(scaled) is StrictArray and scaled.dtype == np.float32
    np.testing.assert_array_equal(backend.to_numpy(result), expected)
    host = ImageAugmenter(rotation_range=30, zoom_range=0.3, horizontal_flip=True, device=False)
    assert type(host(images, np.random.default_rng(4))) is np.ndarray


def test_on_numpy_the_default_is_the_host_version_unchanged(backend_name):
    augment = ImageAugmenter()
    assert augment.device is None and augment.on_device() is (backend_name != "numpy")
    assert "device" not in repr(augment) and "device=True" in repr(ImageAugmenter(device=True))
    images = np.random.default_rng(5).integers(0, 256, (2, 9, 9, 1), dtype=np.uint8)
    if backend_name == "numpy":
        result = augment(images, np.random.default_rng(6))
        matrices = augment.random_matrices(2, 9, 9, np.random.default_rng(6))
        assert type(result) is np.ndarray
        np.testing.assert_array_equal(result, warp_affine(images, matrices))


@pytest.mark.parametrize("device", [1, "yes", 0.0])
def test_device_must_be_a_bool_or_none(device):
    with pytest.raises(TypeError, match="device must be True, False or None"):
        ImageAugmenter(device=device)
