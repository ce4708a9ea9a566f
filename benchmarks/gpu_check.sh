#!/usr/bin/env bash
# Prove minicnn's GPU path in two prepared commands, for a GPU machine lent for a few minutes.
#
#   bash benchmarks/gpu_check.sh --data DIR --stage breakdown  # call 1: about 3 minutes
#   bash benchmarks/gpu_check.sh --data DIR --stage study      # call 2: about 8 minutes
#   bash benchmarks/gpu_check.sh --data DIR --stage checks     # the older first call (tests, benchmark)
#   bash benchmarks/gpu_check.sh --data DIR --stage breakdown --dry-run   # the same on a CPU, tiny sizes
#   bash benchmarks/gpu_check.sh --data DIR --dry-run          # the dry runs of breakdown and study
#
# breakdown: install, the GPU test cases, the study's model beside PyTorch (bench_study_model.py),
#         then benchmarks/epoch_time.py: the epoch taken apart (--profile), the plain epoch beside
#         the median step for every prepared option (host or device augmentation, dropout masks on
#         the device, TF32), and finally the RULE below picks the study's settings from those
#         figures and writes them into defaults.env (in $OUT, and beside it for the study stage).
#
# checks: install minicnn without network, run the test suite's GPU cases (CuPy) and count them, time
#         the study's model at batch 32, 300x300 with minicnn on CuPy beside PyTorch on CUDA
#         (benchmarks/bench_study_model.py --backend cupy), time steps on the real data with and
#         without prefetching (benchmarks/epoch_time.py), then run the rest of the suite.
# study:  train the study's recipe (300x300, up to 60 epochs, --backend cupy) on DIR within a time
#         budget; when it runs out, training stops cleanly, the test split is still evaluated and
#         metrics.json says "partial" with the number of epochs done.
#
# Everything worth keeping lands in $OUT (else --out DIR, else a new temporary folder): at most
# 8 files, no folders, each far below 16 MiB (what a lent GPU machine brings back). The training
# folder itself, with its checkpoints (~200 MB), stays outside $OUT and is deleted at the end.
#
# THE RULE (written before any GPU has run it; the breakdown stage applies it, the study uses it):
#   augmentation   the library's default on CuPy is the device (ImageAugmenter(device=None)). The
#                  study keeps it if the GPU cases of tests/spec/test_augment.py passed and the host
#                  augmentation's plain epoch is not 5 % shorter; else AUGMENT=host.
#   dropout masks  on the device (DROPOUT_MASKS=device) if its median step is at least 5 % shorter
#                  than the baseline's, and the GPU cases of tests/spec/test_dropout.py passed; else host.
#   TF32           on (TF32=1) if its median step is at least 10 % shorter than the baseline's and its
#                  epoch's training loss is within 2 % of the baseline's; else off.
# Each line of defaults.env says which figures decided it. Without a breakdown on this machine the
# study uses the library's defaults (AUGMENT=default DROPOUT_MASKS=host TF32=0), or --defaults FILE.
#
# --dry-run runs every command of the stage exactly as on the GPU except that the backend is NumPy
# and the sizes are tiny (1 epoch at 64x64 on a few images, 1 benchmark step, a few test files);
# it prints the install step instead of running it. tests/scripts/test_gpu_check.py runs it.
# benchmarks/README.md ("On a GPU") and docs/gpu.md say how to run this on a lent machine.
#
# The stages are called by name ("${STAGE}_stage"), which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bash benchmarks/gpu_check.sh --data DIR --stage breakdown|study|checks [--dry-run] [--out DIR]
                                   [--time-budget SECONDS] [--keep] [--defaults FILE]
       bash benchmarks/gpu_check.sh --data DIR --dry-run      (breakdown and study, into OUT/breakdown and OUT/study)

  --data DIR             chest X-ray folder (CoronaHack or Kermany layout), e.g. data/coronahack
  --stage breakdown|study|checks
                         breakdown: GPU tests, benchmark, the epoch taken apart and every prepared
                                    option side by side; picks the study's settings (about 3 min)
                         study:  train the study on DIR with --backend cupy in a time budget (under 9 min)
                         checks: install, test suite with GPU cases, benchmark (under 3 min)
  --dry-run              NumPy instead of CuPy/CUDA and tiny sizes, for a machine without a GPU;
                         the install step is printed, not run. Without --stage: both stages
  --out DIR              where the results go (default: $OUT, else a new temporary folder)
  --time-budget SECONDS  study: wall-clock training budget (default 480: the whole recipe on an H200)
  --keep                 study: keep the training folder (checkpoints) instead of deleting it
  --defaults FILE        study: the settings to train with (a breakdown's defaults.env); default: the
                         one the breakdown stage left on this machine, else the library's defaults

Run it from the repository root. The Python used is $PYTHON, else .venv/bin/python if present,
else python3.
EOF
}

fail_usage() {
    echo "error: $1" >&2
    echo "(bash benchmarks/gpu_check.sh --help for usage)" >&2
    exit 2
}

