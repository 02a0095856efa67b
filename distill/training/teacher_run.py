"""`distill import-teacher`: a fitted VGG-S teacher as a training run, so that `compress`, `eval` and `export`
take the big network too (Ge et al.'s hybrid pipeline is aimed at VGG-sized models). Fine-tuning then learns
from the teacher's own cached posteriors: the compressed network is distilled from the float one."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from distill.errors import DistillError
from distill.faces.framing import Preprocess
from distill.labelling.cache import PosteriorCache
from distill.provenance import provenance
from distill.storage.files import sha256_file, write_json
from distill.storage.torch_files import fit_state
from distill.students.model import Student
from distill.teachers.vgg_s import load_checkpoint, tuple_preprocess


def fold_normalisation(conv: nn.Conv2d, theirs: Preprocess, ours: Preprocess, bn: nn.BatchNorm2d | None = None) -> None:
    """Make `conv` on `ours`-normalised input give what it gave on `theirs`-normalised input.

    x01 = x_ours * std_ours + mean_ours, so x_theirs = x_ours * a + d per channel with a = std_ours / std_theirs
    and d = (mean_ours - mean_theirs) / std_theirs; W' = W * a, b' = b + sum(W * d). Exact only without zero
    padding (a padded zero means a different colour on each side), which VGG-S's first conv has not. A conv without
    a bias followed by BatchNorm `bn` takes the shift into bn's running mean instead (the same in eval mode, and a
    batch's own mean absorbs it in training)."""
    if any(p != 0 for p in conv.padding):
        raise DistillError("the first convolution pads its input: its normalisation cannot be folded exactly")
    a = torch.tensor(ours.std) / torch.tensor(theirs.std)  # (C,) or (1,), broadcast over input channels
    d = (torch.tensor(ours.mean) - torch.tensor(theirs.mean)) / torch.tensor(theirs.std)
    with torch.no_grad():
        w = conv.weight  # (out, in, kh, kw)
        shift = (w * d.view(1, -1, 1, 1)).sum((1, 2, 3))
        w.mul_(a.view(1, -1, 1, 1))
        if conv.bias is None and bn is not None:
            bn.running_mean.sub_(shift)
        elif conv.bias is None:
            conv.bias = nn.Parameter(shift)
        else:
            conv.bias.add_(shift)


def student_from_checkpoint(path: Path) -> Student:
    """A Student with the checkpoint's VGG-S weights; its outputs equal the teacher's on every face."""
    ckpt = load_checkpoint(path)
    if ckpt.get("arch") != "vgg_s":
        raise DistillError(f"{path} is a {ckpt.get('arch')} checkpoint: only vgg_s teachers can be imported")
    theirs = tuple_preprocess(Preprocess(**ckpt["preprocess"]))
    kwargs = ckpt.get("arch_kwargs", {})
    arch = "vgg_s_bn" if kwargs.get("batch_norm") else "vgg_s"
    student = Student(arch, ckpt["classes"], theirs.size, theirs.grey, width=kwargs.get("width", 1.0), crop=theirs.crop)
    if kwargs.get("size", theirs.size) != theirs.size:
        raise DistillError(f"{path} was built for {kwargs['size']} px but preprocesses to {theirs.size} px")
    fit_state(student.net, ckpt["state_dict"], path, arch)
    bn = student.net.features[1] if isinstance(student.net.features[1], nn.BatchNorm2d) else None
    fold_normalisation(student.net.features[0], theirs, student.preprocess, bn)
    student.spec = f"student:vgg_s:{path}"
    return student.eval()


def own_caches(student: Student, checkpoint: Path, caches: list[Path]) -> list[PosteriorCache]:
    """The caches this very checkpoint labelled (by weight hash) with its classes; none is an error."""
    sha = sha256_file(checkpoint)
    chosen = [c for c in map(PosteriorCache, caches) if c.teacher.get("weights_sha256") == sha]
    if not chosen:
        raise DistillError(
            f"no posterior cache of {checkpoint} among {len(caches)}: fine-tuning learns from the teacher's own "
            f"posteriors, so run `distill label --teacher vgg_s:{checkpoint} STORE` first"
        )
    for cache in chosen:
        cache.check_classes(student.classes)
    return chosen


def import_teacher(student: Student, checkpoint: Path, sources: list[tuple[Path, Path]], run_dir: Path) -> dict:
    """Write run_dir/student.pt and config.json: kld at T=1 from `sources`, the checkpoint's own caches."""
    from distill.config import TrainConfig

    cache = PosteriorCache(sources[0][1])
    pre = student.preprocess
    width = student.arch_kwargs["width"]
    cfg = TrainConfig(student="vgg_s", loss="kld", temperature=1.0, size=pre.size, grey=pre.grey, width=width)
    student.save(run_dir / "student.pt")
    config = {
        "train": asdict(cfg),
        "sources": [{"store": str(Path(store).resolve()), "cache": str(Path(c).resolve())} for store, c in sources],
        "teacher": cache.teacher,
        "provenance": provenance("import-teacher", checkpoint=str(checkpoint)),
    }
    write_json(run_dir / "config.json", config)
    summary = {
        "student": str((run_dir / "student.pt").resolve()),
        "imported_from": str(checkpoint),
        "parameters": sum(p.numel() for p in student.net.parameters()),
        "bytes_on_disk": (run_dir / "student.pt").stat().st_size,
        "caches": [str(c) for _, c in sources],
    }
    write_json(run_dir / "summary.json", summary)
    return summary
