"""The model predict runs, as a function from faces to probabilities: ONNX Runtime by default (a student or
compressed model is exported once into the output folder), eager PyTorch on request or where no ONNX graph can be
made (teachers, some compressed layers)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from distill.faces import augment


@dataclass
class Classifier:
    module: torch.nn.Module
    classes: list[str]
    name: str
    runtime: str
    notes: list[str] = field(default_factory=list)

    def probs(self, pixels: np.ndarray, batch: int = 64) -> np.ndarray:
        """Softmax probabilities (N, C) of uint8 faces (N, S, S, 3)."""
        out = []
        with torch.inference_mode():
            for i in range(0, len(pixels), batch):
                logits = self.module(augment.to_float(pixels[i : i + batch]))
                out.append(torch.as_tensor(logits).float().softmax(1).numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """PyTorch's intra-op threads set to `n` for the block."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_classifier(spec: str, runtime: str, out_dir: Path) -> Classifier:
    """The model `spec` names (any artefact eval takes) in `runtime` ('onnx' or 'torch')."""
    from distill.artifacts import load_model
    from distill.export.formats import OnnxModel, onnx_form
    from distill.students.model import Student

    module, file = load_model(spec)
    name = str(Path(file).absolute()) if file else spec  # a teacher spec is no path
    if isinstance(module, OnnxModel):
        return Classifier(module, list(module.classes), name, "onnxruntime")
    if runtime == "onnx" and hasattr(module, "arch_kwargs"):
        # one thread that sleeps between calls: a few faces a frame gain nothing from two, and the detector beside
        # it needs the other core
        onnx = onnx_form(module, out_dir / "model.onnx", threads=1, spin=False, model_file=file)
        if isinstance(onnx, OnnxModel):
            how = "its int8 graph" if onnx.meta.get("int8") else "exported to"
            return Classifier(onnx, list(module.classes), name, "onnxruntime", [f"{how} {onnx.spec[5:]}"])
        note = onnx
    else:
        note = "teachers run in PyTorch" if runtime == "onnx" else ""
    if isinstance(module, Student):
        module = module.for_inference()
    return Classifier(module.eval(), list(module.classes), name, "torch", [note] if note else [])
