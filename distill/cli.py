"""`distill`: a thin typer layer over the library; every user error is one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from distill.distributed import DistConfig, is_global_zero
from distill.errors import DistillError
from distill.progress import quiet_libraries
from distill.workspace import Workspace

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Distil big facial-emotion CNNs into small, fast students without labelled data.",
)
out = Console()
ACCELERATOR_HELP = "cpu, gpu or auto (Lightning)."
DEVICES_HELP = "Devices per node: a count, 'auto' or ids like '0,2'; more than one runs DDP (see README)."
NODES_HELP = "Machines in the job (launch one command per node, e.g. with SLURM or torchrun)."
STRATEGY_HELP = "Lightning strategy: auto, ddp, ddp_spawn, ..."
STATE = {"workdir": Path("distill-work"), "debug": False}


def ws() -> Workspace:
    return Workspace(STATE["workdir"])


@app.callback()
def _global(
    workdir: Annotated[Path, typer.Option(help="Where artefacts are written and found.")] = Path("distill-work"),
    debug: Annotated[bool, typer.Option(help="Show tracebacks for errors.")] = False,
):
    STATE["workdir"], STATE["debug"] = workdir, debug
    os.environ["DISTILL_WORKDIR"] = str(workdir)  # library look-ups (Workspace()) follow --workdir


@app.command("list")
def list_cmd(
    kind: Annotated[str | None, typer.Argument(help="teachers, students, losses, compressors, datasets")] = None,
):
    """List registered teachers, students, losses, compressors and dataset readers."""
    from distill.registry import REGISTRIES

    if kind is not None and kind not in REGISTRIES:
        raise DistillError(f"unknown kind '{kind}'; valid: {', '.join(REGISTRIES)}")
    for name, reg in REGISTRIES.items():
        if kind in (None, name):
            table = Table(title=name, show_header=False, title_justify="left")
            for entry in reg.entries():
                table.add_row(entry.name, entry.help)
            out.print(table)


@app.command()
def crop(
    src: Annotated[Path | None, typer.Argument(help="Folder of photos (any reader layout).")] = None,
    out_store: Annotated[Path | None, typer.Option("--out", help="Face store (default WORKDIR/faces/NAME.h5).")] = None,
    reader: Annotated[str, typer.Option(help="Dataset reader; 'auto' detects the layout.")] = "auto",
    size: Annotated[int, typer.Option(help="Side of the stored square crop, px.")] = 112,
    margin: Annotated[float, typer.Option(help="Crop side = face box side * (1 + margin).")] = 0.25,
    all_faces: Annotated[bool, typer.Option(help="Keep every face, not only the most confident.")] = False,
    min_prob: Annotated[float, typer.Option(help="Minimum detection probability.")] = 0.9,
    align: Annotated[bool, typer.Option(help="Rotate so the eyes are level.")] = True,
    demo: Annotated[bool, typer.Option(help="Crop the real faces that ship with scikit-image.")] = False,
):
    """Detect faces with MTCNN and store aligned crops; bad or faceless photos are recorded with a reason."""
    from distill.faces.crop import CropConfig
    from distill.faces.crop import crop as run_crop

    cfg = CropConfig(size=size, margin=margin, all_faces=all_faces, min_prob=min_prob, align=align)
    if demo or src is None:
        if src is not None:
            raise DistillError("give SRC or --demo, not both")
        from distill.demo_data import demo_samples

        samples, src, reader = demo_samples(ws().root), Path("skimage-demo"), "skimage"
    else:
        samples = None
    store = out_store or ws().dir("faces") / f"{store_name(Path(src))}.h5"
    summary = run_crop(Path(src), store, cfg, reader=reader, samples=samples)
    _print_summary("crop", summary)
    if summary["faces"] == 0:
        raise DistillError(f"no usable face in {src}: {summary['skipped'] or 'no images found'}")


@app.command()
def label(
    src: Annotated[Path | None, typer.Argument(help="Face store, or a photo folder (cropped first).")] = None,
    teacher: Annotated[str, typer.Option(help="Teacher spec; 'a+b' ensembles, 'name@0.7' weights.")] = "mini_xception",
    views: Annotated[int, typer.Option(help="Augmented views per face to cache (consistent teaching).")] = 0,
    combine: Annotated[str, typer.Option(help="Ensemble combination: prob, logit, geometric.")] = "prob",
    class_map: Annotated[str | None, typer.Option(help="Ensemble class mapping member=ensemble,...")] = None,
    out_cache: Annotated[Path | None, typer.Option("--out", help="Cache path (default in WORKDIR/caches).")] = None,
    batch: Annotated[int, typer.Option(help="Faces per teacher forward.")] = 128,
    part_rows: Annotated[
        int, typer.Option(help="Faces per crash-safe part file (the unit of resume and of DDP).")
    ] = 2048,
    seed: Annotated[int, typer.Option(help="Seed of the augmented views.")] = 0,
    fresh: Annotated[bool, typer.Option(help="Discard an interrupted run instead of resuming it.")] = False,
    accelerator: Annotated[str, typer.Option(help=ACCELERATOR_HELP)] = "auto",
    devices: Annotated[str, typer.Option(help=DEVICES_HELP)] = "1",
    num_nodes: Annotated[int, typer.Option(help=NODES_HELP)] = 1,
    strategy: Annotated[str, typer.Option(help=STRATEGY_HELP)] = "auto",
):
    """Run a teacher once over a face store and cache logits and posteriors to HDF5 (resumable)."""
    from distill.label import LabelConfig, default_cache_path
    from distill.label import label as run_label

    store = _store_for(src)
    cfg = LabelConfig(
        teacher=teacher, combine=combine, class_map=class_map, views=views, seed=seed, batch=batch, part_rows=part_rows
    )
    cache = out_cache or default_cache_path(ws().root, store, teacher, views)
    dist = DistConfig(accelerator, devices, num_nodes, strategy)
    summary = run_label(store, cache, cfg, fresh=fresh, dist=dist)
    if is_global_zero():
        _print_summary("label", summary)


def _store_for(src: Path | None) -> Path:
    """A face store path: given, newest in the workspace, or cropped now from a photo folder."""
    if src is None:
        return ws().newest("faces")
    if src.is_dir():
        from distill.faces.crop import crop as run_crop

        store = ws().dir("faces") / f"{store_name(src)}.h5"
        _print_summary("crop", run_crop(src, store))
        return store
    if not src.exists():
        raise DistillError(f"{src} does not exist")
    return src


@app.command()
def train(
    caches: Annotated[
        list[Path] | None,
        typer.Argument(help="Posterior caches of one teacher, pooled (default: newest in the workspace)."),
    ] = None,
    student: Annotated[str, typer.Option(help="Student architecture (distill list students).")] = "squeezenet1_1_bn",
    loss: Annotated[str, typer.Option(help="Loss spec: kld, label, hint, kld+hint, kld:0.9+label:0.1.")] = "kld",
    temperature: Annotated[float, typer.Option(help="KD temperature T.")] = 4.0,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Mini-batch size.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate (one-cycle schedule).")] = 2e-3,
    optimizer: Annotated[str, typer.Option(help="adamw, or sgd (Nesterov momentum 0.9).")] = "adamw",
    size: Annotated[int, typer.Option(help="Student input side, px.")] = 64,
    grey: Annotated[bool, typer.Option(help="Grey student input.")] = False,
    small_input: Annotated[bool, typer.Option(help="Stride-1 stem for small faces.")] = False,
    width: Annotated[float, typer.Option(help="Width multiplier (MobileNets).")] = 1.0,
    views: Annotated[bool, typer.Option(help="Train on the cache's augmented views (consistent teaching).")] = True,
    balance: Annotated[
        float, typer.Option(help="Draw faces with weight freq(teacher's class)^-B: 0 = as the pool is, 0.5 = 1/sqrt.")
    ] = 0.0,
    online_teacher: Annotated[
        bool, typer.Option(help="Run the teacher on a fresh view each step (function matching; cheap teachers).")
    ] = False,
    mixup: Annotated[float, typer.Option(help="Input mixup Beta(a,a) with --online-teacher; 0 = off.")] = 0.0,
    ema: Annotated[
        float, typer.Option(help="Keep an EMA of the weights with this decay per step (e.g. 0.998); 0 = off.")
    ] = 0.0,
    hint_layer: Annotated[str | None, typer.Option(help="Teacher module for hints (default: last wide map).")] = None,
    hint_epochs: Annotated[int, typer.Option(help="FitNets stage 1: epochs of hint-only training.")] = 0,
    workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Use at most this many training faces.")] = None,
    max_steps: Annotated[int, typer.Option(help="Stop after this many optimizer steps; -1 = all epochs.")] = -1,
    accelerator: Annotated[str, typer.Option(help=ACCELERATOR_HELP)] = "auto",
    devices: Annotated[str, typer.Option(help=DEVICES_HELP)] = "auto",
    num_nodes: Annotated[int, typer.Option(help=NODES_HELP)] = 1,
    strategy: Annotated[str, typer.Option(help=STRATEGY_HELP)] = "auto",
    resume: Annotated[
        Path | None, typer.Option(help="Continue a run from its checkpoint (e.g. RUN/checkpoints/last.ckpt), as saved.")
    ] = None,
):
    """Train a student from a teacher's cached posteriors (no human labels)."""
    from distill.cache import PosteriorCache
    from distill.training.train import TrainConfig, resume_run
    from distill.training.train import train as run_train

    if resume is not None:  # the run's own saved config and caches, so the schedule continues unchanged
        summary = resume_run(resume)
        if is_global_zero():
            _print_summary("train", summary)
        return
    caches = caches or [ws().newest("cache")]
    sources = [(_store_of(PosteriorCache(cache)), cache) for cache in caches]
    cfg = TrainConfig(
        student=student,
        loss=loss,
        temperature=temperature,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        size=size,
        grey=grey,
        small_input=small_input,
        width=width,
        use_views=views,
        balance=balance,
        online_teacher=online_teacher,
        mixup=mixup,
        ema=ema,
        hint_layer=hint_layer,
        hint_epochs=hint_epochs,
        workers=workers,
        seed=seed,
        limit=limit,
        max_steps=max_steps,
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
    )
    run_dir = ws().new_run_dir("run", f"{student}-{loss.replace('+', '_')}")
    summary = run_train(sources, run_dir, cfg)
    if is_global_zero():
        _print_summary("train", summary)


