"""im2col copies exactly the windows; col2im is its adjoint (<im2col(x), g> == <x, col2im(g)>)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import backend
from minicnn.im2col import col2im, im2col
from reference_layers import im2col_reference

cases = st.fixed_dictionaries({
    "n": st.integers(1, 3), "h": st.integers(1, 9), "w": st.integers(1, 9), "c": st.integers(1, 4),
    "kernel": st.tuples(st.integers(1, 4), st.integers(1, 4)),
    "strides": st.tuples(st.integers(1, 3), st.integers(1, 3)),
    "seed": st.integers(0, 1000),
}).filter(lambda d: d["kernel"][0] <= d["h"] and d["kernel"][1] <= d["w"])


@settings(max_examples=60)
@given(case=cases)
def test_im2col_equals_the_pixel_by_pixel_copy(case, backend_name):
    x = np.random.default_rng(case["seed"]).normal(size=(case["n"], case["h"], case["w"], case["c"]))
    cols = im2col(backend.to_device(x), case["kernel"], case["strides"])
    np.testing.assert_array_equal(backend.to_numpy(cols), im2col_reference(x, case["kernel"], case["strides"]))


@settings(max_examples=60)
@given(case=cases)
def test_col2im_is_the_adjoint_of_im2col(case, backend_name):
    """For any x and g: sum(im2col(x) * g) == sum(x * col2im(g)); this is what makes backward right."""
    rng = np.random.default_rng(case["seed"])
    x = rng.normal(size=(case["n"], case["h"], case["w"], case["c"]))
    cols = im2col(backend.to_device(x), case["kernel"], case["strides"])
    g = rng.normal(size=cols.shape)
    folded = col2im(backend.to_device(g), x.shape, case["strides"])
    assert np.isclose(float((backend.to_numpy(cols) * g).sum()), float((x * backend.to_numpy(folded)).sum()),
                      rtol=1e-12, atol=1e-12)


def test_im2col_of_a_strided_chunk_reads_the_right_images():
    """A batch slice (as Conv2D's chunks are) is a view with the parent's strides."""
    x = np.arange(4 * 5 * 5 * 2, dtype=np.float64).reshape(4, 5, 5, 2)
    np.testing.assert_array_equal(im2col(x[1:3], (3, 3), (2, 2)), im2col_reference(x[1:3], (3, 3), (2, 2)))
