#!/usr/bin/env bash
# Table 3's own-teacher row on the VGG-S that ships (issue #51), with no fit: the shipped teacher labels both
# unlabelled pools and FER2013's training images it never held out (without their labels), SqueezeNet `kld` and
# `label` students train with no flags, and all are scored on the teacher's held-out FER2013 faces (rebuilt from the
# dataset: the split is a hash of each key) and on expressions-dev. About 1.5 hours on a 2-core CPU.
# Usage: experiments/shipped_table3.sh WORKDIR POOL   (POOL: a folder linking both unlabelled pools' images)
set -euo pipefail
W=${1:?workdir}; POOL=${2:?pool folder}; SHARED=${SHARED:-../shared}
FER="$SHARED/data/fer2013-train"; DEV="$SHARED/data/expressions-dev"
D="distill --workdir $W"
one() { OMP_NUM_THREADS=1 $D "$@"; }
mkdir -p "$W"
KEYS="$W/shipped-test-keys.txt"
python experiments/ship_teacher.py keys "$FER" > "$KEYS"
UNLABELLED="$W/fer2013-unlabelled" && mkdir -p "$UNLABELLED"
comm -23 <(ls "$FER/images" | sort) <(sort "$KEYS") \
  | while read -r f; do ln -sf "$(realpath "$FER/images/$f")" "$UNLABELLED/$f"; done
one crop "$POOL" &
one crop "$UNLABELLED" --detector whole &
wait
one label --teacher vgg_s "$W/faces/$(basename "$POOL").h5" &    # a bare vgg_s: the shipped one (no fit here)
one label --teacher vgg_s "$W/faces/fer2013-unlabelled.h5" &
wait
POOL_CACHE=$(ls -t "$W"/caches/"$(basename "$POOL")"--vgg_s*.h5 | head -1)
FER_CACHE=$(ls -t "$W"/caches/fer2013-unlabelled--vgg_s*.h5 | head -1)
one train "$POOL_CACHE" "$FER_CACHE" --loss kld &
one train "$POOL_CACHE" "$FER_CACHE" --loss label &
wait
STUDENTS=$(for r in "$W"/runs/*squeezenet1_1_bn-kld "$W"/runs/*squeezenet1_1_bn-label; do echo --model "$r"; done)
$D eval auto --data "$FER" --keys "$KEYS" --detector whole --model vgg_s $STUDENTS
$D eval csv --data "$DEV" --model vgg_s $STUDENTS --model mini_xception+face_api --model vgg_s+mini_xception+face_api
$D report
