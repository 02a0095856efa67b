"""Every setting of every command, written once: default, help text and valid range (see distill.settings).

The commands' options are derived from these dataclasses (distill.options), each run saves the one it resolved,
and making one refuses a value out of its range. This module imports nothing heavy: `distill --help` and `crop`'s
main process stay free of torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from distill.distributed import parse_devices
from distill.errors import DistillError
from distill.registry import STUDENTS
from distill.settings import Settings, setting
from distill.specs import CompressPlan, LossSpec

MAX_PIXELS = 60_000_000  # a photo of more pixels is a decompression bomb: skipped, never decoded
MIN_SIDE = 24
MIN_FACE_NONE = "1/20 of the picture's shorter side, at least 16 px (360p: 18, 1080p: 54)"
SMALL_CROP = 64  # px: images no larger are face crops already (fit-teacher's detector)
AUTO = "auto"  # compress's plan chosen on the held-out faces (compress/auto.py)
# the auto plan's fine-tuning after each step, on the float student's outputs (it keeps the float student's function;
# chosen by held-out agreement: docs/results.md, compression)
AUTO_RECIPE = {"epochs": 2, "lr": 3e-4, "teach": "float", "tolerance": 1.0}
COMBINE = ("prob", "logit", "geometric")  # how an ensemble joins its members (teachers/ensemble.py)
OPTIMIZERS = ("adamw", "sgd")
PRECISIONS = ("auto", "32", "bf16-mixed", "16-mixed")
TEACH = ("cache", "float")  # what compress fine-tunes on
CONDITIONS = ("plain", "dark", "small")  # photo conditions eval scores under (evaluate/conditions.py)
TEACHER_RUNTIMES = ("torch", "onnx")  # where an online teacher computes (teachers/runtime.py)


def parsed_loss(text: str) -> LossSpec:
    """The one place a loss spec is parsed: a config hands the typed object down (cfg.loss_spec)."""
    return LossSpec.parse(text)


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.5  # probability of a horizontal flip
    degrees: float = 10.0  # max rotation
    scale: tuple[float, float] = (0.9, 1.1)  # zoom range (>1 zooms in)
    shift: float = 0.08  # max translation, fraction of half the side
    brightness: float = 0.2
    contrast: float = 0.2


@dataclass
class CropConfig(Settings):
    size: int = setting(112, "Side of the stored square crop, px.", ge=16, le=1024)
    margin: float = setting(0.25, "Crop side = face box side * (1 + margin).", ge=0, le=3)
    align: bool = setting(True, "Rotate so the eyes are level.")
    all_faces: bool = setting(False, "Keep every face of a photo, not only the most confident.")
    detector: str = setting("mtcnn", "Face detector (distill list detectors): the students' stores are MTCNN's.")
    min_prob: float | None = setting(
        None, "Minimum detection score.", ge=0, le=1, none="the detector's own: mtcnn 0.9, blazeface 0.5"
    )
    min_face: int = setting(20, "Smallest face looked for, px.", ge=8)
    max_pixels: int = setting(MAX_PIXELS, "A photo of more pixels is skipped undecoded (decompression bomb).", ge=1)
    min_side: int = setting(MIN_SIDE, "A photo with a shorter side is skipped as too small, px.", ge=1)
    batch: int = setting(16, "Photos of equal size detected together.", ge=1, cli=False)
    part_images: int = setting(256, "Photos per crash-safe part file (the unit of resume).", ge=1, cli=False)
    # parts one detection process runs before a fresh one replaces it (flat memory, see detection_process)
    worker_parts: int = setting(4, "Parts per detection process.", ge=1, cli=False)


@dataclass
class LabelConfig(Settings):
    teacher: str | None = setting(
        None,
        "Teacher spec; 'a+b' ensembles, 'name@0.7' weights (distill list teachers).",
        none="mini_xception+face_api where face_api's weights are installed (`make setup`): its students are the "
        "more accurate (docs/results.md); else mini_xception",
    )
    combine: str = setting("prob", "Ensemble combination.", choices=COMBINE)
    class_map: str | None = setting(None, "Ensemble class mapping member=ensemble,...", none="classes match by name")
    views: int | None = setting(
        None,
        "Augmented views per face to cache (consistent teaching).",
        ge=0,
        le=64,
        none="none for a teacher of <= 2M parameters (students run it on fresh views each step); else about 64,000 "
        "views in all, 2-8 a face (8 up to 8,000 faces, 4 for 15,000)",
    )
    seed: int = setting(0, "Seed of the augmented views.")
    batch: int = setting(128, "Faces per teacher forward.", ge=1)
    part_rows: int = setting(2048, "Faces per crash-safe part file (the unit of resume and of DDP).", ge=1)
    augment: AugmentConfig = setting(AugmentConfig(), "Ranges of the augmented views.", cli=False)


def machine_accelerators() -> tuple[str, ...]:
    """The --accelerator values this machine can run, from cheap probes (no torch import: `--help` stays fast);
    `accelerator_present` confirms the one asked for with torch."""
    import importlib.util
    import platform
    import sys
    from pathlib import Path

    found = ["auto", "cpu"]
    if Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia/version").exists():
        found += ["gpu", "cuda"]
    if sys.platform == "darwin" and platform.machine() == "arm64":
        found.append("mps")
    if importlib.util.find_spec("torch_xla") is not None:
        found.append("tpu")
    return tuple(found)


def accelerator_present(name: str) -> bool:
    """Whether this machine has the accelerator (imports torch only when one other than the CPU is asked for)."""
    import importlib.util

    if name == "tpu":
        return importlib.util.find_spec("torch_xla") is not None
    import torch

    return torch.cuda.is_available() if name in ("gpu", "cuda") else torch.backends.mps.is_available()


@dataclass
class DistConfig(Settings):
    """Lightning's own knobs, passed through unchanged to Trainer / Fabric."""

    accelerator: str = setting(
        "auto",
        "auto (a GPU where there is one, else the CPU), or one this machine has.",
        choices=machine_accelerators(),
    )
    devices: str = setting("auto", "Devices per node: a count, 'auto' or ids like '0,2'; more than one runs DDP.")
    num_nodes: int = setting(1, "Machines in the job (launch one command per node, e.g. with SLURM or torchrun).", ge=1)
    strategy: str = setting("auto", "Lightning strategy: auto, ddp, ddp_spawn, ...")

    def check(self) -> None:
        parse_devices(self.devices)
        if self.accelerator not in ("auto", "cpu") and not accelerator_present(self.accelerator):
            raise DistillError(f"--accelerator {self.accelerator}: this machine has none; use auto or cpu")

    def lightning_kwargs(self) -> dict:
        return {
            "accelerator": self.accelerator,
            "devices": parse_devices(self.devices),
            "num_nodes": self.num_nodes,
            "strategy": self.strategy,
        }


