#!/usr/bin/env bash
# Runs that outlive a working session: frozen code, one venv per frozen commit, run folders
# outside the checkout, a queue worked through in the background and resumed after every stop.
#
#   bash examples/long_run.sh setup COMMIT [--keras]  # freeze COMMIT: git archive + its own venv(s)
#   bash examples/long_run.sh add NAME FRAMEWORK IMAGE_SIZE EPOCHS SEED [SPLIT_FROM] [-- TRAIN_OPTIONS...]
#                                                     # queue a run of the study's recipe
#   bash examples/long_run.sh start    # work through the queue in the background, resuming each run
#   bash examples/long_run.sh pause    # Ctrl-C to the run in progress: it saves, the worker stops
#   bash examples/long_run.sh status   # every queued run: state, epochs done, the last epoch's figures
#   bash examples/long_run.sh command NAME  # the command a queued run gets, one word a line
#
# setup makes RUNS_DIR/code-COMMIT (the files of COMMIT) and RUNS_DIR/venv-COMMIT (minicnn
# installed from them, not editable, so a run never imports the live checkout); --keras adds
# RUNS_DIR/venv-keras-COMMIT with TensorFlow and Keras for benchmarks/keras_study.py. Freezing a
# new commit never touches an older one's folders, so a paused run always resumes with its own code.
#
# add writes RUNS_DIR/NAME/run-settings.json, naming the commit frozen last, and appends NAME
# to RUNS_DIR/queue. FRAMEWORK is minicnn (examples/train_xray.py) or keras
# (benchmarks/keras_study.py); every run records the test split after each epoch
# (--record-test-each-epoch: for the record only). SPLIT_FROM names another queued run whose
# split.csv this one trains on (the Keras twin of a minicnn run with the same seed).
#
# TRAIN_OPTIONS, after "--", are more options of examples/train_xray.py for a minicnn run, given
# on every start and resume of it: --classes 3, --optimizer rmsprop, --learning-rate X,
# --batch-size N, --val-split X, --class-weight balanced, --threshold P, --no-augment, --limit N,
# --backend cupy (one word each, "--classes 3" not "--classes=3"). They are recorded in
# run-settings.json ("train_options"; the settings they change with them) and, when the frozen
# venv is there, checked by the frozen train_xray.py itself before the run is queued. A keras
# run takes none. A run-settings.json without "train_options" (written before they existed) has none.
#
# Each run folder gets stretches.jsonl: one line per start and stop of its process (time,
# commit, the imported minicnn's file, CPU, versions), which examples/study_results.py reads.
#
# RUNS_DIR defaults to ~/minicnn-runs; DATA to ../shared/data/coronahack beside this checkout.
set -euo pipefail

CHECKOUT="$(cd "$(dirname "$0")/.." && pwd)"
SELF="$CHECKOUT/examples/long_run.sh"
RUNS_DIR="${RUNS_DIR:-$HOME/minicnn-runs}"
DATA="${DATA:-$(cd "$CHECKOUT/.." && pwd)/shared/data/coronahack}"
QUEUE="$RUNS_DIR/queue"
WORKER_PID="$RUNS_DIR/worker.pid"
KERAS_PACKAGES=(tensorflow-cpu keras)

usage() {
  sed -n '5,11p' "$SELF" | sed 's/^# *//' >&2
  exit 2
}

# The options of train_xray.py that add accepts after "--": those that take a value, then the flags.
# The others are the launcher's own (--data, --out, --image-size, --epochs, --seed, --resume, ...).
TRAIN_OPTIONS_WITH_VALUE=(--classes --optimizer --learning-rate --batch-size --val-split --class-weight --threshold
  --limit --backend)
TRAIN_FLAGS=(--no-augment)

