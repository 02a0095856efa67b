"""`distill compress`: wrap a trained student's layers, fine-tune from the run's own caches, encode to a file."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from pathlib import Path

from distill.compress.distill_file import save_compressed, strip_parametrizations
from distill.compress.factory import make_compressor
from distill.config import CompressConfig
from distill.errors import DistillError
from distill.provenance import provenance
from distill.registry import COMPRESSORS
from distill.specs import CompressPlan, MethodSpec
from distill.storage.files import write_json


def apply_method(net, method: str, taken: dict[str, str], fit: bool = True, size: int = 64):
    """Restructure and wrap the layers `method` takes; a later method takes the layers no earlier one took, or
    stacks on layers a sparsifying method (prune) took: 'prune:0.8+quant' stores the survivors in int8.
    fit=False skips fitting decompositions (a dry run that only checks the chain); size: the side of the faces
    the network works on (what cp-fast times its layers at)."""
    compressor = make_compressor(method)
    compressor.fit, compressor.size = fit, size
    free, stacked = [], []
    for name in compressor.targets(net):
        if name not in taken:
            free.append(name)
        elif make_compressor(taken[name].split("|")[-1]).sparsifies and compressor.dense_key:
            stacked.append(name)
    if not free and not stacked:  # before any fine-tuning: a chain must not spend epochs, then fail
        raise DistillError(f"'{method}' finds no layer to compress in this network (distill list compressors)")
    compressor.restructure(net, free)
    compressor.wrap(net, free + stacked)
    taken.update(dict.fromkeys(free, method))
    taken.update({name: f"{taken[name]}|{method}" for name in stacked})
    return compressor


def wrap_chain(net, chain: CompressPlan, size: int = 64) -> dict[str, str]:
    """Apply every method of 'a+b' in order, each at its final strength, without fine-tuning, to a network that
    works on faces of `size` px. Returns {layer: method}."""
    taken: dict[str, str] = {}
    for method in chain.methods:
        compressor = apply_method(net, method, taken, size=size)
        compressor.advance(net, compressor.stages, compressor.stages)
    return taken


FALLBACK_RECIPE = {"epochs": 3, "lr": 5e-4, "stages": None}  # a method whose recipe was never measured


def method_recipe(method: str, cfg: CompressConfig) -> dict:
    """Fine-tuning epochs, learning rate and rounds of one method of the chain: what the user set, else the
    method's measured recipe from its registry entry (docs/results.md, compression), else FALLBACK_RECIPE."""
    recipe = FALLBACK_RECIPE | COMPRESSORS.entry(MethodSpec.parse(method).name).extra.get("recommended", {})
    return {key: getattr(cfg, key) if getattr(cfg, key) is not None else recipe[key] for key in FALLBACK_RECIPE}


def say_recipes(recipes: dict[str, dict], cfg: CompressConfig) -> None:
    """One line: the settings each method's rounds run with, and where they came from."""
    from distill.progress import console

    def source(key: str) -> str:
        return "given" if getattr(cfg, key) is not None else "recipe"

    parts = [
        f"{method}: " + ", ".join(f"{k} {v} ({source(k)})" for k, v in recipe.items() if v is not None)
        for method, recipe in recipes.items()
    ]
    console.print("settings: " + "; ".join(parts), highlight=False)