@dataclass
class LabelDistConfig(DistConfig):
    """label runs on one device unless told otherwise: a machine's every GPU is not what a first run wants."""

    devices: str = setting("1", "Devices per node: a count, 'auto' or ids like '0,2'; more than one runs DDP.")


@dataclass
class TrainConfig(DistConfig):
    """A training run's settings; batch_size is the global batch, split evenly over Lightning's processes."""

    student: str = setting("squeezenet1_1_bn", "Student architecture (distill list students).")
    loss: str = setting("kld", "Loss spec: kld, label, hint, ce, kld+hint, kld:0.9+label:0.1 (weights > 0).")
    # T=1 beat T=4 for the SqueezeNet students (docs/results.md); Hinton's T^2 keeps the gradients comparable
    temperature: float = setting(
        1.0, "KD temperature T (1 beat 4 for the SqueezeNet students, docs/results.md).", gt=0, le=100
    )
    epochs: int | None = setting(
        None,
        "Training epochs.",
        ge=1,
        none="by the pool's size: the student's budget of face-steps (SqueezeNet: the recipe's 40 epochs of 13.8k "
        "faces), 3-60 epochs",
    )
    patience: int = setting(
        8,
        "Stop when validation agreement has not improved for this many epochs, not before the last quarter of the "
        "schedule (the best is kept); 0 = never.",
        ge=0,
    )
    batch_size: int = setting(64, "Mini-batch size (global, over all processes).", ge=1)
    lr: float = setting(2e-3, "Peak learning rate (one-cycle schedule).", gt=0, le=10)
    weight_decay: float = setting(5e-4, "Weight decay.", ge=0, le=1)
    optimizer: str = setting("adamw", "adamw, or sgd (Nesterov momentum 0.9); either one-cycle.", choices=OPTIMIZERS)
    size: int | None = setting(None, "Student input side, px.", ge=16, le=1024, none="the teacher's, at most 112")
    start_size: int | None = setting(
        None,
        "Progressive resizing: the student's input side for the first quarter of the epochs, grown linearly to --size "
        "by the last quarter (validation is always at --size); = --size turns it off.",
        ge=32,
        le=1024,
        none="the student's recipe (SqueezeNet: 64 px), else --size",
    )
    teacher_runtime: str = setting(
        "torch",
        "Where a teacher run every step computes: torch, or onnx (ONNX Runtime's graph of each member's network).",
        choices=TEACHER_RUNTIMES,
    )
    grey: bool | None = setting(None, "Grey student input.", none="as the teacher (grey for mini_xception)")
    small_input: bool | None = setting(None, "Stride-1 stem for small faces.", none="the student's recommendation")
    framing: float | None = setting(
        None,
        "The central share of the stored face's side the student sees (1 = MTCNN box x 1.25; 0.8 = about the box).",
        ge=0.5,
        le=1,
        none="the teacher's framing (consistent teaching)",
    )
    width: float = setting(1.0, "Width multiplier (MobileNets).", gt=0, le=4)
    val_fraction: float = setting(0.1, "Share of the pool (by key hash) held out to measure agreement.", gt=0, lt=1)
    balance: float | None = setting(
        None,
        "Draw faces with weight freq(teacher's class)^-B: 0 = as the pool is, 0.5 = 1/sqrt (celebrity pools are "
        "mostly neutral and happy).",
        ge=0,
        le=1,
        none="the student's recipe (SqueezeNet: 1.0), else 0.5",
    )
    ema: float | None = setting(
        None,
        "EMA of the weights with this decay per step (e.g. 0.998); 0 = off.",
        ge=0,
        lt=1,
        none="the student's recipe (SqueezeNet: an average over 2 epochs, 0.998 for 13.8k faces)",
    )
    use_views: bool = setting(True, "Train on the cache's augmented views (consistent teaching).", flag="--views")
    online_teacher: bool | None = setting(
        None,
        "Run the teacher on a fresh view each step (function matching).",
        none="on for a teacher of <= 2M parameters (function matching, docs/results.md), off otherwise",
    )
    mixup: float | None = setting(
        None, "Input mixup Beta(a,a) with --online-teacher; 0 = off.", ge=0, le=10, none="with online teaching"
    )
    hint_layer: str | None = setting(None, "Teacher module for hints.", none="the last wide feature map")
    hint_epochs: int = setting(0, "FitNets stage 1: epochs of hint-only training.", ge=0)
    seed: int = setting(0, "Random seed.")
    workers: int | None = setting(
        None, "DataLoader worker processes.", ge=0, le=64, none="0 with the faces in memory, else 2"
    )
    # measured (benchmarks/bench_train.py): decoding the gzip'd store per face cost more than the training step
    in_memory: bool | None = setting(
        None,
        "Decode the face store into memory once, at the student's side, instead of reading it every batch.",
        none="when the faces take under a quarter of the free memory",
    )
    precision: str = setting(
        "auto",
        "Lightning's precision; auto = bf16-mixed on a GPU (16-mixed without bf16) and on a CPU with native bf16 "
        "(AVX-512 BF16 or AMX), 32 elsewhere (emulated bf16 is hundreds of times slower).",
        choices=PRECISIONS,
    )
    channels_last: bool = setting(True, "Channels-last memory layout for the student and its batches (faster convs).")
    limit: int | None = setting(None, "Use at most this many training faces.", ge=1, none="all")
    max_steps: int = setting(-1, "Stop after this many optimizer steps; -1 = all epochs.", ge=-1)

    @cached_property
    def loss_spec(self) -> LossSpec:
        """--loss parsed (once: the steps below take this object)."""
        return parsed_loss(self.loss)

    def check(self) -> None:
        super().check()
        self.loss_spec  # noqa: B018 - parsed here, so a bad spec is refused as the config is made
        STUDENTS.entry(self.student)
        if self.max_steps == 0:
            raise DistillError("--max-steps 0: must be -1 (all epochs) or >= 1")
        if self.hint_epochs and self.epochs is not None and self.hint_epochs >= self.epochs:
            raise DistillError(f"--hint-epochs {self.hint_epochs}: must be < --epochs {self.epochs}")
        if self.start_size is not None and self.size is not None and self.start_size > self.size:
            raise DistillError(f"--start-size {self.start_size}: must be at most --size {self.size}")
        if self.mixup and self.online_teacher is False:
            raise DistillError("--mixup needs --online-teacher: the cache holds no posteriors of mixed faces")

    def dist(self) -> DistConfig:
        return DistConfig(self.accelerator, self.devices, self.num_nodes, self.strategy)


