#!/usr/bin/env bash
# Issue #21: which public teacher makes the best student. ../shared's two unlabelled pools (a folder of links),
# labelled by the pair mini_xception+face_api (label's teacher with no flags), by face_api and by mini_xception,
# each at its own measured framing (crop 0.8); a kld SqueezeNet student of each with today's defaults and the same
# budget (the student takes its teacher's input, at most 112 px: RGB 112 for the pair and face_api, grey 64 for
# mini_xception; function matching; SqueezeNet's recipe: balance 1.0, 60 epochs), all scored on expressions-dev.
# One job at a time, so each gets both cores: on a 2-core machine the pair's student takes about 70 min (54 epochs
# at 1.3 min), face_api's about as long, mini_xception's about 30 min (docs/results.md).
# Usage: experiments/teachers.sh [WORKDIR] [TEACHER ...]   (default: all three, the pair first)
set -euo pipefail
W=${1:-distill-work-teachers}; shift || true
TEACHERS=${*:-mini_xception+face_api face_api mini_xception}
SHARED=$(realpath "${SHARED:-../shared}")
D="distill --workdir $W"
mkdir -p "$W/pool"
ln -sfn "$SHARED/data/faces-unlabeled/images" "$W/pool/faces-unlabeled"
ln -sfn "$SHARED/data/lfw-unlabeled/images" "$W/pool/lfw-unlabeled"
for teacher in $TEACHERS; do
  time $D label --teacher "$teacher" "$W/pool"   # crops the pool first (once), then labels it
  time $D train --loss kld                       # the newest cache: this teacher's
done
models=$(for r in "$W"/runs/*/; do echo --model "${r%/}"; done)
teachers=$(for t in $TEACHERS; do echo --model "$t"; done)
time $D eval csv --data "$SHARED/data/expressions-dev" $teachers $models
