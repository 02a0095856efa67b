"""`distill compress` with no --method: the most deployable student that keeps the float student's accuracy, its
strength chosen without labels.

Channel pruning (prune-ch, torch-pruning, global: the least important channels anywhere in the network go first)
grows a step at a time up the LADDER, each step fine-tuned on the float student's outputs for fresh views of the
run's faces; after each step the pruned student and its static int8 ONNX graph (what predict runs) are scored on
the run's held-out validation faces, the split training never trained on, against the teacher's cached posteriors:
no label is read. A candidate passes while its agreement with the teacher is at most `tolerance` points below the
float student's (the teacher is the label-free stand-in for accuracy), and the plan kept is the last step that
passed, int8 where its int8 graph passed too (a quarter of the bytes). Agreement with the float student is
measured and reported beside it.

Why not a fixed bar on agreement with the float student: post-training int8 of the unpruned student alone moves
1-2 in a hundred of the held-out answers (faces near a tie between two classes), so such a bar at 99 refused int8
itself and left nothing to deploy; the teacher's agreement tells which moves cost accuracy.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from distill.compress.distill_file import save_compressed
from distill.compress.pipeline import file_latencies, float_teacher
from distill.compress.prune import ChannelPruning
from distill.config import AUTO_RECIPE, CompressConfig
from distill.errors import DistillError
from distill.evaluate.speed import compare_latency_on
from distill.export.formats import OnnxModel, export_model
from distill.faces import augment
from distill.faces.store import FaceStore
from distill.labelling.cache import PosteriorCache
from distill.progress import console
from distill.provenance import provenance
from distill.storage.files import write_json
from distill.students.model import load_student
from distill.training.data import held_out
from distill.training.train import fine_tune, load_run_config, run_train_config

LADDER_TOP, LADDER_STEPS = 0.7, 7  # the pruned share of the network's channels grows by 0.1 a step, up to 0.7
CALIBRATION_FACES = 512
COLLAPSE_MARGIN = 0.05  # agreement above the teacher's commonest class share that a student that learnt shows


@dataclass
class HeldOut:
    """What the candidates are scored on: the run's validation faces and a calibration sample of its training faces."""

    pixels: np.ndarray  # (N, S, S, 3) uint8 validation faces, as stored
    teacher: np.ndarray  # (N,) the teacher's class per face (argmax of its cached logits)
    calibration: np.ndarray  # (M, S, S, 3) uint8 training faces for int8 calibration


def held_out_faces(sources: list[tuple[Path, Path]], val_fraction: float, seed: int = 0) -> HeldOut:
    """The validation split training held out (training.data.held_out: the same keys), from every source."""

    pixels, teacher, train_faces = [], [], []
    rng = np.random.default_rng(seed)
    for store_path, cache_path in sources:
        store, cache = FaceStore(store_path), PosteriorCache(cache_path)
        val = held_out(store.keys, val_fraction)
        rows = np.flatnonzero(val)
        pixels.append(store.pixels(rows))
        teacher.append(cache.logits[rows].argmax(1))
        train = np.flatnonzero(~val)
        pick = np.sort(rng.choice(train, min(CALIBRATION_FACES, len(train)), replace=False))
        train_faces.append(store.pixels(pick))
    calibration = np.concatenate(train_faces)
    calibration = calibration[rng.permutation(len(calibration))[:CALIBRATION_FACES]]
    return HeldOut(np.concatenate(pixels), np.concatenate(teacher), calibration)


def classes_of(model: torch.nn.Module, pixels: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N,) argmax class of uint8 faces (N, S, S, 3); a torch model in eval mode, or an OnnxModel."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(pixels), batch):
            out.append(torch.as_tensor(model(augment.to_float(pixels[i : i + batch]))).argmax(1).numpy())
    return np.concatenate(out)


