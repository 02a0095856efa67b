"""The README and docs/ name the folders and files the tool really writes."""

import re
from pathlib import Path

import pytest

from distill.compress.pipeline import compressed_name
from distill.config import CompressConfig, ExportConfig, TrainConfig
from distill.export.formats import exported_path
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
        name = compressed_name("<run>", _option(options, "--method", CompressConfig.method))
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


def _documented_commands() -> list[tuple[str, str]]:
    """(file, command line) of every `distill ...` line in the docs' code blocks (continuations joined)."""
    found = []
    for doc in DOCS:
        text = re.sub(r"\\\n\s*", " ", doc.read_text())
        for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, re.S):
            for line in block.splitlines():
                line = line.strip().removeprefix("$ ")
                if line.startswith("distill "):
                    found.append((doc.name, line.split(" #")[0].strip()))
    return found


def _parse(line: str) -> None:
    """Parse a command line as `distill` would, options and arguments, without running anything."""
    import shlex

    import typer

    from distill import cli

    args = cli._hoist_globals(shlex.split(line)[1:])
    group = typer.main.get_command(cli.app)
    with group.make_context("distill", list(args)) as ctx:
        name, command, rest = group.resolve_command(ctx, [*getattr(ctx, "_protected_args", []), *ctx.args])
        command.make_context(name, rest, parent=ctx)


@pytest.mark.parametrize(("doc", "line"), _documented_commands())
def test_every_documented_command_parses(doc, line):
    _parse(line)


@pytest.mark.parametrize("line", ["distill train --nope", "distill train --epochs three", "distill nosuch"])
def test_a_line_the_tool_would_refuse_does_not_parse(line):
    with pytest.raises(Exception, match=r"No such|valid integer"):
        _parse(line)


def test_the_readme_layout_names_every_module():
    text = ROOT.joinpath("README.md").read_text()
    layout = text[text.index("## Layout") :]
    missing = [
        str(path.relative_to(ROOT / "distill"))
        for path in sorted((ROOT / "distill").rglob("*.py"))
        if path.name != "__init__.py" and f"`{path.name}`" not in layout and f"{path.name}`" not in layout
    ]
    assert not missing, missing
