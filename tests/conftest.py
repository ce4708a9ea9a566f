"""Shared fixtures: the array backend(s) to test and the folder of real X-ray test data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from minicnn import backend
from minicnn.data.sample import sample_path

# Our fixtures (backend choice, float64) set process-wide state that is meant to hold for
# every example a test draws, so hypothesis's warning about function-scoped fixtures does
# not apply. Gradient checks are slow per example, so no per-example deadline either.
settings.register_profile("minicnn", suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
settings.load_profile("minicnn")

REPO_ROOT = Path(__file__).resolve().parent.parent


def _cupy_usable() -> bool:
    try:
        backend._import_cupy()
    except backend.BackendError:
        return False
    return True


def pytest_report_header(config) -> list[str]:
    """Say which matrix-product kernel this run computes with: results agree across kernels only
    to within rounding (.ci/run runs the suite under two more, OPENBLAS_CORETYPE=...)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    blas = [
        f"{info.get('internal_api')} {info.get('version')}, kernel {info.get('architecture', '?')}, "
        f"threads {info.get('num_threads')}"
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]
    forced = f" (OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']})" if os.environ.get("OPENBLAS_CORETYPE") else ""
    return [f"BLAS: {'; '.join(blas) or 'none found'}{forced}"]


BACKEND_PARAMS = [
    "numpy",
    pytest.param(
        "cupy",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not _cupy_usable(), reason="CuPy with a CUDA device is not available"),
        ],
    ),
]


@pytest.fixture(params=BACKEND_PARAMS)
def backend_name(request):
    """Run the test once per available backend; restores the previous backend afterwards."""
    previous = backend.backend_name()
    backend.set_backend(request.param)
    yield request.param
    backend.set_backend(previous)


@pytest.fixture
def float64():
    """Make new parameters float64 for the duration of a test (gradient checks need it)."""
    previous = backend.default_dtype()
    backend.set_default_dtype("float64")
    yield
    backend.set_default_dtype(previous)


@pytest.fixture(scope="session")
def xray_mini_dir() -> Path:
    """The small real X-ray sample: $MINICNN_TEST_DATA, else the one shipped in the package."""
    path = Path(os.environ["MINICNN_TEST_DATA"]) if os.environ.get("MINICNN_TEST_DATA") else sample_path()
    if not path.is_dir():
        pytest.fail(
            f"X-ray test data not found at {path}: MINICNN_TEST_DATA names a missing folder; "
            "unset it to use the sample bundled with minicnn"
        )
    return path
