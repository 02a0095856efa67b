"""Put a compressed fitted VGG-S into the package as the teacher a bare `--teacher vgg_s` means, with its provenance
record (distill/teachers/weights/vgg_s.json) and licence note; run by experiments/ship_teacher.sh.

    python experiments/ship_teacher.py copy TEACHER COMPRESSED      # the file, its record (no score yet)
    python experiments/ship_teacher.py score EVAL                   # the held-out score `distill eval` measured
    python experiments/ship_teacher.py keys FER2013_DIR > KEYS      # its held-out faces again, with no fit at hand

TEACHER: the `distill fit-teacher` folder; COMPRESSED: the `distill compress` folder of its imported run; EVAL: the
`distill eval` folder that scored `--model vgg_s` (the shipped file) on TEACHER's held-out faces.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

from distill.storage.files import sha256_file, write_json
from distill.teachers import shipped

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.teachers.test_shipped import fixed_face  # noqa: E402 - the face the shipped file's test checks


def machine() -> str:
    info = Path("/proc/cpuinfo").read_text()
    model = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
    flags = [f for f in ("avx512_vnni", "avx512_bf16", "amx_bf16") if f" {f}" in info] or ["AVX2 only"]
    return f"{model} ({torch.get_num_threads()} threads; {', '.join(flags)})"


def copy(teacher_dir: Path, compressed_dir: Path) -> None:
    fit, summary = (json.loads((teacher_dir / n).read_text()) for n in ("config.json", "summary.json"))
    squeezed = json.loads((compressed_dir / "summary.json").read_text())
    shipped.WEIGHTS.mkdir(exist_ok=True)
    target = shipped.WEIGHTS / "vgg_s.distill"
    shutil.copyfile(compressed_dir / "model.distill", target)
    side = fit["fit"]["size"]
    record = {
        "file": target.name,
        "sha256": sha256_file(target),
        "bytes": target.stat().st_size,
        "mirror": bool(summary["mirror"]),
        "classes": summary["classes"],
        "describe": f"VGG-S (BatchNorm, {side} px) fitted on FER2013, {squeezed['methods']}",
        "fit": {
            "command": "distill fit-teacher --arch vgg_s --data fer2013-train  # no other flags",
            "settings": fit["fit"],
            "faces": summary["faces"],
            "held_out_float": summary["test"],
            "float_bytes": summary["bytes_on_disk"],
            "created": fit["provenance"]["created"],
        },
        "compress": {
            "command": "distill import-teacher TEACHER/teacher.pt; distill compress RUN --method "
            f"{squeezed['methods']} --epochs 2 --limit 4000 --lr 1e-4",
            "size_ratio": squeezed.get("size_ratio"),
        },
        "machine": machine(),
        "held_out": None,  # `score` fills it in from `distill eval` of this very file
    }
    write_json(shipped.RECORD, record)
    teacher = shipped.shipped_teacher()
    with torch.no_grad():
        record["fixed_face_probabilities"] = [round(float(p), 5) for p in teacher(fixed_face()).exp()[0]]
    write_json(shipped.RECORD, record)
    print(f"{target} ({record['bytes']:,} bytes) and {shipped.RECORD}")


def score(eval_dir: Path) -> None:
    record = json.loads(shipped.RECORD.read_text())
    report = json.loads((eval_dir / "eval.json").read_text())
    mine = [r for r in report["results"] if r["describe"].get("weights_sha256") == record["sha256"]]
    if not mine:
        raise SystemExit(f"{eval_dir} scored no model with the shipped file's SHA-256")
    scores = mine[0]["scores"]
    record["held_out"] = {
        "dataset": "FER2013",
        "faces": scores["n_scored"],
        "accuracy": round(100 * scores["accuracy"], 2),
        "uar": round(100 * scores["uar"], 2),
        "macro_f1": round(100 * scores["macro_f1"], 2),
        "command": "distill eval auto --data fer2013-train --keys TEACHER/test-keys.txt --detector whole "
        "--model vgg_s  # the fit's held-out faces, never trained on",
    }
    write_json(shipped.RECORD, record)
    print(json.dumps(record["held_out"], indent=1))


def keys(data: Path) -> None:
    """The images the shipped teacher never trained on: fit-teacher's split is a hash of each key (its record's
    test_fraction and val_fraction), so it is rebuilt from the dataset alone, in a session without the fit."""
    from distill.datasets.readers import read_dataset
    from distill.training.supervised import group_of, split_of

    settings = json.loads(shipped.RECORD.read_text())["fit"]["settings"]
    labelled = [s for s in read_dataset("auto", data)[0] if s.label]
    split = split_of([group_of(s.meta, s.key) for s in labelled], settings["test_fraction"], settings["val_fraction"])
    print("\n".join(s.key for s, part in zip(labelled, split, strict=True) if part == "test"))


if __name__ == "__main__":
    commands = {"copy": lambda a: copy(Path(a[0]), Path(a[1])), "score": lambda a: score(Path(a[0]))}
    commands["keys"] = lambda a: keys(Path(a[0]))
    commands[sys.argv[1]](sys.argv[2:])