# ---------------------------------------------------------------------------------------- settings
# Time limits of each step, in seconds. They only cut off a step that hangs or runs far over: a
# normal checks stage needs well under 3 minutes, and whatever a cut-off step printed is kept.
# The order puts what only a GPU can tell first: the CPU-only tests run last, as they run in CI anyway.
INSTALL_LIMIT=60
GPU_TESTS_LIMIT=75
BENCH_LIMIT=80
BENCH_FRAMEWORK_LIMIT=40  # each of the benchmark's two rows runs in its own process
EPOCH_TIME_LIMIT=60  # decoding the train split twice, then 2 x 40 steps on the real data
OTHER_TESTS_LIMIT=50
# The breakdown's three runs of epoch_time.py: each loads the data (decoded once, then cached),
# warms up, and runs one epoch (about 6 s on an H200) per variant, plus 20 steps for the median.
EPOCH_PROFILE_LIMIT=45
EPOCH_PLAIN_LIMIT=90
EPOCH_TF32_LIMIT=50
# The study stage: the training budget, plus time for loading the data, the last epoch's validation
# and checkpoint, the test evaluation and the plots: 16 s on an H200, where a 270 s budget gave a
# 286 s stage. 480 s holds the study's 60 epochs there (6.7 s each at c8d1b4a, docs/results/gpu.md),
# and 480 + 100 s stays under a lent machine's 10 minutes per command.
DEFAULT_TIME_BUDGET=480
STUDY_SLACK=100

# What comes back from a lent machine: at most this many files, each at most this many bytes.
MAX_FILES=8
MAX_FILE_BYTES=$((16 * 1024 * 1024))