@dataclass
class Candidate:
    """One rung of the ladder: a pruning ratio, in float or int8, and how it agrees on the held-out faces."""

    ratio: float
    int8: bool
    parameters: int
    teacher_agreement: float
    float_agreement: float  # with the uncompressed student
    passed: bool = False
    onnx: str | None = None  # its int8 graph

    @property
    def name(self) -> str:
        parts = ([f"prune-ch:{self.ratio:g}"] if self.ratio else []) + (["int8"] if self.int8 else [])
        return " + ".join(parts) or "float"


class Ladder:
    """Scores candidates against the float student and the teacher; keeps the best passing one's network."""

    def __init__(self, student, held: HeldOut, tolerance: float, work: Path):
        self.held, self.work = held, work
        self.float_classes = classes_of(student.eval(), held.pixels)
        self.float_teacher_agreement = float((self.float_classes == held.teacher).mean())
        self.tolerance = tolerance  # points
        self.bar = self.float_teacher_agreement - tolerance / 100
        self.curve: list[Candidate] = []
        self.best: Candidate | None = None
        self.best_net = None

    def collapse_warning(self, classes: list[str]) -> str | None:
        """A warning where the float student agrees with its teacher no better than the teacher's commonest class
        would (e.g. "neutral" for every face after too short a training): every compressed form of such a student
        passes trivially, so the plan it gets says nothing."""
        counts = np.bincount(self.held.teacher, minlength=len(classes))
        majority = counts.max() / counts.sum()
        if self.float_teacher_agreement > majority + COLLAPSE_MARGIN:
            return None
        answered = len(np.unique(self.float_classes))
        return (
            f"the student agrees with its teacher on {100 * self.float_teacher_agreement:.2f}% of "
            f"{len(self.held.teacher)} held-out faces, no better than always answering the teacher's commonest class "
            f"'{classes[counts.argmax()]}' ({100 * majority:.2f}%; it answers {answered} class"
            f"{'es' if answered > 1 else ''} in all): it has not learnt its teacher (trained too briefly?), and every "
            "compressed form of it passes the tolerance trivially"
        )

    def score(self, student, ratio: float) -> bool:
        """Score the float and int8 forms of `student` at `ratio`; True while the float form passes."""

        student.eval()
        parameters = sum(p.numel() for p in student.net.parameters())
        plain_classes = classes_of(student, self.held.pixels) if ratio else self.float_classes  # 0: the reference
        plain = self._candidate(ratio, False, parameters, plain_classes)
        graph = self.work / f"ratio-{ratio:g}.int8.onnx"
        export_model(student, graph, "onnx", self.held.calibration)
        quantised = self._candidate(ratio, True, parameters, classes_of(OnnxModel(graph, 1), self.held.pixels))
        quantised.onnx = str(graph)
        for candidate in (plain, quantised) if ratio else (quantised,):  # the float student is no plan
            if candidate.passed and (self.best is None or _rank(candidate) > _rank(self.best)):
                self.best, self.best_net = candidate, copy.deepcopy(student.net)
        student.train()
        return plain.passed

    def _candidate(self, ratio: float, int8: bool, parameters: int, classes: np.ndarray) -> Candidate:
        teacher = float((classes == self.held.teacher).mean())
        agree = float((classes == self.float_classes).mean())
        made = Candidate(ratio, int8, parameters, teacher, agree, passed=teacher >= self.bar)
        self.curve.append(made)
        return made


def _rank(c: Candidate) -> tuple[bool, float]:
    """Deployability: int8 first (a quarter of the bytes, int8 kernels), then the more channels pruned."""
    return (c.int8, c.ratio)


