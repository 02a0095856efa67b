#!/usr/bin/env bash
# Table-3-style experiment: mini_xception teacher, unlabelled faces of ../shared, SqueezeNet students trained
# with label-only vs KLD from the same cache (same budget), evaluated with the teacher on expressions-dev.
# Usage: experiments/table3_mini_xception.sh [WORKDIR] [EPOCHS]
set -euo pipefail
W=${1:-distill-work-table3}; EPOCHS=${2:-15}; SHARED=${SHARED:-../shared}
D="distill --workdir $W"
$D crop "$SHARED/data/faces-unlabeled/images"
$D label "$W/faces/faces-unlabeled.h5" --teacher mini_xception --views 4
CACHE="$W/caches/faces-unlabeled--mini_xception--v4.h5"
for loss in kld label; do
  $D train "$CACHE" --student squeezenet1_1 --loss "$loss" --epochs "$EPOCHS" --size 64 --grey
done
runs=$(ls -d "$W"/runs/*squeezenet1_1-kld "$W"/runs/*squeezenet1_1-label | tail -2)
$D eval csv --data "$SHARED/data/expressions-dev" --model mini_xception $(for r in $runs; do echo --model "$r"; done)
