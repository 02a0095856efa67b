#!/usr/bin/env bash
# Table-3-style experiment (issue #4): the mini_xception teacher labels the ~15k unlabelled faces of ../shared
# (faces-unlabeled + lfw-unlabeled) once, with augmented views; students learn from those caches only, with
# `kld` and `label` at the same budget, plus MobileNetV3 and FitNets; all are scored with the teacher on
# expressions-dev (MTCNN crops, as training) and gathered by `distill report`.
# Each run is single-threaded (OMP_NUM_THREADS=1) so two share the 2-core machine without spin contention.
# Usage: experiments/table3_mini_xception.sh [WORKDIR] [EPOCHS]
set -euo pipefail
W=${1:-distill-work-table3}; EPOCHS=${2:-30}; SHARED=${SHARED:-../shared}
export OMP_NUM_THREADS=1
D="distill --workdir $W"
$D crop "$SHARED/data/faces-unlabeled/images"
$D crop "$SHARED/data/lfw-unlabeled/images"
$D label "$W/faces/faces-unlabeled.h5" --teacher mini_xception --views 8
$D label "$W/faces/lfw-unlabeled.h5" --teacher mini_xception --views 4
CACHES="$W/caches/faces-unlabeled--mini_xception--v8.h5 $W/caches/lfw-unlabeled--mini_xception--v4.h5"
COMMON="--grey --size 64 --batch-size 64 --workers 1 --temperature 1"
$D train $CACHES $COMMON --student squeezenet1_1_bn --loss kld --epochs "$EPOCHS" &
$D train $CACHES $COMMON --student squeezenet1_1_bn --loss label --epochs "$EPOCHS" &
wait
SHORT=$((EPOCHS * 4 / 15))  # 8 of 30: what fitted the session's CPU time beside the long runs
$D train $CACHES $COMMON --student mobilenetv3_small_100 --small-input --loss kld --epochs "$SHORT" &
$D train $CACHES $COMMON --student squeezenet1_1_bn --loss kld+hint --hint-epochs 2 --epochs "$SHORT" &
KLD=$(ls -d "$W"/runs/*squeezenet1_1_bn-kld | head -1)
$D compress "$KLD" --method quant --epochs 1
$D compress "$KLD" --method bwn --epochs 2
$D compress "$KLD" --method bwn --epochs 6 --lr 1e-3
$D compress "$KLD" --method cp:0.5 --epochs 1
$D compress "$KLD" --method xnor --epochs 2
$D compress "$KLD" --method prune-ch:0.5 --stages 3 --epochs 1 --lr 1e-3
$D compress "$KLD" --method prune:0.8+quant --stages 3 --epochs 1 --lr 1e-3
$D compress "$KLD" --method hash --epochs 2 --lr 1e-3
$D compress "$KLD" --method prune-ch:0.6 --stages 3 --epochs 3 --lr 1e-3
$D compress "$KLD" --method bwn --epochs 10 --lr 1e-3
$D compress "$KLD" --method hybrid:0.8 --epochs 1 --lr 1e-3
$D compress "$KLD" --method bwn --stages 3 --epochs 4 --lr 1e-3   # incremental (INQ) binarisation
$D compress "$KLD" --method prune-ch:0.6 --stages 3 --epochs 5 --lr 1e-3
wait
$D train $CACHES $COMMON --student mobilenetv3_small_100 --small-input --loss kld --epochs 14
$D train $CACHES $COMMON --student mobilenetv3_small_100 --small-input --loss kld --epochs "$EPOCHS"
$D train $CACHES $COMMON --student mobilenetv3_large_100 --small-input --loss kld --epochs 10
# 2026-12-01 (what ran): timm students start from a small-logit classifier init; MobileNetV3-small with and
# without class-balanced draws (--balance), a kld/label pair at the same budget, SqueezeNet with balance, and
# BWN fine-tuned on the float student's own outputs (--teach float) instead of the teacher's cache
MB="$COMMON --student mobilenetv3_small_100 --small-input"
$D train $CACHES $MB --loss kld --epochs 20 &
$D train $CACHES $MB --loss kld --epochs 20 --balance 0.5 &
$D train $CACHES $COMMON --student squeezenet1_1_bn --loss kld --epochs 20 --balance 0.5 &
wait
$D train $CACHES $MB --loss kld --epochs 12 --balance 0.75 &
$D train $CACHES $MB --loss label --epochs 12 --balance 0.75 &
$D compress "$KLD" --method bwn --epochs 8 --lr 1e-3 --teach float
wait
# session 6 (2026-12-01): an EMA of the weights with balanced draws; the label twin at the same budget; MobileNetV3
# with the online teacher and mixup (function matching); compression of the new SqueezeNet student
$D train $CACHES $MB --loss kld --epochs 20 --balance 0.5 --ema 0.998 &
$D train $CACHES $COMMON --student squeezenet1_1_bn --loss kld --epochs 30 --balance 0.5 --ema 0.998
$D train $CACHES $COMMON --student squeezenet1_1_bn --loss label --epochs 30 --balance 0.5 --ema 0.998 &
wait
$D train $CACHES $MB --loss kld --epochs 20 --balance 0.5 --online-teacher --mixup 0.4 &
EMA=$(ls -d "$W"/runs/*squeezenet1_1_bn-kld | tail -1)
$D compress "$EMA" --method bwn --epochs 10 --lr 1e-3
$D compress "$EMA" --method prune-ch:0.6 --stages 3 --epochs 6 --lr 1e-3
$D compress "$EMA" --method quant --epochs 1
$D compress "$EMA" --method cp:0.5 --epochs 1
wait
# session 7 (2026-12-01): one-shot channel pruning with a long fine-tuning; CP only where it is faster
$D compress "$EMA" --method prune-ch:0.6 --stages 1 --epochs 20 --lr 1e-3
$D compress "$EMA" --method prune-ch:0.6 --stages 3 --epochs 7 --lr 1e-3 --ema 0.998 &
$D compress "$EMA" --method cp-fast:0.25 --epochs 3 --lr 1e-3
$D compress "$EMA" --method cp-fast:0.1 --epochs 3 --lr 1e-3  # these two before the merged inference form
wait
$D compress "$EMA" --method cp-fast:0.1 --epochs 8 --lr 1e-3 &
$D compress "$EMA" --method prune-ch:0.7 --stages 1 --epochs 20 --lr 1e-3
wait
$D compress "$EMA" --method cp-fast:0.1 --epochs 3 --lr 1e-3  # alone: its layers are timed on an idle CPU
$D compress "$EMA" --method cp-fast:0.15 --epochs 3 --lr 1e-3 &
sleep 40  # 0.15 times its layers alone; 0.2 times them while 0.15 trains
$D compress "$EMA" --method cp-fast:0.2 --epochs 3 --lr 1e-3
wait
models=$(for r in "$W"/runs/*/ "$W"/compressed/*/; do echo --model "${r%/}"; done)
$D eval csv --data "$SHARED/data/expressions-dev" --model mini_xception $models
$D report
python benchmarks/bench_compress.py "$KLD" --workdir "$W"  # the compression table, latency interleaved
python benchmarks/bench_compress.py "$EMA" --workdir "$W" --onnx
