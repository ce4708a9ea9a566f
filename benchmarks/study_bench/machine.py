"""Facts about the machine that the numbers depend on: CPU, vector extensions, BLAS, memory, other load."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import numpy as np

try:
    import resource  # Unix only: peak memory and the CPU time of child processes
except ImportError:  # Windows: those two columns stay empty
    resource = None


def peak_rss_bytes() -> int | None:
    """Peak resident memory of this process so far, in bytes (None where unknown)."""
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kibibytes, macOS reports bytes.
    return peak if sys.platform == "darwin" else peak * 1024


def blas_info() -> list[dict[str, Any]]:
    """Which BLAS libraries are loaded and with how many threads (needs threadpoolctl; else empty)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return _numpy_build_blas()
    keys = ("internal_api", "version", "num_threads", "architecture", "threading_layer")
    return [{key: info.get(key) for key in keys} for info in threadpool_info()]


def _numpy_build_blas() -> list[dict[str, Any]]:
    """Without threadpoolctl: the BLAS NumPy was built against (thread count unknown)."""
    try:
        config = np.show_config(mode="dicts")  # NumPy >= 1.26
        blas = config["Build Dependencies"]["blas"]
    except Exception:  # older NumPy or an unexpected layout: better no answer than a crash
        return []
    return [{"internal_api": blas.get("name"), "version": blas.get("version"), "num_threads": "?"}]


def busy_cpu_seconds() -> float | None:
    """CPU seconds spent by *all* processes since boot (Linux ``/proc/stat``); None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait is busy.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU seconds used so far by the child processes this script has waited for."""
    if resource is None:
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_description(threads: int) -> dict:
    """Facts about the machine and settings that the numbers depend on."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "vector_extensions": _vector_extensions(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "numpy": np.__version__,
    }


def _vector_extensions() -> str:
    """The SIMD extensions GEMMs and NumPy loops can use (AVX2, AVX-512 ...), from /proc/cpuinfo on Linux."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    wanted = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512F", "avx512bw": "AVX-512BW", "amx_tile": "AMX"}
    return ", ".join(name for flag, name in wanted.items() if flag in flags) or "none of AVX2/AVX-512"


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo on Linux, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
