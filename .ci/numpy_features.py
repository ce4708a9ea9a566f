"""Print the SIMD features NumPy dispatches to on this CPU, as NPY_DISABLE_CPU_FEATURES takes them.

NumPy's wheels carry several builds of some loops (exp, log, sin, ... for AVX2, AVX-512 on x86;
for newer Arm extensions), and picks one for the CPU at start-up; they can round differently in
the last bit: on this project's development machine np.exp of a float64 array differs with
AVX-512 and without. ``.ci/run`` switches all of them off for one of its extra test runs
(``NPY_DISABLE_CPU_FEATURES="$(python .ci/numpy_features.py)"``), so that NumPy computes with
its baseline code, as on a CPU older than the developer's. Prints an empty line when NumPy
has no dispatched feature to switch off on this CPU.
"""

from __future__ import annotations

try:  # NumPy 2
    from numpy._core import _multiarray_umath
except ImportError:  # NumPy 1
    from numpy.core import _multiarray_umath

available = _multiarray_umath.__cpu_features__
print(" ".join(name for name in _multiarray_umath.__cpu_dispatch__ if available.get(name)))
