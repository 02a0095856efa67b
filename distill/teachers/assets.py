"""Model files that setup fetches (never a run): face-api's two weight files, where `make setup` puts them, the
SHA-256 they must have, and the npm fetch. Apart from the network (teachers/face_api.py), so that setup runs it
without importing torch: `python -m distill.teachers.assets [DIR]`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from distill.errors import DistillError

PACKAGE = "@vladmandic/face-api@1.7.15"
MANIFEST, WEIGHTS = "face_expression_model-weights_manifest.json", "face_expression_model.bin"
SHA256 = {  # of the files in that release's tarball: a different file is refused, not silently used
    MANIFEST: "5b349c17c7836da506e03422cd6461c74085d8bb2713ad4114647dc5d28174c8",
    WEIGHTS: "9a9840f2cf1f4c7eab95f197512569345c00d2426754d4608b92af30e0300f3d",
}
DEFAULT_DIR = Path(sys.prefix) / "share" / "distill" / "face_api"  # where `make setup` puts them (the venv)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def weights_dir(arg: str | None) -> Path:
    """The folder holding the manifest and the .bin: the given one, else where `make setup` put them."""
    folder = Path(arg) if arg else DEFAULT_DIR
    if not installed(folder):
        raise DistillError(
            f"face_api's weights ({MANIFEST}, {WEIGHTS}) are not in {folder}: run `make setup` (it fetches "
            f"{PACKAGE} with npm), or copy the two files from that package's model/ folder into a folder and give "
            "--teacher face_api:DIR"
        )
    return folder


def installed(folder: Path = DEFAULT_DIR) -> bool:
    """Whether the two weight files are in `folder` (the teacher itself checks what they hold as it loads them)."""
    return (folder / MANIFEST).is_file() and (folder / WEIGHTS).is_file()


def is_release(folder: Path) -> bool:
    return all((folder / n).is_file() and sha256_of(folder / n) == h for n, h in SHA256.items())


def fetch(folder: Path) -> str:
    """Put the release's two model files and its LICENSE into `folder` with npm (idempotent); returns what was
    done. Without npm it says how to provide the files instead, and the rest of setup goes on."""
    if is_release(folder):
        return f"face_api weights already in {folder}"
    npm = shutil.which("npm")
    if npm is None:
        return (
            f"npm not found: face_api's weights were not fetched. Install Node.js and re-run `make setup`, or copy "
            f"{MANIFEST} and {WEIGHTS} from {PACKAGE}'s model/ folder into a folder and use --teacher face_api:DIR"
        )
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "pack", PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            return f"npm pack {PACKAGE} failed ({done.stderr.strip()[-300:]}); face_api's weights were not fetched"
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarballs[0]) as tar:
            for name in (f"model/{MANIFEST}", f"model/{WEIGHTS}", "LICENSE"):
                (folder / Path(name).name).write_bytes(tar.extractfile(f"package/{name}").read())
    if not is_release(folder):
        raise DistillError(f"{PACKAGE}'s model files do not have the SHA-256 this release was checked with")
    sums = "".join(f"{sha256_of(folder / n)}  {n}\n" for n in (MANIFEST, WEIGHTS, "LICENSE"))
    (folder / "SHA256SUMS").write_text(sums)
    return f"face_api weights fetched into {folder} (SHA-256 in {folder / 'SHA256SUMS'})"


if __name__ == "__main__":
    print(fetch(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR))
