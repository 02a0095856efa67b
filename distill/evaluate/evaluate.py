"""`distill eval`: scores of teachers and students on a labelled set, with their size, speed and memory."""

from __future__ import annotations

from pathlib import Path

import torch

from distill.datasets.emotions import parse_mapping
from distill.errors import DistillError
from distill.evaluate.evalset import EvalSet, load_cropped, load_uncropped, only_keys
from distill.evaluate.render import write_eval
from distill.evaluate.scores import predict, score


def evaluate_model(
    name: str,
    model: torch.nn.Module,
    evalset: EvalSet,
    mapping: str | None,
    file: Path | None,
    speed_size: int,
    load_args: tuple = (),
) -> dict:
    """Scores and model facts; load_args (combine, ensemble map) rebuild the model for the peak-memory probe. A
    student runs (and is timed) in its inference form: BatchNorm folded, channels-last."""
    fast = _inference_form(model)
    logits = predict(fast, evalset.pixels, show_progress=True)
    scores = score(logits, evalset.labels, list(model.classes), parse_mapping(mapping))
    facts = _facts(model, fast, file, speed_size)
    from distill.evaluate.speed import peak_memory_mib

    facts["peak_memory_mib_batch1"] = peak_memory_mib(name, speed_size, *load_args)
    return {"model": name, "describe": model.describe(), "scores": scores, "facts": facts}


def _inference_form(model: torch.nn.Module) -> torch.nn.Module:
    """A student as it runs at work (BatchNorm folded, channels-last: the same logits, faster); others as they are."""
    import copy

    from distill.students.model import Student

    return copy.deepcopy(model).for_inference() if isinstance(model, Student) else model


def _facts(model, fast, file, size):
    """Size of the model; its speed in its inference form, and, for a student or compressed model, in ONNX Runtime
    too: the runtime predict uses, and on a CPU several times faster than eager PyTorch."""
    from distill.evaluate.speed import model_facts, onnx_latency

    facts = model_facts(model, size, file, runner=fast)
    if hasattr(model, "arch_kwargs"):
        facts |= onnx_latency(model, size)
    return facts


def evaluate_in(ws, dataset: str, data: Path | None, specs: list[str], keys: Path | None, cfg) -> tuple[str, Path]:
    """`distill eval`: score the models (default: the workspace's newest student or compressed model; every one
    checked before any runs) on a labelled set, cropped under evals/ (never training material); returns the
    report's headline and the path of eval.md."""
    from distill.artifacts import load_models
    from distill.datasets.readers import dataset_root, read_dataset
    from distill.workspace import store_name

    specs = specs or [str(ws.newest_model())]
    models = load_models(specs, cfg.combine, cfg.ensemble_map)
    samples, reader = read_dataset(dataset, data)
    if keys is not None:
        samples = only_keys(samples, keys)
    root = dataset_root(dataset, data)
    evalset = load_cropped(samples, ws.eval_store(reader, root, cfg.size), cfg.size) if cfg.crop else None
    evalset = evalset or load_uncropped(samples, cfg.size)
    if not evalset.keys:
        raise DistillError(f"no labelled, readable image in {root}")
    load_args = (cfg.combine, cfg.ensemble_map)
    results = [
        evaluate_model(spec, net, evalset, cfg.class_map, file, cfg.size, load_args)
        for spec, (net, file) in zip(specs, models, strict=True)
    ]
    name = f"{store_name(root)} ({reader})"
    out_dir = ws.new_run_dir("eval", f"{reader}-{store_name(root)}")
    write_eval(out_dir, name, results, evalset, str(root.resolve()))
    return (out_dir / "eval.md").read_text().split("\n## ")[0], out_dir / "eval.md"
