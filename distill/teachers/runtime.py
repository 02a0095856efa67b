"""A frozen teacher run by ONNX Runtime instead of PyTorch, for a training step on a CPU that runs it every batch.

Why: with function matching the teacher runs on every training step, and which runtime computes it faster depends
on the network and the CPU (separable convolutions in fp32 are much faster in ONNX Runtime's fused graph; a CPU with
native bf16 runs some members faster in PyTorch's bf16): each member is timed in both on a training batch when the
run starts, and the faster one is kept (benchmarks/bench_train_recipe.py measures both). Each member keeps its own
preprocessing in PyTorch (crop, antialiased resize, grey: cheap) and only its network moves, so the posteriors are
the same to float rounding (each graph is checked against its network before it is used)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from distill.errors import DistillError
from distill.export import ONNX_TOLERANCE
from distill.teachers.graphs import OnnxNet

CHECK_BATCH = 4  # random inputs each graph is compared with its network on


def members(teacher: nn.Module) -> list[nn.Module]:
    """The models whose networks run: an ensemble's members, or the teacher itself."""
    return list(teacher.members) if hasattr(teacher, "members") else [teacher]


def in_onnx_runtime(teacher: nn.Module, threads: int, bf16: bool = False, force: bool = False, batch: int = 64) -> str:
    """Swap, in place, each member's network (`.net`, fed its Preprocess's output) for an ONNX Runtime session of
    `threads` intra-op threads where that computes a training batch (`batch` faces) faster than PyTorch does (in
    bf16 autocast when `bf16`, as the step runs it), or always with `force`; returns a note saying what runs where
    and why. A member whose network cannot be exported, or whose graph differs from it, keeps running in PyTorch."""
    notes = []
    with tempfile.TemporaryDirectory(prefix="distill-teacher-") as tmp:  # a session holds its graph once made
        for i, member in enumerate(members(teacher)):
            name = getattr(member, "spec", type(member).__name__)
            try:
                session = _session(member, Path(tmp) / f"member-{i}.onnx", threads)
            except (DistillError, RuntimeError, TypeError, ValueError, AttributeError) as err:
                notes.append(f"{name} in PyTorch ({str(err).splitlines()[0][:100]})")
                continue
            pre = member.preprocess
            faces = torch.rand(batch, pre.channels, pre.size, pre.size)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                eager = _ms(member.net, faces)
            graph = _ms(session, faces)
            if force or graph < eager:
                member.net = session
            where = "ONNX Runtime" if member.net is session else "PyTorch"
            notes.append(f"{name} in {where} ({graph:.0f} ms a batch of {batch} there, {eager:.0f} in PyTorch)")
    return "teacher " + "; ".join(notes)


def _ms(net: nn.Module, batch: torch.Tensor, runs: int = 3, warm: int = 2) -> float:
    """The fastest of `runs` forward passes, after `warm` ones (kernel selection, bf16 weight packing), in ms."""
    times = []
    with torch.no_grad():
        for _ in range(warm + runs):
            start = time.perf_counter()
            net(batch)
            times.append(time.perf_counter() - start)
    return min(times[warm:]) * 1000


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