fail() {
  echo "error: $*" >&2
  exit 2
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

setup() {
  local commit="$1" keras="${2:-}"
  commit="$(git -C "$CHECKOUT" rev-parse --verify --quiet "$commit^{commit}")" || fail "setup $1: not a commit here"
  [ -z "$keras" ] || [ "$keras" = "--keras" ] || fail "setup: unknown option $keras (allowed: --keras)"
  mkdir -p "$RUNS_DIR"
  if [ ! -d "$RUNS_DIR/code-$commit" ]; then
    mkdir "$RUNS_DIR/code-$commit.partial"
    git -C "$CHECKOUT" archive "$commit" | tar -x -C "$RUNS_DIR/code-$commit.partial"
    mv "$RUNS_DIR/code-$commit.partial" "$RUNS_DIR/code-$commit"
  fi
  make_venv "$RUNS_DIR/venv-$commit" "$commit"
  [ -z "$keras" ] || make_venv "$RUNS_DIR/venv-keras-$commit" "$commit" "${KERAS_PACKAGES[@]}"
  echo "$commit" > "$RUNS_DIR/frozen-last"
  echo "frozen $commit in $RUNS_DIR/code-$commit; venv $RUNS_DIR/venv-$commit${keras:+ and venv-keras-$commit}"
}

make_venv() {  # make_venv FOLDER COMMIT [PACKAGES...]: made under another name, renamed when complete
  local venv="$1" commit="$2"
  shift 2
  [ ! -d "$venv" ] || return 0
  rm -rf "$venv.partial"
  python3 -m venv "$venv.partial"
  # Non-editable, so the run never imports the live checkout.
  "$venv.partial/bin/pip" install --quiet "$RUNS_DIR/code-$commit" "$@"
  mv "$venv.partial" "$venv"  # only bin/python is used later, which works from the new name
}

add() {  # add NAME FRAMEWORK IMAGE_SIZE EPOCHS SEED [SPLIT_FROM] [-- TRAIN_OPTIONS...]
  local name="$1" framework="$2" size="$3" epochs="$4" seed="$5" split_from="" commit run venv_python settings
  shift 5
  if [ $# -gt 0 ] && [ "$1" != -- ]; then split_from="$1"; shift; fi
  if [ $# -gt 0 ]; then
    [ "$1" = -- ] || fail "add $name: after SPLIT_FROM comes -- and the train options, got $1"
    shift
  fi
  local -a options=("$@")
  [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || fail "add $name: a run name is letters, digits, . _ -"
  [[ "$framework" =~ ^(minicnn|keras)$ ]] || fail "add $name: FRAMEWORK $framework: allowed: minicnn, keras"
  for number in "$size" "$epochs" "$seed"; do
    [[ "$number" =~ ^[0-9]+$ ]] || fail "add $name: IMAGE_SIZE, EPOCHS and SEED are whole numbers, got $number"
  done
  [ ${#options[@]} -eq 0 ] || [ "$framework" = minicnn ] ||
    fail "add $name: train options (${options[*]}) are for a minicnn run; benchmarks/keras_study.py takes none here"
  check_train_options "$name" "${options[@]}"
  [ -f "$RUNS_DIR/frozen-last" ] || fail "no frozen code in $RUNS_DIR; run: bash examples/long_run.sh setup COMMIT"
  commit="$(cat "$RUNS_DIR/frozen-last")"
  [ "$framework" = minicnn ] || [ -d "$RUNS_DIR/venv-keras-$commit" ] ||
    fail "add $name: no Keras venv for $commit; run: bash examples/long_run.sh setup $commit --keras"
  if [ -n "$split_from" ]; then
    grep -qx "$split_from" "$QUEUE" 2>/dev/null || fail "add $name: SPLIT_FROM $split_from is not a queued run"
  fi
  run="$RUNS_DIR/$name"
  [ ! -e "$run" ] || fail "add $name: $run exists already (a run keeps its folder; choose another name)"
  if [ ${#options[@]} -gt 0 ] && alive "$WORKER_PID" && ! grep -q train_options "$RUNS_DIR/worker.sh"; then
    fail "add $name: the worker running now (pid $(cat "$WORKER_PID")) is an older copy of this script that" \
      "would run $name without its train options; pause it (bash examples/long_run.sh pause), add, then start"
  fi
  # The frozen train_xray.py checks the options itself (an option that commit lacks, a wrong value):
  # better now than when the queue reaches the run, hours later.
  venv_python="$RUNS_DIR/venv-$commit/bin/python"
  if [ "$framework" = minicnn ] && [ -x "$venv_python" ]; then
    local -a split_option=()
    [ -z "$split_from" ] || split_option=(--split-file "$RUNS_DIR/$split_from/split.csv")
    # -I: not the current folder first on sys.path, which could be a checkout's minicnn instead of the frozen one
    "$venv_python" -I -c 'import sys; from minicnn.cli.train_xray import parse_args; parse_args(sys.argv[1:])' \
      --image-size "$size" --epochs "$epochs" --seed "$seed" --record-test-each-epoch "${split_option[@]}" \
      "${options[@]}" ||
      fail "add $name: the train options were refused by the frozen train_xray.py of $commit (the line above)"
  fi
  settings="$(settings_json "$name" "$framework" "$commit" "$size" "$epochs" "$seed" "$split_from" "${options[@]}")"
  [ -z "$split_from" ] || check_split_classes "$name" "$RUNS_DIR/$split_from" <<< "$settings"
  mkdir -p "$run"
  echo "$settings" > "$run/run-settings.json"
  echo "$name" >> "$QUEUE"
  echo "queued $name: $framework, ${size}x$size, $epochs epochs, seed $seed, code $commit${options[*]:+, ${options[*]}}"
}

check_train_options() {  # check_train_options NAME OPTIONS...: only those add accepts, one word each, a value each
  local name="$1" option
  shift
  while [ $# -gt 0 ]; do
    option="$1"
    shift
    [[ "$option" != --*=* ]] || fail "add $name: write ${option%%=*} ${option#*=}, not $option"
    if printf '%s\n' "${TRAIN_FLAGS[@]}" | grep -qx -- "$option"; then continue; fi
    printf '%s\n' "${TRAIN_OPTIONS_WITH_VALUE[@]}" | grep -qx -- "$option" ||
      fail "add $name: train option $option: allowed: ${TRAIN_OPTIONS_WITH_VALUE[*]} ${TRAIN_FLAGS[*]}" \
        "(the launcher gives --data, --out, --image-size, --epochs, --seed, --split-file, --resume itself)"
    [ $# -gt 0 ] && [[ "$1" != --* ]] || fail "add $name: train option $option needs a value"
    [[ "$1" =~ ^[A-Za-z0-9._+-]+$ ]] || fail "add $name: $option $1: a value is letters, digits, . _ + -"
    shift
  done
}

settings_json() {  # settings_json NAME FRAMEWORK COMMIT SIZE EPOCHS SEED SPLIT_FROM [OPTIONS...]: run-settings.json
  DATA="$DATA" python3 - "$@" <<'EOF'
import json, os, sys

name, framework, commit, size, epochs, seed, split_from, *options = sys.argv[1:]
settings = {"name": name, "framework": framework, "commit": commit, "image_size": int(size), "epochs": int(epochs),
            "seed": int(seed), "batch_size": 32, "learning_rate": 0.0001, "val_split": 0.2, "augment": True,
            "backend": "numpy", "class_weight": None, "threshold": 0.5, "record_test_each_epoch": True,
            "split_from": split_from or None, "data": os.environ["DATA"],
            "environment": {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "-1"},
            "classes": 2, "optimizer": "adam", "limit": None, "train_options": options}
# The settings the train options change, so that run-settings.json says what the run does.
words = iter(options)
for option in words:
    key = option[2:].replace("-", "_")
    if option == "--no-augment":
        settings["augment"] = False
        continue
    value = next(words)
    try:
        if key in ("classes", "batch_size", "limit"):
            value = int(value)
        elif key in ("learning_rate", "val_split", "threshold"):
            value = float(value)
    except ValueError:
        print(f"error: add {name}: {option} {value}: not a number", file=sys.stderr)
        sys.exit(2)
    settings[key] = value
if settings["classes"] != 2:
    settings["threshold"] = None  # the prediction is the most probable class
print(json.dumps(settings, indent=1))
EOF
}

check_split_classes() {  # check_split_classes NAME SOURCE_RUN < settings: its split.csv must fit (same --classes)
  NAME="$1" SOURCE="$2" python3 -c '
import json, os, sys
name, source = os.environ["NAME"], os.environ["SOURCE"]
wanted = json.load(sys.stdin)["classes"]
found = json.load(open(os.path.join(source, "run-settings.json"))).get("classes", 2)
if found != wanted:
    print(f"error: add {name}: SPLIT_FROM {os.path.basename(source)} has --classes {found}, this run "
          f"--classes {wanted}: its split.csv cannot fit", file=sys.stderr)
    sys.exit(2)
'
}

setting() {  # setting RUN KEY: one value of the run's run-settings.json ("" for null or absent; a list one a line)
  python3 -c '
import json, sys
value = json.load(open(sys.argv[1])).get(sys.argv[2])
print("\n".join(value) if isinstance(value, list) else "" if value is None else value)
' "$1/run-settings.json" "$2"
}

command_of() {  # the run's command, one word a line (--resume is added when a checkpoint exists)
  local run="$1" framework commit code split_from
  framework="$(setting "$run" framework)" commit="$(setting "$run" commit)" split_from="$(setting "$run" split_from)"
  code="$RUNS_DIR/code-$commit"
  if [ "$framework" = minicnn ]; then
    printf '%s\n' "$RUNS_DIR/venv-$commit/bin/python" "$code/examples/train_xray.py"
  else
    printf '%s\n' "$RUNS_DIR/venv-keras-$commit/bin/python" "$code/benchmarks/keras_study.py"
  fi
  printf '%s\n' --data "$(setting "$run" data)" --out "$run" --image-size "$(setting "$run" image_size)" \
    --epochs "$(setting "$run" epochs)" --seed "$(setting "$run" seed)" --record-test-each-epoch
  [ -z "$split_from" ] || printf '%s\n' --split-file "$RUNS_DIR/$split_from/split.csv"
  setting "$run" train_options | sed '/^$/d'  # none in a run-settings.json written before train_options existed
}

run_one() {  # run_one NAME: train (or resume) in the foreground; the exit status of the run
  local run="$RUNS_DIR/$1" resume="" cpu
  local -a command
  mapfile -t command < <(command_of "$run")
  if [ -f "$run/checkpoint.npz" ] || [ -f "$run/checkpoint.keras" ]; then resume="--resume"; fi
  # A process killed with the session leaves no stop line: record its last sign of life instead.
  if [ -f "$run/stretches.jsonl" ] && tail -n 1 "$run/stretches.jsonl" | grep -q '"event": "start"'; then
    echo "{\"event\": \"stop\", \"time\": \"$(date -u -r "$run/train.err" +%Y-%m-%dT%H:%M:%S+0000)\", \"inferred\": true}" \
      >> "$run/stretches.jsonl"
  fi
  cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
  # glibc keeps freed memory for reuse instead of returning it (fewer page faults per step).
  (
    cd "$run"
    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=-1 CPU="$cpu" COMMIT="$(setting "$run" commit)" RUN="$run" \
      RESUME="$resume" FRAMEWORK="$(setting "$run" framework)" \
      exec "${command[0]}" -u -c '
import json, os, runpy, sys, time
import minicnn, numpy
versions = dict(python=sys.version.split()[0], numpy=numpy.__version__)
if os.environ["FRAMEWORK"] == "keras":
    import keras, tensorflow
    versions.update(keras=keras.__version__, tensorflow=tensorflow.__version__)
stretches = os.path.join(os.environ["RUN"], "stretches.jsonl")
record = dict(event="start", time=time.strftime("%Y-%m-%dT%H:%M:%S%z"), pid=os.getpid(), commit=os.environ["COMMIT"],
              minicnn_file=minicnn.__file__, cpu=os.environ["CPU"], cores=os.cpu_count(),
              resume=bool(os.environ["RESUME"]), argv=sys.argv[1:] + os.environ["RESUME"].split(), **versions)
with open(stretches, "a") as file:
    file.write(json.dumps(record) + "\n")
print(record, flush=True)
sys.argv = [sys.argv[1], *sys.argv[2:], *os.environ["RESUME"].split()]
sys.path.insert(0, os.path.dirname(sys.argv[0]))  # as "python SCRIPT" would: its own folder first
status = 1
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
    status = 0
except SystemExit as exit_:
    status = 0 if exit_.code is None else exit_.code if isinstance(exit_.code, int) else 1
finally:
    # One stop line however the process ends: the last epoch, a pause (Ctrl-C) or an error.
    # Only a kill leaves none; the next start infers one from the last write.
    with open(stretches, "a") as file:
        file.write(json.dumps(dict(event="stop", time=time.strftime("%Y-%m-%dT%H:%M:%S%z"), status=status)) + "\n")
sys.exit(status)
' "${command[@]:1}" >> "$run/train.log" 2>> "$run/train.err"
  )
}

worker() {  # the queue, in order: each run to its end; a pause (status 130) stops the worker
  local name status
  echo $$ > "$WORKER_PID"
  while true; do
    name=""
    while read -r candidate; do
      [ -f "$RUNS_DIR/$candidate/finished" ] || [ -f "$RUNS_DIR/$candidate/failed" ] || { name="$candidate"; break; }
    done < "$QUEUE"
    [ -n "$name" ] || { echo "$(date -u +%FT%TZ) queue done"; break; }
    echo "$(date -u +%FT%TZ) $name: start"
    status=0
    run_one "$name" || status=$?
    echo "$(date -u +%FT%TZ) $name: exit status $status"
    case "$status" in
      0) date -u +%FT%TZ > "$RUNS_DIR/$name/finished" ;;
      130) break ;;  # paused
      *) echo "exit status $status; see $RUNS_DIR/$name/train.err" > "$RUNS_DIR/$name/failed" ;;
    esac
  done
  rm -f "$WORKER_PID"
}

start() {
  [ -f "$QUEUE" ] || fail "nothing queued in $RUNS_DIR; add runs with: bash examples/long_run.sh add ..."
  if alive "$WORKER_PID"; then echo "already running (worker pid $(cat "$WORKER_PID"))"; exit 0; fi
  # The worker runs a copy of this script: bash reads a script as it goes, so an edit of the
  # checkout's copy must not reach a worker that is running.
  cp "$SELF" "$RUNS_DIR/worker.sh"
  DATA="$DATA" nohup bash "$RUNS_DIR/worker.sh" worker >> "$RUNS_DIR/worker.log" 2>&1 &
  echo "started the queue worker (pid $!); log: $RUNS_DIR/worker.log"
}

current_run_pid() {  # the training process: the worker's child
  alive "$WORKER_PID" || return 0
  pgrep -P "$(cat "$WORKER_PID")" | head -n 1 || true
}

pause() {
  local pid
  alive "$WORKER_PID" || { echo "not running"; exit 0; }
  pid="$(current_run_pid)"
  if [ -z "$pid" ]; then kill "$(cat "$WORKER_PID")"; echo "stopped the worker between two runs"; exit 0; fi
  kill -INT "$pid"
  for _ in $(seq 1 300); do alive "$WORKER_PID" || break; sleep 1; done
  if alive "$WORKER_PID"; then echo "error: still running after 300 s" >&2; exit 1; fi
  tail -n 3 "$RUNS_DIR/worker.log"
}

status() {
  local run epochs state
  echo "worker: $(alive "$WORKER_PID" && echo "running, pid $(cat "$WORKER_PID")" || echo "not running")"
  [ -f "$QUEUE" ] || { echo "nothing queued"; return 0; }
  while read -r name; do
    run="$RUNS_DIR/$name"
    epochs=0
    [ ! -f "$run/history.csv" ] || epochs=$(($(wc -l < "$run/history.csv") - 1))
    state="queued"
    [ ! -f "$run/stretches.jsonl" ] || state="paused"
    [ ! -f "$run/failed" ] || state="failed: $(cat "$run/failed")"
    [ ! -f "$run/finished" ] || state="finished $(cat "$run/finished")"
    if alive "$WORKER_PID" && [ "$(tail -n 1 "$run/stretches.jsonl" 2>/dev/null | grep -c '"event": "start"')" = 1 ]; then
      state="running"
    fi
    printf '%-22s %-9s %3s/%-3s epochs  %s\n' "$name" "$(setting "$run" framework)" "$epochs" \
      "$(setting "$run" epochs)" "$state"
    [ "$epochs" = 0 ] || echo "    last: $(tail -n 1 "$run/history.csv")"
  done < "$QUEUE"
}

case "${1:-}" in
  setup) [ $# -eq 2 ] || [ $# -eq 3 ] || usage; setup "$2" "${3:-}" ;;
  add) [ $# -ge 6 ] || usage; shift; add "$@" ;;
  start) start ;;
  worker) worker ;;
  pause) pause ;;
  status) status ;;
  command)
    [ $# -eq 2 ] || usage
    [ -f "$RUNS_DIR/$2/run-settings.json" ] || fail "command $2: no run $RUNS_DIR/$2"
    command_of "$RUNS_DIR/$2"
    ;;
  *) usage ;;
esac