@dataclass
class FitConfig(Settings):
    arch: str = setting(
        "vgg_s",
        "vgg_s, timm:NAME for any timm architecture, or a student's network (distill list students) trained on the "
        "labels themselves.",
    )
    epochs: int = setting(30, "Training epochs.", ge=1)
    batch_size: int = setting(64, "Mini-batch size.", ge=1)
    lr: float = setting(1e-3, "Peak learning rate (AdamW, one-cycle).", gt=0, le=10)
    weight_decay: float = setting(5e-4, "Weight decay.", ge=0, le=1)
    size: int | None = setting(
        None,
        "Teacher input side, px.",
        ge=32,
        le=1024,
        none="what this machine's time allows: 224 on a GPU (the papers' VGG-S); on a CPU 96 where it computes bf16 "
        "natively, else 64",
    )
    width: float = setting(1.0, "VGG-S channel multiplier (1.0 = the paper's ~377 MiB).", gt=0, le=4)
    batch_norm: bool = setting(True, "VGG-S with BatchNorm after every conv in place of LRN (trains from scratch).")
    detector: str | None = setting(
        None,
        "How a labelled folder's faces are found (distill list detectors); whole: each image is the face.",
        none=f"whole where every image is a small face crop already (at most {SMALL_CROP} px, as FER2013's 48 px "
        "faces: the detector would only re-frame them, and misses some), else mtcnn",
    )
    test_fraction: float = setting(0.2, "Held-out test share (by subject where known), never trained on.", gt=0, lt=1)
    val_fraction: float = setting(0.1, "Validation share (by subject where known).", gt=0, lt=1)
    label_smoothing: float = setting(0.1, "Label smoothing of the cross-entropy.", ge=0, lt=1)
    balanced: bool = setting(True, "Cross-entropy weighted by 1/sqrt(class frequency).")
    ema: float = setting(0.0, "EMA decay of the weights per step (validated and kept averaged); 0 = off.", ge=0, lt=1)
    mirror: bool = setting(
        True,
        "A fitted teacher averages each face's posterior with its mirror image's (validated, tested and later labelling"
        " so; twice the inference). A student's network (--arch) stays one pass.",
    )
    precision: str = setting(
        "auto",
        "Lightning's precision; auto = bf16-mixed where the hardware computes bf16 natively (a GPU; a CPU with "
        "AVX-512 BF16 or AMX), else 32.",
        choices=PRECISIONS,
    )
    seed: int = setting(0, "Random seed.")
    workers: int = setting(2, "DataLoader worker processes.", ge=0, le=64)

    def check(self) -> None:
        if self.test_fraction + self.val_fraction >= 1:
            raise DistillError(
                f"--test-fraction {self.test_fraction} + --val-fraction {self.val_fraction}: must leave faces to "
                "train on (sum < 1)"
            )
        if self.arch != "vgg_s" and not self.arch.startswith("timm:") and self.arch not in STUDENTS:
            students = ", ".join(STUDENTS.names())
            raise DistillError(f"--arch {self.arch}: must be vgg_s, timm:NAME or a student's network ({students})")


