#!/usr/bin/env bash
# The card's commands with no flags (issue: defaults are the measured recipe): ../shared's two unlabelled pools,
# pooled the ordinary way (a folder of links), labelled by mini_xception, a kld and a label student each, scored
# with the teacher on expressions-dev. STUDENT=mobilenetv3_small_100 runs the same with that student as the only flag.
# Two trainings run side by side, single-threaded (OMP_NUM_THREADS=1), on a 2-core machine.
# Usage: experiments/defaults.sh [WORKDIR]
set -euo pipefail
W=${1:-distill-work-defaults}; SHARED=$(realpath "${SHARED:-../shared}")
export OMP_NUM_THREADS=1
D="distill --workdir $W"
STUDENT_FLAG=${STUDENT:+--student $STUDENT}
mkdir -p "$W/pool"
ln -sfn "$SHARED/data/faces-unlabeled/images" "$W/pool/faces-unlabeled"
ln -sfn "$SHARED/data/lfw-unlabeled/images" "$W/pool/lfw-unlabeled"
$D label --teacher mini_xception "$W/pool"            # crops the pool first, then labels it
$D train --loss kld $STUDENT_FLAG &
$D train --loss label $STUDENT_FLAG &
wait
models=$(for r in "$W"/runs/*/; do echo --model "${r%/}"; done)
$D eval csv --data "$SHARED/data/expressions-dev" --model mini_xception $models
$D report
