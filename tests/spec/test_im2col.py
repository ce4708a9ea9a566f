"""im2col copies exactly the windows; col2im_matmul is col2im of dz @ kernel.T and the adjoint of the forward."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_layers import col2im_reference, im2col_reference

from minicnn import backend
from minicnn.im2col import col2im_matmul, im2col

cases = st.fixed_dictionaries(
    {
        "n": st.integers(1, 3),
        "h": st.integers(1, 9),
        "w": st.integers(1, 9),
        "c": st.integers(1, 4),
        "kernel": st.tuples(st.integers(1, 4), st.integers(1, 4)),
        "strides": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "seed": st.integers(0, 1000),
    }
).filter(lambda d: d["kernel"][0] <= d["h"] and d["kernel"][1] <= d["w"])


@settings(max_examples=60)
@given(case=cases)
def test_im2col_equals_the_pixel_by_pixel_copy(case, backend_name):
    x = np.random.default_rng(case["seed"]).normal(size=(case["n"], case["h"], case["w"], case["c"]))
    cols = im2col(backend.to_device(x), case["kernel"], case["strides"])
    np.testing.assert_array_equal(backend.to_numpy(cols), im2col_reference(x, case["kernel"], case["strides"]))


@settings(max_examples=60)
@given(case=cases, filters=st.integers(1, 4))
def test_col2im_matmul_equals_col2im_of_the_product(case, filters, backend_name):
    rng = np.random.default_rng(case["seed"])
    x_shape = (case["n"], case["h"], case["w"], case["c"])
    kernel = rng.normal(size=(*case["kernel"], case["c"], filters))
    out_h = (case["h"] - case["kernel"][0]) // case["strides"][0] + 1
    out_w = (case["w"] - case["kernel"][1]) // case["strides"][1] + 1
    dz = rng.normal(size=(case["n"], out_h, out_w, filters))
    dcols = (dz.reshape(-1, filters) @ kernel.reshape(-1, filters).T).reshape(*dz.shape[:3], *case["kernel"], case["c"])
    expected = col2im_reference(dcols, x_shape, case["strides"])
    actual = col2im_matmul(backend.to_device(dz), backend.to_device(kernel), x_shape, case["strides"])
    np.testing.assert_allclose(backend.to_numpy(actual), expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=60)
@given(case=cases, filters=st.integers(1, 4))
def test_col2im_matmul_is_the_adjoint_of_the_convolution(case, filters, backend_name):
    """For any x and dz: sum((im2col(x) @ K) * dz) == sum(x * col2im_matmul(dz, K)), which makes backward right."""
    rng = np.random.default_rng(case["seed"])
    x = rng.normal(size=(case["n"], case["h"], case["w"], case["c"]))
    kernel = rng.normal(size=(*case["kernel"], case["c"], filters))
    cols = backend.to_numpy(im2col(backend.to_device(x), case["kernel"], case["strides"]))
    y = cols.reshape(-1, cols[0, 0, 0].size) @ kernel.reshape(-1, filters)
    dz = rng.normal(size=y.shape)
    dx = col2im_matmul(
        backend.to_device(dz.reshape(*cols.shape[:3], filters)), backend.to_device(kernel), x.shape, case["strides"]
    )
    assert np.isclose(float((y * dz).sum()), float((x * backend.to_numpy(dx)).sum()), rtol=1e-10, atol=1e-10)


def test_im2col_of_a_strided_chunk_reads_the_right_images():
    """A batch slice (as Conv2D's chunks are) is a view with the parent's strides."""
    x = np.arange(4 * 5 * 5 * 2, dtype=np.float64).reshape(4, 5, 5, 2)
    np.testing.assert_array_equal(im2col(x[1:3], (3, 3), (2, 2)), im2col_reference(x[1:3], (3, 3), (2, 2)))