@dataclass
class CompressConfig(Settings):
    method: str = setting(
        "auto",
        "auto (the most deployable plan that keeps the float student's accuracy: channel pruning grown while the "
        "held-out faces allow, then int8; chosen without labels), or a compressor or chain in order, e.g. bwn, quant, "
        "prune:0.8+quant, prune-ch:0.5+quant.",
        flag="--method",
    )
    epochs: int | None = setting(
        None,
        "Fine-tuning epochs after each round, from the run's caches; 0 = none.",
        ge=0,
        none=f"each method's recipe (distill list compressors), else 3; auto: {AUTO_RECIPE['epochs']} after each step",
    )
    stages: int | None = setting(
        None,
        "Rounds of iterative methods (N > 1 makes bwn incremental).",
        ge=1,
        none="each method's recipe, else its own: prune 3, hybrid 4",
    )
    lr: float | None = setting(
        None,
        "Peak fine-tuning learning rate.",
        gt=0,
        le=10,
        none=f"each method's recipe, else 0.0005; auto: {AUTO_RECIPE['lr']:g}",
    )
    loss: str | None = setting(None, "Fine-tuning loss spec.", none="the run's")
    limit: int | None = setting(None, "Fine-tune on at most this many faces (big networks).", ge=1, none="all")
    teach: str | None = setting(
        None,
        "Fine-tune on: cache (the teacher's posteriors) or float (the uncompressed student).",
        choices=TEACH,
        none=f"{AUTO_RECIPE['teach']} for auto (the plan keeps the float student's function), else cache",
    )
    # off by default, whatever the run used: a short fine-tuning starts from a freshly compressed network, and the
    # average's lag behind it cost BWN validation agreement
    ema: float = setting(0.0, "EMA decay of the fine-tuned weights per step; 0 = off.", ge=0, lt=1)
    tolerance: float | None = setting(
        None,
        "auto: points of agreement with the teacher on the held-out faces a plan may lose against the float student.",
        ge=0,
        le=100,
        none=f"{AUTO_RECIPE['tolerance']:g}",
    )

    def check(self) -> None:
        if self.tolerance is not None and self.method != AUTO:
            raise DistillError(f"--tolerance applies to the auto plan only, not --method {self.method}")
        self.plan  # noqa: B018 - both parsed here, so a bad spec is refused as the config is made
        self.loss_spec  # noqa: B018

    @cached_property
    def plan(self) -> CompressPlan | None:
        """--method parsed (once: the pipeline takes this object); None for the auto plan."""
        if self.method == AUTO:
            return None
        try:
            return CompressPlan.parse(self.method)
        except DistillError as err:
            if "unknown compressor" not in str(err):
                raise
            raise DistillError(f"{err}; or auto, the no-flag plan") from None

    @cached_property
    def loss_spec(self) -> LossSpec | None:
        """--loss parsed, None for the run's own."""
        return parsed_loss(self.loss) if self.loss is not None else None


