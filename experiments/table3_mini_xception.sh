#!/usr/bin/env bash
# The papers' Table 3 with the public mini_xception teacher, and Table 2's compression of its best student: what
# docs/results.md reports. mini_xception labels the ~15k unlabelled faces of ../shared (faces-unlabeled + LFW)
# once; students learn with their defaults (kld, and label at the same budget;
# MobileNetV3; FitNets), the teacher run on each step's mixed view where it is cheap; the kld SqueezeNet is
# compressed; everything is scored with the teacher on expressions-dev (MTCNN crops, as training) and gathered by
# `distill report`.
# Runs are single-threaded (OMP_NUM_THREADS=1) so that two share a 2-core machine without spin contention.
# Usage: experiments/table3_mini_xception.sh [WORKDIR]
set -euo pipefail
W=${1:-distill-work-table3}; SHARED=${SHARED:-../shared}
export OMP_NUM_THREADS=1
D="distill --workdir $W"
$D crop "$SHARED/data/faces-unlabeled/images"
$D crop "$SHARED/data/lfw-unlabeled/images"
$D label "$W/faces/faces-unlabeled.h5" --teacher mini_xception   # no cached views: the students run it on theirs
$D label "$W/faces/lfw-unlabeled.h5" --teacher mini_xception
CACHES="$W/caches/faces-unlabeled--mini_xception.h5 $W/caches/lfw-unlabeled--mini_xception.h5"
# the students' own defaults: each registry entry's measured recipe (docs/results.md); hints need their flags
$D train $CACHES --loss kld &
$D train $CACHES --loss label &
wait
$D train $CACHES --student mobilenetv3_small_100 &
$D train $CACHES --loss kld+hint --hint-epochs 2 --epochs 8 &
wait
KLD=$(ls -d "$W"/runs/*squeezenet1_1_bn-kld | head -1)
$D compress "$KLD" --method bwn --epochs 10 --lr 1e-3 &
$D compress "$KLD" --method quant --epochs 1
$D compress "$KLD" --method cp:0.5 --epochs 1
wait
$D compress "$KLD" --method prune-ch:0.6 --stages 1 --epochs 20 --lr 1e-3 &
$D compress "$KLD" --method prune-ch:0.6 --stages 3 --epochs 6 --lr 1e-3
wait
$D compress "$KLD" --method cp-fast:0.15 --epochs 3 --lr 1e-3  # alone: cp-fast times its layers on an idle CPU
models=$(for r in "$W"/runs/*/ "$W"/compressed/*/; do echo --model "${r%/}"; done)
$D eval csv --data "$SHARED/data/expressions-dev" --model mini_xception $models
$D report
python benchmarks/bench_compress.py "$KLD" --workdir "$W" --onnx  # the compression table, latency interleaved
