"""Random geometric augmentation of a whole batch of images at once.

This does what Keras's ``ImageDataGenerator`` does with ``rotation_range``,
``width_shift_range``, ``height_shift_range`` and ``zoom_range``, but for a
whole batch in a few array operations instead of one image at a time:

1. draw a random angle, shift and zoom for every image;
2. turn them into one 2 x 3 affine matrix per image, which maps an *output*
   pixel (row, column) to the *source* position it is read from;
3. compute the source position of every output pixel of every image at once;
4. read the images there with bilinear interpolation (Keras's default),
   clamping positions outside the image to the nearest edge pixel.

Examples
--------
A batch of the study's size, augmented and rescaled to [0, 1] as the training loop sees it:

>>> augment = ImageAugmenter(rotation_range=10, zoom_range=0.1)
>>> rng = np.random.default_rng(0)
>>> batch = np.zeros((32, 300, 300, 1), np.uint8)
>>> rescale(augment(batch, rng)).shape
(32, 300, 300, 1)

Two ways to compute the same warp
---------------------------------
:func:`warp_affine` is the host version: NumPy, the batch cut into chunks that stay in the CPU
cache. :func:`warp_affine_on_device` does the same steps with the backend's array module ``xp``
on the whole batch at once: on ``--backend cupy`` the uint8 batch is copied to the GPU (a
quarter of the bytes of the float32 batch) and warped there, instead of by NumPy on one CPU
thread. The random angles, shifts and zooms are drawn by the same host generator either way, so
both see the same transforms; only the interpolation may round differently on another device
(a GPU may fuse a multiply and an add), by at most :data:`DEVICE_TOLERANCE` on the 0..255 scale
(tests/spec/test_augment.py compares the two, on the CPU stand-in and, where there is one, on CuPy).

Which one :class:`ImageAugmenter` uses (its ``device`` parameter): by default (``device=None``)
the host version on NumPy, so the CPU's numbers are exactly those of before, and the device
version on any other backend (CuPy). Why the device by default on a GPU: an H200 epoch took
6.4 s while its 133 steps took 2.9 s, and the augmentation, one NumPy thread for every batch,
is the first suspect; the cost is that a GPU run no longer sees *bit for bit* the CPU run's
augmented images but images within 0.01 of a grey level of them, far below the differences
that cuBLAS's and OpenBLAS's rounding already make between a GPU and a CPU run.
``ImageAugmenter(device=False)`` keeps the host version on a GPU too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minicnn import backend

DEVICE_TOLERANCE = 0.01
"""The largest difference allowed between :func:`warp_affine_on_device` and :func:`warp_affine`,
on the 0..255 scale. Why 0.01: a source position near 300 is a float32 with steps of 3e-5, so
one rounding step more or less moves the interpolation weight by 3e-5, which moves the value
by at most 3e-5 x 255 = 0.008 (also when the position falls on the other side of a whole pixel:
the weight then goes from almost 1 to almost 0, and the value is continuous across it)."""

FILL_MODES = ("nearest", "constant")
_PIXELS_PER_CHUNK = 2**18


def rescale(images: Any) -> Any:
    """Turn images on the 0..255 scale into float32 values in [0, 1].

    Parameters
    ----------
    images : numpy.ndarray, or an array of the backend
        Any shape: uint8, or float32 on the 0..255 scale (e.g. the output of
        :class:`ImageAugmenter`). A device array (the output of the device version) is
        rescaled on the device.

    Returns
    -------
    numpy.ndarray, or an array of the backend
        ``images / 255`` as float32, of the shape of ``images``, computed in float32
        in one pass: no float64 copy is ever made, and the input is left untouched.
    """
    xp = np if type(images) is np.ndarray else backend.array_module()  # a host array stays on the host
    return xp.multiply(images, np.float32(1 / 255), dtype=np.float32)


class ImageAugmenter:
    """Random rotation, shift, zoom and (optionally) horizontal flip of image batches.

    Parameters
    ----------
    rotation_range : float
        Angles are drawn uniformly in [-rotation_range, +rotation_range] degrees.
    width_shift_range, height_shift_range : float
        Shifts are drawn uniformly in [-range, +range] times the image width / height.
    zoom_range : float
        One zoom factor per image, drawn uniformly in [1 - zoom_range, 1 + zoom_range]
        and used for both axes (Keras draws the two axes separately, which also
        stretches). As in Keras, a factor above 1 reads a larger area, so the
        content looks smaller.
    horizontal_flip : bool
        Mirror half of the images left to right. Off by default: a chest X-ray
        is not left-right symmetric (the heart is on the left).
    fill_mode : str, one of {"nearest", "constant"}, default "nearest"
        What to read outside the image: the nearest edge pixel, or 0 (black).
    device : bool or None, default None
        Where the warp is computed. True: :func:`warp_affine_on_device` (the backend's arrays;
        on CuPy the GPU), returning a backend array. False: :func:`warp_affine` (NumPy on the
        host), returning a NumPy array. None: the host on the NumPy backend, the device on any
        other (the module docstring says why). The transforms drawn are the same either way.

    Raises
    ------
    ValueError
        A negative range, a ``zoom_range`` of 1 or more, or an unknown ``fill_mode``.
    TypeError
        ``device`` is not True, False or None.
    """

    def __init__(
        self,
        rotation_range: float = 10.0,
        width_shift_range: float = 0.1,
        height_shift_range: float = 0.1,
        zoom_range: float = 0.1,
        horizontal_flip: bool = False,
        fill_mode: str = "nearest",
        device: bool | None = None,
    ) -> None:
        if device is not None and type(device) is not bool:
            raise TypeError(f"ImageAugmenter: device must be True, False or None, got {device!r}")
        ranges = {
            "rotation_range": rotation_range,
            "width_shift_range": width_shift_range,
            "height_shift_range": height_shift_range,
            "zoom_range": zoom_range,
        }
        for name, value in ranges.items():
            if not value >= 0:  # also rejects NaN
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if zoom_range >= 1:
            raise ValueError(f"zoom_range must be < 1 (zoom 0 is undefined), got {zoom_range}")
        if fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
        self.rotation_range = float(rotation_range)
        self.width_shift_range = float(width_shift_range)
        self.height_shift_range = float(height_shift_range)
        self.zoom_range = float(zoom_range)
        self.horizontal_flip = bool(horizontal_flip)
        self.fill_mode = fill_mode
        self.device = device

    def on_device(self) -> bool:
        """True when the next call warps with the backend's arrays: ``device``, or when None,
        whether the active backend is other than NumPy."""
        return self.device if self.device is not None else backend.backend_name() != "numpy"

    def __repr__(self) -> str:
        return (
            f"ImageAugmenter(rotation_range={self.rotation_range}, "
            f"width_shift_range={self.width_shift_range}, "
            f"height_shift_range={self.height_shift_range}, zoom_range={self.zoom_range}, "
            f"horizontal_flip={self.horizontal_flip}, fill_mode={self.fill_mode!r}"
            + ("" if self.device is None else f", device={self.device}")
            + ")"
        )

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> Any:
        """Augment a batch; every image gets its own random transform.

        Parameters
        ----------
        images : numpy.ndarray of shape (N, H, W, C)
            uint8 or float32 images, on the host.
        rng : numpy.random.Generator
            The only source of randomness: the same seed gives the same batch.

        Returns
        -------
        numpy.ndarray (host) or backend array (:meth:`on_device`) of shape (N, H, W, C), float32
            On the same value scale as ``images`` (0..255 stays 0..255). For [0, 1],
            call :func:`rescale` before or after.
        """
        count, height, width, _ = images.shape
        matrices = self.random_matrices(count, height, width, rng)  # drawn on the host either way
        if self.on_device():
            return warp_affine_on_device(images, matrices, self.fill_mode)
        return warp_affine(images, matrices, self.fill_mode)

    def random_matrices(self, count: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """Draw one random output-to-source affine matrix per image.

        Parameters
        ----------
        count : int
            How many images (matrices).
        height, width : int
            The image size, in pixels.
        rng : numpy.random.Generator
            Where the angles, shifts, zooms and flips come from.

        Returns
        -------
        numpy.ndarray of shape (count, 2, 3), float64
            ``source (row, col) = matrix[:, :2] @ (row, col) + matrix[:, 2]``.
        """
        # Always draw every parameter, so the random stream (and so every
        # other image) does not change when one range is set to 0.
        angles = np.deg2rad(rng.uniform(-self.rotation_range, self.rotation_range, count))
        row_shifts = rng.uniform(-self.height_shift_range, self.height_shift_range, count) * height
        column_shifts = rng.uniform(-self.width_shift_range, self.width_shift_range, count) * width
        zooms = rng.uniform(1 - self.zoom_range, 1 + self.zoom_range, count)
        flips = rng.random(count) < 0.5
        flip_signs = np.where(flips & self.horizontal_flip, -1.0, 1.0)
        return affine_matrices(height, width, angles, row_shifts, column_shifts, zooms, flip_signs)


def affine_matrices(
    height: int,
    width: int,
    angles: np.ndarray,
    row_shifts: np.ndarray,
    column_shifts: np.ndarray,
    zooms: np.ndarray,
    flip_signs: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Build output-to-source matrices for rotations and zooms about the image centre.

    Parameters
    ----------
    height, width : int
        The image size, in pixels.
    angles : numpy.ndarray of shape (N,)
        In radians; positive turns the content counter-clockwise on screen.
    row_shifts, column_shifts : numpy.ndarray of shape (N,)
        In pixels; positive moves the content down / right.
    zooms : numpy.ndarray of shape (N,)
        Source pixels per output pixel (above 1 shows a larger area).
    flip_signs : numpy.ndarray of shape (N,) or float, default 1.0
        -1 mirrors left to right, 1 leaves the image as it is.

    Returns
    -------
    numpy.ndarray of shape (N, 2, 3), float64
        Output-to-source matrices for :func:`warp_affine`.
    """
    cos, sin = np.cos(angles) * zooms, np.sin(angles) * zooms
    flip_signs = np.broadcast_to(np.asarray(flip_signs, dtype=np.float64), np.shape(angles))
    # Rows grow downwards, so (row, col) axes are a mirror image of (x, y):
    # this rotation in (row, col) turns the picture counter-clockwise.
    linear = np.empty((len(angles), 2, 2))
    linear[:, 0, 0], linear[:, 0, 1] = cos, sin * flip_signs
    linear[:, 1, 0], linear[:, 1, 1] = -sin, cos * flip_signs
    # source = centre + linear @ (output - centre - shift): rotate and zoom
    # about the centre, after moving the content by the shift.
    centre = np.array([(height - 1) / 2, (width - 1) / 2])
    shifted_centre = centre + np.stack([row_shifts, column_shifts], axis=1)
    offsets = centre - np.einsum("nij,nj->ni", linear, shifted_centre)
    return np.concatenate([linear, offsets[:, :, None]], axis=2)