def compress_auto(run_dir: Path, out_dir: Path, cfg: CompressConfig, show_progress: bool = True) -> dict:
    """Climb the ladder on the run's student; write the chosen plan as model.distill (+ model.int8.onnx)."""

    config = load_run_config(run_dir)
    fine = run_train_config(config)
    sources = [(Path(s["store"]), Path(s["cache"])) for s in config["sources"]]
    student = load_student(run_dir / "student.pt")
    params_before = sum(p.numel() for p in student.net.parameters())
    recipe = {key: getattr(cfg, key) if getattr(cfg, key) is not None else value for key, value in AUTO_RECIPE.items()}
    teacher = float_teacher(student, run_dir, recipe["teach"])
    fine = replace(fine, loss=cfg.loss or fine.loss, hint_epochs=0, limit=cfg.limit or fine.limit, ema=cfg.ema)
    fine = replace(fine, online_teacher=fine.online_teacher or teacher is not None, lr=recipe["lr"])
    fine = replace(fine, epochs=max(1, recipe["epochs"]))  # 0: no fine-tuning at all (the loop skips it)
    work = out_dir / "rounds"
    work.mkdir(parents=True, exist_ok=True)
    ladder = Ladder(student, held_out_faces(sources, fine.val_fraction), recipe["tolerance"], work)
    warning = ladder.collapse_warning(student.classes)
    if warning:
        console.print(f"warning: {warning}", highlight=False)
    if show_progress:
        console.print(
            f"auto: prune-ch (global) up to {LADDER_TOP:g} in steps of {LADDER_TOP / LADDER_STEPS:g}, each "
            f"fine-tuned {recipe['epochs']} epochs at lr {recipe['lr']:g} on the {recipe['teach']} outputs; a step "
            f"passes while it agrees with the teacher on {len(ladder.held.pixels)} held-out faces within "
            f"{ladder.tolerance:g} points of the float student's {100 * ladder.float_teacher_agreement:.2f}%",
            highlight=False,
        )
    ladder.score(student, 0.0)
    pruner = ChannelPruning(LADDER_TOP)
    pruner.size, pruner.scope = student.preprocess.size, "global"
    for step in range(1, LADDER_STEPS + 1):
        ratio = round(LADDER_TOP * step / LADDER_STEPS, 3)
        pruner.advance(student.net, step, LADDER_STEPS)
        tuned = None
        if recipe["epochs"] > 0:
            tuned = fine_tune(
                student.train(), sources, work / f"{step:02d}-prune-ch_{ratio:g}", fine, teacher, show_progress
            )
        passed = ladder.score(student, ratio)
        if show_progress:
            console.print(_line(ladder.curve[-2:], tuned), highlight=False)
        if not passed:
            break
    if ladder.best is None:
        closest = max(ladder.curve[1:], key=lambda c: c.teacher_agreement)
        write_json(out_dir / "summary.json", {"methods": "auto", "plan": None, "curve": _curve(ladder)})
        raise DistillError(
            f"no compressed form of {run_dir} agrees with the teacher within {ladder.tolerance:g} points of the float "
            f"student's {100 * ladder.float_teacher_agreement:.2f}% (closest: {closest.name}, "
            f"{100 * closest.teacher_agreement:.2f}%; the curve: {out_dir / 'summary.json'}); raise --tolerance or "
            "give a --method"
        )
    return _save(run_dir, out_dir, student, ladder, cfg, params_before, warning)


def _curve(ladder: Ladder) -> list[dict]:
    return [asdict(c) | {"name": c.name} for c in ladder.curve]


def _line(pair: list[Candidate], tuned: dict | None) -> str:
    """A step's line; `tuned`: its fine-tuning's summary. The step keeps the fine-tuning epoch of best validation
    agreement, which the epoch lines above need not end on: the line names it, so the two never seem to disagree."""
    plain, quantised = pair
    kept = ""
    if tuned and tuned.get("best_val_agreement") is not None:
        kept = f" (kept: the fine-tuning epoch of best val/agreement, {tuned['best_val_agreement']:.4f})"
    return (
        f"auto: {plain.name}{kept}: {plain.parameters:,} parameters; teacher agreement "
        f"{100 * plain.teacher_agreement:.2f}% (int8 {100 * quantised.teacher_agreement:.2f}%), float-student "
        f"agreement {100 * plain.float_agreement:.2f}% (int8 {100 * quantised.float_agreement:.2f}%)"
    )


