"""Teachers a user brings as a graph file: ONNX (run by ONNX Runtime) and TorchScript or torch.export programs.

A graph `distill export` wrote carries its classes, input side and framing in its metadata and takes RGB faces in
[0, 1] cut at them; any other graph is described by spec options, as `keras:` is:
?classes=a,b,...&size=S&grey=1&scale=-1,1|0,1|imagenet (classes may also come from a sidecar PATH.classes.txt, and
7 outputs default to FER2013's). A graph whose outputs are probabilities (every row non-negative, summing to 1) is
turned into log-probabilities: logits up to a constant.
Nothing in these files is unpickled: ONNX is a protobuf, and torch.export and TorchScript archives are read by
their own loaders."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from distill.errors import DistillError
from distill.export.formats import META, ExportedModel, OnnxSession, input_cut, onnx_metadata
from distill.faces.framing import Preprocess
from distill.registry import TEACHERS
from distill.storage.files import sha256_file
from distill.storage.torch_files import read_archive
from distill.teachers.base import Teacher
from distill.teachers.zoo import SCALINGS, classes_for

UNIT = {"mean": (0.0,), "std": (1.0,)}  # a distill graph normalises inside itself


class ProbabilitiesToLogits(nn.Module):
    """A network that outputs probabilities, as one that outputs logits (their log; softmax gives them back)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(self.net(x).clamp_min(1e-8))


class _Framed(nn.Module):
    """A `.pt2` distill wrote, fed faces its teacher's Preprocess has already cut at the program's framing and side."""

    def __init__(self, exported: ExportedModel):
        super().__init__()
        self.exported = exported

    def forward(self, framed: torch.Tensor) -> torch.Tensor:
        return self.exported.at_input(framed)


class OnnxNet(nn.Module):
    """An ONNX Runtime session as a frozen module: NCHW in, its first output out (an NHWC graph gets NHWC; a graph
    of a fixed batch gets its faces in runs of that batch, the last one padded). threads and spin: as OnnxSession's."""

    def __init__(
        self, path: Path, channels_last: bool = False, batch: int | None = None, threads: int = 0, spin: bool = True
    ):
        super().__init__()
        self.session, self.channels_last, self.batch = OnnxSession(path, threads, spin), channels_last, batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().float().cpu()
        x = (x.permute(0, 2, 3, 1) if self.channels_last else x).contiguous()
        if not self.batch:
            return self.session(x)
        n, out = len(x), []
        for start in range(0, n, self.batch):
            part = x[start : start + self.batch]
            pad = self.batch - len(part)
            if pad:
                part = torch.cat([part, part.new_zeros(pad, *part.shape[1:])])
            out.append(self.session(part)[: self.batch - pad])
        return torch.cat(out)


def _given(path: Path, size: str | None, grey: str | None) -> tuple[int, bool]:
    if size is None:
        raise DistillError(f"{path}: give the graph's input side with ?size=S (and ?grey=1 for one channel)")
    try:
        side = int(size)
    except ValueError as err:
        raise DistillError(f"{path}: size={size} is not a whole number of pixels") from err
    return side, grey in ("1", "true", "yes")


def _scaling(scale: str) -> dict:
    if scale not in SCALINGS:
        raise DistillError(f"unknown scale '{scale}'; valid: {', '.join(SCALINGS)}")
    return SCALINGS[scale]


def _as_logits(net: nn.Module, pre: Preprocess) -> nn.Module:
    """net, or net wrapped so that its probabilities become logits (probed on two faces)."""
    with torch.no_grad():
        out = net(pre(torch.rand(2, 3, pre.size, pre.size)))
    if out.ndim != 2:
        raise DistillError(f"the graph's output has shape {tuple(out.shape)}, not (faces, classes)")
    probabilities = bool((out >= 0).all()) and torch.allclose(out.sum(1), torch.ones(2), atol=1e-3)
    return ProbabilitiesToLogits(net) if probabilities else net


