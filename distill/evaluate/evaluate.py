"""`distill eval`: scores of teachers and students on a labelled set, with their size, speed and memory."""

from __future__ import annotations

from pathlib import Path

import torch

from distill.datasets.emotions import parse_mapping
from distill.evaluate.evalset import EvalSet
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
        onnx = _onnx_form(model, Path(tmp), file)
        scorer = onnx if runtime == "onnx" and onnx is not None else fast
        logits = predict(scorer, evalset.pixels, show_progress=True)
        facts = _facts(model, fast, onnx, file, speed_size)
    scores = score(logits, evalset.labels, list(model.classes), parse_mapping(mapping))
    facts["peak_memory_mib_batch1"] = peak_memory_mib(name, speed_size, *load_args)
    used = "onnxruntime" if scorer is onnx or getattr(model, "spec", "").startswith("onnx:") else "torch"
    if scorer is onnx and onnx.meta.get("int8"):  # the int8 graph beside the model file (export.int8_beside)
        used = f"onnxruntime, its int8 graph {onnx.spec[5:]}"
        facts["bytes_on_disk"] = Path(onnx.spec[5:]).stat().st_size  # what was scored is what deploys
    return {"model": name, "describe": model.describe(), "runtime": used, "scores": scores, "facts": facts}


def _inference_form(model: torch.nn.Module) -> torch.nn.Module:
    """A student as it runs at work (BatchNorm folded, channels-last: the same logits, faster); others as they are."""
    import copy

    from distill.students.model import Student

    return copy.deepcopy(model).for_inference() if isinstance(model, Student) else model


def _onnx_form(model: torch.nn.Module, folder: Path, file: Path | None = None):
    """A student or compressed model in ONNX Runtime (the runtime predict uses: its int8 graph where one is beside
    `file`), or None: a teacher, or a model with layers the exporter cannot write."""
    from distill.export.formats import OnnxModel, onnx_form

    if not hasattr(model, "arch_kwargs"):
        return None
    onnx = onnx_form(model, folder / "model.onnx", model_file=file)
    return onnx if isinstance(onnx, OnnxModel) else None


def _facts(model, fast, onnx, file, size):
    """Size of the model; its speed in its inference form and, where it has one, in ONNX Runtime: on a CPU several
    times faster than eager PyTorch."""
    from distill.evaluate.speed import model_facts, onnx_latency

    facts = model_facts(model, size, file, runner=fast)
    return facts | onnx_latency(onnx, size) if onnx is not None else facts
