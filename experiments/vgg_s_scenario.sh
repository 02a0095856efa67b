#!/usr/bin/env bash
# The papers' second scenario: our own big teacher, VGG-S, fitted on part of
# expressions-dev, distilled over the unlabelled pool into SqueezeNet, and compressed itself with the hybrid
# pipeline; everything scored only on the expressions-dev images the teacher never saw, beside the ensemble of
# both teachers.
# Size: at 112 px VGG-S has 42 M parameters (160 MiB; the papers' 224 px input makes fc6 4x larger, ~377 MiB).
# 112 px keeps fitting (~40 min), labelling 15k faces x 3 (~20 min) and the hybrid rounds within a 2-core CPU
# run; on a GPU machine pass SIZE=224 (the commands pick the GPU up through Lightning).
# Usage: experiments/vgg_s_scenario.sh [WORKDIR] (expects the pool cropped as in table3_mini_xception.sh)
set -euo pipefail
W=${1:-distill-work-table3}; SHARED=${SHARED:-../shared}; SIZE=${SIZE:-112}
D="distill --workdir $W"
$D fit-teacher --arch vgg_s --data "$SHARED/data/expressions-dev" --epochs 40 --test-fraction 0.3 --size "$SIZE"
T=$(ls -d "$W"/teachers/*-vgg_s | tail -1)
for pool in faces-unlabeled lfw-unlabeled; do
  $D label "$W/faces/$pool.h5" --teacher "vgg_s:$T/teacher.pt" --views 2
done
CACHES=$(ls "$W"/caches/*vgg_s*--v2.h5)
$D train $CACHES --student squeezenet1_1_bn --loss kld --temperature 1 --size 64 --grey --epochs 6
RUN=$(ls -d "$W"/runs/*squeezenet1_1_bn-kld | tail -1)
# the teacher itself, compressed: Deep Compression with self-distillation from its own caches
$D import-teacher "$T/teacher.pt"
VGG=$(ls -d "$W"/runs/*vgg_s-imported | tail -1)
$D compress "$VGG" --method hybrid:0.9 --epochs 1 --limit 2000 --lr 1e-4
HYB=$(ls -d "$W"/compressed/*vgg_s-imported-hybrid* | tail -1)
# Ge et al.'s whole pipeline (low-rank fc6/fc7 first), and CP of the convolutions (batch-1 speed where convs are big)
$D compress "$VGG" --method svd+hybrid:0.9 --epochs 1 --limit 2000 --lr 1e-4
$D compress "$VGG" --method cp:0.5 --epochs 1 --limit 2000 --lr 1e-4
# held-out images only; the ensemble keeps VGG-S's 8 classes (mini_xception gives contempt no probability)
$D eval csv --data "$SHARED/data/expressions-dev" --keys "$T/test-keys.txt" --model "vgg_s:$T/teacher.pt" \
  --model "$RUN" --model "$HYB/model.distill" --model "vgg_s:$T/teacher.pt+mini_xception" --model mini_xception \
  --ensemble-map contempt=contempt
$D report
python benchmarks/bench_compress.py "$VGG" --workdir "$W" --keys "$T/test-keys.txt" --data "$SHARED/data/expressions-dev"
