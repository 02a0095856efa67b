#!/usr/bin/env bash
# Issue #21: which public teacher makes the best student. ../shared's two unlabelled pools (a folder of links),
# labelled by face_api and by mini_xception (each at its own measured framing, crop 0.8), a kld SqueezeNet student
# of each with the same budget and the same 64 px input (--size 64: grey for mini_xception, RGB for face_api, as
# each teacher sees; face_api's own 112 px would cost the student 3x the compute), all scored on expressions-dev.
# One job at a time, so each gets both cores. docs/results.md's rows were measured with 4 cached views, before
# function matching became the default; the script runs today's defaults (no views, the teacher on each step's view).
# Usage: experiments/teachers.sh [WORKDIR]
set -euo pipefail
W=${1:-distill-work-teachers}; SHARED=$(realpath "${SHARED:-../shared}")
D="distill --workdir $W"
mkdir -p "$W/pool"
ln -sfn "$SHARED/data/faces-unlabeled/images" "$W/pool/faces-unlabeled"
ln -sfn "$SHARED/data/lfw-unlabeled/images" "$W/pool/lfw-unlabeled"
for teacher in face_api mini_xception; do
  time $D label --teacher $teacher "$W/pool"   # crops the pool first (once), then labels it
  time $D train --loss kld --size 64           # the newest cache: this teacher's
done
models=$(for r in "$W"/runs/*/; do echo --model "${r%/}"; done)
time $D eval csv --data "$SHARED/data/expressions-dev" --model face_api --model mini_xception \
  --model mini_xception+face_api $models
