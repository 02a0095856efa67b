"""The README and docs/ name the folders and files the tool really writes."""

import re
from pathlib import Path

import pytest

from distill.compress.pipeline import compressed_name
from distill.config import ExportConfig, TrainConfig
from distill.export import exported_path
from distill.training.train import run_name

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _commented(command: str) -> list[tuple[str, str, str]]:
    """(file, options, comment) of each `distill COMMAND ... # comment` line of the docs."""
    found = []
    for doc in DOCS:
        for line in doc.read_text().splitlines():
            m = re.match(rf"distill {command}\b(.*?)#(.*)", line.strip())
            if m:
                found.append((doc.name, m.group(1), m.group(2)))
    return found


def _option(options: str, flag: str, default: str) -> str:
    m = re.search(rf"{flag}[ =](\S+)", options)
    return m.group(1) if m else default


def test_the_run_folders_the_docs_name_are_the_ones_train_makes():
    lines = [x for x in _commented("train") if "runs/" in x[2]]
    assert lines
    for doc, options, comment in lines:
        cfg = TrainConfig(
            student=_option(options, "--student", TrainConfig.student), loss=_option(options, "--loss", "kld")
        )
        assert f"runs/<stamp>-{run_name(cfg)}/" in comment, (doc, comment)


def test_the_compressed_folders_the_docs_name_are_the_ones_compress_makes():
    lines = [x for x in _commented("compress") if "compressed/" in x[2]]
    assert lines
    for doc, options, comment in lines:
        name = compressed_name("<run>", _option(options, "--method", "bwn"))
        assert f"compressed/<stamp>-{name}/model.distill" in comment, (doc, comment)


@pytest.mark.parametrize(
    ("options", "model", "written"), [("--format onnx --int8", "model.distill", "model.int8.onnx")]
)
def test_export_writes_the_file_the_readme_names(options, model, written):
    cfg = ExportConfig(format="onnx", int8="--int8" in options)
    assert exported_path(Path(model), cfg).name == written
    readme = ROOT.joinpath("README.md").read_text()
    assert re.search(rf"distill export {options} .*# newest model -> {re.escape(written)} beside it", readme)
    assert f"/{written}" in readme  # and predict's example takes that file
