"""Print two OpenBLAS kernels, other than the one this machine picks, that can be forced here.

OpenBLAS (the BLAS inside NumPy's wheels) chooses its matrix-product kernels for the CPU at
start-up, and kernels add up in different orders: a float32 product can differ in its last bit
from one CPU to another. ``.ci/run`` runs the test suite once more under each kernel printed
here (``OPENBLAS_CORETYPE=<kernel>``), so that a test which only holds with the developer's
kernel fails in CI instead of on someone else's machine.

stdout: the two kernels, one per line, in the spelling threadpoolctl reports them.
stderr: which kernel this machine picks, and why each candidate was taken or left out.
Exit status 1, with the reason, when fewer than two other kernels can be forced.

A candidate is taken only if the CPU can execute it (its instruction-set flags in
/proc/cpuinfo, where that file exists) and if a fresh Python started with
``OPENBLAS_CORETYPE=<candidate>`` runs a matrix product and threadpoolctl reports exactly that
kernel as loaded (OpenBLAS falls back to its own choice, silently, for a name it does not know
or a kernel it was built without).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

# (kernel, CPU flags it needs), most recent first: the first two usable ones other than the
# machine's own are taken. The flags are the names /proc/cpuinfo uses.
CANDIDATES = {
    "x86_64": [
        ("SkylakeX", {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"}),
        ("Haswell", {"avx2", "fma"}),
        ("Sandybridge", {"avx"}),
        ("Nehalem", {"sse4_2"}),
        ("Prescott", {"pni"}),  # pni: SSE3
    ],
    "aarch64": [
        ("NEOVERSEN1", {"asimddp"}),  # Armv8.2 with the dot-product instructions
        ("CORTEXA57", set()),
        ("ARMV8", set()),
        ("NEOVERSEV1", {"sve"}),
        ("THUNDERX2T99", {"atomics"}),  # Armv8.1
    ],
}
ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}

# Run in a fresh interpreter under the forced kernel: a matrix product in float32 and float64
# (a kernel the CPU cannot execute dies here, not in the test suite), then the loaded kernel.
PROBE = """
import json
import numpy as np
from threadpoolctl import threadpool_info

a = np.arange(64 * 48, dtype=np.float64).reshape(64, 48) / 1000
for dtype in (np.float32, np.float64):
    product = a.astype(dtype) @ a.T.astype(dtype)
    assert np.allclose(product, a @ a.T, rtol=1e-5), dtype
kernels = [info.get("architecture") for info in threadpool_info() if info.get("internal_api") == "openblas"]
print(json.dumps(kernels))
"""


def loaded_kernel(coretype: str | None) -> tuple[str | None, str]:
    """(the OpenBLAS kernel a fresh Python loads with OPENBLAS_CORETYPE=coretype, or None; why not)."""
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_CORETYPE"}
    if coretype is not None:
        env["OPENBLAS_CORETYPE"] = coretype
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        return None, f"the probe failed (exit status {result.returncode}): {result.stderr.strip()[-300:]}"
    kernels = json.loads(result.stdout.strip().splitlines()[-1])
    if len(set(kernels)) != 1 or kernels[0] is None:
        return None, f"threadpoolctl reports OpenBLAS kernels {kernels}, expected exactly one"
    return kernels[0], ""


def cpu_flags() -> set[str] | None:
    """The CPU's instruction-set flags from /proc/cpuinfo (x86 'flags', Arm 'Features'); None without it."""
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        return None
    flags: set[str] = set()
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def main() -> int:
    machine = ALIASES.get(platform.machine().lower(), platform.machine().lower())
    own, why = loaded_kernel(None)
    if own is None:
        print(f"other_kernels: cannot tell which OpenBLAS kernel this machine uses: {why}", file=sys.stderr)
        return 1
    print(f"other_kernels: this {machine} machine's own OpenBLAS kernel: {own}", file=sys.stderr)
    if machine not in CANDIDATES:
        print(f"other_kernels: no list of OpenBLAS kernels for a {machine} CPU", file=sys.stderr)
        return 1
    flags = cpu_flags()
    chosen: list[str] = []
    for kernel, needs in CANDIDATES[machine]:
        if len(chosen) == 2:
            break
        if kernel.lower() == own.lower():
            continue
        if flags is not None and not needs <= flags:
            print(f"  {kernel}: left out, the CPU lacks {' '.join(sorted(needs - flags))}", file=sys.stderr)
            continue
        loaded, why = loaded_kernel(kernel)
        if loaded is None or loaded.lower() != kernel.lower():
            print(f"  {kernel}: left out, {why or f'OpenBLAS loads {loaded} instead'}", file=sys.stderr)
            continue
        print(f"  {kernel}: forced and verified", file=sys.stderr)
        chosen.append(loaded)
    if len(chosen) < 2:
        print(
            f"other_kernels: only {len(chosen)} OpenBLAS kernel(s) other than {own} could be forced here "
            f"({', '.join(chosen) or 'none'}); the suite must run under two",
            file=sys.stderr,
        )
        return 1
    print("\n".join(chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