def compress_run(run_dir: Path, out_dir: Path, cfg: CompressConfig, show_progress: bool = True) -> dict:
    """Compress a training run's student by each method of the chain in turn, fine-tuning after each of its rounds
    as its recipe says (method_recipe: epochs, learning rate, rounds) from the run's own caches (at most
    `cfg.limit` faces of them: a round of a VGG-sized network over the whole pool takes hours on a CPU).

    teach: "cache" fine-tunes on the teacher's cached posteriors; "float" on the uncompressed student's own
    outputs for a fresh view of each face (self-distillation, as in quantised distillation, Polino et al. 2018):
    what compression must keep is the float model's function, and it is cheap to run."""
    from distill.students.model import load_student
    from distill.training.train import fine_tune, load_run_config, run_train_config

    config = load_run_config(run_dir)
    student = load_student(run_dir / "student.pt").train()
    original = {k: v.numel() * v.element_size() for k, v in student.net.state_dict().items()}
    params_before = sum(p.numel() for p in student.net.parameters())
    fine = run_train_config(config)
    fine = replace(fine, loss=cfg.loss or fine.loss, hint_epochs=0, limit=cfg.limit or fine.limit)
    sources = [(Path(s["store"]), Path(s["cache"])) for s in config["sources"]]
    teacher = float_teacher(student, run_dir, cfg.teach or "cache")
    fine = replace(fine, ema=cfg.ema, online_teacher=fine.online_teacher or teacher is not None)
    plan = cfg.plan
    dry_net, dry_layers = copy.deepcopy(student.net), {}
    for method in plan.methods:  # the whole chain must fit this network before any epoch is spent
        apply_method(dry_net, method, dry_layers, fit=False, size=student.preprocess.size)
    del dry_net
    layers: dict[str, str] = {}
    rounds = []
    recipes = {method: method_recipe(method, cfg) for method in plan.methods}
    if show_progress:
        say_recipes(recipes, cfg)
    for method in plan.methods:
        recipe = recipes[method]
        compressor = apply_method(student.net, method, layers, size=student.preprocess.size)
        n = recipe["stages"] if recipe["stages"] and compressor.iterative else compressor.stages
        for stage in range(1, n + 1):
            compressor.advance(student.net, stage, n)
            if recipe["epochs"] > 0:
                where = out_dir / "rounds" / f"{len(rounds) + 1:02d}-{_slug(method)}-{stage}of{n}"
                tuned = replace(fine, epochs=recipe["epochs"], lr=recipe["lr"])
                fit = fine_tune(student.train(), sources, where, tuned, teacher, show_progress)
                rounds.append(
                    {"method": method, "round": stage, "best_val_agreement": fit["best_val_agreement"], **recipe}
                )
    strip_parametrizations(student.net)
    model = out_dir / "model.distill"
    save_compressed(model, student.eval(), layers, {"provenance": provenance("compress", run=str(run_dir))})
    float_bytes = (run_dir / "student.pt").stat().st_size
    latency = file_latencies(run_dir / "student.pt", model, student.preprocess.size)
    summary = {
        "methods": cfg.method,
        "compressed_layers": len(layers),
        "recipes": recipes,
        "fine_tuned_on": "the float student's outputs" if teacher is not None else "the teacher's cached posteriors",
        "rounds": rounds,
        "best_val_agreement": rounds[-1]["best_val_agreement"] if rounds else None,
        "model": str(model.resolve()),
        "bytes_on_disk": model.stat().st_size,
        "float_bytes_on_disk": float_bytes,
        "size_ratio": float_bytes / model.stat().st_size,
        "parameters": sum(p.numel() for p in student.net.parameters()),
        "float_parameters": params_before,
        "cpu_latency_ms_batch1": latency["compressed"],
        "float_cpu_latency_ms_batch1": latency["float"],
        **layer_bytes(student.net, layers, original),
    }
    write_json(out_dir / "summary.json", summary)
    return summary


def file_latencies(float_file: Path, compressed_file: Path, size: int) -> dict[str, float]:
    """Batch-1 CPU ms of the float student and of the compressed file, both loaded from disk as a user would run
    them and timed in turns: timing the network still in training's hands read a pruned student as no faster."""
    from distill.compress.distill_file import load_compressed
    from distill.evaluate.speed import compare_latency
    from distill.students.model import load_student

    models = {"float": load_student(float_file).eval(), "compressed": load_compressed(compressed_file).eval()}
    return compare_latency(models, size, rounds=5)


def float_teacher(student, run_dir: Path, teach: str):
    """The uncompressed student, frozen, as the teacher of its compressed copy (teach="float"); None for "cache"."""
    if teach == "cache":
        return None
    from distill.teachers.base import Teacher

    net = copy.deepcopy(student.net)
    return Teacher(net, student.classes, student.preprocess, f"float:{run_dir}", "")


def _slug(method: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", method)


def layer_bytes(net, layers: dict[str, str], original: dict[str, int]) -> dict:
    """Bytes the compressed layers had (float32, before any restructure) vs now (encoded blob + what stays)."""
    import torch

    state = dict(net.state_dict())
    before = sum(n for k, n in original.items() if _in_layers(k, layers))
    after = 0
    for name, method in layers.items():
        blob = make_compressor(method).encode_layer(state, name)
        after += sum(v.numel() * v.element_size() for v in blob.values() if torch.is_tensor(v) and v.dim())
    after += sum(v.numel() * v.element_size() for k, v in state.items() if _in_layers(k, layers))
    return {
        "compressed_layers_float_bytes": before,
        "compressed_layers_bytes": after,
        "compressed_layers_ratio": before / after if before and after else None,  # None: whole-network methods
    }


def _in_layers(key: str, layers: dict[str, str]) -> bool:
    return any(key.startswith(f"{name}.") for name in layers)


def unfinished(folder: Path, run_name: str) -> list[Path]:
    """Compressed folders of run `run_name` under `folder` with neither a model nor a summary: a compress killed
    before its end (one that found no plan still writes its summary)."""
    if not folder.is_dir():
        return []
    mine = [p for p in folder.glob(f"*-{run_name}-*") if p.is_dir()]
    return sorted(p for p in mine if not (p / "model.distill").exists() and not (p / "summary.json").exists())


def compressed_name(run_name: str, method: str) -> str:
    """A compressed model's folder name after its stamp: '<run>-bwn'."""
    return f"{run_name}-{method}"
