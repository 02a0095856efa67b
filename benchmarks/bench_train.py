"""Training step from the posterior cache vs online-teacher distillation, data-loading share, CPU latency.

Same student (SqueezeNet 1.1 + BN, 64 px grey), faces, batch and views; only the source of the teacher's
posteriors differs: "cached" reads the views `distill label --views` stored, "online" runs the teacher on each
batch (what a toolkit without a cache does). Lightning's SimpleProfiler splits each step into waiting for the
DataLoader and the training batch itself. Two teachers: mini_xception (tiny, so the cache saves little) and
VGG-S at 112 px (random weights: timing only), the papers' big-teacher case.
Usage: python benchmarks/bench_train.py [FOLDER] [--n 512] [--steps 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import lightning as L
from lightning.pytorch.profilers import SimpleProfiler

from distill.config import CropConfig, LabelConfig, TrainConfig
from distill.datasets.readers import read_folder
from distill.evaluate.speed import time_forward
from distill.faces.crop import crop
from distill.faces.framing import IMAGENET, Preprocess
from distill.labelling.cache import PosteriorCache
from distill.labelling.label import label
from distill.progress import quiet_libraries
from distill.students.model import Student
from distill.teachers.build import build_teacher
from distill.training.defaults import resolve
from distill.training.train import build_module, make_data

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces-unlabeled" / "images"
LOAD = "[_TrainingEpochLoop].train_dataloader_next"
FER = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]


def random_vgg_s(tmp: Path, size: int = 112) -> str:
    """A VGG-S teacher checkpoint with random weights (the timing does not depend on them)."""
    from distill.teachers.vgg_s import VGGS, save_checkpoint

    path = tmp / "vgg_s-random.pt"
    kwargs = {"width": 1.0, "size": size}
    save_checkpoint(path, "vgg_s", VGGS(len(FER), **kwargs), FER, Preprocess(size=size, grey=False, **IMAGENET), kwargs)
    return f"vgg_s:{path}"


def step_times(sources: list[tuple[Path, Path]], cfg: TrainConfig, steps: int, tmp: Path, warm: int = 5) -> dict:
    """Median seconds per step waiting for data and running the batch (forward, loss, backward, update)."""
    L.seed_everything(0, verbose=False)
    cfg, _ = resolve(cfg, [PosteriorCache(cache) for _, cache in sources])  # as `distill train` does
    data = make_data(sources, cfg)
    student = Student(cfg.student, data.classes, cfg.size, cfg.grey)
    profiler = SimpleProfiler(dirpath=tmp, filename="profile")
    trainer = L.Trainer(
        max_steps=warm + steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        profiler=profiler,
    )
    trainer.fit(build_module(cfg, data, student), datamodule=data)
    done = profiler.recorded_durations
    load = statistics.median(done[LOAD][warm:])
    batch = statistics.median(done["run_training_batch"][warm:])
    return {"load": load, "batch": batch, "step": load + batch}


def compare(teacher: str, store: Path, tmp: Path, steps: int) -> dict:
    cache = tmp / f"cache-{len(list(tmp.glob('cache-*')))}.h5"
    label(store, cache, LabelConfig(teacher=teacher, views=2), show_progress=False)
    common = {"student": "squeezenet1_1_bn", "size": 64, "grey": True, "batch_size": 64, "workers": 1}
    cached = step_times([(store, cache)], TrainConfig(**common), steps, tmp)
    online = step_times([(store, cache)], TrainConfig(**common, online_teacher=True), steps, tmp)
    t_model = build_teacher(teacher)
    s_model = Student("squeezenet1_1_bn", t_model.classes, 64, grey=True).eval()
    return {
        "cached": cached,
        "online": online,
        "teacher_ms": time_forward(t_model.eval(), 1, 112, 30) * 1000,
        "student_ms": time_forward(s_model, 1, 112, 30) * 1000,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--n", type=int, default=512, help="photos to crop into the benchmark store")
    ap.add_argument("--steps", type=int, default=30, help="timed training steps per setting")
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        sys.exit(f"no image folder at {args.folder}; pass one")
    quiet_libraries()
    rows = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        store = tmp / "faces.h5"
        samples = read_folder(args.folder)[: args.n]
        crop(args.folder, store, CropConfig(), reader="folder", samples=samples, show_progress=False)
        for title, teacher in (("mini_xception", "mini_xception"), ("VGG-S 112px", random_vgg_s(tmp))):
            r = compare(teacher, store, tmp, args.steps)
            c, o = r["cached"], r["online"]
            share = c["load"] / c["step"]
            print(
                f"train ({title} teacher): cached step {c['step'] * 1000:.0f} ms, "
                f"online step {o['step'] * 1000:.0f} ms, "
                f"ratio {c['step'] / o['step']:.2f} (target <= 0.6); data loading {share:.1%} of a cached step "
                f"(target <= 10%); CPU latency batch 1: teacher {r['teacher_ms']:.1f} ms, student "
                f"{r['student_ms']:.1f} ms ({r['teacher_ms'] / r['student_ms']:.1f}x faster)"
            )
            ms = {"unit": "ms"}
            rows += [
                {"bench": f"train step, {title}: cached vs online", "ours": c["step"] * 1000, "bare": o["step"] * 1000}
                | ms,
                {"bench": f"data loading share, {title} (cached)", "ours": c["load"] * 1000, "bare": c["step"] * 1000}
                | ms,
                {"bench": f"CPU latency b1: student vs {title}", "ours": r["student_ms"], "bare": r["teacher_ms"]} | ms,
            ]
    for row in rows:
        row["ratio"] = row["ours"] / row["bare"]
    return rows


if __name__ == "__main__":
    main()
