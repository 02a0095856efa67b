#!/usr/bin/env bash
# The papers' second scenario with a real big teacher (issue #41): VGG-S fitted on FER2013's 28,705 labelled
# training faces with no flags (BatchNorm, 96 px on a CPU, 30 epochs, mirror-averaged), then compressed itself (the
# papers' Table 2 on the teacher: each compressor fine-tuned on pool faces the teacher labelled), its SqueezeNet
# students (Table 3's own-teacher row), every model scored on the FER2013 faces the teacher never saw (its
# test-keys.txt) and on expressions-dev.
# Usage: experiments/own_teacher.sh WORKDIR POOL   (POOL: a folder linking both unlabelled pools' images)
set -euo pipefail
W=${1:?workdir}; POOL=${2:?pool folder}; SHARED=${SHARED:-../shared}
FER="$SHARED/data/fer2013-train"; DEV="$SHARED/data/expressions-dev"
D="distill --workdir $W"
ls "$W"/teachers/*-vgg_s/teacher.pt >/dev/null 2>&1 || $D fit-teacher --arch vgg_s --data "$FER"
T=$(dirname "$(ls "$W"/teachers/*-vgg_s/teacher.pt | tail -1)")
$D crop "$POOL"
$D label --teacher "vgg_s:$T/teacher.pt"        # over the newest store (the pool); 4 cached views a face
POOL_CACHE=$(ls -t "$W"/caches/*vgg_s*.h5 | head -1)
# FER2013's training images the teacher did not hold out, without their labels: faces like the teacher's own
UNLABELLED="$W/fer2013-unlabelled" && mkdir -p "$UNLABELLED"
comm -23 <(ls "$FER/images" | sort) <(sort "$T/test-keys.txt") \
  | while read -r f; do ln -sf "$(realpath "$FER/images/$f")" "$UNLABELLED/$f"; done
$D crop "$UNLABELLED" --detector whole
$D label --teacher "vgg_s:$T/teacher.pt"        # the newest store: those images; 2 cached views a face
FER_CACHE=$(ls -t "$W"/caches/*vgg_s*.h5 | head -1)
$D import-teacher "$T/teacher.pt"               # fine-tunes on both caches: pool and FER2013-like faces
RUN=$(ls -d "$W"/runs/*vgg_s-imported | tail -1)
for m in svd+hybrid:0.8 svd+hybrid:0.9 hybrid:0.9; do
  $D compress "$RUN" --method "$m" --epochs 2 --limit 4000 --lr 1e-4
done
for m in quant bwn prune-ch:0.5 cp xnor hash; do
  $D compress "$RUN" --method "$m" --epochs 1 --limit 2000 --lr 1e-4
done
$D export "$RUN" --format onnx --int8
OMP_NUM_THREADS=1 python benchmarks/bench_compress.py "$RUN" --workdir "$W" --data "$FER" --keys "$T/test-keys.txt" \
  --detector whole --onnx --int8
# Table 3's own-teacher row: the teacher's students over the pool, with no flags, scored on both sets
$D train "$POOL_CACHE" --loss kld
$D train "$POOL_CACHE" --loss label
$D train "$POOL_CACHE" "$FER_CACHE" --loss kld   # with FER2013's unlabelled training images pooled in
$D train "$POOL_CACHE" "$FER_CACHE" --loss label
# the papers' second row: SqueezeNet on the teacher's labelled training faces themselves, its split and side
$D fit-teacher --arch squeezenet1_1_bn --size 64 --data "$W/teachers/crops/$(basename "$FER")-labelled-whole.h5"
STUDENTS=$(for r in "$W"/runs/*squeezenet1_1_bn-kld "$W"/runs/*squeezenet1_1_bn-label \
  "$W"/teachers/*-squeezenet1_1_bn/student.pt; do echo --model "$r"; done)
$D eval auto --data "$FER" --keys "$T/test-keys.txt" --detector whole --model "vgg_s:$T/teacher.pt" $STUDENTS
$D eval csv --data "$DEV" --model "vgg_s:$T/teacher.pt" $STUDENTS --model mini_xception --model mini_xception+face_api
$D report
