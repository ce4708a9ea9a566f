#!/usr/bin/env bash
# Prove minicnn's GPU path in two prepared commands, for a GPU machine lent for a few minutes.
#
#   bash benchmarks/gpu_check.sh --data DIR --stage checks     # under 3 minutes
#   bash benchmarks/gpu_check.sh --data DIR --stage study      # under 9 minutes
#   bash benchmarks/gpu_check.sh --data DIR --stage checks --dry-run   # the same on a CPU, tiny sizes
#   bash benchmarks/gpu_check.sh --data DIR --dry-run                  # both stages' dry runs
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
# --dry-run runs every command of the stage exactly as on the GPU except that the backend is NumPy
# and the sizes are tiny (1 epoch at 64x64 on a few images, 1 benchmark step, a few test files);
# it prints the install step instead of running it. tests/test_gpu_check.py runs it.
# benchmarks/README.md ("On a GPU") and docs/gpu.md say how to run this on a lent machine.
#
# The stages are called by name ("${STAGE}_stage"), which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bash benchmarks/gpu_check.sh --data DIR --stage checks|study [--dry-run] [--out DIR]
                                   [--time-budget SECONDS] [--keep]
       bash benchmarks/gpu_check.sh --data DIR --dry-run      (both stages, into OUT/checks and OUT/study)

  --data DIR             chest X-ray folder (CoronaHack or Kermany layout), e.g. data/coronahack
  --stage checks|study   checks: install, test suite with GPU cases, benchmark (under 3 min)
                         study:  train the study on DIR with --backend cupy in a time budget (under 9 min)
  --dry-run              NumPy instead of CuPy/CUDA and tiny sizes, for a machine without a GPU;
                         the install step is printed, not run. Without --stage: both stages
  --out DIR              where the results go (default: $OUT, else a new temporary folder)
  --time-budget SECONDS  study: wall-clock training budget (default 480: the whole recipe on an H200)
  --keep                 study: keep the training folder (checkpoints) instead of deleting it

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
while [[ $# -gt 0 ]]; do
    case "$1" in
        --data) [[ $# -ge 2 ]] || fail_usage "--data needs a folder"; DATA="$2"; shift 2 ;;
        --stage) [[ $# -ge 2 ]] || fail_usage "--stage needs checks or study"; STAGE="$2"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        --out) [[ $# -ge 2 ]] || fail_usage "--out needs a folder"; OUT_DIR="$2"; shift 2 ;;
        --time-budget) [[ $# -ge 2 ]] || fail_usage "--time-budget needs seconds"; TIME_BUDGET="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) fail_usage "unknown argument '$1'" ;;
    esac
done

# A GPU run must name its stage (both do not fit into one 10-minute command); a dry run may do both.
[[ -n "$STAGE" || $DRY_RUN -eq 1 ]] || fail_usage "--stage checks|study is required"
[[ -z "$STAGE" || "$STAGE" == "checks" || "$STAGE" == "study" ]] \
    || fail_usage "--stage must be checks or study, not '$STAGE'"
[[ -n "$DATA" ]] || fail_usage "--data DIR is required"
[[ -d "$DATA" ]] || fail_usage "--data $DATA: no such folder (on a GPU machine: see benchmarks/README.md)"
[[ -d "$DATA/train" && -d "$DATA/test" ]] || fail_usage "--data $DATA: expected train/ and test/ inside it"
[[ -f pyproject.toml && -f benchmarks/gpu_check.sh ]] || fail_usage "run this from the repository root"
if [[ -n "$TIME_BUDGET" ]]; then
    [[ "$STAGE" != "checks" ]] || fail_usage "--time-budget is for --stage study"
    [[ "$TIME_BUDGET" =~ ^[1-9][0-9]*$ ]] \
        || fail_usage "--time-budget must be whole seconds, at least 1, not '$TIME_BUDGET'"
fi

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
    # --dry-run without --stage: both stages, one after the other, each into its own folder (each
    # must stay within the 8 files that a GPU machine brings back).
    status=0
    for stage in checks study; do
        options=(--data "$DATA" --stage "$stage" --dry-run --out "$OUT_DIR/$stage")
        [[ $stage == study && -n "$TIME_BUDGET" ]] && options+=(--time-budget "$TIME_BUDGET")
        [[ $KEEP -eq 1 ]] && options+=(--keep)
        PYTHON="$PYTHON" bash "$0" "${options[@]}" || status=$?
    done
    if [[ $status -eq 0 ]]; then
        echo "dry run of both stages: OK (results in $OUT_DIR/checks and $OUT_DIR/study)"
    else
        echo "dry run of both stages: FAILED (see $OUT_DIR/checks and $OUT_DIR/study)"
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
    EPOCH_STEPS=(--steps 2)
    # A few test files, with GPU cases among them (they skip on a CPU), never tests/test_gpu_check.py.
    TEST_SELECTION=(tests/test_im2col.py tests/test_backend.py)
    TIME_BUDGET="${TIME_BUDGET:-120}"
else
    BACKEND=cupy
    IMAGE_SIZE=300
    EPOCHS=60
    LIMIT_ARGS=()
    BENCH_STEPS=(--steps 5 --warmup 2)
    EPOCH_STEPS=(--steps 40)
    # The whole suite (tests/ and docs/, pyproject's testpaths) but this script's own dry-run test,
    # which would only repeat on the GPU machine what this command does for real.
    TEST_SELECTION=(--ignore=tests/test_gpu_check.py)
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

    say "2/3 train the study: ${IMAGE_SIZE}x${IMAGE_SIZE}, up to $EPOCHS epochs, --backend $BACKEND," \
        "budget ${TIME_BUDGET} s"
    local started=$SECONDS
    # TQDM_MININTERVAL: fewer progress-bar updates, so the log stays small. The outer timeout only
    # catches a run that overshoots its budget by far; SIGINT lets it save a checkpoint first.
    run_step "training" env TQDM_MININTERVAL=10 PYTHONUNBUFFERED=1 \
        timeout -s INT -k 30 "$((TIME_BUDGET + STUDY_SLACK))" "$PYTHON" examples/train_xray.py \
        --data "$DATA" --backend "$BACKEND" --out "$run" --image-size "$IMAGE_SIZE" --epochs "$EPOCHS" \
        --time-budget "$TIME_BUDGET" ${LIMIT_ARGS[@]+"${LIMIT_ARGS[@]}"}
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
