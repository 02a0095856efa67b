"""`distill eval`: scores of teachers and students on a labelled set, with their size, speed and memory."""

from __future__ import annotations

from pathlib import Path

import torch

from distill.datasets.emotions import parse_mapping
from distill.errors import DistillError
from distill.evaluate.evalset import EvalSet, load_cropped, load_uncropped, one_label_each, only_keys
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
    runtime: str = "torch",
) -> dict:
    """Scores and model facts; load_args (combine, ensemble map) rebuild the model for the peak-memory probe. A
    student runs (and is timed) in its inference form: BatchNorm folded, channels-last; with runtime 'onnx' a student
    or compressed model is scored by ONNX Runtime where it exports (both runtimes are timed either way)."""
    import tempfile

    from distill.evaluate.speed import peak_memory_mib

    fast = _inference_form(model)
    with tempfile.TemporaryDirectory() as tmp:
        onnx = _onnx_form(model, speed_size, Path(tmp))
        scorer = onnx if runtime == "onnx" and onnx is not None else fast
        logits = predict(scorer, evalset.pixels, show_progress=True)
        facts = _facts(model, fast, onnx, file, speed_size)
    scores = score(logits, evalset.labels, list(model.classes), parse_mapping(mapping))
    facts["peak_memory_mib_batch1"] = peak_memory_mib(name, speed_size, *load_args)
    used = "onnxruntime" if scorer is onnx or getattr(model, "spec", "").startswith("onnx:") else "torch"
    return {"model": name, "describe": model.describe(), "runtime": used, "scores": scores, "facts": facts}


def _inference_form(model: torch.nn.Module) -> torch.nn.Module:
    """A student as it runs at work (BatchNorm folded, channels-last: the same logits, faster); others as they are."""
    import copy

    from distill.students.model import Student

    return copy.deepcopy(model).for_inference() if isinstance(model, Student) else model


def _onnx_form(model: torch.nn.Module, size: int, folder: Path):
    """A student or compressed model in ONNX Runtime (the runtime predict uses), or None: a teacher, or a model with
    layers the exporter cannot write."""
    from distill.export import OnnxModel, onnx_form

    if not hasattr(model, "arch_kwargs"):
        return None
    onnx = onnx_form(model, folder / "model.onnx", size)
    return onnx if isinstance(onnx, OnnxModel) else None


def _facts(model, fast, onnx, file, size):
    """Size of the model; its speed in its inference form and, where it has one, in ONNX Runtime: on a CPU several
    times faster than eager PyTorch."""
    from distill.evaluate.speed import model_facts, onnx_latency

    facts = model_facts(model, size, file, runner=fast)
    return facts | onnx_latency(onnx, size) if onnx is not None else facts


def evaluate_in(ws, dataset: str, data: Path | None, specs: list[str], keys: Path | None, cfg) -> tuple[str, Path]:
    """`distill eval`: score the models (default: the workspace's newest student or compressed model; every one
    checked before any runs) on a labelled set, cropped under evals/ (never training material); returns the
    report's headline and the path of eval.md."""
    from distill.artifacts import load_models
    from distill.datasets.readers import dataset_root, read_dataset
    from distill.faces.detectors import recommended_min_prob
    from distill.workspace import store_name

    parse_mapping(cfg.class_map), parse_mapping(cfg.ensemble_map)  # refused before minutes of cropping
    recommended_min_prob(cfg.detector)
    if data is None and dataset == "auto":
        raise DistillError("eval auto tells the reader from the files: give them with --data PATH")
    if data is None and not dataset_root(dataset).exists():
        raise DistillError(f"no {dataset} dataset at {dataset_root(dataset).resolve()}; give its path with --data PATH")
    specs = specs or [str(ws.newest_model())]
    models = load_models(specs, cfg.combine, cfg.ensemble_map)
    samples, reader = read_dataset(dataset, data)
    if keys is not None:
        samples = only_keys(samples, keys)
    samples, ambiguous = one_label_each(samples)
    root = dataset_root(dataset, data)
    store = ws.eval_store(reader, root, cfg.size, cfg.detector)
    evalset = load_cropped(samples, store, cfg.size, detector=cfg.detector) if cfg.crop else None
    evalset = evalset or load_uncropped(samples, cfg.size)
    if not evalset.keys:
        raise DistillError(f"no labelled, readable image in {root}")
    evalset.ambiguous = ambiguous
    load_args = (cfg.combine, cfg.ensemble_map)
    results = [
        evaluate_model(spec, net, evalset, cfg.class_map, file, cfg.size, load_args, cfg.runtime)
        for spec, (net, file) in zip(specs, models, strict=True)
    ]
    name = f"{store_name(root)} ({reader})"
    out_dir = ws.new_run_dir("eval", f"{reader}-{store_name(root)}")
    write_eval(out_dir, name, results, evalset, str(root.resolve()))
    return (out_dir / "eval.md").read_text().split("\n## ")[0], out_dir / "eval.md"
