#!/usr/bin/env bash
# Issue #41's 224 px VGG-S fit on a GPU (a session's `device` tool): `distill fit-teacher` on the 28,705 FER2013
# training faces with no flags but the folder (on a GPU the input is 224 px and the precision bf16-mixed by
# themselves), printing the crop and fit wall times, each epoch's seconds and the held-out scores. What comes back
# under $OUT: log.txt, summary.json, metrics.csv, curves.png, test-keys.txt (the checkpoint is too large to return).
#
# Here (once per session):  bash benchmarks/gpu_fit_teacher.sh --prepare   (the FER2013 images to .gpu-fer/, 52 MB)
# There (the device tool):  run(command="bash benchmarks/gpu_fit_teacher.sh", carry=[".gpu-fer"], timeout_s=600)
# A CPU smoke test first:   SUBSET=300 bash benchmarks/gpu_fit_teacher.sh --prepare
#                           EPOCHS=1 SIZE=48 PY=.venv/bin/python bash benchmarks/gpu_fit_teacher.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FER=${FER:-../shared/data/fer2013-train} PY=${PY:-python3} EPOCHS=${EPOCHS:-30}
if [ "${1:-}" = "--prepare" ]; then
  mkdir -p .git/info && touch .git/info/exclude
  grep -qx '/.gpu-fer/' .git/info/exclude || echo /.gpu-fer/ >> .git/info/exclude
  rm -rf .gpu-fer && mkdir -p .gpu-fer/images
  head -n "$((${SUBSET:-28705} + 1))" "$FER/labels.csv" > .gpu-fer/labels.csv
  tail -n +2 .gpu-fer/labels.csv | cut -d, -f1 | (cd "$FER/images" && xargs cp -t "$OLDPWD/.gpu-fer/images")
  du -sh --apparent-size .gpu-fer
  exit 0
fi
OUT=${OUT:-/tmp/gpu-fit-out}
WORK=/tmp/gpu-fit && rm -rf "$WORK" && mkdir -p "$WORK" "$OUT"
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; } | tee "$OUT/log.txt"
t0=$SECONDS
# --size only when asked (the smoke test): unset, fit-teacher takes 224 on a GPU
"$PY" -m distill.cli --workdir "$WORK" fit-teacher --data .gpu-fer --epochs "$EPOCHS" ${SIZE:+--size "$SIZE"} \
  2>&1 | grep -v "━" | grep -v "^train: epoch" | tee -a "$OUT/log.txt"
echo "== crop + fit + test: $((SECONDS - t0)) s" | tee -a "$OUT/log.txt"
run=$(ls -d "$WORK"/teachers/*-vgg_s | tail -1)
cp "$run/summary.json" "$run/logs/metrics.csv" "$run/curves.png" "$run/test-keys.txt" "$OUT/"
"$PY" - "$run/logs/metrics.csv" <<'PY' | tee -a "$OUT/log.txt"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows:
    if r.get("val/accuracy"):
        print(f"epoch {int(r['epoch']) + 1}: val accuracy {float(r['val/accuracy']):.4f} uar {float(r['val/uar']):.4f}")
    if r.get("train/epoch_seconds"):
        print(f"epoch {int(r['epoch']) + 1}: {float(r['train/epoch_seconds']):.1f} s training")
    if r.get("test/accuracy"):
        print(f"held-out: accuracy {float(r['test/accuracy']):.4f} uar {float(r['test/uar']):.4f}")
PY