@app.command("fit-teacher")
def fit_teacher_cmd(
    data: Annotated[Path, typer.Option(help="Labelled photo folder (any reader layout) or a labelled face store.")],
    arch: Annotated[str, typer.Option(help="vgg_s, or timm:NAME for any timm architecture.")] = "vgg_s",
    reader: Annotated[str, typer.Option(help="Dataset reader for a photo folder; 'auto' detects it.")] = "auto",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 30,
    batch_size: Annotated[int, typer.Option(help="Mini-batch size.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, one-cycle).")] = 3e-4,
    size: Annotated[int, typer.Option(help="Teacher input side, px.")] = 224,
    width: Annotated[float, typer.Option(help="VGG-S channel multiplier (1.0 = the paper's ~377 MiB).")] = 1.0,
    test_fraction: Annotated[float, typer.Option(help="Held-out test share (by subject where known).")] = 0.2,
    val_fraction: Annotated[float, typer.Option(help="Validation share (by subject where known).")] = 0.1,
    balanced: Annotated[bool, typer.Option(help="Cross-entropy weighted by 1/sqrt(class frequency).")] = True,
    workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
):
    """Train a teacher on a labelled set (supervised); saves teacher.pt, the split and held-out test scores."""
    from distill.training.supervised import FitConfig, fit_teacher

    store = data
    if data.is_dir():
        from distill.faces.crop import crop as run_crop

        store = ws().dir("faces") / f"{store_name(data)}-labelled.h5"
        _print_summary("crop", run_crop(data, store, reader=reader))
    elif not data.exists():
        raise DistillError(f"{data} does not exist")
    cfg = FitConfig(
        arch=arch,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        size=size,
        width=width,
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        balanced=balanced,
        workers=workers,
        seed=seed,
    )
    out_dir = ws().new_run_dir("teacher", arch.replace(":", "-"))
    _print_summary("fit-teacher", fit_teacher(store, out_dir, cfg))


