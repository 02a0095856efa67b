"""int8 against float ONNX for both default students, side by side in one run: ms at batch 1 and 64 (ONNX
Runtime, one thread, interleaved rounds, each graph's fastest: evaluate.speed.compare_latency says why) and where
each graph's time goes (ONNX Runtime's profiler, ms per op type at batch 64). The graphs take faces cut at the
student's framing and side (distill/export.py). Speed does not depend on what a student learnt, so the students
are untrained unless --run gives trained ones; the int8 graphs are calibrated on a face store's faces, as
`distill export --int8` does.

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_int8.py STORE [--run RUN ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from distill.export.formats import export_model
from distill.faces.store import FaceStore
from distill.progress import quiet_libraries
from distill.students.model import Student, load_student

CLASSES = ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"]


def default_students() -> dict[str, Student]:
    """The two no-flag students: the ensemble's (RGB 112 px) and mini_xception's (grey 64 px), framing 0.8."""
    return {
        "SqueezeNet-BN, RGB 112 px": Student("squeezenet1_1_bn", CLASSES, 112, grey=False, crop=0.8),
        "SqueezeNet-BN, grey 64 px": Student("squeezenet1_1_bn", CLASSES, 64, grey=True, crop=0.8),
    }


def session(path: Path, profile: Path | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    if profile is not None:
        options.enable_profiling, options.profile_file_prefix = True, str(profile)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def fastest_ms(sessions: dict, batch: int, rounds: int, side: int) -> dict[str, float]:
    """Each session's fastest ms on one batch of random faces cut at the graphs' side, the sessions taking turns."""
    x = np.random.default_rng(0).random((batch, 3, side, side), dtype=np.float32)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for turn in range(rounds + 3):
        for name, s in sessions.items():
            start = time.perf_counter()
            s.run(None, {s.get_inputs()[0].name: x})
            if turn >= 3:  # warm-up turns are not timed
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * min(t) for name, t in times.items()}


def op_split(path: Path, folder: Path, side: int, calls: int = 10) -> dict[str, float]:
    """ms per op type of one batch of 64 (ONNX Runtime's profiler, mean over `calls`)."""
    s = session(path, folder / path.stem)
    x = np.random.default_rng(1).random((64, 3, side, side), dtype=np.float32)
    for _ in range(calls):
        s.run(None, {s.get_inputs()[0].name: x})
    by_op: dict[str, float] = {}
    for event in json.loads(Path(s.end_profiling()).read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            by_op[op] = by_op.get(op, 0.0) + event["dur"] / calls / 1000
    return dict(sorted(by_op.items(), key=lambda kv: -kv[1]))


def cpu_name() -> str:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in flags.splitlines() if "model name" in line), platform.machine()
    )
    extras = [f for f in ("avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16") if f" {f}" in flags]
    return f"{model} ({', '.join(extras) or 'no VNNI'})"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path, help="face store for int8 calibration (e.g. the unlabelled pool's)")
    ap.add_argument("--run", type=Path, nargs="*", default=[], help="trained runs instead of untrained students")
    ap.add_argument("--rounds", type=int, default=15, help="timed turns at batch 64 (4x that at batch 1)")
    args = ap.parse_args(argv)
    quiet_libraries()
    calibration = FaceStore(args.store).pixels(slice(0, 256))
    students = {run.name: load_student(run / "student.pt") for run in args.run} or default_students()
    print(f"CPU: {cpu_name()}; ONNX Runtime, one thread")
    print("| student | batch | float ms | int8 ms | int8 / float speed |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        splits = {}
        for i, (name, student) in enumerate(students.items()):
            graphs = {"float": folder / f"s{i}.onnx", "int8": folder / f"s{i}.int8.onnx"}
            export_model(student.eval(), graphs["float"], "onnx")
            export_model(student.eval(), graphs["int8"], "onnx", calibration=calibration)
            sessions = {kind: session(path) for kind, path in graphs.items()}
            side = student.preprocess.size  # graphs take faces cut at the student's framing and side
            for batch, rounds in ((1, 4 * args.rounds), (64, args.rounds)):
                ms = fastest_ms(sessions, batch, rounds, side)
                print(f"| {name} | {batch} | {ms['float']:.2f} | {ms['int8']:.2f} | {ms['float'] / ms['int8']:.2f}x |")
            splits[name] = {kind: op_split(path, folder, side) for kind, path in graphs.items()}
    for name, kinds in splits.items():
        for kind, ops in kinds.items():
            top = ", ".join(f"{op} {ms:.1f}" for op, ms in list(ops.items())[:8])
            print(f"{name}, {kind}: {sum(ops.values()):.1f} ms a batch of 64 — {top}")


if __name__ == "__main__":
    main()
