"""Every artefact the toolkit writes, recognised by its content: load a model from any of them (eval, export,
predict) and describe any of them (`distill info`)."""

from __future__ import annotations

from pathlib import Path

from distill.errors import DistillError
from distill.registry import TEACHERS
from distill.specs import names_a_teacher
from distill.storage.files import require_content

MODEL_FILES = ("student.pt", "model.distill")  # what a run or compressed folder holds
MODEL_SUFFIXES = (".pt", ".pt2", ".distill", ".onnx")


def model_file(spec: str) -> Path | None:
    """The model file a --model names (a run or compressed folder resolves to its file); None for a teacher spec.
    Refuses a path that does not exist or a folder without a model, so every --model is checked before any runs."""
    if names_a_teacher(spec):
        return None
    path = Path(spec)
    if not path.exists():
        also = "" if "/" in spec or path.suffix else f", and no teacher of that name ({', '.join(TEACHERS.names())})"
        raise DistillError(f"--model {spec}: no such file or folder{also}")
    if path.is_dir():
        inside = [path / name for name in MODEL_FILES if (path / name).is_file()]
        if not inside:
            raise DistillError(f"{path} holds no student.pt or model.distill (an unfinished run?)")
        return inside[0]
    if path.suffix not in MODEL_SUFFIXES:
        raise DistillError(f"--model {spec}: not a model file ({', '.join(MODEL_SUFFIXES)}; see `distill info`)")
    return require_content(path)


def load_model(spec: str, combine: str = "prob", ensemble_map: str | None = None):
    """A student, compressed model, exported graph (.pt2, .onnx) or their folder, else a teacher spec;
    returns (module with .classes and .describe(), file or None)."""
    path = model_file(spec)
    if path is None:
        from distill.teachers.build import build_teacher

        teacher = build_teacher(spec, combine, ensemble_map if "+" in spec else None)
        name = spec.partition(":")[2].split("?")[0]
        return teacher, Path(name) if name and Path(name).is_file() else None
    return _loaders()[path.suffix](path), path


def _loaders() -> dict:
    from distill.compress.distill_file import load_compressed
    from distill.export.formats import ExportedModel, OnnxModel
    from distill.students.model import load_student

    return {".pt": load_student, ".pt2": ExportedModel, ".distill": load_compressed, ".onnx": OnnxModel}


def load_models(specs: list[str], combine: str = "prob", ensemble_map: str | None = None) -> list[tuple]:
    """Every model of a list, each path checked before any model is built (a typo fails at once, not after the
    first model's scoring)."""
    for spec in specs:
        model_file(spec)
    return [load_model(spec, combine, ensemble_map) for spec in specs]