@app.command()
def compress(
    model: Annotated[Path | None, typer.Argument(help="Training run folder (default: newest run).")] = None,
    method: Annotated[
        str, typer.Option(help="Compressor or chain in order, e.g. bwn, quant, prune:0.8+quant, prune-ch:0.5+quant.")
    ] = "bwn",
    epochs: Annotated[int, typer.Option(help="Fine-tuning epochs after each round, from the run's caches.")] = 3,
    stages: Annotated[
        int | None,
        typer.Option(help="Rounds of iterative methods: prune, prune-ch 3, hybrid 4; bwn 1 (N > 1: incremental)."),
    ] = None,
    lr: Annotated[float, typer.Option(help="Peak fine-tuning learning rate.")] = 5e-4,
    loss: Annotated[str | None, typer.Option(help="Fine-tuning loss (default: the run's).")] = None,
    limit: Annotated[int | None, typer.Option(help="Fine-tune on at most this many faces (big networks).")] = None,
    teach: Annotated[
        str, typer.Option(help="Fine-tune on: cache (the teacher's posteriors) or float (the uncompressed student).")
    ] = "cache",
    ema: Annotated[float, typer.Option(help="EMA decay of the fine-tuned weights per step; 0 = off.")] = 0.0,
):
    """Compress a trained student (distill list compressors), fine-tune it, write model.distill."""
    from distill.compress.pipeline import compress_run

    run = model or ws().newest("run").parent
    if not (run / "student.pt").is_file():
        raise DistillError(f"{run} is not a training run with a student.pt")
    out_dir = ws().new_run_dir("compressed", f"{run.name}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', method)}")
    summary = compress_run(run, out_dir, method, epochs, lr, loss, stages=stages, limit=limit, teach=teach, ema=ema)
    _print_summary("compress", summary)


