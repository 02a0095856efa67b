"""`distill info`: what any artefact is and how it was made, recognised by its content."""

from __future__ import annotations

import json
from pathlib import Path

from distill.artifacts import load_model
from distill.errors import DistillError
from distill.evaluate.report import run_facts
from distill.storage.files import require_content
from distill.storage.torch_files import parameter_count, read_torch_file


def run(path: Path) -> tuple[str, dict]:
    """(kind, facts) of any artefact; facts are flat and readable (no JSON inside JSON)."""
    if not path.exists():
        raise DistillError(f"{path}: no such file or folder")
    if path.is_dir():
        return _describe_folder(path)
    require_content(path)
    handler = {
        ".h5": _describe_h5,
        ".pt": _describe_pt,
        ".ckpt": _describe_ckpt,
        ".distill": _describe_model,
        ".pt2": _describe_model,
        ".onnx": _describe_model,
    }.get(path.suffix)
    if handler is None:
        raise DistillError(f"{path}: not a distill artefact (.h5, .pt, .ckpt, .distill, .pt2, .onnx or a folder)")
    return handler(path)


def _run_state(run_dir: Path) -> str:
    """Finished, resumable (with the command), or stopped before its first checkpoint (nothing to resume)."""
    if (run_dir / "student.pt").is_file():
        return "finished"
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        return f"unfinished (resume: distill train --resume {last.resolve()})"
    return "unfinished, stopped before its first checkpoint: nothing to resume; run `distill train` again"


def _describe_folder(path: Path) -> tuple[str, dict]:
    if (path / "config.json").is_file():
        facts = run_facts(path)
        facts["state"] = _run_state(path)
        return "training run", facts | {"folder": str(path.resolve())}
    if (path / "model.distill").is_file():
        kind, facts = _describe_model(path / "model.distill")
        summary = path / "summary.json"
        if summary.is_file():
            s = json.loads(summary.read_text())
            facts |= {k: s[k] for k in ("size_ratio", "best_val_agreement", "cpu_latency_ms_batch1") if k in s}
            plan = s.get("plan") if isinstance(s.get("plan"), dict) else {}
            facts |= {k: plan[k] for k in ("chosen", "warning") if k in plan}
        return kind, facts
    if (path / "rounds").is_dir() and not (path / "summary.json").is_file():
        rounds = sorted(p.name for p in (path / "rounds").iterdir())
        return "unfinished compress (stopped before it made model.distill)", {
            "folder": str(path.resolve()),
            "rounds kept": ", ".join(rounds) or "none",
        }
    if (path / "teacher.pt").is_file():
        return _describe_pt(path / "teacher.pt")
    if (path / "eval.json").is_file():
        report = json.loads((path / "eval.json").read_text())
        facts = {"dataset": report["dataset"], "report": str((path / "eval.md").resolve())}
        for r in report["results"]:
            facts[r["model"]] = f"accuracy {100 * r['scores']['accuracy']:.2f}%, UAR {100 * r['scores']['uar']:.2f}%"
        return "evaluation", facts
    raise DistillError(f"{path}: a folder, but not a run, compressed model, teacher or evaluation")


def _describe_h5(path: Path) -> tuple[str, dict]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("distill_kind")
    except OSError as err:
        raise DistillError(f"{path} is not a readable HDF5 file ({err})") from err
    if kind == "face_store":
        return "face store", _store_facts(path)
    if kind == "posterior_cache":
        return "posterior cache", _cache_facts(path)
    raise DistillError(f"{path} is an HDF5 file but not a distill artefact")


def _created(attrs: dict) -> dict:
    made = json.loads(attrs.get("provenance", "{}"))
    return {"created": made.get("created"), "command": " ".join(made.get("argv", [])) or None}


def _store_facts(path: Path) -> dict:
    from distill.faces.store import FaceStore

    store = FaceStore(path)
    summary = store.summary()
    skipped = ", ".join(f"{n} {k}" for k, n in sorted(summary["skipped"].items())) or "none"
    facts = {"file": str(path.resolve()), "faces": len(store), "photos": summary["images"]}
    facts |= {"photos skipped": f"{skipped} (distill info {path} --skipped lists them)", "crop px": store.size}
    facts |= {"source": store.attrs.get("source_root"), "reader": store.attrs.get("reader")}
    return facts | {"fingerprint": store.fingerprint[:16]} | _created(store.attrs)


def _cache_facts(path: Path) -> dict:
    from distill.labelling.cache import PosteriorCache

    cache = PosteriorCache(path)
    facts = {"file": str(path.resolve()), "teacher": cache.teacher.get("spec"), "classes": ", ".join(cache.classes)}
    facts |= {"faces": len(cache), "views per face": cache.views, "face store": str(cache.store_path)}
    facts |= {"store fingerprint": cache.store_fingerprint[:16]}
    return facts | _created(cache.attrs)


def _describe_pt(path: Path) -> tuple[str, dict]:
    blob = read_torch_file(path)
    size = {"bytes on disk": path.stat().st_size, "file": str(path.resolve())}
    if isinstance(blob, dict) and blob.get("kind") == "student":
        kwargs = blob["arch_kwargs"]
        params = sum(t.numel() for k, t in blob["state_dict"].items() if t.is_floating_point() and "running" not in k)
        facts = {"architecture": kwargs["arch"], "classes": ", ".join(kwargs["classes"])}
        facts |= {"input": f"{kwargs['size']} px {'grey' if kwargs['grey'] else 'RGB'}", "parameters": params}
        return "student", facts | size
    if isinstance(blob, dict) and "arch" in blob and "state_dict" in blob:
        params = sum(t.numel() for t in blob["state_dict"].values() if t.is_floating_point())
        facts = {"architecture": blob["arch"], "classes": ", ".join(blob["classes"]), "parameters": params}
        return "fitted teacher", facts | size
    raise DistillError(f"{path} is a torch file but not a distill student or teacher")


def _describe_ckpt(path: Path) -> tuple[str, dict]:
    blob = read_torch_file(path)
    if not isinstance(blob, dict) or "state_dict" not in blob:
        raise DistillError(f"{path} is not a Lightning checkpoint")
    run = path.parent.parent
    facts = {"epoch": blob.get("epoch"), "optimizer steps": blob.get("global_step"), "run": str(run.resolve())}
    facts["resume with"] = f"distill train --resume {path.resolve()}"
    return "training checkpoint", facts | {"bytes on disk": path.stat().st_size}


def _describe_model(path: Path) -> tuple[str, dict]:
    model, _ = load_model(str(path))
    kind = {".distill": "compressed model", ".pt2": "exported graph (torch.export)", ".onnx": "ONNX graph"}
    facts = {"file": str(path.resolve()), "classes": ", ".join(model.classes), "parameters": parameter_count(model)}
    facts["bytes on disk"] = path.stat().st_size
    if getattr(model, "methods", None):
        facts["methods"] = ", ".join(model.methods)
    return kind[path.suffix], facts


def skipped_photos(path: Path) -> list[dict]:
    """The manifest rows of a face store's skipped photos: source and reason."""
    from distill.faces.store import FaceStore

    kind, _ = _describe_h5(path)
    if kind != "face store":
        raise DistillError(f"{path} is a {kind}; --skipped lists a face store's skipped photos")
    return [m for m in FaceStore(path).manifest() if m["status"] != "ok"]
