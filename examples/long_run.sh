#!/usr/bin/env bash
# The study's 60-epoch run, which outlives a working session: frozen code, its own venv, a
# folder outside the checkout, started in the background and resumed after every stop.
#
#   bash examples/long_run.sh setup COMMIT   # freeze COMMIT: git archive + venv + non-editable install
#   bash examples/long_run.sh start          # start, or resume when a checkpoint exists (background)
#   bash examples/long_run.sh pause          # Ctrl-C: it saves a checkpoint at the end of the batch
#   bash examples/long_run.sh status         # running or not, epochs done, the last epoch's figures
#
# RUNS_DIR (default ~/minicnn-runs) holds code-COMMIT/, venv/ and the run folder study-seedSEED/;
# SEED (default 0) is the study's recipe with another seed, in its own folder, for the spread
# over seeds; DATA (default: ../shared/data/coronahack beside this checkout) is the data.
# The run folder gets run-settings.json (the command and settings) and stretches.jsonl (one line
# per start and stop: time, frozen commit, minicnn.__file__, CPU, versions), which
# examples/study_results.py reads when it publishes the result.
set -euo pipefail

CHECKOUT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS_DIR="${RUNS_DIR:-$HOME/minicnn-runs}"
SEED="${SEED:-0}"
[[ "$SEED" =~ ^[0-9]+$ ]] || { echo "error: SEED=$SEED: must be a whole number" >&2; exit 2; }
RUN="$RUNS_DIR/study-seed$SEED"
DATA="${DATA:-$(cd "$CHECKOUT/.." && pwd)/shared/data/coronahack}"

usage() {
  echo "usage: bash examples/long_run.sh setup COMMIT | start | pause | status" >&2
  exit 2
}

frozen_code() {
  local found
  found="$(ls -d "$RUNS_DIR"/code-* 2>/dev/null | head -n 1)"
  [ -n "$found" ] || { echo "error: no frozen code in $RUNS_DIR; run: bash examples/long_run.sh setup COMMIT" >&2; exit 2; }
  echo "$found"
}

running_pid() {
  if [ -f "$RUN/pid" ] && kill -0 "$(cat "$RUN/pid")" 2>/dev/null; then cat "$RUN/pid"; fi
}

setup() {
  local commit
  commit="$(git -C "$CHECKOUT" rev-parse --verify "$1^{commit}")"
  mkdir -p "$RUNS_DIR"
  if [ ! -d "$RUNS_DIR/code-$commit" ]; then
    mkdir "$RUNS_DIR/code-$commit"
    git -C "$CHECKOUT" archive "$commit" | tar -x -C "$RUNS_DIR/code-$commit"
  fi
  [ -d "$RUNS_DIR/venv" ] || python3 -m venv "$RUNS_DIR/venv"
  # Non-editable, so the run never imports the live checkout.
  "$RUNS_DIR/venv/bin/pip" install --quiet "$RUNS_DIR/code-$commit"
  echo "frozen $commit in $RUNS_DIR/code-$commit; venv $RUNS_DIR/venv"
}

start() {
  local code commit resume=""
  [ -z "$(running_pid)" ] || { echo "already running (pid $(running_pid))"; exit 0; }
  code="$(frozen_code)"
  commit="${code##*/code-}"
  mkdir -p "$RUN"
  if [ -f "$RUN/checkpoint.npz" ]; then resume="--resume"; fi
  if [ ! -f "$RUN/run-settings.json" ]; then
    cat > "$RUN/run-settings.json" <<EOF
{"command": "python examples/train_xray.py --data $DATA --out $RUN --seed $SEED [--resume]",
 "image_size": 300, "epochs": 60, "batch_size": 32, "learning_rate": 0.0001, "val_split": 0.2, "augment": true,
 "seed": $SEED, "backend": "numpy", "class_weight": null, "threshold": 0.5,
 "environment": {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "-1"}}
EOF
  fi
  # A process killed with the session leaves no stop line: record its last sign of life instead.
  if [ -f "$RUN/stretches.jsonl" ] && tail -n 1 "$RUN/stretches.jsonl" | grep -q '"event": "start"'; then
    echo "{\"event\": \"stop\", \"time\": \"$(date -u -r "$RUN/train.err" +%Y-%m-%dT%H:%M:%S+0000)\", \"inferred\": true}" \
      >> "$RUN/stretches.jsonl"
  fi
  # glibc keeps freed memory for reuse instead of returning it (fewer page faults per step).
  export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=-1
  cd "$RUN"
  CPU="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)" COMMIT="$commit" RESUME="$resume" \
    SCRIPT="$code/examples/train_xray.py" DATA="$DATA" RUN="$RUN" SEED="$SEED" \
    nohup "$RUNS_DIR/venv/bin/python" -u -c '
import json, os, runpy, sys, time
import minicnn, numpy
record = dict(event="start", time=time.strftime("%Y-%m-%dT%H:%M:%S%z"), pid=os.getpid(), commit=os.environ["COMMIT"],
              minicnn_file=minicnn.__file__, cpu=os.environ["CPU"], cores=os.cpu_count(),
              resume=bool(os.environ["RESUME"]), python=sys.version.split()[0], numpy=numpy.__version__)
with open(os.path.join(os.environ["RUN"], "stretches.jsonl"), "a") as stretches:
    stretches.write(json.dumps(record) + "\n")
print(record, flush=True)
sys.argv = ["train_xray.py", "--data", os.environ["DATA"], "--out", os.environ["RUN"], "--seed", os.environ["SEED"],
            *os.environ["RESUME"].split()]
try:
    runpy.run_path(os.environ["SCRIPT"], run_name="__main__")
finally:
    # One stop line however the process ends: the last epoch, a pause (Ctrl-C) or an error.
    # Only a kill leaves none; start then infers one from the last write.
    checkpoint, training = os.path.join(os.environ["RUN"], "checkpoint.npz"), {"completed_epochs": 0}
    if os.path.exists(checkpoint):
        with numpy.load(checkpoint) as archive:
            training = json.loads(str(archive["training"]))
    record = dict(event="stop", time=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  completed_epochs=training["completed_epochs"], partial_epoch=training.get("partial_epoch"))
    with open(os.path.join(os.environ["RUN"], "stretches.jsonl"), "a") as stretches:
        stretches.write(json.dumps(record) + "\n")
    print(record, flush=True)
' >> "$RUN/train.log" 2>> "$RUN/train.err" &
  echo $! > "$RUN/pid"
  echo "started pid $! ${resume:-(fresh run)}; log: $RUN/train.log"
}

pause() {
  local pid
  pid="$(running_pid)"
  [ -n "$pid" ] || { echo "not running"; exit 0; }
  kill -INT "$pid"
  for _ in $(seq 1 180); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  if kill -0 "$pid" 2>/dev/null; then echo "error: still running after 180 s" >&2; exit 1; fi
  tail -n 1 "$RUN/stretches.jsonl"  # the stop line the process wrote as it ended
}

status() {
  local pid
  pid="$(running_pid)"
  echo "run folder: $RUN ($([ -n "$pid" ] && echo "running, pid $pid" || echo "not running"))"
  if [ -f "$RUN/history.csv" ]; then
    echo "epochs done: $(($(wc -l < "$RUN/history.csv") - 1))"
    tail -n 1 "$RUN/history.csv"
  fi
}

case "${1:-}" in
  setup) [ $# -eq 2 ] || usage; setup "$2" ;;
  start) start ;;
  pause) pause ;;
  status) status ;;
  *) usage ;;
esac
