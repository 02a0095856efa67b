#!/usr/bin/env bash
# The papers' second scenario with a real big teacher (issue #41): VGG-S fitted on FER2013's 28,705 labelled
# training faces with no flags (BatchNorm, 64 px on a CPU, 30 epochs), then compressed itself (the papers' Table 2
# on the teacher: each compressor fine-tuned for 1 epoch on 2,000 pool faces the teacher labelled), every model
# scored on the FER2013 faces the teacher never saw (its test-keys.txt) and on expressions-dev.
# Usage: experiments/own_teacher.sh WORKDIR POOL   (POOL: a folder linking both unlabelled pools' images)
set -euo pipefail
W=${1:?workdir}; POOL=${2:?pool folder}; SHARED=${SHARED:-../shared}
FER="$SHARED/data/fer2013-train"; DEV="$SHARED/data/expressions-dev"
D="distill --workdir $W"
ls "$W"/teachers/*-vgg_s/teacher.pt >/dev/null 2>&1 || $D fit-teacher --arch vgg_s --data "$FER"
T=$(dirname "$(ls "$W"/teachers/*-vgg_s/teacher.pt | tail -1)")
$D crop "$POOL"
$D label --teacher vgg_s --views 0            # the newest fitted VGG-S over the newest store (the pool)
$D import-teacher "$T/teacher.pt"
RUN=$(ls -d "$W"/runs/*vgg_s-imported | tail -1)
for m in svd+hybrid:0.9 hybrid:0.9 quant; do
  $D compress "$RUN" --method "$m" --epochs 1 --limit 2000 --lr 1e-4
done
$D export "$RUN" --format onnx --int8
OMP_NUM_THREADS=1 python benchmarks/bench_compress.py "$RUN" --workdir "$W" --data "$FER" --keys "$T/test-keys.txt" \
  --onnx --int8
$D eval csv --data "$DEV" --model "vgg_s:$T/teacher.pt" --model mini_xception --model mini_xception+face_api
$D report
