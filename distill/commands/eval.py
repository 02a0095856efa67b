"""`distill eval`: models (default: the workspace's newest) scored on a labelled set, cropped under evals/."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from distill.artifacts import load_models, model_file
from distill.config import EvalConfig
from distill.datasets.emotions import canonical_classes, parse_mapping
from distill.datasets.readers import dataset_root, read_dataset
from distill.errors import DistillError
from distill.evaluate.conditions import under
from distill.evaluate.evalset import load_cropped, load_uncropped, one_label_each, only_keys
from distill.evaluate.evaluate import evaluate_model
from distill.evaluate.render import write_eval
from distill.faces.detectors import recommended_min_prob
from distill.provenance import store_name
from distill.workspace import Workspace


def run(
    ws: Workspace, dataset: str, data: Path | None, specs: list[str], keys: Path | None, cfg: EvalConfig
) -> tuple[str, Path]:
    """Score the models (default: the workspace's newest student or compressed model; every one
    checked before any runs) on a labelled set, cropped under evals/ (never training material); returns the
    report's headline and the path of eval.md."""
    parse_mapping(cfg.class_map), parse_mapping(cfg.ensemble_map)  # refused before minutes of cropping
    recommended_min_prob(cfg.detector)
    if data is None and dataset == "auto":
        raise DistillError("eval auto tells the reader from the files: give them with --data PATH")
    if data is None and not dataset_root(dataset).exists():
        raise DistillError(f"no {dataset} dataset at {dataset_root(dataset).resolve()}; give its path with --data PATH")
    specs = [s if model_file(s) else ws.pin_fitted(s) for s in specs] or [str(ws.newest_model())]
    models = load_models(specs, cfg.combine, cfg.ensemble_map)
    samples, reader = read_dataset(dataset, data)
    if keys is not None:
        samples = only_keys(samples, keys)
    samples, ambiguous = one_label_each(samples)
    _check_class_map(cfg.class_map, [net.classes for net, _ in models], {s.label for s in samples if s.label})
    root = dataset_root(dataset, data)
    store = ws.eval_store(reader, root, cfg.size, cfg.detector, cfg.condition)
    samples = under(cfg.condition, samples)
    evalset = load_cropped(samples, store, cfg.size, detector=cfg.detector) if cfg.crop else None
    evalset = evalset or replace(load_uncropped(samples, cfg.size), detected=cfg.crop)
    if not evalset.keys:
        raise DistillError(f"no labelled, readable image in {root}")
    evalset.ambiguous = ambiguous
    load_args = (cfg.combine, cfg.ensemble_map)
    results = [
        evaluate_model(spec, net, evalset, cfg.class_map, file, cfg.size, load_args, cfg.runtime)
        for spec, (net, file) in zip(specs, models, strict=True)
    ]
    name, where = f"{store_name(root)} ({reader})", str(root.resolve())
    if keys is not None:  # a subset is its own dataset: `report` never shows its score as the whole set's
        name, where = f"{name}, the {len(evalset.keys)} faces of --keys {keys.name}", f"{where}?keys={keys.resolve()}"
    if cfg.condition != "plain":  # so is a condition: its own row beside the plain set's
        name, where = f"{name}, {cfg.condition}", f"{where}#{cfg.condition}"
    out_dir = ws.new_run_dir("eval", f"{reader}-{store_name(root)}")
    write_eval(out_dir, name, results, evalset, where)
    return (out_dir / "eval.md").read_text().split("\n## ")[0], out_dir / "eval.md"


def _check_class_map(text: str | None, model_classes: list[list[str]], data_classes: set[str]) -> None:
    """--class-map maps a class of one of the models onto one of the labelled set's; anything else is a typo that
    would silently score the same as no map."""
    mapping = parse_mapping(text)
    theirs = {c for classes in model_classes for c in canonical_classes(classes)}
    for src, dst in mapping.items():
        if src == dst:
            raise DistillError(f"--class-map {src}={dst}: maps the class onto itself (synonyms): no change")
        if src not in theirs:
            known = ", ".join(sorted(theirs))
            raise DistillError(f"--class-map {src}={dst}: no model has a class {src} (theirs: {known})")
        if dst != "-" and dst not in data_classes:
            known = ", ".join(sorted(data_classes))
            raise DistillError(f"--class-map {src}={dst}: the labelled set has no class {dst} (its classes: {known})")
