"""Hypothesis strategies shared by the layer tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st


@st.composite
def distinct_values(draw, shape, gap=1e-3):
    """float64 values of ``shape`` that are pairwise at least ``gap`` apart (no ties for max-pool)."""
    size = int(np.prod(shape))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    values = rng.permutation(size) * gap * 3 + rng.uniform(0, gap, size)
    return (values - values.mean()).reshape(shape)
