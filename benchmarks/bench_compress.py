"""The compression table: every compressed model of a trained student against that float student, in one
run — bytes on disk, parameters, CPU latency at batch 1 and 64 (measured interleaved, same process, so the ratios
compare like with like), training ms per batch of 64 (forward and backward of the model's compressed structure,
weights decoded), accuracy and UAR on a labelled set (expressions-dev, MTCNN crops as in training).

The compressed models come from `distill compress RUN --method ...` (experiments/table3_mini_xception.sh makes
them) and `distill compress RUN` (the no-flag plan, scored as it deploys: its int8 graph where it chose one); the
float student's int8 ONNX graph (`distill export RUN --int8`) is added when --int8; --onnx adds each model's
latency in ONNX Runtime at batch 1 and 64 (exported as `distill export --format onnx` does).
Usage: python benchmarks/bench_compress.py RUN [--workdir W] [--data ../shared/data/expressions-dev] [--int8]
       [--onnx] [--keys TEACHER/test-keys.txt] (VGG-S imported with `distill import-teacher`: only faces it never saw)
       [--detector whole] (FER2013's 48 px crops, each image whole, as a teacher fitted on them learnt)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from distill.artifacts import load_model
from distill.datasets.readers import read_dataset
from distill.evaluate.evalset import load_cropped, one_label_each, only_keys
from distill.evaluate.scores import predict, score
from distill.evaluate.speed import compare_latency, compare_latency_on, compare_training_step
from distill.export.formats import OnnxModel
from distill.progress import quiet_libraries
from distill.workspace import Workspace

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "expressions-dev"
SIZE = 112  # the face stores' crop side: what every model is fed
ROUNDS = 25  # interleaved timing rounds, each model's fastest kept (evaluate.speed.compare_latency)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path, help="training run of the float student")
    ap.add_argument("--workdir", type=Path, default=None, help="workspace (default: the run's)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--int8", action="store_true", help="add the run's student.int8.onnx (distill export --int8)")
    ap.add_argument("--onnx", action="store_true", help="also time each model exported to ONNX, in ONNX Runtime")
    ap.add_argument("--keys", type=Path, default=None, help="score only these images (a teacher's test-keys.txt)")
    ap.add_argument("--detector", default="mtcnn", help="how the labelled faces are cut (whole: FER2013's crops)")
    args = ap.parse_args(argv)
    quiet_libraries()
    ws = Workspace(args.workdir or args.run.parent.parent)
    files = {"float": args.run / "student.pt"}
    for folder in sorted(ws.dir("compressed").glob(f"*{args.run.name}-*")):
        if (folder / "model.distill").is_file():
            summary = json.loads((folder / "summary.json").read_text())
            if "plan" in summary:  # the no-flag plan: its deployable file (the int8 graph where it chose int8)
                files[f"no-flag plan: {summary['plan']['chosen']}"] = Path(summary["deployable"])
                continue
            rounds = summary.get("rounds", [])
            epochs = "+".join(str(r.get("epochs", "?")) for r in rounds) or summary.get("fine_tune_epochs_per_round")
            rounds = len(rounds) or 1
            name = f"{summary['methods']} ({rounds}x{epochs} ep)"
            if name in files:  # the same recipe compressed twice (other lr, teacher, EMA): keep both rows
                name = f"{name} [{folder.name[:15]}]"
            files[name] = folder / "model.distill"
    if args.int8 and (args.run / "student.int8.onnx").is_file():
        files["int8 graph (ONNX Runtime)"] = args.run / "student.int8.onnx"
    samples, reader = read_dataset("csv", args.data)
    samples = only_keys(samples, args.keys) if args.keys else samples
    samples, _ = one_label_each(samples)  # as `distill eval` scores them
    store = ws.eval_store(reader, args.data, SIZE, args.detector)
    evalset = load_cropped(samples, store, SIZE, detector=args.detector)
    models = {name: _loaded(path) for name, path in files.items()}
    ms = compare_latency(models, SIZE, rounds=ROUNDS)
    ms64 = compare_latency_on(models, torch.rand(64, 3, SIZE, SIZE), rounds=5, per_round=1)
    trainable = {name: m for name, m in models.items() if not isinstance(m, OnnxModel)}  # a graph only infers
    train_ms = compare_training_step(trainable, torch.rand(64, 3, SIZE, SIZE))
    onnx_ms, onnx_ms64 = onnx_latencies(models) if args.onnx else ({}, {})
    rows = []
    for name, model in models.items():
        scores = score(predict(model, evalset.pixels), evalset.labels, list(model.classes))
        rows.append(
            {
                "model": name,
                "bytes": files[name].stat().st_size,
                "params": model.parameter_count()  # an ONNX graph's initialisers
                if isinstance(model, OnnxModel)
                else sum(p.numel() for p in model.parameters()),  # what it computes with (pruned: fewer)
                "layers_ratio": _layers_ratio(files[name]),
                "ms": ms[name],
                "ms64": ms64[name],
                "train_ms": train_ms.get(name),
                "onnx_ms": onnx_ms.get(name),
                "onnx_ms64": onnx_ms64.get(name),
                "acc": 100 * scores["accuracy"],
                "uar": 100 * scores["uar"],
                "correct": np.equal(scores["predictions"], scores["targets"]),
            }
        )
    for r in rows:
        r["ci"] = paired_interval(r["correct"], rows[0]["correct"])
    _print(rows, len(evalset.keys))
    return rows


def onnx_latencies(models: dict[str, torch.nn.Module]) -> tuple[dict[str, float], dict[str, float]]:
    """Batch-1 and batch-64 ms of each model exported to ONNX (as `distill export --format onnx` writes it) in ONNX
    Runtime, with torch's thread count, on faces already cut at the graph's input (_input_side): a deployment runtime
    with far less per-operator overhead than eager PyTorch, so it shows what fewer FLOPs buy once the framework's
    fixed costs are gone."""
    from distill.export.formats import OnnxSession, export_model

    sessions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, model) in enumerate(models.items()):
            if isinstance(model, OnnxModel):
                sessions[name] = model.session  # already a graph in ONNX Runtime (the int8 one), torch's threads
                continue
            path = Path(tmp) / f"{i}.onnx"
            export_model(model, path, "onnx")
            sessions[name] = OnnxSession(path, threads=torch.get_num_threads())
        side = _input_side(next(iter(models.values())))  # every row is one student's: one framing and side
        batch64 = compare_latency_on(sessions, torch.rand(64, 3, side, side), rounds=5, per_round=1)
        return compare_latency(sessions, side, rounds=ROUNDS), batch64


def _input_side(model: torch.nn.Module) -> int:
    """The side of the faces a model's ONNX graph takes (export.input_cut): already cut, so each graph is timed
    without the cutting and resizing that predict does once, when it cuts the face from the picture."""
    return int(model.meta["size"]) if isinstance(model, OnnxModel) else model.preprocess.size


def _loaded(path: Path) -> torch.nn.Module:
    """A model file ready to time: an ONNX graph with torch's thread count, as every other row runs (ONNX Runtime
    would take every core, and on a shared machine its threads would time the neighbours' load)."""
    if path.suffix == ".onnx":
        return OnnxModel(path, threads=torch.get_num_threads())
    return load_model(str(path))[0].eval()