@app.command("import-teacher")
def import_teacher_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A VGG-S teacher.pt from `distill fit-teacher`.")],
    caches: Annotated[
        list[Path] | None, typer.Option("--cache", help="Its posterior caches (default: all it made in the workspace).")
    ] = None,
):
    """Make a fitted VGG-S teacher a training run, so compress, eval and export take it like a student."""
    from distill.compress.teacher_run import import_teacher, own_caches, student_from_checkpoint

    student = student_from_checkpoint(checkpoint)
    given = caches or ws().all("cache")
    chosen = own_caches(student, checkpoint, given)
    if caches and len(chosen) != len(caches):
        raise DistillError(f"only {len(chosen)} of the {len(caches)} caches were labelled by {checkpoint}")
    sources = [(_store_of(cache), cache.path) for cache in chosen]
    run_dir = ws().new_run_dir("run", "vgg_s-imported")
    _print_summary("import-teacher", import_teacher(student, checkpoint, sources, run_dir))


@app.command("export")
def export_cmd(
    model: Annotated[Path, typer.Argument(help="Run folder, student.pt, compressed folder or model.distill.")],
    fmt: Annotated[str, typer.Option("--format", help="pt2 (torch.export) or onnx.")] = "pt2",
    int8: Annotated[bool, typer.Option(help="Static int8 graph (PT2E, x86), calibrated on --calibrate faces.")] = False,
    calibrate: Annotated[Path | None, typer.Option(help="Face store for int8 calibration (default: newest).")] = None,
    faces: Annotated[int, typer.Option(help="Calibration faces.")] = 512,
    size: Annotated[int, typer.Option(help="Input side the graph takes (the face store's crop size).")] = 112,
    out_file: Annotated[Path | None, typer.Option("--out", help="Output file (default: beside the model).")] = None,
):
    """Export a student or compressed model as a checked torch.export (.pt2, optionally int8) or ONNX graph."""
    from distill.evaluate.evaluate import load_model
    from distill.export import export_model
    from distill.faces.store import require_store

    module, file = load_model(str(model))
    if not hasattr(module, "arch_kwargs"):
        raise DistillError(f"{model} is not a student or compressed model (teachers are exported from their code)")
    calibration = None
    if int8:
        store = require_store(calibrate or ws().newest("faces"))
        calibration = store.pixels(slice(0, min(faces, len(store))))
    suffix = f"{'-int8' if int8 else ''}.{fmt}"
    out_path = out_file or file.with_name(file.stem + suffix)
    _print_summary("export", export_model(module, out_path, fmt, size, calibration))


@app.command("eval")
def eval_cmd(
    dataset: Annotated[str, typer.Argument(help="Reader: rafd, csv, folder, fer2013, auto.")],
    data: Annotated[Path | None, typer.Option(help="Dataset path (default: the reader's default path).")] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(help="Student .pt, run folder or teacher spec; repeat to compare. Default: newest student."),
    ] = None,
    class_map: Annotated[
        str | None, typer.Option(help="Explicit model=data class mapping, e.g. happy=happiness.")
    ] = None,
    crop_faces: Annotated[
        bool, typer.Option("--crop/--no-crop", help="MTCNN-crop like training, or resize whole images (tight crops).")
    ] = True,
    size: Annotated[int, typer.Option(help="Face side fed to the models (the store size).")] = 112,
    keys: Annotated[
        Path | None, typer.Option(help="Score only these images (one key per line, e.g. a teacher's test-keys.txt).")
    ] = None,
    ensemble_map: Annotated[
        str | None, typer.Option(help="Class mapping inside ensemble specs (member=ensemble, cls=- drops), as label's.")
    ] = None,
    combine: Annotated[str, typer.Option(help="Ensemble combination: prob, logit, geometric.")] = "prob",
):
    """Accuracy, UAR, macro-F1, per-class table, confusion matrix, size and latency on a labelled set."""
    from distill.datasets.readers import read_dataset
    from distill.evaluate.evaluate import (
        evaluate_model,
        load_cropped,
        load_model,
        load_uncropped,
        only_keys,
        write_eval,
    )

    samples, reader = read_dataset(dataset, data)
    if keys is not None:
        samples = only_keys(samples, keys)
    root = data or Path(".")
    evalset = (
        load_cropped(samples, ws().dir("faces") / f"eval-{reader}-{store_name(root)}-{size}.h5", size)
        if crop_faces
        else load_uncropped(samples, size)
    )
    if not evalset.keys:
        raise DistillError(f"no labelled, readable image in {root}")
    results = []
    for spec in model or [str(ws().newest("run"))]:
        net, file = load_model(spec, combine, ensemble_map)
        results.append(evaluate_model(spec, net, evalset, class_map, file, size, (combine, ensemble_map)))
    out_dir = ws().new_run_dir("eval", reader)
    write_eval(out_dir, reader, results, evalset)
    out.print((out_dir / "eval.md").read_text().split("\n## ")[0])
    out.print(f"report: {out_dir / 'eval.md'}")


