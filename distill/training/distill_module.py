"""The LightningModule: student, loss, optional frozen online teacher (for hints), metrics; one shared step."""

from __future__ import annotations

from dataclasses import asdict, replace

import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn

from distill.config import TrainConfig
from distill.errors import DistillError
from distill.faces import augment
from distill.losses.modules import CombinedLoss
from distill.students.model import Student
from distill.training.trainer import FROZEN, SharedStepModule


class FeatureTap:
    """Forward hook keeping one module's output (teacher hint layer)."""

    def __init__(self, module: nn.Module):
        self.value = None
        module.register_forward_hook(lambda _m, _i, out: setattr(self, "value", out))


def default_hint_layer(teacher: nn.Module, n_classes: int) -> str:
    """The last module with a 4-D output wider than the class count (skips class-map convs and heads)."""
    net = teacher.members[0] if hasattr(teacher, "members") else teacher
    shapes: dict[str, tuple] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, o, n=n: shapes.__setitem__(n, tuple(o.shape)))
        for n, m in net.named_modules()
        if n
    ]
    with torch.no_grad():
        net(torch.rand(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    candidates = [n for n, s in shapes.items() if len(s) == 4 and s[1] > n_classes and s[-1] >= 2]
    return candidates[-1]


RAMP = (0.25, 0.75)  # progressive resizing: the share of the epochs where the side starts growing, and where it ends


def progressive_side(start: int, end: int, epoch: int, epochs: int) -> int:
    """The student's input side in `epoch` (0-based) of `epochs`: `start` for the first quarter, grown linearly (in
    steps of 8 px) to `end`, reached for the last quarter. Small faces early are cheap (64 px: a third of 112 px's
    convolution work) and teach the coarse function; the last epochs at the full side let the weights, their BatchNorm
    statistics and the weight average settle at the side the student is deployed at (FixRes, Touvron et al. 2019)."""
    if start >= end or epochs <= 1:
        return end
    share = min(max((epoch / (epochs - 1) - RAMP[0]) / (RAMP[1] - RAMP[0]), 0.0), 1.0)
    if share >= 1:
        return end
    return min(end, max(start, 8 * round((start + share * (end - start)) / 8)))


def mix(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Mixup of the inputs only (function matching, Beyer et al. 2022): the teacher labels the mixed faces, so
    no label mixing is needed. x (B,C,H,W); one Beta(alpha, alpha) weight per face."""
    lam = torch.distributions.Beta(alpha, alpha).sample((len(x), 1, 1, 1)).to(x)
    return lam * x + (1 - lam) * x[torch.randperm(len(x), device=x.device)]


class DistillModule(SharedStepModule):
    """Student, frozen teacher (when the loss or online teaching needs it), loss and metrics for one TrainConfig."""

    def __init__(self, student: Student, cfg: TrainConfig, teacher: nn.Module | None = None, side: int | None = None):
        super().__init__()
        self.save_hyperparameters({"train": asdict(cfg)})
        self.student, self.lr, self.weight_decay, self.epochs = student, cfg.lr, cfg.weight_decay, cfg.epochs
        self.size = student.preprocess.size
        self.side = side or cfg.size  # the views' side (training/defaults.working_side)
        self.start_size = min(cfg.start_size or self.size, self.size)  # progressive resizing's first side
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.optimizer = cfg.optimizer
        self.hint_epochs, self.online, self.mixup = cfg.hint_epochs, cfg.online_teacher, cfg.mixup
        needs = cfg.loss_spec.needs()
        if (self.online or "teacher" in needs) and teacher is None:
            raise ValueError("the hint loss and online teaching need the teacher itself, not only its cache")
        self.teacher, self.tap = teacher, None
        if cfg.channels_last:  # faster convolutions on a CPU (benchmarks/bench_train.py), the usual on a GPU
            student.to(memory_format=torch.channels_last)
            if teacher is not None:
                teacher.to(memory_format=torch.channels_last)
        self.strict_loading = False  # checkpoints hold no teacher weights (on_save_checkpoint)
        options: dict = {"temperature": cfg.temperature}
        if "features" in needs:
            options |= self._tap_features(student, teacher, cfg.hint_layer)
        self.loss = CombinedLoss(cfg.loss_spec, **options)
        n = len(student.classes)
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_agreement": torchmetrics.classification.MulticlassAccuracy(n, average="micro")
                for stage in ("train", "val", "test")
            }
        )

    def _tap_features(self, student: Student, teacher: nn.Module, hint_layer: str | None) -> dict:
        """Hook the teacher's hint layer; returns the channel counts the hint regressor maps between."""
        layer = hint_layer or default_hint_layer(teacher, len(student.classes))
        net = teacher.members[0] if hasattr(teacher, "members") else teacher
        try:
            self.tap = FeatureTap(net.get_submodule(layer))
        except AttributeError as err:
            names = [n for n, m in net.named_modules() if n and isinstance(m, nn.Conv2d)]
            raise DistillError(
                f"--hint-layer {layer}: the teacher has no such module; its convolutions: {', '.join(names[-8:])}, ..."
            ) from err
        with torch.no_grad():
            net(torch.rand(2, 3, 64, 64))
            _, s_feat = student.forward_with_features(torch.rand(2, 3, 64, 64))
        return {"student_channels": s_feat.shape[1], "teacher_channels": self.tap.value.shape[1]}

    def _terms_now(self) -> set[str] | None:
        """FitNets' two stages: hint only for the first hint_epochs, then everything but the hint."""
        if self.hint_epochs <= 0 or "hint" not in self.loss.weights:
            return None
        names = set(self.loss.weights)
        return {"hint"} if self.current_epoch < self.hint_epochs else (names - {"hint"}) or names

    def shared_step(self, batch: dict, stage: str) -> torch.Tensor:
        x = augment.views_at(augment.to_float(batch["pixels"]), batch["params"], self.side)
        x = x.contiguous(memory_format=self.memory_format)  # (B,3,side,side)
        fresh = self.online and stage == "train"
        if fresh and self.mixup > 0:
            x = mix(x, self.mixup)
        out = {"teacher_logits": batch["teacher_logits"], "targets": batch["target"]}
        if fresh or self.loss.needs_features:
            with torch.no_grad():
                logits = self.teacher(x).float()  # the hint tap fills in the same pass
            out["teacher_logits"] = logits if fresh else out["teacher_logits"]
        if self.loss.needs_features:
            out["student_logits"], out["student_features"] = self.student.forward_with_features(x)
            out["teacher_features"] = self.tap.value
        else:
            out["student_logits"] = self.student(x)
        terms = self.loss(out, self._terms_now() if stage == "train" else None)
        target = out["teacher_logits"].argmax(1)
        self.metrics[f"{stage}_agreement"](out["student_logits"], target)
        kl = F.kl_div(
            out["student_logits"].log_softmax(1),
            out["teacher_logits"].log_softmax(1),
            reduction="batchmean",
            log_target=True,
        )
        bs = len(target)
        self.log(
            f"{stage}/agreement",
            self.metrics[f"{stage}_agreement"],
            on_epoch=True,
            on_step=False,
            batch_size=bs,
            prog_bar=stage == "val",
        )
        # sync_dist: with DDP, epoch values average over all processes, not only rank 0's share
        self.log(f"{stage}/kl", kl, on_epoch=True, on_step=False, batch_size=bs, sync_dist=True)
        for name, value in terms.items():
            self.log(
                f"{stage}/{name}",
                value,
                on_epoch=True,
                on_step=False,
                batch_size=bs,
                prog_bar=name == "loss",
                sync_dist=True,
            )
        return terms["loss"]

    def student_side(self, side: int) -> None:
        """The student's input side (its Preprocess resizes each view to it); its saved size is untouched."""
        if self.student.preprocess.size != side:
            self.student.preprocess = replace(self.student.preprocess, size=side)

    def on_train_epoch_start(self) -> None:
        self.student_side(progressive_side(self.start_size, self.size, self.current_epoch, self.epochs))

    def on_validation_epoch_start(self) -> None:  # agreement, the best checkpoint and early stopping: the full side
        self.student_side(self.size)

    def on_fit_end(self) -> None:
        self.student_side(self.size)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """The frozen teacher is rebuilt from its spec, never saved again (VGG-S alone is ~377 MiB)."""
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.startswith(FROZEN)]:
            del state[key]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith(FROZEN) and p.requires_grad]
