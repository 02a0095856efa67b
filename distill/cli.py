"""`distill`: the command line, declarations only. Options come from the config dataclasses (distill.config),
the work from the library; `main` maps every user error to one line and an exit code."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from distill.config import (
    CompressConfig,
    CropConfig,
    EvalConfig,
    ExportConfig,
    FitConfig,
    LabelConfig,
    LabelDistConfig,
    PredictConfig,
    TrainConfig,
)
from distill.errors import DistillError, Interrupted
from distill.options import from_settings
from distill.progress import quiet_libraries
from distill.summary import print_facts
from distill.workspace import DEFAULT_WORKDIR, Workspace

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Distil big facial-emotion CNNs into small, fast students without labelled data.",
)
out = Console(soft_wrap=True, emoji=False)  # soft wrap: full paths, never cut at the terminal's width


def ws() -> Workspace:
    return Workspace()  # its root follows --workdir (through DISTILL_WORKDIR, for library look-ups too)


def _version(show: bool) -> None:
    if show:
        from distill import __version__

        out.print(f"distill {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    workdir: Annotated[Path, typer.Option(help="Where artefacts are written and found.")] = DEFAULT_WORKDIR,
    debug: Annotated[bool, typer.Option(help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
):
    os.environ["DISTILL_WORKDIR"] = str(workdir)


@app.command("list")
def list_cmd(
    kind: Annotated[str | None, typer.Argument(help="teachers, students, losses, compressors, datasets")] = None,
):
    """List registered teachers, students, losses, compressors and dataset readers."""
    from distill.commands import list as command

    out.print(command.run(kind, ws()), highlight=False)


@app.command()
@from_settings
def crop(
    cfg: CropConfig,
    src: Annotated[Path | None, typer.Argument(help="Folder of photos (any reader layout).")] = None,
    out_store: Annotated[Path | None, typer.Option("--out", help="Face store (default WORKDIR/faces/NAME.h5).")] = None,
    reader: Annotated[str, typer.Option(help="Dataset reader; 'auto' detects the layout.")] = "auto",
    demo: Annotated[bool, typer.Option(help="Crop the real faces that ship with scikit-image.")] = False,
):
    """Detect faces with MTCNN and store aligned crops; bad or faceless photos are recorded with a reason."""
    from distill.commands import crop as command

    print_facts("crop summary", command.run(ws(), src, out_store, reader, cfg, demo))


@app.command()
@from_settings
def label(
    cfg: LabelConfig,
    dist: LabelDistConfig,
    src: Annotated[Path | None, typer.Argument(help="Face store, or a photo folder (cropped first).")] = None,
    out_cache: Annotated[Path | None, typer.Option("--out", help="Cache path (default in WORKDIR/caches).")] = None,
    fresh: Annotated[bool, typer.Option(help="Relabel: discard a finished or interrupted cache.")] = False,
):
    """Run a teacher once over a face store and cache logits and posteriors to HDF5 (resumable)."""
    from distill.commands import label as command
    from distill.distributed import is_global_zero

    summary = command.run(ws(), src, out_cache, cfg, fresh, dist, print_facts)
    if is_global_zero():
        print_facts("label summary", summary)


@app.command()
@from_settings
def train(
    cfg: TrainConfig,
    caches: Annotated[
        list[Path] | None,
        typer.Argument(help="Posterior caches of one teacher, pooled (default: newest in the workspace)."),
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue a run from its checkpoint (e.g. RUN/checkpoints/last.ckpt), as saved.")
    ] = None,
):
    """Train a student from a teacher's cached posteriors (no human labels)."""
    from distill.commands import train as command
    from distill.distributed import is_global_zero

    summary = command.run(ws(), caches or [], cfg, resume)
    if is_global_zero():
        print_facts("train summary", summary)


@app.command("fit-teacher")
@from_settings
def fit_teacher_cmd(
    cfg: FitConfig,
    data: Annotated[
        Path | None, typer.Option(help="Labelled photo folder (any reader layout) or a labelled face store.")
    ] = None,
    reader: Annotated[str, typer.Option(help="Dataset reader for a photo folder; 'auto' detects it.")] = "auto",
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue a fit from its checkpoint (TEACHER/checkpoints/last.ckpt), with its settings."),
    ] = None,
):
    """Train a teacher on a labelled set (supervised); saves teacher.pt, the split and held-out test scores."""
    from distill.commands import fit_teacher as command

    print_facts("fit-teacher summary", command.run(ws(), data, reader, cfg, print_facts, resume))


@app.command()
@from_settings
def compress(
    cfg: CompressConfig,
    model: Annotated[Path | None, typer.Argument(help="Training run folder (default: newest run).")] = None,
):
    """Compress a trained student (distill list compressors), fine-tune it, write model.distill."""
    from distill.commands import compress as command

    print_facts("compress summary", command.run(ws(), model, cfg))


@app.command("import-teacher")
def import_teacher_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A VGG-S teacher.pt from `distill fit-teacher`.")],
    caches: Annotated[
        list[Path] | None, typer.Option("--cache", help="Its posterior caches (default: all it made in the workspace).")
    ] = None,
):
    """Make a fitted VGG-S teacher a training run, so compress, eval and export take it like a student."""
    from distill.commands import import_teacher as command

    print_facts("import-teacher summary", command.run(ws(), checkpoint, caches))