# ----------------------------------------------------------------------------------- command line
DATA=""
STAGE=""
DRY_RUN=0
OUT_DIR=""
TIME_BUDGET=""
KEEP=0
DEFAULTS_FILE=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --data) [[ $# -ge 2 ]] || fail_usage "--data needs a folder"; DATA="$2"; shift 2 ;;
        --stage) [[ $# -ge 2 ]] || fail_usage "--stage needs checks or study"; STAGE="$2"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        --out) [[ $# -ge 2 ]] || fail_usage "--out needs a folder"; OUT_DIR="$2"; shift 2 ;;
        --time-budget) [[ $# -ge 2 ]] || fail_usage "--time-budget needs seconds"; TIME_BUDGET="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --defaults) [[ $# -ge 2 ]] || fail_usage "--defaults needs a file"; DEFAULTS_FILE="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) fail_usage "unknown argument '$1'" ;;
    esac
done

# A GPU run must name its stage (both do not fit into one 10-minute command); a dry run may do both.
[[ -n "$STAGE" || $DRY_RUN -eq 1 ]] || fail_usage "--stage breakdown|study|checks is required"
[[ -z "$STAGE" || "$STAGE" == "checks" || "$STAGE" == "study" || "$STAGE" == "breakdown" ]] \
    || fail_usage "--stage must be breakdown, study or checks, not '$STAGE'"
[[ -n "$DATA" ]] || fail_usage "--data DIR is required"
[[ -d "$DATA" ]] || fail_usage "--data $DATA: no such folder (on a GPU machine: see benchmarks/README.md)"
[[ -d "$DATA/train" && -d "$DATA/test" ]] || fail_usage "--data $DATA: expected train/ and test/ inside it"
[[ -f pyproject.toml && -f benchmarks/gpu_check.sh ]] || fail_usage "run this from the repository root"
if [[ -n "$TIME_BUDGET" ]]; then
    [[ "$STAGE" != "checks" && "$STAGE" != "breakdown" ]] || fail_usage "--time-budget is for --stage study"
    [[ "$TIME_BUDGET" =~ ^[1-9][0-9]*$ ]] \
        || fail_usage "--time-budget must be whole seconds, at least 1, not '$TIME_BUDGET'"
fi

if [[ -n "$DEFAULTS_FILE" ]]; then
    [[ "$STAGE" == "study" ]] || fail_usage "--defaults is for --stage study"
    [[ -f "$DEFAULTS_FILE" ]] || fail_usage "--defaults $DEFAULTS_FILE: no such file"
    DEFAULTS_FILE="$(cd "$(dirname "$DEFAULTS_FILE")" && pwd -P)/$(basename "$DEFAULTS_FILE")"
fi
# Where the breakdown leaves its defaults for a study stage on the same machine (outside $OUT).
HANDOVER_DEFAULTS="${TMPDIR:-/tmp}/minicnn-gpu-defaults.env"

REPO_ROOT="$(pwd -P)"
if [[ -n "${PYTHON:-}" ]]; then
    :
elif [[ -x .venv/bin/python ]]; then
    PYTHON=.venv/bin/python
else
    PYTHON=python3
fi
command -v "$PYTHON" >/dev/null || fail_usage "no Python at '$PYTHON' (set PYTHON=/path/to/python)"
if [[ "$PYTHON" == */* && "$PYTHON" != /* ]]; then
    PYTHON="$REPO_ROOT/$PYTHON"  # a relative path must still work from another folder
fi

if [[ -n "$OUT_DIR" ]]; then
    mkdir -p "$OUT_DIR"
elif [[ -n "${OUT:-}" ]]; then
    OUT_DIR="$OUT"
    mkdir -p "$OUT_DIR"
else
    OUT_DIR="$(mktemp -d "${TMPDIR:-/tmp}/minicnn-gpu-check.XXXXXX")"
    echo "note: \$OUT is not set; writing the results into $OUT_DIR" >&2
fi
OUT_DIR="$(cd "$OUT_DIR" && pwd -P)"

if [[ -z "$STAGE" ]]; then
    # --dry-run without --stage: both calls, one after the other, each into its own folder (each
    # must stay within the 8 files that a GPU machine brings back).
    status=0
    for stage in breakdown study; do
        options=(--data "$DATA" --stage "$stage" --dry-run --out "$OUT_DIR/$stage")
        [[ $stage == study && -n "$TIME_BUDGET" ]] && options+=(--time-budget "$TIME_BUDGET")
        [[ $KEEP -eq 1 ]] && options+=(--keep)
        PYTHON="$PYTHON" bash "$0" "${options[@]}" || status=$?
    done
    if [[ $status -eq 0 ]]; then
        echo "dry run of both stages: OK (results in $OUT_DIR/breakdown and $OUT_DIR/study)"
    else
        echo "dry run of both stages: FAILED (see $OUT_DIR/breakdown and $OUT_DIR/study)"
    fi
    exit "$status"
fi

# The sizes and the backend: the only things --dry-run changes.
if [[ $DRY_RUN -eq 1 ]]; then
    BACKEND=numpy
    IMAGE_SIZE=64
    EPOCHS=1
    LIMIT_ARGS=(--limit 12)  # a few images of each split, both classes
    BENCH_STEPS=(--steps 1 --warmup 0)
    EPOCH_STEPS=(--steps 2 --median-steps 1 --batch-size 8)
    EPOCH_ARGS=(--steps 2 --median-steps 1 --batch-size 8)  # breakdown: a 2-batch epoch
    PROFILE_ARGS=(--steps 2 --batch-size 8)
    # A few test files, with GPU cases among them (they skip on a CPU), never tests/scripts/test_gpu_check.py.
    TEST_SELECTION=(tests/spec/test_im2col.py tests/spec/test_backend.py)
    BREAKDOWN_TESTS=(tests/spec/test_augment.py tests/spec/test_dropout.py)  # the GPU cases the rule asks about
    TIME_BUDGET="${TIME_BUDGET:-120}"
else
    BACKEND=cupy
    IMAGE_SIZE=300
    EPOCHS=60
    LIMIT_ARGS=()
    BENCH_STEPS=(--steps 5 --warmup 2)
    EPOCH_STEPS=(--steps 40)
    EPOCH_ARGS=(--median-steps 20)  # breakdown: whole epochs (133 steps, validation included)
    PROFILE_ARGS=(--steps 40)  # the parts' shares need no whole epoch
    # The whole suite (tests/ and docs/, pyproject's testpaths) but this script's own dry-run test,
    # which would only repeat on the GPU machine what this command does for real.
    TEST_SELECTION=(--ignore=tests/scripts/test_gpu_check.py)
    BREAKDOWN_TESTS=(tests docs --ignore=tests/scripts/test_gpu_check.py)
    TIME_BUDGET="${TIME_BUDGET:-$DEFAULT_TIME_BUDGET}"
fi

# ---------------------------------------------------------------------------------------- helpers
FAILURES=()
STUDY_WORK=""

say() { printf '\n=== %s\n' "$*"; }

show_command() { printf '+'; printf ' %q' "$@"; printf '\n'; }

# run_step NAME COMMAND...: run it, show it, and record a failure instead of stopping the stage,
# so that every later step still runs and everything written so far still comes back.
run_step() {
    local name="$1"
    shift
    show_command "$@"
    local started=$SECONDS status=0
    "$@" || status=$?
    echo "($name: exit $status after $((SECONDS - started)) s)"
    if [[ $status -ne 0 ]]; then
        FAILURES+=("$name (exit $status)")
    fi
    return 0
}

environment_report() {
    {
        echo "date: $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
        echo "stage: $STAGE$([[ $DRY_RUN -eq 1 ]] && echo ' (dry run)')"
        if git rev-parse HEAD >/dev/null 2>&1; then
            echo "commit: $(git rev-parse HEAD), $(git status --porcelain | wc -l | tr -d ' ') files changed since"
        else
            echo "commit: unknown (not a git checkout)"
        fi
        echo "host: $(uname -srm), $(nproc) CPUs"
        echo "python: $PYTHON ($("$PYTHON" -c 'import sys; print(sys.version.split()[0])'))"
        echo
        echo "--- nvidia-smi"
        if command -v nvidia-smi >/dev/null; then
            nvidia-smi 2>&1 || true
        else
            echo "nvidia-smi: not found (no NVIDIA driver on this machine)"
        fi
        echo
        echo "--- packages and the CuPy backend"
        "$PYTHON" - <<'PY' 2>&1 || true
import importlib.metadata as metadata

for name in ("numpy", "cupy-cuda13x", "cupy-cuda12x", "torch", "pandas", "pillow", "matplotlib", "tqdm",
             "pytest", "pytest-xdist", "hypothesis", "setuptools", "minicnn"):
    try:
        print(f"{name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(f"{name}: not installed")

def ask(question):
    """The answer, or the error, as text: one missing piece must not hide the others."""
    try:
        return question()
    except Exception as error:
        return f"{type(error).__name__}: {error}"


try:
    import cupy
except Exception as error:  # not installed: say so and go on
    print(f"cupy: {type(error).__name__}: {error}")
else:
    runtime = cupy.cuda.runtime
    print(f"cupy {cupy.__version__}: CUDA runtime {ask(runtime.runtimeGetVersion)}, "
          f"driver {ask(runtime.driverGetVersion)} (13000 = CUDA 13.0), {ask(runtime.getDeviceCount)} device(s)")
    count = ask(runtime.getDeviceCount)
    for index in range(count if isinstance(count, int) else 0):
        properties = runtime.getDeviceProperties(index)
        print(f"  device {index}: {properties['name'].decode()}, compute capability "
              f"{properties['major']}.{properties['minor']}, {properties['totalGlobalMem'] / 2**30:.1f} GiB")
try:
    import minicnn
    from minicnn import backend

    backend.set_backend("cupy")
    print(f"minicnn backend 'cupy': usable ({minicnn.__file__})")
except Exception as error:
    print(f"minicnn backend 'cupy': not usable: {error}")
PY
    } >"$OUT_DIR/environment.txt"
    sed -n '1,6p' "$OUT_DIR/environment.txt"
    grep -E "^(cupy|minicnn backend|  device)" "$OUT_DIR/environment.txt" || true
}

install_minicnn() {
    # No network on a lent machine: no index, no isolated build environment (pip would download
    # setuptools into it), no dependencies (numpy, pandas, ... are already there).
    local command=("$PYTHON" -m pip install --no-index --no-deps --no-build-isolation --disable-pip-version-check
                   --quiet -e .)
    if [[ $DRY_RUN -eq 1 ]]; then
        echo "dry run: the install step is not run; on the GPU machine it is:"
        show_command "${command[@]}"
    else
        show_command "${command[@]}"
        if ! timeout "$INSTALL_LIMIT" "${command[@]}"; then
            echo "WARNING: the install failed; using this checkout through PYTHONPATH instead"
        fi
    fi
    # Whatever happened, the tests and scripts must import the minicnn of *this* checkout.
    local found
    found="$(cd / && "$PYTHON" -c 'import minicnn, os; print(os.path.dirname(os.path.dirname(
        os.path.realpath(minicnn.__file__))))' 2>/dev/null || true)"
    if [[ "$found" != "$REPO_ROOT" ]]; then
        echo "note: '$PYTHON' imports minicnn from '${found:-nowhere}', not from $REPO_ROOT: setting PYTHONPATH"
        export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
    fi
}

# count_tests JUNIT_XML WHAT: print how many test cases passed, failed and were skipped (and why).
count_tests() {
    "$PYTHON" - "$1" "$2" <<'PY'
import sys
import xml.etree.ElementTree as ElementTree
from collections import Counter

path, what = sys.argv[1], sys.argv[2]
try:
    cases = list(ElementTree.parse(path).getroot().iter("testcase"))
except (OSError, ElementTree.ParseError) as error:
    print(f"{what}: no report ({error})")
    sys.exit(0)
outcomes, skip_reasons = Counter(), Counter()
for case in cases:
    kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
    outcome = kinds[0] if kinds else "passed"
    outcomes[outcome] += 1
    if outcome == "skipped":
        skip_reasons[case.find("skipped").get("message", "")] += 1
print(f"{what}: {outcomes['passed']} passed, {outcomes['failure']} failed, {outcomes['error']} errors, "
      f"{outcomes['skipped']} skipped")
for reason, count in skip_reasons.most_common():
    print(f"  skipped {count}: {reason}")
PY
}

gpu_cases_passed() {
    "$PYTHON" - "$1" <<'PY'
import sys
import xml.etree.ElementTree as ElementTree

try:
    cases = ElementTree.parse(sys.argv[1]).getroot().iter("testcase")
except (OSError, ElementTree.ParseError):
    print(0)
    sys.exit(0)
print(sum(1 for case in cases if not any(child.tag in ("failure", "error", "skipped") for child in case)))
PY
}

xdist_workers() {
    # The GPU machine has 16 cores: the CPU-only tests run in parallel when pytest-xdist is there.
    local cores
    cores="$(nproc)"
    if "$PYTHON" -c "import xdist" 2>/dev/null && [[ $cores -ge 2 ]]; then
        echo "-n $((cores < 8 ? cores : 8))"
    fi
}

# ----------------------------------------------------------------------------------------- stages
checks_stage() {
    say "1/5 install minicnn without network"
    install_minicnn

    # pytest: -rfEs lists failures, errors and skips with their reasons; junit XML for the counts.
    local pytest=("$PYTHON" -m pytest -q -rfEs -p no:cacheprovider)
    say "2/5 the test suite's GPU cases (marker 'gpu': the CuPy half of every backend test)"
    run_step "GPU tests" timeout -s INT -k 15 "$GPU_TESTS_LIMIT" "${pytest[@]}" -m gpu \
        --junitxml="$OUT_DIR/tests-gpu.xml" "${TEST_SELECTION[@]}"
    count_tests "$OUT_DIR/tests-gpu.xml" "GPU test cases"
    if [[ $DRY_RUN -eq 0 && "$(gpu_cases_passed "$OUT_DIR/tests-gpu.xml")" -eq 0 ]]; then
        echo "ERROR: not one GPU test case passed: CuPy did not run (see environment.txt)"
        FAILURES+=("no GPU test case passed")
    fi

    say "3/5 benchmark: the study's model, batch 32, ${IMAGE_SIZE}x${IMAGE_SIZE}, minicnn ($BACKEND) beside PyTorch"
    run_step "benchmark" timeout -s INT -k 15 "$BENCH_LIMIT" "$PYTHON" benchmarks/bench_study_model.py \
        --backend "$BACKEND" --batch-size 32 --image-size "$IMAGE_SIZE" "${BENCH_STEPS[@]}" \
        --timeout "$BENCH_FRAMEWORK_LIMIT" --json "$OUT_DIR/bench.json"
    local minicnn_row
    minicnn_row="$([[ $BACKEND == cupy ]] && echo minicnn-cupy || echo minicnn)"
    if ! "$PYTHON" - "$OUT_DIR/bench.json" "$minicnn_row" <<'PY'; then
import json
import sys

path, wanted = sys.argv[1], sys.argv[2]
try:
    results = {row["framework"]: row for row in json.load(open(path))["results"]}
except (OSError, ValueError, KeyError) as error:
    sys.exit(f"benchmark: no usable {path} ({error})")
row = results.get(wanted, {"status": "missing"})
if row["status"] != "ok":
    sys.exit(f"benchmark: the {wanted} row did not run: {row['status']} {row.get('detail', '')}")
PY
        FAILURES+=("benchmark row $minicnn_row")
    fi

    # On an H200 an epoch took 6.4 s while its 133 steps took 2.9 s: this splits a step's wall
    # time into the model and what happens outside it (loading, augmentation, batching).
    say "4/5 the data pipeline beside the model: steps on the real data, with and without prefetching"
    run_step "epoch time" timeout -s INT -k 15 "$EPOCH_TIME_LIMIT" "$PYTHON" benchmarks/epoch_time.py \
        --data "$DATA" --backend "$BACKEND" --image-size "$IMAGE_SIZE" "${EPOCH_STEPS[@]}"

    say "5/5 the rest of the test suite (CPU only)"
    local workers
    read -r -a workers <<<"$(xdist_workers)"
    run_step "other tests" timeout -s INT -k 15 "$OTHER_TESTS_LIMIT" "${pytest[@]}" -m "not gpu" \
        ${workers[@]+"${workers[@]}"} --junitxml="$OUT_DIR/tests-other.xml" "${TEST_SELECTION[@]}"
    count_tests "$OUT_DIR/tests-other.xml" "other test cases"
    count_tests "$OUT_DIR/tests-gpu.xml" "GPU test cases"
}

breakdown_stage() {
    say "1/6 install minicnn without network"
    install_minicnn

    local pytest=("$PYTHON" -m pytest -q -rfEs -p no:cacheprovider)
    say "2/6 the test suite's GPU cases (marker 'gpu'), the device augmentation and dropout masks among them"
    run_step "GPU tests" timeout -s INT -k 15 "$GPU_TESTS_LIMIT" "${pytest[@]}" -m gpu \
        --junitxml="$OUT_DIR/tests-gpu.xml" "${BREAKDOWN_TESTS[@]}"
    count_tests "$OUT_DIR/tests-gpu.xml" "GPU test cases"
    if [[ $DRY_RUN -eq 0 && "$(gpu_cases_passed "$OUT_DIR/tests-gpu.xml")" -eq 0 ]]; then
        echo "ERROR: not one GPU test case passed: CuPy did not run (see environment.txt)"
        FAILURES+=("no GPU test case passed")
    fi

    say "3/6 benchmark: the study's model, batch 32, ${IMAGE_SIZE}x${IMAGE_SIZE}, minicnn ($BACKEND) beside PyTorch"
    run_step "benchmark" timeout -s INT -k 15 "$BENCH_LIMIT" "$PYTHON" benchmarks/bench_study_model.py \
        --backend "$BACKEND" --batch-size 32 --image-size "$IMAGE_SIZE" "${BENCH_STEPS[@]}" \
        --timeout "$BENCH_FRAMEWORK_LIMIT" --json "$OUT_DIR/bench.json"

    # The three runs write into a folder outside $OUT; step 6 merges them into epoch_time.json.
    local epochs
    epochs="$(mktemp -d "${TMPDIR:-/tmp}/minicnn-gpu-epochs.XXXXXX")"
    local epoch_time=("$PYTHON" benchmarks/epoch_time.py --data "$DATA" --backend "$BACKEND" --image-size "$IMAGE_SIZE")
    say "4/6 the epoch taken apart (--profile: synchronised at every part), host and device augmentation"
    run_step "epoch profile" timeout -s INT -k 15 "$EPOCH_PROFILE_LIMIT" "${epoch_time[@]}" --profile \
        "${PROFILE_ARGS[@]}" --variants host-augment,baseline --json "$epochs/profile.json"
    say "5/6 plain epochs beside the median step: every prepared option, then TF32 (its own process)"
    run_step "epoch plain" timeout -s INT -k 15 "$EPOCH_PLAIN_LIMIT" "${epoch_time[@]}" "${EPOCH_ARGS[@]}" \
        --variants baseline,host-augment,device-dropout --json "$epochs/plain.json"
    run_step "epoch tf32" timeout -s INT -k 15 "$EPOCH_TF32_LIMIT" "${epoch_time[@]}" "${EPOCH_ARGS[@]}" --tf32 \
        --variants baseline --json "$epochs/tf32.json"

    say "6/6 the rule (see the top of this script): the study's settings"
    if ! "$PYTHON" - "$epochs" "$OUT_DIR/tests-gpu.xml" "$OUT_DIR/epoch_time.json" "$OUT_DIR/defaults.env" <<'PY'; then
import json
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

folder, junit, merged_path, defaults_path = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
runs = {}
for name in ("profile", "plain", "tf32"):
    try:
        runs[name] = json.loads((folder / f"{name}.json").read_text())
    except (OSError, ValueError) as error:
        print(f"{name}: no figures ({error})")
merged_path.write_text(json.dumps(runs, indent=2) + "\n")


def passed(test_file):
    """True if every case of test_file that ran on CuPy passed (and at least one did), None on a CPU."""
    try:
        cases = list(ElementTree.parse(junit).getroot().iter("testcase"))
    except (OSError, ElementTree.ParseError):
        return False
    mine = [case for case in cases if test_file in case.get("classname", "") and "cupy" in case.get("name", "")]
    ran = [case for case in mine if not any(child.tag == "skipped" for child in case)]
    if not ran:
        return None
    return all(not any(child.tag in ("failure", "error") for child in case) for case in ran)


plain = {row["variant"]: row for row in runs.get("plain", {}).get("results", [])}
tf32 = {row["variant"]: row for row in runs.get("tf32", {}).get("results", [])}
base = plain.get("baseline")
lines = []
if base is None:
    print("no baseline figures: the study keeps the library's defaults")
    lines = ["AUGMENT=default  # no baseline figures", "DROPOUT_MASKS=host  # no baseline figures",
             "TF32=0  # no baseline figures"]
else:
    augment_tests = passed("test_augment")
    host = plain.get("host-augment")
    if augment_tests is False:
        lines.append("AUGMENT=host  # the device augmentation's GPU test cases failed")
    elif host is not None and host["epoch_s"] <= 0.95 * base["epoch_s"]:
        lines.append(f"AUGMENT=host  # host epoch {host['epoch_s']:.2f} s <= 0.95 x default's {base['epoch_s']:.2f} s")
    else:
        host_text = f"{host['epoch_s']:.2f} s" if host else "not measured"
        lines.append(f"AUGMENT=default  # default ({base['augmentation']}) epoch {base['epoch_s']:.2f} s, "
                     f"host {host_text}; GPU cases passed: {augment_tests}")
    dropout_tests = passed("test_dropout")
    device = plain.get("device-dropout")
    if device is not None and dropout_tests is not False and device["median_step_s"] <= 0.95 * base["median_step_s"]:
        lines.append(f"DROPOUT_MASKS=device  # median step {device['median_step_s']:.4f} s <= 0.95 x "
                     f"{base['median_step_s']:.4f} s")
    else:
        shown = f"{device['median_step_s']:.4f} s" if device else "not measured"
        lines.append(f"DROPOUT_MASKS=host  # device masks' median step {shown}, baseline "
                     f"{base['median_step_s']:.4f} s; GPU cases passed: {dropout_tests}")
    fast = tf32.get("baseline")
    if (fast is not None and fast["median_step_s"] <= 0.90 * base["median_step_s"]
            and abs(fast["epoch_loss"] - base["epoch_loss"]) <= 0.02 * abs(base["epoch_loss"])):
        lines.append(f"TF32=1  # median step {fast['median_step_s']:.4f} s <= 0.90 x {base['median_step_s']:.4f} s, "
                     f"loss {fast['epoch_loss']:.4f} vs {base['epoch_loss']:.4f}")
    else:
        shown = f"{fast['median_step_s']:.4f} s, loss {fast['epoch_loss']:.4f}" if fast else "not measured"
        lines.append(f"TF32=0  # TF32 {shown}; baseline {base['median_step_s']:.4f} s, loss {base['epoch_loss']:.4f}")
    print(f"target: epoch / (steps x median step) = {base['ratio']:.2f} (at most 1.2)")
defaults_path.write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
        FAILURES+=("the rule")
    fi
    rm -rf "$epochs"
    if [[ -f "$OUT_DIR/defaults.env" ]]; then
        cp "$OUT_DIR/defaults.env" "$HANDOVER_DEFAULTS"
        echo "the study stage on this machine will read $HANDOVER_DEFAULTS"
    fi
}

# read_defaults: the study's settings from --defaults, else the breakdown's handover, else the library's.
read_defaults() {
    AUGMENT=default
    DROPOUT_MASKS=host
    TF32=0
    local source="the library's defaults (no breakdown on this machine)" file="" key value
    if [[ -n "$DEFAULTS_FILE" ]]; then
        file="$DEFAULTS_FILE"
    elif [[ -f "$HANDOVER_DEFAULTS" ]]; then
        file="$HANDOVER_DEFAULTS"
    fi
    if [[ -n "$file" ]]; then
        source="$file"
        while IFS='=' read -r key value; do
            value="${value%%#*}"
            value="${value//[[:space:]]/}"
            case "$key" in
                AUGMENT) [[ "$value" =~ ^(default|host|device)$ ]] && AUGMENT="$value" ;;
                DROPOUT_MASKS) [[ "$value" =~ ^(host|device)$ ]] && DROPOUT_MASKS="$value" ;;
                TF32) [[ "$value" =~ ^[01]$ ]] && TF32="$value" ;;
            esac
        done <"$file"
    fi
    echo "settings from $source: AUGMENT=$AUGMENT DROPOUT_MASKS=$DROPOUT_MASKS TF32=$TF32"
}

study_stage() {
    say "1/3 install minicnn without network"
    install_minicnn
    local help
    help="$("$PYTHON" examples/train_xray.py --help 2>&1 || true)"
    if [[ "$help" != *--time-budget* ]]; then
        echo "ERROR: examples/train_xray.py has no --time-budget option: this checkout cannot run the study stage"
        FAILURES+=("train_xray.py --time-budget missing")
        return
    fi

    # The training folder holds the checkpoints (~200 MB at 300x300): outside $OUT, deleted at the end.
    STUDY_WORK="$(mktemp -d "${TMPDIR:-/tmp}/minicnn-gpu-study.XXXXXX")"
    if [[ $KEEP -eq 0 ]]; then
        trap remove_study_work EXIT
    else
        echo "the training folder (kept, --keep): $STUDY_WORK"
    fi
    case "$(cd "$STUDY_WORK" && pwd -P)/" in
        "$OUT_DIR"/*)
            echo "ERROR: the training folder $STUDY_WORK lies inside \$OUT; set TMPDIR elsewhere"
            FAILURES+=("training folder inside OUT")
            return
            ;;
    esac
    local run="$STUDY_WORK/run"

    # The settings the breakdown chose. TF32 reaches the backend through MINICNN_TF32 (read at
    # import, before the backend is chosen); the other two need train_xray.py's options, passed
    # only where this checkout has them (else the library's default runs, and the log says so).
    read_defaults
    if [[ "$BACKEND" != cupy && "$TF32" == 1 ]]; then
        echo "TF32=1 chosen, but the backend is $BACKEND (a dry run): TF32 acts on CuPy only, so TF32=0"
        TF32=0  # train_xray refuses --tf32 / MINICNN_TF32=1 without --backend cupy
    fi
    local settings=()
    if [[ "$AUGMENT" != default ]]; then
        if [[ "$help" == *--augment-on* ]]; then
            settings+=(--augment-on "$AUGMENT")
        else
            echo "WARNING: AUGMENT=$AUGMENT asked for, but train_xray.py has no --augment-on: the default runs"
        fi
    fi
    if [[ "$TF32" == 1 && "$help" == *--tf32* ]]; then
        settings+=(--tf32)  # recorded in the run's settings.json (MINICNN_TF32 below says the same)
    fi
    if [[ "$DROPOUT_MASKS" != host ]]; then
        if [[ "$help" == *--dropout-masks* ]]; then
            settings+=(--dropout-masks "$DROPOUT_MASKS")
        else
            echo "WARNING: DROPOUT_MASKS=$DROPOUT_MASKS asked for, but train_xray.py has no --dropout-masks: host masks"
        fi
    fi

    say "2/3 train the study: ${IMAGE_SIZE}x${IMAGE_SIZE}, up to $EPOCHS epochs, --backend $BACKEND," \
        "budget ${TIME_BUDGET} s"
    local started=$SECONDS
    # TQDM_MININTERVAL: fewer progress-bar updates, so the log stays small. The outer timeout only
    # catches a run that overshoots its budget by far; SIGINT lets it save a checkpoint first.
    run_step "training" env TQDM_MININTERVAL=10 PYTHONUNBUFFERED=1 MINICNN_TF32="$TF32" \
        timeout -s INT -k 30 "$((TIME_BUDGET + STUDY_SLACK))" "$PYTHON" examples/train_xray.py \
        --data "$DATA" --backend "$BACKEND" --out "$run" --image-size "$IMAGE_SIZE" --epochs "$EPOCHS" \
        --time-budget "$TIME_BUDGET" ${LIMIT_ARGS[@]+"${LIMIT_ARGS[@]}"} ${settings[@]+"${settings[@]}"}
    local wall=$((SECONDS - started))

    say "3/3 collect the results"
    local name
    for name in history.csv metrics.json curves.png; do
        if [[ -f "$run/$name" ]]; then
            cp "$run/$name" "$OUT_DIR/$name"
        else
            echo "missing: $run/$name"
            FAILURES+=("$name missing")
        fi
    done
    # The other small outputs (confusion matrix, ROC, prediction grid, ...) travel as one archive;
    # the checkpoints (*.npz) are far too large to bring back.
    local extras=()
    if [[ -d "$run" ]]; then
        while IFS= read -r name; do
            extras+=("$name")
        done < <(cd "$run" && find . -maxdepth 1 -type f ! -name '*.npz' ! -name history.csv \
            ! -name metrics.json ! -name curves.png -printf '%f\n' | sort)
    fi
    if [[ ${#extras[@]} -gt 0 ]]; then
        tar -czf "$OUT_DIR/extras.tar.gz" -C "$run" "${extras[@]}"
        echo "extras.tar.gz: ${extras[*]}"
    fi
    "$PYTHON" - "$OUT_DIR/metrics.json" "$wall" <<'PY' || true
import json
import sys

path, wall = sys.argv[1], int(sys.argv[2])
try:
    report = json.load(open(path))
except (OSError, ValueError) as error:
    sys.exit(f"no metrics: {error}")


def shown(value):
    return "n/a" if value is None else f"{value:.4f}"


run = report.get("run", {})
print(f"training command: {wall} s wall time; epochs done {run.get('epochs_done', '?')} of "
      f"{run.get('epochs_planned', '?')}, partial: {run.get('partial', '?')} (budget {run.get('time_budget_s')} s)")
print(f"test: accuracy {shown(report.get('accuracy'))}, sensitivity {shown(report.get('sensitivity'))}, "
      f"specificity {shown(report.get('specificity'))}, ROC AUC {shown(report.get('roc_auc'))}, "
      f"n={report.get('n_test')}")
PY
}

remove_study_work() {
    rm -rf "$STUDY_WORK"
    echo "removed the training folder $STUDY_WORK (its checkpoints are too large to bring back; --keep keeps it)"
}

# The files that come back: at most MAX_FILES, none larger than MAX_FILE_BYTES, no folders.
check_out_dir() {
    local files
    files="$(find "$OUT_DIR" -mindepth 1 -maxdepth 1 -type f | wc -l)"
    echo "results in $OUT_DIR ($files files):"
    ls -l "$OUT_DIR" | tail -n +2
    if [[ $files -gt $MAX_FILES ]]; then
        FAILURES+=("$files files in OUT, more than $MAX_FILES")
    fi
    if [[ -n "$(find "$OUT_DIR" -mindepth 1 -type d)" ]]; then
        FAILURES+=("folders in OUT")
    fi
    local big
    big="$(find "$OUT_DIR" -type f -size +"${MAX_FILE_BYTES}"c)"
    if [[ -n "$big" ]]; then
        FAILURES+=("files over 16 MiB in OUT: $big")
    fi
}

main() {
    local started=$SECONDS
    say "gpu_check: stage $STAGE$([[ $DRY_RUN -eq 1 ]] && echo ', DRY RUN (NumPy, tiny sizes)'), data $DATA"
    environment_report
    "${STAGE}_stage"
    say "done: stage $STAGE in $((SECONDS - started)) s"
    check_out_dir
    if [[ ${#FAILURES[@]} -gt 0 ]]; then
        echo "FAILED: ${FAILURES[*]}"
        return 1
    fi
    echo "OK"
}

main 2>&1 | tee "$OUT_DIR/$STAGE.log"
exit "${PIPESTATUS[0]}"