@app.command()
def demo(epochs: Annotated[int, typer.Option(help="Training epochs of the demo student.")] = 25):
    """Run the whole pipeline on faces that ship with scikit-image (no user data; a few minutes on a CPU)."""
    from distill.demo import run_demo

    summary = run_demo(ws(), epochs)
    explain = summary.pop("explain")
    _print_summary("demo", summary)
    out.print(explain, highlight=False)


@app.command()
def report():
    """One table over every run and evaluation in the workspace (the papers' Table 2 and 3 shapes) + chart."""
    from distill.evaluate.report import write_report

    path, text = write_report(ws())
    out.print(text)
    out.print(f"report: {path}")


@app.command()
def info(path: Annotated[Path, typer.Argument(help="A face store, posterior cache or checkpoint.")]):
    """Say what an artefact is and how it was made."""
    import h5py

    from distill.h5util import open_ours

    with h5py.File(path, "r") as f:
        kind = f.attrs.get("distill_kind")
    with open_ours(path, kind or "?") as f:
        attrs = {k: (v if not isinstance(v, bytes) else v.decode()) for k, v in f.attrs.items()}
        shapes = {}
        f.visititems(lambda n, o: shapes.__setitem__(n, getattr(o, "shape", None)) if hasattr(o, "shape") else None)
    out.print_json(json.dumps({"attrs": attrs, "datasets": shapes}, default=str))


def _store_of(cache) -> Path:
    """The face store a cache was made from: its recorded path, or a moved copy found by fingerprint."""
    if cache.store_path.is_file():
        return cache.store_path
    import h5py

    for candidate in ws().all("faces"):
        with h5py.File(candidate, "r") as f:
            if f.attrs.get("fingerprint") == cache.store_fingerprint:
                return candidate
    raise DistillError(
        f"the face store of {cache.path} ({cache.store_path}) is gone and no store in "
        f"{ws().dir('faces')} has its fingerprint; re-run `distill crop`"
    )


def store_name(src: Path) -> str:
    """'data/faces-unlabeled/images' -> 'faces-unlabeled': generic leaf names take their parent's name."""
    path = src.resolve() if src.exists() else src
    return path.parent.name if path.name.lower() in ("images", "imgs", "photos", "img", "data") else path.name


def _print_summary(what: str, summary: dict) -> None:
    table = Table(title=f"{what} summary", show_header=False, title_justify="left")
    for key, value in summary.items():
        table.add_row(str(key), json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value))
    out.print(table)


def _hoist_globals(argv: list[str]) -> list[str]:
    """Accept --workdir/--debug anywhere on the line (they belong to the top-level callback)."""
    front, rest, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--workdir" and i + 1 < len(argv):
            front += argv[i : i + 2]
            i += 2
            continue
        if arg.startswith("--workdir=") or arg == "--debug":
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main() -> None:
    argv = _hoist_globals(sys.argv[1:])
    STATE["debug"] = "--debug" in argv
    if not STATE["debug"]:
        quiet_libraries()
    try:
        app(args=argv, standalone_mode=False)
    except DistillError as err:
        if STATE["debug"]:
            raise
        Console(stderr=True).print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as err:  # unwritable or full output, missing input: the user's to fix, not a bug
        if STATE["debug"]:
            raise
        where = f" {err.filename}" if err.filename else ""
        Console(stderr=True).print(f"[red]error:[/red]{where}: {err.strerror or err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        Console(stderr=True).print("aborted")
        sys.exit(130)
    except Exception as err:
        if hasattr(err, "show") and hasattr(err, "exit_code"):  # click usage errors (typer vendors click)
            err.show()
            sys.exit(err.exit_code)
        if STATE["debug"]:
            raise
        Console(stderr=True).print(
            f"[red]internal error:[/red] {type(err).__name__}: {err} (run with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
