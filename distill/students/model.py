"""The Student: a registered network plus its preprocessing and classes; saved and loaded as plain tensors."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from distill.errors import DistillError
from distill.faces.framing import SIGNED, Preprocess
from distill.registry import STUDENTS
from distill.storage.files import atomic_path


class Student(nn.Module):
    """forward takes RGB faces in [0, 1] (B,3,H,W) and returns logits (B,C), like a Teacher."""

    def __init__(
        self,
        arch: str,
        classes: list[str],
        size: int = 64,
        grey: bool = False,
        small_input: bool = False,
        width: float = 1.0,
        crop: float = 1.0,
    ):
        super().__init__()
        self.arch_kwargs = {
            "arch": arch,
            "classes": list(classes),
            "size": size,
            "grey": grey,
            "small_input": small_input,
            "width": width,
            "crop": crop,
        }
        self.classes = list(classes)
        self.preprocess = Preprocess(size=size, grey=grey, crop=crop, **SIGNED)  # crop: the teacher's framing
        try:
            self.net, self._features, self._head = STUDENTS.get(arch)(
                len(classes), 1 if grey else 3, small_input, width, size=size
            )
        except ValueError as err:
            raise DistillError(str(err)) from err
        self.spec = f"student:{arch}"

    def forward(self, rgb01: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess(rgb01).contiguous(memory_format=self.memory_format))

    memory_format = torch.contiguous_format

    def for_inference(self) -> Student:
        """This student, changed in place, for inference only (forward_with_features no longer applies): eval mode,
        BatchNorm folded into the convs before it (torch.fx) and channels-last
        weights: the same logits, faster (benchmarks/bench_train.py measures it);
        a net that torch.fx cannot trace keeps its BatchNorm."""
        from torch.fx.experimental.optimization import fuse

        self.eval()
        try:
            self.net = fuse(self.net)
        except Exception:  # noqa: BLE001 - tracing fails on data-dependent control flow; unfused is still right
            pass
        self.net.to(memory_format=torch.channels_last)
        self.memory_format = torch.channels_last
        return self

    def forward_with_features(self, rgb01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B,C), last feature map (B,C',h,w): the FitNets guided layer) in one pass."""
        feats = self._features(self.preprocess(rgb01))
        return self._head(feats), feats

    def describe(self) -> dict:
        return {"spec": self.spec, **self.arch_kwargs, "preprocess": self.preprocess.to_dict()}

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            torch.save({"kind": "student", "arch_kwargs": self.arch_kwargs, "state_dict": self.net.state_dict()}, tmp)


def load_student(path: Path | str) -> Student:
    from distill.storage.torch_files import fit_state, read_torch_file

    path = Path(path)
    ckpt = read_torch_file(path)
    if not isinstance(ckpt, dict) or ckpt.get("kind") != "student":
        raise DistillError(f"{path} is not a distill student (see `distill info`)")
    student = Student(**ckpt["arch_kwargs"])
    fit_state(student.net, ckpt["state_dict"], path, ckpt["arch_kwargs"]["arch"])
    student.spec = f"student:{path}"
    return student.eval()