def paired_interval(correct: np.ndarray, base: np.ndarray, draws: int = 4000) -> tuple[float, float]:
    """95% paired-bootstrap interval of the accuracy difference (points) to the float model on the same faces:
    whether a change of a point or two is more than which faces happened to be in the test set."""
    rng = np.random.default_rng(0)
    diff = correct.astype(float) - base.astype(float)
    means = diff[rng.integers(0, len(diff), (draws, len(diff)))].mean(1) * 100
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _layers_ratio(file: Path) -> float | None:
    """How much smaller the compressed layers got (the BWN target counts those only), from the compress summary."""
    summary = file.parent / "summary.json"
    return json.loads(summary.read_text()).get("compressed_layers_ratio") if file.suffix == ".distill" else None


def _print(rows: list[dict], faces: int) -> None:
    base = rows[0]
    print(f"\n{faces} labelled faces; CPU threads {torch.get_num_threads()}")
    print(
        "| model | bytes on disk | x smaller | layers x smaller | params | train ms b64 | CPU ms b1 | x faster "
        "| CPU ms b64 | ONNX RT ms b1 | x faster | ONNX RT ms b64 | x faster | accuracy % | Δ acc 95% CI | UAR % |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        layers = f"{r['layers_ratio']:.1f}" if r["layers_ratio"] else "-"
        print(
            f"| {r['model']} | {r['bytes']:,} | {base['bytes'] / r['bytes']:.1f} | {layers} | {r['params']:,} | "
            f"{_ms(r['train_ms'])} | {r['ms']:.2f} | {base['ms'] / r['ms']:.2f} | {r['ms64']:.1f} | "
            f"{_ms(r['onnx_ms'])} | {_ms(base['onnx_ms'] / r['onnx_ms'] if r['onnx_ms'] else None)} | "
            f"{_ms(r['onnx_ms64'])} | {_ms(base['onnx_ms64'] / r['onnx_ms64'] if r['onnx_ms64'] else None)} | "
            f"{r['acc']:.2f} ({r['acc'] - base['acc']:+.2f}) | "
            f"{r['ci'][0]:+.1f} … {r['ci'][1]:+.1f} | "
            f"{r['uar']:.2f} ({r['uar'] - base['uar']:+.2f}) |"
        )


def _ms(value: float | None) -> str:
    return f"{value:.2f}" if value else "-"


if __name__ == "__main__":
    main()
