#!/usr/bin/env bash
# The VGG-S that ships inside the package (issue #51): the no-flag fit on FER2013, labelled pool and FER2013-like
# faces for its fine-tuning, compressed by Ge et al.'s svd+hybrid, copied into distill/teachers/weights/ with its
# record, then scored through `distill eval` as a user runs it (a bare `vgg_s` in a workspace with no fit of its own).
# About 2.5 hours on a 2-core CPU with native bf16 (the fit about 100 min). Every step resumes or is quick to redo.
# Usage: experiments/ship_teacher.sh WORKDIR POOL_STORE    (POOL_STORE: the unlabelled pools' face store, from crop)
set -euo pipefail
W=${1:?workdir}; POOL_STORE=${2:?the pool face store}; SHARED=${SHARED:-../shared}
FER="$SHARED/data/fer2013-train"
D="distill --workdir $W"
one() { OMP_NUM_THREADS=1 $D "$@"; }
ls "$W"/teachers/*-vgg_s/teacher.pt >/dev/null 2>&1 || $D fit-teacher --arch vgg_s --data "$FER"
T=$(dirname "$(ls "$W"/teachers/*-vgg_s/teacher.pt | tail -1)")
UNLABELLED="$W/fer2013-unlabelled" && mkdir -p "$UNLABELLED"    # the images it did not hold out, without labels
comm -23 <(ls "$FER/images" | sort) <(sort "$T/test-keys.txt") \
  | while read -r f; do ln -sf "$(realpath "$FER/images/$f")" "$UNLABELLED/$f"; done
[ -f "$W/faces/fer2013-unlabelled.h5" ] || $D crop "$UNLABELLED" --detector whole
one label --teacher "vgg_s:$T/teacher.pt" "$POOL_STORE" &
one label --teacher "vgg_s:$T/teacher.pt" "$W/faces/fer2013-unlabelled.h5" &
wait
$D import-teacher "$T/teacher.pt"
RUN=$(ls -d "$W"/runs/*vgg_s-imported | tail -1)
$D compress "$RUN" --method svd+hybrid:0.8 --epochs 2 --limit 4000 --lr 1e-4
C=$(ls -d "$W"/compressed/*"$(basename "$RUN")"-svd_hybrid_0.8 | tail -1)
python experiments/ship_teacher.py copy "$T" "$C"
S="$W/shipped-check" && rm -rf "$S"   # a workspace with no fit: a bare vgg_s there is the shipped one
distill --workdir "$S" list teachers | tail -1
distill --workdir "$S" eval auto --data "$FER" --keys "$T/test-keys.txt" --detector whole --model vgg_s \
  --model "vgg_s:$T/teacher.pt"
python experiments/ship_teacher.py score "$(ls -d "$S"/evals/*/ | grep -v crops | tail -1)"
distill --workdir "$S" list teachers | grep vgg_s
