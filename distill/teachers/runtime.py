"""A frozen teacher run by ONNX Runtime instead of PyTorch, for a training step that runs it every batch
(`train --teacher-runtime onnx`).

Each member keeps its own preprocessing in PyTorch (crop, antialiased resize, grey) and only its network moves, so
the posteriors are the same to float rounding (each graph is checked against its network before it is used). Alone,
ONNX Runtime's fused graph runs the default pair's separable convolutions faster than PyTorch; inside a training
step it was not faster on the CPUs measured (its threads and PyTorch's take turns on the same cores:
docs/results.md, "Training speed"), so PyTorch stays the default."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from distill.errors import DistillError
from distill.export.formats import ONNX_TOLERANCE
from distill.teachers.graphs import OnnxNet

CHECK_BATCH = 4  # random inputs each graph is compared with its network on


def members(teacher: nn.Module) -> list[nn.Module]:
    """The models whose networks run: an ensemble's members, or the teacher itself."""
    return list(teacher.members) if hasattr(teacher, "members") else [teacher]


def in_onnx_runtime(teacher: nn.Module, threads: int) -> str:
    """Swap, in place, each member's network (`.net`, fed its Preprocess's output) for an ONNX Runtime session of
    `threads` intra-op threads; returns a note saying what runs where. A member whose network cannot be exported, or
    whose graph differs from it, keeps running in PyTorch, and the note says why."""
    notes = []
    with tempfile.TemporaryDirectory(prefix="distill-teacher-") as tmp:  # a session holds its graph once made
        for i, member in enumerate(members(teacher)):
            name = getattr(member, "spec", type(member).__name__)
            try:
                member.net = _session(member, Path(tmp) / f"member-{i}.onnx", threads)
                notes.append(f"{name} in ONNX Runtime")
            except (DistillError, RuntimeError, TypeError, ValueError, AttributeError) as err:
                notes.append(f"{name} in PyTorch ({str(err).splitlines()[0][:100]})")
    return "teacher " + "; ".join(notes)


def _session(member: nn.Module, path: Path, threads: int) -> OnnxNet:
    """member.net exported to `path` and loaded in ONNX Runtime, after checking that it computes the same logits."""
    net, pre = member.net.eval(), member.preprocess
    example = torch.rand(CHECK_BATCH, pre.channels, pre.size, pre.size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(net, (example,), dynamic_shapes=({0: batch},))
    torch.onnx.export(program, dynamo=True, optimize=True, verbose=False).save(str(path))
    session = OnnxNet(path, threads=threads, spin=False)  # PyTorch computes between its runs
    with torch.no_grad():
        gap = float((session(example) - net(example).float()).abs().max())
    if not gap <= ONNX_TOLERANCE:
        raise DistillError(f"its ONNX graph differs by {gap:.2g}")
    return session
