"""VGG-S (Chatfield et al. 2014) as used for emotion recognition by Levi & Hassner 2015, and checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from distill.errors import DistillError
from distill.faces.framing import IMAGENET, Preprocess
from distill.registry import TEACHERS
from distill.storage.files import sha256_file
from distill.teachers.base import Teacher
from distill.teachers.shipped import shipped_summary, shipped_teacher


class VGGS(nn.Module):
    """conv1 96x7x7/2+LRN+pool3/3; conv2 256x5x5+LRN+pool2/2; conv3-5 512x3x3+pool3/3; fc6/fc7 4096; fc8.

    `width` scales every layer (1.0 = the paper's ~377 MiB at 224 px), for quick tests and small teachers;
    `batch_norm` puts BatchNorm after every convolution in place of LRN (what lets it train from scratch quickly).
    """

    def __init__(
        self,
        num_classes: int = 8,
        width: float = 1.0,
        size: int = 224,
        dropout: float = 0.5,
        stem_stride: int = 2,
        batch_norm: bool = False,
    ):
        super().__init__()
        c = [max(8, int(round(n * width))) for n in (96, 256, 512, 512, 512)]
        fc = max(16, int(round(4096 * width)))

        def conv(cin: int, cout: int, k: int, lrn: bool = False, **kw) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, bias=not batch_norm, **kw)]
            layers += [nn.BatchNorm2d(cout)] if batch_norm else []
            layers.append(nn.ReLU(inplace=True))
            return layers + ([nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0)] if lrn and not batch_norm else [])

        self.features = nn.Sequential(
            *conv(3, c[0], 7, lrn=True, stride=stem_stride),
            nn.MaxPool2d(3, 3, ceil_mode=True),
            *conv(c[0], c[1], 5, lrn=True, padding=1),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            *conv(c[1], c[2], 3, padding=1),
            *conv(c[2], c[3], 3, padding=1),
            *conv(c[3], c[4], 3, padding=1),
            nn.MaxPool2d(3, 3, ceil_mode=True),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, 3, size, size)).numel()
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, fc),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc, fc),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def save_checkpoint(
    path: Path,
    arch: str,
    net: nn.Module,
    classes: list[str],
    preprocess: Preprocess,
    arch_kwargs: dict,
    mirror: bool = False,
) -> None:
    """A teacher checkpoint: plain tensors and JSON-able metadata, loadable with weights_only=True; mirror: the
    teacher averages each face with its mirror image (Teacher.mirror), as its held-out scores were measured."""
    from distill.storage.files import atomic_path

    payload = {
        "arch": arch,
        "arch_kwargs": arch_kwargs,
        "classes": list(classes),
        "preprocess": preprocess.to_dict(),
        "state_dict": net.state_dict(),
        "mirror": mirror,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path | str) -> dict:
    from distill.storage.torch_files import read_torch_file

    ckpt = read_torch_file(Path(path))
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise DistillError(f"{path} has no state_dict: not a teacher checkpoint")
    return ckpt


def _load_state(net: nn.Module, ckpt: dict, path: Path) -> None:
    from distill.storage.torch_files import fit_state

    fit_state(net, ckpt["state_dict"], path, "this architecture")


@TEACHERS.register("vgg_s", fitted=True, about=shipped_summary)
def vgg_s(arg: str | None = None, weights: str | None = None, spec: str = "vgg_s") -> Teacher:
    """VGG-S fitted on faces: vgg_s:CKPT or ?weights=CKPT, else the workspace's newest `distill fit-teacher` run,
    else the one shipped with distill."""
    if not (arg or weights):  # the commands pin a bare `vgg_s` to the workspace's newest fitted one where there is one
        return shipped_teacher(spec)
    path = Path(arg or weights)
    ckpt = load_checkpoint(path)
    if ckpt.get("arch") not in (None, "vgg_s"):
        raise DistillError(f"{path} is a {ckpt['arch']} checkpoint, not vgg_s")
    kwargs = ckpt.get("arch_kwargs", {})
    net = VGGS(num_classes=len(ckpt["classes"]), **kwargs)
    _load_state(net, ckpt, path)
    pre = Preprocess(**{**ckpt.get("preprocess", {"size": 224, **IMAGENET})})
    return Teacher(net, ckpt["classes"], tuple_preprocess(pre), spec, sha256_file(path), ckpt.get("mirror", False))


def tuple_preprocess(pre: Preprocess) -> Preprocess:
    """A checkpoint's preprocessing with JSON lists turned back into tuples (Preprocess compares as tuples)."""
    return Preprocess(pre.size, pre.grey, tuple(pre.mean), tuple(pre.std), pre.crop)


@TEACHERS.register("timm")
def timm_teacher(arg: str | None = None, weights: str | None = None, spec: str = "timm") -> Teacher:
    """Any timm architecture with a checkpoint: timm:ARCH?weights=CKPT (e.g. from fit-teacher)."""
    import timm

    if not arg or not weights:
        raise DistillError("timm teachers need an architecture and a checkpoint: --teacher timm:resnet18?weights=X.pt")
    ckpt = load_checkpoint(weights)
    pre = tuple_preprocess(Preprocess(**ckpt.get("preprocess", {"size": 112, **IMAGENET})))
    try:
        net = timm.create_model(arg, pretrained=False, num_classes=len(ckpt["classes"]), in_chans=pre.channels)
    except RuntimeError as err:
        raise DistillError(f"unknown timm architecture '{arg}'") from err
    _load_state(net, ckpt, Path(weights))
    spec = f"timm:{arg}:{weights}"
    return Teacher(net, ckpt["classes"], pre, spec, sha256_file(weights), ckpt.get("mirror", False))
