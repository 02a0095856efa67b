#!/usr/bin/env bash
# The papers' second scenario (issue #4): our own big teacher, VGG-S (~377 MiB of float weights at 224 px),
# fitted on part of expressions-dev, distilled over the unlabelled pool into SqueezeNet, scored only on the
# images the teacher never saw, beside the teacher and the ensemble of both teachers.
# Cost: VGG-S is ~3 GMAC a face at 224 px: fitting and labelling ~15k faces take hours on a 2-core CPU;
# run it on a GPU machine (the commands pick the GPU up through Lightning) or lower --size for a dry run.
# Usage: experiments/vgg_s_scenario.sh [WORKDIR] [EPOCHS] (expects the pool cropped as in table3_mini_xception.sh)
set -euo pipefail
W=${1:-distill-work-table3}; EPOCHS=${2:-30}; SHARED=${SHARED:-../shared}
D="distill --workdir $W"
$D fit-teacher --arch vgg_s --data "$SHARED/data/expressions-dev" --epochs "$EPOCHS" --test-fraction 0.3
T=$(ls -d "$W"/teachers/*-vgg_s | tail -1)
for pool in faces-unlabeled lfw-unlabeled; do
  $D label "$W/faces/$pool.h5" --teacher "vgg_s:$T/teacher.pt" --views 4
done
CACHES=$(ls "$W"/caches/*vgg_s*--v4.h5)
$D train $CACHES --student squeezenet1_1_bn --loss kld --temperature 1 --size 112 --epochs "$EPOCHS"
RUN=$(ls -d "$W"/runs/*squeezenet1_1_bn-kld | tail -1)
# held-out images only; the ensemble keeps VGG-S's 8 classes (mini_xception gives contempt no probability)
$D eval csv --data "$SHARED/data/expressions-dev" --keys "$T/test-keys.txt" --model "vgg_s:$T/teacher.pt" \
  --model "$RUN" --model "vgg_s:$T/teacher.pt+mini_xception" --ensemble-map contempt=contempt
$D report