@TEACHERS.register("onnx")
def onnx_teacher(
    arg: str | None = None,
    classes: str | None = None,
    size: str | None = None,
    grey: str | None = None,
    scale: str = "0,1",
    spec: str = "",
) -> Teacher:
    """Any ONNX graph, run by ONNX Runtime: onnx:PATH[?classes=a,b&size=S&grey=1&scale=-1,1|0,1|imagenet]."""
    path = _file(arg, "onnx")
    meta = onnx_metadata(path)
    if META in meta:  # written by `distill export`: RGB faces in [0, 1] at its framing and side, normalised inside
        described = json.loads(meta[META])
        side, framing = input_cut(described)
        pre = Preprocess(size=side, grey=False, crop=framing, **UNIT)
        net = OnnxNet(path)
        names = list(described["classes"])
    else:
        channels_last, batch, side, is_grey = _onnx_input(path, size, grey)
        pre = Preprocess(size=side, grey=is_grey, **_scaling(scale))
        net = OnnxNet(path, channels_last, batch)
        names = None
    net = _as_logits(net, pre)
    return _teacher(net, names, classes, pre, path, spec or f"onnx:{path}")


def _onnx_input(path: Path, size: str | None, grey: str | None) -> tuple[bool, int | None, int, bool]:
    """(NHWC?, fixed batch or None, side, grey) of a foreign graph: from its input's shape where fixed, else from
    ?size/?grey."""
    import onnxruntime as ort

    shape = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    if len(shape) != 4:
        raise DistillError(f"{path}: its input has shape {shape}, not a batch of images")
    channels_last = shape[3] in (1, 3) and shape[1] not in (1, 3)
    channels = shape[3] if channels_last else shape[1]
    side = shape[1] if channels_last else shape[2]
    batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    if isinstance(side, int) and isinstance(channels, int) and size is None:
        return channels_last, batch, side, channels == 1
    side, is_grey = _given(path, size, grey)
    return channels_last, batch, side, is_grey


@TEACHERS.register("torchscript")
def torchscript_teacher(
    arg: str | None = None,
    classes: str | None = None,
    size: str | None = None,
    grey: str | None = None,
    scale: str = "0,1",
    spec: str = "",
) -> Teacher:
    """A TorchScript archive or a torch.export program (.pt2): torchscript:PATH[?classes=a,b&size=S&grey=1&scale=..]."""
    path = _file(arg, "torchscript")
    if path.suffix == ".pt2":
        try:
            exported = ExportedModel(path)  # written by `distill export`: classes and side inside
        except DistillError:
            exported = None
        if exported is not None:
            side, framing = input_cut(exported.meta)
            pre = Preprocess(size=side, grey=False, crop=framing, **UNIT)
            spec = spec or f"torchscript:{path}"
            return _teacher(_Framed(exported), list(exported.classes), classes, pre, path, spec)
        net = _program(path)
    else:
        net = _script(path)
    side, is_grey = _given(path, size, grey)
    pre = Preprocess(size=side, grey=is_grey, **_scaling(scale))
    return _teacher(_as_logits(net, pre), None, classes, pre, path, spec or f"torchscript:{path}")


def _program(path: Path) -> nn.Module:
    return read_archive(path, "torch.export program", torch.export.load).module()


def _script(path: Path) -> nn.Module:
    return read_archive(path, "TorchScript archive", lambda p: torch.jit.load(str(p), map_location="cpu")).eval()


def _file(arg: str | None, kind: str) -> Path:
    if not arg:
        raise DistillError(f"the {kind} teacher needs a file: --teacher {kind}:PATH")
    path = Path(arg)
    if not path.is_file():
        raise DistillError(f"{kind} model file {path} not found")
    return path


def _teacher(
    net: nn.Module, names: list[str] | None, classes: str | None, pre: Preprocess, path: Path, spec: str
) -> Teacher:
    """The Teacher, its class names from the file, else from ?classes / a sidecar / FER2013's seven."""
    with torch.no_grad():
        n_out = net(pre(torch.rand(1, 3, pre.size, pre.size))).shape[1]
    if names is None or classes:
        names = classes_for(path, n_out, classes)
    elif len(names) != n_out:
        raise DistillError(f"{path} has {n_out} outputs but its metadata names {len(names)} classes")
    return Teacher(net, names, pre, spec, sha256_file(path))