@dataclass
class ExportConfig(Settings):
    format: str | None = setting(
        None, "pt2 (torch.export) or onnx.", choices=("pt2", "onnx"), flag="--format", none="pt2; onnx with --int8"
    )
    int8: bool = setting(False, "Static int8 ONNX graph (ONNX Runtime's QDQ) calibrated on --calibrate faces.")
    faces: int = setting(512, "Calibration faces.", ge=1)

    def check(self) -> None:
        super().check()
        if self.int8 and self.format == "pt2":  # a PT2E int8 .pt2 ran slower than the float ONNX graph (export.py)
            raise DistillError("--int8 is written as ONNX: --format onnx --int8 (or leave --format out)")

    def resolved_format(self) -> str:
        return self.format or ("onnx" if self.int8 else "pt2")


@dataclass
class PredictConfig(Settings):
    runtime: str = setting(
        "onnx",
        "onnx: ONNX Runtime (a student is exported once into the output folder; several times faster than eager on a "
        "CPU), or torch.",
        choices=("onnx", "torch"),
    )
    detect_every: int = setting(1, "Video: detect faces every N frames; boxes are carried in between.", ge=1)
    smooth: float = setting(
        0.5, "Video: each tracked face's probabilities p = s * p_before + (1 - s) * p_now; 0 = off.", ge=0, lt=1
    )
    annotate: bool = setting(True, "Write annotated copies: photos with boxes and labels, an annotated video.")
    max_frames: int | None = setting(None, "Video: stop after this many frames.", ge=1, none="all")
    detector: str = setting(
        "blazeface",
        "Face detector (distill list detectors); blazeface keeps MTCNN's faces at a fraction of its time and maps its "
        "boxes onto MTCNN's framing (docs/results.md).",
    )
    min_prob: float | None = setting(
        None, "Minimum detection score.", ge=0, le=1, none="the detector's own: mtcnn 0.9, blazeface 0.5"
    )
    min_face: int | None = setting(None, "Smallest face looked for, px.", ge=8, none=MIN_FACE_NONE)
    batch: int = setting(64, "Faces classified together.", ge=1, cli=False)


@dataclass
class EvalConfig(Settings):
    class_map: str | None = setting(None, "Explicit model=data class mapping, e.g. contempt=disgust.", none="by name")
    crop: bool = setting(True, "Crop the faces like training, or resize whole images (tight crops).")
    detector: str = setting("mtcnn", "Face detector of the crops (distill list detectors): training's is MTCNN.")
    size: int = setting(112, "Face side fed to the models (the store size).", ge=16, le=1024)
    ensemble_map: str | None = setting(
        None, "Class mapping inside ensemble specs (member=ensemble, cls=- drops), as label's.", none="by name"
    )
    combine: str = setting("prob", "Ensemble combination.", choices=COMBINE)
    condition: str = setting(
        "plain",
        "Score the photos as they are (plain), or under a condition footage brings, each photo changed before its "
        "face is found: dark (gamma 2.2 and warm light) or small (the photo shrunk 4x in its frame).",
        choices=CONDITIONS,
    )
    runtime: str = setting(
        "onnx",
        "What scores a student or compressed model: onnx (ONNX Runtime, the runtime predict uses; exported to a "
        "temporary file) or torch. Teachers run in PyTorch. The table has both runtimes' latency.",
        choices=("onnx", "torch"),
    )
