"""`distill export`: a student or compressed model as a portable graph — torch.export (`.pt2`) or ONNX (optionally
static int8 through ONNX Runtime's quantizer, quantize_onnx.py) — checked against the model it came from.

The graph includes the student's preprocessing and takes RGB faces in [0, 1], (B, 3, S, S): any batch, S the
export size (the face store's crop side, 112 by default); loaded for `distill eval`, other sides are resized.
TorchScript is deprecated in PyTorch, hence not offered. A `.pt2` file carries the classes and description, so
`distill eval` scores it like any model.

int8 is ONNX's only: a PT2E int8 `.pt2` (torchao's X86 quantizer, inductor-compiled) ran slower than the float
ONNX graph in ONNX Runtime and was bigger than float (benchmarks/README.md, issue #22), so it was dropped."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distill.errors import DistillError
from distill.fileio import atomic_path

META = "distill.json"  # the extra file inside a .pt2
ONNX_TOLERANCE = 1e-3  # logits: a float ONNX graph matches its model to about 1e-5


class ExportedModel(nn.Module):
    """A `.pt2` that `distill export` wrote, with `classes` and `describe()` like other models."""

    def __init__(self, path: Path):
        super().__init__()
        extra = {META: ""}
        try:
            program = torch.export.load(path, extra_files=extra)
        except Exception as err:  # noqa: BLE001 - torch raises many types for foreign files
            raise DistillError(f"{path} is not a torch.export program ({str(err).splitlines()[0]})") from err
        if not extra[META]:
            raise DistillError(f"{path} was not written by `distill export` (no {META} inside)")
        self.meta = json.loads(extra[META])
        self.classes = self.meta["classes"]
        self.graph = program.module()
        self.spec = f"exported:{path}"

    def forward(self, rgb01: torch.Tensor) -> torch.Tensor:
        size = self.meta["size"]
        if rgb01.shape[-2:] != (size, size):  # the graph's side is fixed at export
            rgb01 = torch.nn.functional.interpolate(rgb01, size=(size, size), mode="bilinear", antialias=True)
        return self.graph(rgb01)

    def train(self, mode: bool = True) -> ExportedModel:
        """An exported graph is inference-only (it has no train mode to switch to)."""
        self.training = mode
        return self

    def describe(self) -> dict:
        return {**self.meta["describe"], "spec": self.spec, "int8": self.meta.get("int8", False)}


def _example(size: int, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, size, size)


def _program(model: nn.Module, size: int) -> torch.export.ExportedProgram:
    batch = torch.export.Dim("batch", min=1, max=4096)
    return torch.export.export(model, (_example(size),), dynamic_shapes=({0: batch},))


def export_model(model: nn.Module, out: Path, fmt: str, size: int, calibration: np.ndarray | None = None) -> dict:
    """Write `model` to `out` as fmt 'pt2' or 'onnx' (static int8 when calibration faces (N,S,S,3) uint8 are given,
    onnx only); returns the largest output difference against the model on random faces."""
    if fmt not in ("pt2", "onnx"):
        raise DistillError(f"unknown export format '{fmt}'; valid: pt2, onnx")
    if calibration is not None and fmt != "onnx":
        raise DistillError("--int8 is written as ONNX: --format onnx --int8 (a PT2E int8 .pt2 was slower than float)")
    program = _program(model.eval(), size)
    x = _example(size, 5)
    with torch.no_grad():
        reference = model(x)
    meta = {"classes": list(model.classes), "describe": model.describe(), "size": size}
    meta["int8"] = calibration is not None
    if fmt == "onnx":
        _write_onnx_file(program, out, meta, calibration, size)
        got = _run_onnx(out, x)
    else:
        buffer = io.BytesIO()  # torch.export.save wants a .pt2 name or a buffer; the file still lands atomically
        torch.export.save(program, buffer, extra_files={META: json.dumps(meta, default=str)})
        with atomic_path(out) as tmp:
            tmp.write_bytes(buffer.getvalue())
        with torch.no_grad():
            got = ExportedModel(out)(x)
    return {
        "file": str(out.resolve()),
        "format": fmt,
        "int8": calibration is not None,
        "bytes_on_disk": out.stat().st_size,
        "max_abs_diff_vs_model": float((torch.as_tensor(got) - reference).abs().max()),
    }


def _write_onnx(program: torch.export.ExportedProgram, out: Path, meta: dict) -> None:
    """The graph, with the classes, description and input side in its metadata (key META) for `OnnxModel`."""
    try:
        import onnx
        import onnxscript  # noqa: F401 - torch.onnx's exporter needs it
    except ImportError as err:
        raise DistillError("ONNX export needs `pip install onnx onnxscript` (onnxruntime to check it)") from err
    with atomic_path(out) as tmp:
        torch.onnx.export(program, dynamo=True, optimize=True, verbose=False).save(str(tmp))
        graph = onnx.load(str(tmp))
        onnx.helper.set_model_props(graph, {META: json.dumps(meta, default=str)})
        onnx.save(graph, str(tmp))


def _write_onnx_file(program, out: Path, meta: dict, calibration: np.ndarray | None, size: int) -> None:
    """The float graph, or with calibration faces its static int8 form (quantize_onnx.py) written from it."""
    if calibration is None:
        _write_onnx(program, out, meta)
        return
    from distill.quantize_onnx import quantize_onnx

    float_path = out.with_name(out.name + ".float.tmp.onnx")
    try:
        _write_onnx(program, float_path, meta)
        with atomic_path(out) as tmp:
            quantize_onnx(float_path, tmp, calibration, size)
    finally:
        float_path.unlink(missing_ok=True)


def _run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    return OnnxSession(path)(x).numpy()


class OnnxSession:
    """An ONNX file in ONNX Runtime's CPU provider, called like a model: (B,3,S,S) tensor in, logits tensor out.
    threads: its intra-op threads (0: ONNX Runtime's default, every core); spin=False: its threads sleep between
    runs instead of spinning, which a caller that runs other work beside it (predict's detector) needs."""

    def __init__(self, path: Path, threads: int = 0, spin: bool = True):
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise DistillError("the ONNX file is written; running it needs `pip install onnxruntime`") from err
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input: x.numpy()})[0])


