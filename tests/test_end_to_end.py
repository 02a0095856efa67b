"""crop -> label -> train (1 epoch) -> eval through the real CLI, on real faces the test writes."""

import json
import shutil
import subprocess
import sys

from PIL import Image


def _cli(*args, cwd):
    done = subprocess.run([sys.executable, "-m", "distill.cli", *args], capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_pipeline_through_the_cli(tmp_path, face_photos):
    photos = tmp_path / "photos"
    shutil.copytree(face_photos, photos)
    labelled = tmp_path / "labelled"
    (labelled / "images").mkdir(parents=True)
    rows = ["image,emotion"]
    for i, p in enumerate(sorted(photos.glob("*.jpg"))[:8]):
        Image.open(p).save(labelled / "images" / p.name)
        rows.append(f"{p.name},{['happy', 'neutral'][i % 2]}")
    (labelled / "labels.csv").write_text("\n".join(rows) + "\n")

    _cli("crop", str(photos), cwd=tmp_path)
    _cli("label", "--teacher", "mini_xception", "--views", "2", cwd=tmp_path)
    _cli("train", "--epochs", "1", "--workers", "0", "--batch-size", "8", "--size", "32", cwd=tmp_path)
    run = next((tmp_path / "distill-work" / "runs").iterdir())
    assert (run / "student.pt").is_file() and (run / "curves.png").is_file()
    assert json.loads((run / "config.json").read_text())["train"]["loss"] == "kld"
    done = _cli("eval", "csv", "--data", str(labelled), "--model", str(run), "--model", "mini_xception", cwd=tmp_path)
    assert "accuracy" in done.stdout
    report = json.loads(next((tmp_path / "distill-work" / "evals").glob("*/eval.json")).read_text())
    scores = [r["scores"] for r in report["results"]]
    assert [s["n_scored"] for s in scores] == [8, 8]
    for s in scores:  # independent recomputation of accuracy from the saved predictions
        hits = sum(p == t for p, t in zip(s["predictions"], s["targets"], strict=True))
        assert abs(hits / 8 - s["accuracy"]) < 1e-6