def warp_affine(images: np.ndarray, matrices: np.ndarray, fill_mode: str = "nearest") -> np.ndarray:
    """Resample every image through its own affine matrix, with bilinear interpolation.

    Parameters
    ----------
    images : numpy.ndarray of shape (N, H, W, C)
        uint8 or float32 images.
    matrices : array_like of shape (N, 2, 3)
        Output-to-source maps: output pixel (r, c) reads the source at
        ``matrices[n, :, :2] @ (r, c) + matrices[n, :, 2]``.
    fill_mode : str, one of {"nearest", "constant"}, default "nearest"
        Sources outside the image read the nearest edge pixel, or 0.

    Returns
    -------
    numpy.ndarray of shape (N, H, W, C), float32
        Each value is a weighted mean of 4 input pixels, so it never leaves the
        input's [min, max] range (with "constant", 0 joins the range).
    """
    count, height, width, _ = images.shape
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.shape != (count, 2, 3):
        raise ValueError(f"need one 2 x 3 matrix per image: {count} images, {matrices.shape}")
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
    result = np.empty(images.shape, dtype=np.float32)
    # Each chunk is warped in one vectorised pass, but the batch is cut into
    # chunks of about 2**18 pixels (two 300 x 300 images): the dozen temporary
    # arrays of a chunk then stay in the CPU cache and are reused by the
    # memory allocator. Measured on 32 x 300 x 300: 2-3 times faster than one
    # pass over the whole batch, whose temporaries add up to ~300 MB.
    images_per_chunk = max(1, _PIXELS_PER_CHUNK // (height * width))
    for start in range(0, count, images_per_chunk):
        chunk = slice(start, start + images_per_chunk)
        result[chunk] = _warp_chunk(images[chunk], matrices[chunk], fill_mode)
    return result


def _warp_chunk(images: np.ndarray, matrices: np.ndarray, fill_mode: str) -> np.ndarray:
    """:func:`warp_affine` for a few images at once, all in one vectorised pass."""
    count, height, width, channels = images.shape
    source_rows, source_columns = _source_positions(matrices, height, width)
    outside = _outside(source_rows, source_columns, height, width) if fill_mode == "constant" else None
    # Clamping the position to the image is exactly "nearest" filling: the
    # interpolation then reads the edge pixel for anything beyond the edge.
    np.clip(source_rows, 0, height - 1, out=source_rows)
    np.clip(source_columns, 0, width - 1, out=source_columns)

    # Split every position into its top-left neighbour and the fraction past
    # it (0 <= weight < 1). Done in place, to make fewer temporary arrays.
    top, left = np.floor(source_rows), np.floor(source_columns)
    row_weights = np.subtract(source_rows, top, out=source_rows)[..., None]
    column_weights = np.subtract(source_columns, left, out=source_columns)[..., None]
    # Flat index of the neighbour; top * width + left is exact in float32 for
    # images of up to 2**24 pixels.
    top *= width
    top += left
    index = top.astype(np.intp).reshape(count, height * width)
    index += np.arange(count).reshape(count, 1) * (height * width)
    index = index.reshape(-1)

    # One flat (N*H*W, C) table of pixels, so that the four neighbours of
    # flat pixel i are i, i+1, i+W, i+W+1: read as offset views, with no index
    # arithmetic. A position on the last row or column has weight 0 towards
    # its lower/right neighbour, which then lies in the next row, next image
    # or the zero padding, and contributes nothing. The table keeps the input
    # dtype, as gathering uint8 moves a quarter of the bytes of float32.
    # Indices are in range by construction; mode="clip" only skips NumPy's
    # slower bounds checking.
    pixel_count = count * height * width
    pixels = np.zeros((pixel_count + width + 1, channels), dtype=images.dtype)
    pixels[:pixel_count] = images.reshape(pixel_count, channels)
    shape = (count, height, width, channels)
    top_left = pixels.take(index, axis=0, mode="clip").reshape(shape)
    top_right = pixels[1:].take(index, axis=0, mode="clip").reshape(shape)
    bottom_left = pixels[width:].take(index, axis=0, mode="clip").reshape(shape)
    bottom_right = pixels[width + 1 :].take(index, axis=0, mode="clip").reshape(shape)

    # Linear interpolation written as a + (b - a) * t, which stays within
    # [a, b] in float32, unlike a * (1 - t) + b * t.
    upper = _lerp(top_left, top_right, column_weights)
    lower = _lerp(bottom_left, bottom_right, column_weights)
    result = _lerp(upper, lower, row_weights)
    if outside is not None:
        result[outside] = 0
    return result


def _source_positions(matrices: Any, height: int, width: int, xp: Any = np) -> tuple[Any, Any]:
    """Source row and column of every output pixel: two (N, H, W) float32 arrays of module ``xp``."""
    rows = xp.arange(height, dtype=xp.float64)
    columns = xp.arange(width, dtype=xp.float64)
    positions = []
    for axis in range(2):
        # The row term varies along H and the column term along W, so the
        # full (N, H, W) array is made by one broadcast addition.
        row_part = matrices[:, axis, 0, None] * rows + matrices[:, axis, 2, None]
        column_part = matrices[:, axis, 1, None] * columns
        positions.append(xp.add(row_part[:, :, None], column_part[:, None, :], dtype=xp.float32))
    return positions[0], positions[1]


def _outside(source_rows: Any, source_columns: Any, height: int, width: int) -> Any:
    """(N, H, W) bool: the output pixels whose source lies beyond the image (set to 0 for "constant")."""
    return (
        (source_rows < -0.5) | (source_rows > height - 0.5) | (source_columns < -0.5) | (source_columns > width - 0.5)
    )


def _lerp(start: Any, end: Any, weight: Any, xp: Any = np) -> Any:
    """``start + (end - start) * weight`` as a new float32 array of module ``xp``, whatever the input dtype."""
    result = xp.subtract(end, start, dtype=xp.float32)
    result *= weight
    result += start
    return result


def warp_affine_on_device(images: Any, matrices: Any, fill_mode: str = "nearest") -> Any:
    """:func:`warp_affine` computed with the backend's array module, on the whole batch at once.

    The same steps as :func:`warp_affine` (its plain twin, which the tests compare it with):
    source position of every output pixel, clamped for "nearest", split into the top-left
    neighbour and the fraction past it, four neighbours read from one flat pixel table, two
    linear interpolations along the columns and one along the rows. No chunks: a GPU has the
    memory for the whole batch's temporaries (about 300 MB at 32 x 300 x 300) and gains from
    few, large kernels.

    Parameters
    ----------
    images : numpy.ndarray or backend array of shape (N, H, W, C)
        uint8 or float32 images; a host array is copied to the device as it is (uint8 stays uint8,
        a quarter of the bytes of float32).
    matrices : array_like of shape (N, 2, 3)
        Output-to-source maps, as for :func:`warp_affine` (host or device).
    fill_mode : str, one of {"nearest", "constant"}, default "nearest"
        Sources outside the image read the nearest edge pixel, or 0.

    Returns
    -------
    backend array of shape (N, H, W, C), float32
        Within :data:`DEVICE_TOLERANCE` of ``warp_affine(images, matrices, fill_mode)``.
    """
    xp = backend.array_module()
    count, height, width, channels = images.shape
    if not hasattr(matrices, "get"):  # a host array or a list (a device array has .get, CuPy's way home)
        matrices = np.asarray(matrices, dtype=np.float64)
    if tuple(matrices.shape) != (count, 2, 3):
        raise ValueError(f"need one 2 x 3 matrix per image: {count} images, {tuple(matrices.shape)}")
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
    images = backend.to_device(images)
    matrices = backend.to_device(matrices, dtype="float64")

    # Source positions (N, H, W), float32, as warp_affine computes them.
    source_rows, source_columns = _source_positions(matrices, height, width, xp)
    outside = _outside(source_rows, source_columns, height, width) if fill_mode == "constant" else None
    source_rows = xp.clip(source_rows, 0, height - 1)  # clamping = "nearest" filling
    source_columns = xp.clip(source_columns, 0, width - 1)

    top, left = xp.floor(source_rows), xp.floor(source_columns)
    row_weights = (source_rows - top)[..., None]  # (N, H, W, 1), 0 <= weight < 1
    column_weights = (source_columns - left)[..., None]
    index = (top * width + left).astype(xp.int64).reshape(count, height * width)
    index = (index + xp.arange(count, dtype=xp.int64).reshape(count, 1) * (height * width)).reshape(-1)

    # The flat (N*H*W + W + 1, C) pixel table of warp_affine: neighbours i, i+1, i+W, i+W+1.
    pixel_count = count * height * width
    pixels = xp.zeros((pixel_count + width + 1, channels), dtype=images.dtype)
    pixels[:pixel_count] = images.reshape(pixel_count, channels)
    shape = (count, height, width, channels)
    top_left = pixels[index].reshape(shape)
    top_right = pixels[1:][index].reshape(shape)
    bottom_left = pixels[width:][index].reshape(shape)
    bottom_right = pixels[width + 1 :][index].reshape(shape)

    upper = _lerp(top_left, top_right, column_weights, xp)
    lower = _lerp(bottom_left, bottom_right, column_weights, xp)
    result = _lerp(upper, lower, row_weights, xp)
    if outside is not None:
        result[outside] = 0
    return result
