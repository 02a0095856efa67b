"""`distill export`: a student or compressed model as a portable graph — torch.export (`.pt2`) or ONNX (optionally
static int8 through ONNX Runtime's quantizer, quantize_onnx.py) — checked against the model it came from.

The graph takes RGB faces in [0, 1], (B, 3, S, S), any batch, already cut at the model's framing and side S
(metadata: `size`, and `framing`, the central share of a `distill crop` face they are); grey conversion and
normalisation stay inside. Cutting and resizing are the caller's (`frame_stored`, which OnnxModel and ExportedModel
apply to the stored faces eval and predict give them): in the graph they were a float Slice and an antialiased
Resize that an int8 graph could not shrink, a fixed cost (issue #40). Cutting each face from the picture at the
graph's framing and side directly would save that work in predict too, but the sharper faces it gives changed a
student's answers on unlabelled pool photos (it learnt on faces cut, cropped and resized as stored; docs/results.md,
compression), so predict keeps the stored cut. Graphs written before `framing` existed take stored faces and cut
them inside; they still load.
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
from distill.faces import augment
from distill.faces.framing import Preprocess, centre
from distill.storage.files import atomic_path, require_content
from distill.storage.torch_files import read_archive

META = "distill.json"  # the extra file inside a .pt2
CHECK_FACES = 64  # calibration faces an int8 graph is checked on
ONNX_TOLERANCE = 1e-3  # logits: a float ONNX graph matches its model to about 1e-5


class ExportedModel(nn.Module):
    """A `.pt2` that `distill export` wrote, with `classes` and `describe()` like other models."""

    def __init__(self, path: Path):
        super().__init__()
        extra = {META: ""}
        program = read_archive(path, "torch.export program", lambda p: torch.export.load(p, extra_files=extra))
        if not extra[META]:
            raise DistillError(f"{path} was not written by `distill export` (no {META} inside)")
        self.meta = json.loads(extra[META])
        self.classes = self.meta["classes"]
        self.graph = program.module()
        self.spec = f"exported:{path}"

    def forward(self, rgb01: torch.Tensor) -> torch.Tensor:
        return self.graph(frame_stored(self.meta, rgb01))

    def at_input(self, framed: torch.Tensor) -> torch.Tensor:
        """Logits of faces already cut at the graph's framing and side (input_cut)."""
        return self.graph(framed)

    def train(self, mode: bool = True) -> ExportedModel:
        """An exported graph is inference-only (it has no train mode to switch to)."""
        self.training = mode
        return self

    def describe(self) -> dict:
        return {**self.meta["describe"], "spec": self.spec, "int8": self.meta.get("int8", False)}


def frame_stored(meta: dict, rgb01: torch.Tensor) -> torch.Tensor:
    """Stored faces (B,3,H,W) cut as a graph with metadata `meta` takes them: its framing (1.0 for graphs that cut
    inside), resized to its side."""
    size = meta["size"]
    x = centre(rgb01, float(meta.get("framing", 1.0)))
    if x.shape[-2:] != (size, size):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    return x


def input_cut(meta: dict) -> tuple[int, float]:
    """(side, framing) of the faces a graph takes: side pixels, the central `framing` share of a stored face."""
    return int(meta["size"]), float(meta.get("framing", 1.0))


