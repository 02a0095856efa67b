#!/usr/bin/env bash
# The papers' second scenario with a real big teacher (issue #41): VGG-S fitted on FER2013's 28,705 labelled
# training faces with no flags (mirror-averaged; 96 px in bf16 where the CPU computes it natively, about 100 min on 2
# cores; 64 px on a CPU without, where `--size 96` takes over 4 hours: benchmarks/bench_fit_teacher.py), then its
# SqueezeNet students (Table 3's own-teacher row) or its compressed forms (Table 2 on the teacher), every model
# scored on the FER2013 faces the teacher never saw (its test-keys.txt) and on expressions-dev.
# Each part is one sitting, work that does not depend on other work side by side (one thread each): on a 2-core CPU
# with native bf16 about 3.5 hours (fit 103 min, labelling the pool 4 views a face about 30, the students or the
# compressed rows about an hour or more). The supervised SqueezeNet row needs no teacher: about 1.5 hours.
# Usage: experiments/own_teacher.sh WORKDIR POOL PART   (POOL: a folder linking both unlabelled pools' images;
#        PART: table3, table2 or supervised)
set -euo pipefail
W=${1:?workdir}; POOL=${2:?pool folder}; PART=${3:?table3, table2 or supervised}; SHARED=${SHARED:-../shared}
FER="$SHARED/data/fer2013-train"; DEV="$SHARED/data/expressions-dev"
D="distill --workdir $W"
one() { OMP_NUM_THREADS=1 $D "$@"; }   # a job beside another: one thread each

if [ "$PART" = supervised ]; then     # the papers' second row: SqueezeNet on the labels themselves, the same split
  $D fit-teacher --arch squeezenet1_1_bn --data "$FER"   # unset, its side is the VGG-S fit's on this machine
  S=$(ls -d "$W"/teachers/*-squeezenet1_1_bn | tail -1)
  $D eval auto --data "$FER" --keys "$S/test-keys.txt" --detector whole --model "$S/student.pt"
  $D eval csv --data "$DEV" --model "$S/student.pt"
  exit 0
fi

# the teacher, and beside it what does not need it: the pool's crops and FER2013's unlabelled training images
ls "$W"/teachers/*-vgg_s/teacher.pt >/dev/null 2>&1 || $D fit-teacher --arch vgg_s --data "$FER" &
one crop "$POOL" &
wait
T=$(dirname "$(ls "$W"/teachers/*-vgg_s/teacher.pt | tail -1)")
UNLABELLED="$W/fer2013-unlabelled" && mkdir -p "$UNLABELLED"    # the images it did not hold out, without labels
comm -23 <(ls "$FER/images" | sort) <(sort "$T/test-keys.txt") \
  | while read -r f; do ln -sf "$(realpath "$FER/images/$f")" "$UNLABELLED/$f"; done
$D crop "$UNLABELLED" --detector whole
POOL_STORE=$(ls -t "$W"/faces/*.h5 | grep -v fer2013-unlabelled | head -1)
FER_STORE=$(ls -t "$W"/faces/fer2013-unlabelled*.h5 | head -1)
one label --teacher "vgg_s:$T/teacher.pt" "$POOL_STORE" &       # 4 cached views a face (VGG-S is big)
one label --teacher "vgg_s:$T/teacher.pt" "$FER_STORE" &        # 2 views a face
wait
POOL_CACHE=$(ls -t "$W"/caches/"$(basename "$POOL_STORE" .h5)"--vgg_s*.h5 | head -1)
FER_CACHE=$(ls -t "$W"/caches/"$(basename "$FER_STORE" .h5)"--vgg_s*.h5 | head -1)

if [ "$PART" = table3 ]; then         # the students, no flags: over both caches (FER2013-like faces pooled in)
  one train "$POOL_CACHE" "$FER_CACHE" --loss kld &
  one train "$POOL_CACHE" "$FER_CACHE" --loss label &
  wait
  STUDENTS=$(for r in "$W"/runs/*squeezenet1_1_bn-kld "$W"/runs/*squeezenet1_1_bn-label; do echo --model "$r"; done)
  $D eval auto --data "$FER" --keys "$T/test-keys.txt" --detector whole --model "vgg_s:$T/teacher.pt" $STUDENTS
  $D eval csv --data "$DEV" --model "vgg_s:$T/teacher.pt" $STUDENTS --model mini_xception+face_api \
    --model "vgg_s:$T/teacher.pt+mini_xception+face_api"
elif [ "$PART" = table2 ]; then       # the teacher compressed, each fine-tuned on its own posteriors of both caches
  $D import-teacher "$T/teacher.pt"
  RUN=$(ls -d "$W"/runs/*vgg_s-imported | tail -1)
  one compress "$RUN" --method svd+hybrid:0.8 --epochs 2 --limit 4000 --lr 1e-4 &
  one compress "$RUN" --method hybrid:0.9 --epochs 2 --limit 4000 --lr 1e-4 &
  wait
  for pair in "quant bwn" "prune-ch:0.5 cp" "xnor hash"; do
    for m in $pair; do one compress "$RUN" --method "$m" --epochs 1 --limit 2000 --lr 1e-4 & done
    wait
  done
  $D export "$RUN" --format onnx --int8
  OMP_NUM_THREADS=1 python benchmarks/bench_compress.py "$RUN" --workdir "$W" --data "$FER" \
    --keys "$T/test-keys.txt" --detector whole --onnx --int8
else
  echo "PART must be table3, table2 or supervised, not '$PART'" >&2; exit 2
fi
$D report