def _save(run_dir: Path, out_dir: Path, student, ladder: Ladder, cfg, params_before: int, warning: str | None) -> dict:

    chosen = ladder.best
    student.net = ladder.best_net
    layers = {"": f"prune-ch:{chosen.ratio:g}"} if chosen.ratio else {}
    model = out_dir / "model.distill"
    plan = {
        "chosen": chosen.name,
        "why": (
            f"the most deployable step whose teacher agreement ({100 * chosen.teacher_agreement:.2f}%) is within "
            f"{ladder.tolerance:g} points of the float student's ({100 * ladder.float_teacher_agreement:.2f}%) on "
            f"{len(ladder.held.pixels)} held-out faces"
        ),
        "tolerance_points": ladder.tolerance,
        "float_teacher_agreement": ladder.float_teacher_agreement,
        "curve": _curve(ladder),
    }
    if warning:  # `distill info` shows it beside the plan
        plan["warning"] = warning
    extra = {"provenance": provenance("compress", run=str(run_dir)), "plan": plan}
    save_compressed(model, student.eval(), layers, extra)
    deployable = model
    if chosen.int8:
        deployable = out_dir / "model.int8.onnx"
        shutil.copyfile(chosen.onnx, deployable)
    speed = _runtime_speed(student, run_dir, deployable, out_dir)
    float_bytes = (run_dir / "student.pt").stat().st_size
    latency = file_latencies(run_dir / "student.pt", model, student.preprocess.size)
    summary = {
        "methods": "auto",
        "plan": plan,
        "model": str(model.resolve()),
        "deployable": str(deployable.resolve()),
        "bytes_on_disk": deployable.stat().st_size,
        "float_bytes_on_disk": float_bytes,
        "size_ratio": float_bytes / deployable.stat().st_size,
        "parameters": chosen.parameters,
        "float_parameters": params_before,
        "best_val_agreement": chosen.teacher_agreement,
        "cpu_latency_ms_batch1": latency["compressed"],
        "float_cpu_latency_ms_batch1": latency["float"],
        **speed,
    }
    write_json(out_dir / "summary.json", summary)
    # what the terminal shows: the plan in a line, its curve in the file
    shown = {"plan": plan["chosen"], "why": plan["why"], "curve": f"{out_dir / 'summary.json'} (plan)"}
    return summary | shown | {k: plan[k] for k in ("warning",) if k in plan}


def _runtime_speed(student, run_dir: Path, deployable: Path, out_dir: Path) -> dict:
    """ONNX Runtime ms per batch of 1 and of 64 faces, one thread, the float student's graph and the chosen one
    taking turns (evaluate.speed.compare_latency_on), each fed faces already cut at its input (export.input_cut)."""

    float_graph = out_dir / "rounds" / "float.onnx"
    export_model(load_student(run_dir / "student.pt").eval(), float_graph, "onnx")
    chosen_graph = deployable
    if deployable.suffix != ".onnx":
        chosen_graph = out_dir / "rounds" / "chosen.onnx"
        export_model(student.eval(), chosen_graph, "onnx")
    models = {"float": OnnxModel(float_graph, 1).at_input, "chosen": OnnxModel(chosen_graph, 1).at_input}
    size = student.preprocess.size
    one = compare_latency_on(models, torch.rand(1, 3, size, size), rounds=5, per_round=20)
    many = compare_latency_on(models, torch.rand(64, 3, size, size), rounds=3, per_round=3)
    return {
        "onnx_ms_batch1": one["chosen"],
        "float_onnx_ms_batch1": one["float"],
        "onnx_speedup_batch1": one["float"] / one["chosen"],
        "onnx_ms_batch64": many["chosen"],
        "float_onnx_ms_batch64": many["float"],
        "onnx_speedup_batch64": many["float"] / many["chosen"],
    }