def onnx_form(
    module: nn.Module, path: Path, size: int, threads: int = 0, spin: bool = True, model_file: Path | None = None
) -> OnnxModel | str:
    """`module` in ONNX Runtime: the int8 graph beside its `model_file` where one was made from it (int8_beside),
    else exported to `path`; or a note saying why it runs in PyTorch instead (an op the exporter cannot write: some
    compressed layers)."""
    int8 = int8_beside(model_file) if model_file is not None else None
    if int8 is not None:
        return OnnxModel(int8, threads, spin)
    try:
        done = export_model(module, path, "onnx", size)
    except (DistillError, RuntimeError, TypeError, ValueError) as err:
        path.unlink(missing_ok=True)
        return f"runs in PyTorch: no ONNX graph ({str(err).splitlines()[0][:120]})"
    if done["max_abs_diff_vs_model"] > ONNX_TOLERANCE:  # an op exported to something else: never score that graph
        path.unlink(missing_ok=True)
        return f"runs in PyTorch: its ONNX graph differs (logits by up to {done['max_abs_diff_vs_model']:.2g})"
    return OnnxModel(path, threads, spin)


class OnnxModel(nn.Module):
    """An `.onnx` that `distill export` wrote, run by ONNX Runtime, with `classes` and `describe()` like other
    models (eval, predict): RGB faces in [0, 1] (B,3,H,W), resized to the graph's side, give logits (B,C)."""

    def __init__(self, path: Path, threads: int = 0, spin: bool = True):
        super().__init__()
        props = onnx_metadata(path)
        if META not in props:
            raise DistillError(f"{path} was not written by `distill export` (no {META} in its metadata)")
        self.session = OnnxSession(path, threads, spin)
        self.meta = json.loads(props[META])
        self.classes = self.meta["classes"]
        self.spec = f"onnx:{path}"
        self.weights = sum(int(np.prod(t.dims)) for t in _onnx_initializers(path))

    def forward(self, rgb01: torch.Tensor) -> torch.Tensor:
        size = self.meta["size"]
        if rgb01.shape[-2:] != (size, size):
            rgb01 = torch.nn.functional.interpolate(rgb01, size=(size, size), mode="bilinear", antialias=True)
        return self.session(rgb01.contiguous())

    def train(self, mode: bool = True) -> OnnxModel:
        self.training = mode  # inference only
        return self

    def parameter_count(self) -> int:
        return self.weights

    def describe(self) -> dict:
        return {**self.meta["describe"], "spec": self.spec, "runtime": "onnxruntime"}


def onnx_metadata(path: Path) -> dict[str, str]:
    """An ONNX file's metadata (key -> value); a file that is no ONNX model is a one-line error."""
    return {p.key: p.value for p in _onnx_props(path)}


def _onnx_props(path: Path) -> list:
    import onnx

    try:
        return list(onnx.load(str(path), load_external_data=False).metadata_props)
    except Exception as err:  # noqa: BLE001 - protobuf raises several types for a foreign file
        raise DistillError(f"{path} is not an ONNX model ({str(err).splitlines()[0]})") from err


def _onnx_initializers(path: Path) -> list:
    import onnx

    return list(onnx.load(str(path), load_external_data=False).graph.initializer)


def exported_path(model_file: Path, cfg) -> Path:
    """Where export writes by default: beside the model, e.g. student.pt -> student.pt2, model.int8.onnx."""
    return model_file.with_name(model_file.stem + (".int8.onnx" if cfg.int8 else f".{cfg.resolved_format()}"))


def int8_beside(model_file: Path) -> Path | None:
    """The int8 graph `distill export --int8` or `distill compress` (its auto plan) wrote beside a model file, when
    it is not older than the model: what the model runs as in ONNX Runtime (predict, eval --runtime onnx)."""
    graph = Path(model_file).with_name(Path(model_file).stem + ".int8.onnx")
    if graph.is_file() and graph.stat().st_mtime >= Path(model_file).stat().st_mtime:
        return graph
    return None