class AtInput(nn.Module):
    """A model from its input on: RGB faces in [0, 1] already cut at its framing and side (B,3,size,size) in,
    logits out; only grey conversion and normalisation of its preprocessing remain (elementwise). Folding them into
    the first convolution bought little time and moved more int8 answers (docs/results.md, compression)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.net, self.preprocess = model.net, model.preprocess

    def forward(self, framed: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess.normalise(framed))


def _at_input(model: nn.Module) -> tuple[AtInput, Preprocess]:
    pre = getattr(model, "preprocess", None)
    if not isinstance(pre, Preprocess) or not isinstance(getattr(model, "net", None), nn.Module):
        raise DistillError(f"{type(model).__name__} has no network and preprocessing to export (students do)")
    return AtInput(model).eval(), pre


def _example(size: int, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, size, size)


def _program(model: nn.Module, size: int) -> torch.export.ExportedProgram:
    batch = torch.export.Dim("batch", min=1, max=4096)
    return torch.export.export(model, (_example(size),), dynamic_shapes=({0: batch},))


def export_model(model: nn.Module, out: Path, fmt: str, calibration: np.ndarray | None = None) -> dict:
    """Write `model` (a student or compressed model) to `out` as fmt 'pt2' or 'onnx' (static int8 when calibration
    faces (N,S,S,3) uint8 as stored are given, onnx only), taking faces at its framing and side (module docstring);
    returns the largest output difference against the model: on the first calibration faces for an int8 graph
    (random pixels are far outside what it was calibrated for), on random faces otherwise."""
    if fmt not in ("pt2", "onnx"):
        raise DistillError(f"unknown export format '{fmt}'; valid: pt2, onnx")
    if calibration is not None and fmt != "onnx":
        raise DistillError("--int8 is written as ONNX: --format onnx --int8 (a PT2E int8 .pt2 was slower than float)")
    graph, pre = _at_input(model.eval())
    program = _program(graph, pre.size)
    x = _example(pre.size, 5) if calibration is None else pre.frame(augment.to_float(calibration[:CHECK_FACES]))
    with torch.no_grad():
        reference = graph(x)
    meta = {"classes": list(model.classes), "describe": model.describe(), "size": pre.size, "framing": pre.crop}
    meta["int8"] = calibration is not None
    if fmt == "onnx":
        _write_onnx_file(program, out, meta, calibration, pre)
        got = _run_onnx(out, x)
    else:
        buffer = io.BytesIO()  # torch.export.save wants a .pt2 name or a buffer; the file still lands atomically
        torch.export.save(program, buffer, extra_files={META: json.dumps(meta, default=str)})
        with atomic_path(out) as tmp:
            tmp.write_bytes(buffer.getvalue())
        with torch.no_grad():
            got = ExportedModel(out).at_input(x)
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


def _write_onnx_file(program, out: Path, meta: dict, calibration: np.ndarray | None, pre: Preprocess) -> None:
    """The float graph, or with calibration faces its static int8 form (quantize_onnx.py) written from it."""
    if calibration is None:
        _write_onnx(program, out, meta)
        return
    from distill.export.int8 import quantize_onnx

    float_path = out.with_name(out.name + ".float.tmp.onnx")
    try:
        _write_onnx(program, float_path, meta)
        with atomic_path(out) as tmp:
            quantize_onnx(float_path, tmp, calibration, pre.frame)
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
        require_content(Path(path))
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input: x.numpy()})[0])


def onnx_form(
    module: nn.Module, path: Path, threads: int = 0, spin: bool = True, model_file: Path | None = None
) -> OnnxModel | str:
    """`module` in ONNX Runtime: the int8 graph beside its `model_file` where one was made from it (int8_beside),
    else exported to `path`; or a note saying why it runs in PyTorch instead (an op the exporter cannot write: some
    compressed layers)."""
    int8 = int8_beside(model_file) if model_file is not None else None
    if int8 is not None:
        return OnnxModel(int8, threads, spin)
    try:
        done = export_model(module, path, "onnx")
    except (DistillError, RuntimeError, TypeError, ValueError) as err:
        path.unlink(missing_ok=True)
        return f"runs in PyTorch: no ONNX graph ({str(err).splitlines()[0][:120]})"
    if done["max_abs_diff_vs_model"] > ONNX_TOLERANCE:  # an op exported to something else: never score that graph
        path.unlink(missing_ok=True)
        return f"runs in PyTorch: its ONNX graph differs (logits by up to {done['max_abs_diff_vs_model']:.2g})"
    return OnnxModel(path, threads, spin)


class OnnxModel(nn.Module):
    """An `.onnx` that `distill export` wrote, run by ONNX Runtime, with `classes` and `describe()` like other
    models (eval, predict): stored RGB faces in [0, 1] (B,3,H,W), cut as the graph takes them (frame_stored), give
    logits (B,C); at_input runs faces already cut (input_cut says how)."""

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
        return self.session(frame_stored(self.meta, rgb01).contiguous())

    def at_input(self, framed: torch.Tensor) -> torch.Tensor:
        return self.session(framed.contiguous())

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

    require_content(Path(path))
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