@app.command("export")
@from_settings
def export_cmd(
    cfg: ExportConfig,
    model: Annotated[
        Path | None,
        typer.Argument(help="Run folder, student.pt, compressed folder or model.distill (default: newest)."),
    ] = None,
    calibrate: Annotated[Path | None, typer.Option(help="Face store for int8 calibration (default: newest).")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Output file (default: beside the model).")] = None,
):
    """Export a student or compressed model as a checked torch.export (.pt2) or ONNX graph (optionally int8)."""
    from distill.commands import export as command

    print_facts("export summary", command.run(ws(), model, cfg, calibrate, out_file))


@app.command()
@from_settings
def predict(
    cfg: PredictConfig,
    src: Annotated[Path | None, typer.Argument(help="A photo, a folder of photos (recursive) or a video file.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Student, run, .distill, .onnx, .pt2 or teacher spec (default: newest model).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: WORKDIR/predictions/...).")
    ] = None,
    camera: Annotated[int | None, typer.Option(help="Read camera N (/dev/videoN) instead of SRC.", min=0)] = None,
):
    """Emotions of the faces in new photos, a video or a camera: predictions.csv/.json and annotated copies."""
    from distill.commands import predict as command

    print_facts("predict summary", command.run(ws(), src, camera, model, out_dir, cfg))


@app.command("eval")
@from_settings
def eval_cmd(
    cfg: EvalConfig,
    dataset: Annotated[
        str, typer.Argument(help="Dataset reader (distill list datasets), or auto to tell it from the files.")
    ],
    data: Annotated[Path | None, typer.Option(help="Dataset path (default: the reader's default path).")] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(help="Student, run, .distill, .pt2, .onnx or teacher spec; repeat to compare. Default: newest."),
    ] = None,
    keys: Annotated[
        Path | None, typer.Option(help="Score only these images (one key per line, e.g. a teacher's test-keys.txt).")
    ] = None,
):
    """Accuracy, UAR, macro-F1, per-class table, confusion matrix, size and latency on a labelled set."""
    from distill.commands import eval as command

    headline, report = command.run(ws(), dataset, data, model or [], keys, cfg)
    out.print(headline)
    out.print(f"report: {report}")


@app.command()
def demo(epochs: Annotated[int, typer.Option(help="Training epochs of the demo student.", min=1)] = 25):
    """Run the whole pipeline on faces that ship with scikit-image (no user data; a few minutes on a CPU)."""
    from distill.commands import demo as command

    summary = command.run(ws(), epochs)
    explain = summary.pop("explain")
    print_facts("demo summary", summary)
    out.print(explain, highlight=False)


@app.command()
def report():
    """One table over every run and evaluation in the workspace (the papers' Table 2 and 3 shapes) + chart."""
    from distill.commands import report as command

    path, text = command.run(ws())
    out.print(text)
    out.print(f"report: {path}")


@app.command()
def info(
    paths: Annotated[list[Path], typer.Argument(help="Face stores, caches, runs, .pt, .ckpt, .distill, .onnx, .pt2.")],
    skipped: Annotated[bool, typer.Option(help="List a face store's skipped photos with their reasons.")] = False,
):
    """Say what artefacts are and how they were made."""
    from distill.commands import info as command

    failed = []
    for path in paths:  # every argument is described; the ones that cannot be are named at the end, exit code 2
        try:
            kind, facts = command.run(path)
        except DistillError as err:
            failed.append(str(err))
            continue
        print_facts(f"{path} ({kind})", facts)
        if skipped:
            for row in command.skipped_photos(path):
                out.print(f"  {row['source']}: {row['reason']}", highlight=False)
    if failed:
        raise DistillError("; ".join(failed))


# --workdir and --debug belong to the top-level callback but are taken anywhere on the line (_hoist_globals): every
# command's help names them
for _command in app.registered_commands:
    _command.epilog = (
        f"Also: --workdir PATH (where artefacts are written and found; default ./{DEFAULT_WORKDIR}) and --debug "
        "(tracebacks), anywhere on the line."
    )


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


def _fail(message: str, code: int) -> None:
    Console(stderr=True, soft_wrap=True, emoji=False).print(message, highlight=False, markup=False)
    sys.exit(code)


def _usage_error(err) -> None:
    """Click's usage errors as one line, naming the command's help; a bare `distill` still shows the help."""
    if type(err).__name__ == "NoArgsIsHelpError":
        err.show()
        sys.exit(0)
    ctx = getattr(err, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    _fail(f"error: {err.format_message()}{where}", err.exit_code)


def main() -> None:
    argv = _hoist_globals(sys.argv[1:])
    debug = "--debug" in argv
    if not debug:
        quiet_libraries()
    try:
        code = app(args=argv, standalone_mode=False)
    except DistillError as err:
        if debug and not isinstance(err, Interrupted):
            raise
        _fail(str(err) if isinstance(err, Interrupted) else f"error: {err}", err.exit_code)
    except OSError as err:  # unwritable or full output, missing input: the user's to fix, not a bug
        if debug:
            raise
        _fail(f"error: {err.filename + ': ' if err.filename else ''}{err.strerror or err}", 2)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted — run the same command again to resume (finished parts are kept)", 130)
    except Exception as err:
        if hasattr(err, "format_message") and hasattr(err, "exit_code"):  # click usage errors (typer vendors click)
            _usage_error(err)
        if debug:
            raise
        _fail(f"internal error: {type(err).__name__}: {err} (run with --debug for the traceback)", 1)
    if code == 130:  # typer turns a Ctrl-C it caught into this return value
        _fail("interrupted — run the same command again to resume (finished parts are kept)", 130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
