#!/usr/bin/env bash
# The papers' Table 2 on today's default student (the ensemble teacher's RGB 112 px SqueezeNet, `distill train`
# with no flags): every compressor at its registry recipe (`distill list compressors`; xnor and hash, which have
# none measured, at BWN's 10 epochs at 1e-3), the no-flag plan, and the float student's int8 graph, gathered by
# benchmarks/bench_compress.py (bytes, parameters, eager and ONNX Runtime latency interleaved, accuracy and UAR on
# expressions-dev with paired intervals). One core: every compression runs single-threaded, one after the other.
# Usage: experiments/table2_default_student.sh WORKDIR RUN   (RUN: the trained student's run folder)
set -euo pipefail
W=$1; RUN=$2; SHARED=${SHARED:-../shared}
export OMP_NUM_THREADS=1
D="distill --workdir $W"
$D compress "$RUN"                                    # the no-flag plan (auto)
$D export "$RUN" --format onnx --int8                 # the float student's int8 graph
$D compress "$RUN" --method quant
$D compress "$RUN" --method cp
$D compress "$RUN" --method bwn
$D compress "$RUN" --method prune-ch:0.5+quant
$D compress "$RUN" --method hybrid
$D compress "$RUN" --method xnor --epochs 10 --lr 1e-3
$D compress "$RUN" --method hash --epochs 10 --lr 1e-3
$D compress "$RUN" --method cp-fast                   # times its layers: best on an otherwise idle CPU
python benchmarks/bench_compress.py "$RUN" --workdir "$W" --data "$SHARED/data/expressions-dev" --onnx --int8
