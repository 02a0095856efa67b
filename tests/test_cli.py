"""The command line refuses misuse before any work: one line, exit code 2, nothing written (run in-process)."""

import re
import shutil
import sys

import pytest

from distill import cli

MISUSE = [
    (["report"], r"no workspace with runs or evaluations at .*/w \(give --workdir"),
    (["eval", "csv", "--data", ".", "--class-map", "foo"], r"class mapping 'foo' is not of the form src=dst"),
    (["train", "--accelerator", "tpu"], r"--accelerator tpu: must be one of auto, cpu"),
    (["label", "--teacher", "mini_xception@nan+face_api@1", "x"], r"weight 'nan' .* must be a finite number above 0"),
    (["label", "--teacher", "mini_xception@-1", "x"], r"weight '-1' .* must be a finite number above 0"),
    (["label", "--teacher", "mini_xception@0+face_api@0", "x"], r"weight '0' .* must be a finite number above 0"),
    (["predict", "x.jpg", "--detector", "nosuch"], r"unknown detector 'nosuch'; valid detectors: blazeface, mtcnn"),
    (["train", "--epochs", "-1"], r"--epochs -1: must be >= 1"),
    (["train", "--epochs", "0"], r"--epochs 0: must be >= 1"),
    (["train", "--batch-size", "0"], r"--batch-size 0: must be >= 1"),
    (["train", "--temperature", "0"], r"--temperature 0.0: must be in \(0, 100\]"),
    (["train", "--temperature", "-2"], r"--temperature -2.0: must be in \(0, 100\]"),
    (["train", "--loss", "kld:-1"], r"--loss kld:-1: the weight of kld must be > 0"),
    (["train", "--loss", "kld:x"], r"--loss kld:x: the weight 'x' of kld is not a number"),
    (["train", "--loss", "nope"], r"unknown loss 'nope'; valid losses: .*kld"),
    (["train", "--student", "nope"], r"unknown student 'nope'; valid students: .*squeezenet1_1"),
    (["train", "--mixup", "0.4", "--no-online-teacher"], r"--mixup needs --online-teacher"),
    (["train", "--ema", "1"], r"--ema 1.0: must be in \[0, 1\)"),
    (["train", "--max-steps", "0"], r"--max-steps 0: must be -1 \(all epochs\) or >= 1"),
    (["train", "--hint-epochs", "5", "--epochs", "3"], r"--hint-epochs 5: must be < --epochs 3"),
    (["train", "--optimizer", "adam"], r"--optimizer adam: must be one of adamw, sgd"),
    (["train", "--devices", "two"], r"--devices two: must be a count >= 1, 'auto'"),
    (["train", "--limit", "0"], r"--limit 0: must be >= 1"),
    (["compress", "--epochs", "-1"], r"--epochs -1: must be >= 0"),
    (["compress", "--method", "cp:0"], r"cp:0: the parameter budget must be in \(0, 1\]"),
    (["compress", "--method", "prune:1.5"], r"prune:1.5: the sparsity must be in \(0, 1\)"),
    (["compress", "--method", "prune:abc"], r"prune:abc: the sparsity 'abc' is not a number"),
    (["compress", "--method", "bwn:3"], r"compressor 'bwn' takes no option \(given 'bwn:3'\)"),
    (["compress", "--method", "nope"], r"unknown compressor 'nope'; valid compressors: .*bwn.*; or auto, the no-flag"),
    (["compress", "--method", "quant+prune-ch"], r"prune-ch changes the network's shape"),
    (["predict", "x.mp4", "--camera", "0"], r"x.mp4 and --camera 0: give one source"),
    (["compress", "--method", "bwn+"], r"--method bwn\+: an empty part between '\+' signs"),
    (
        ["compress", "--method", "bwn", "--tolerance", "2"],
        r"--tolerance applies to the auto plan only, not --method bwn",
    ),
    (["train", "--loss", "kld+kld"], r"--loss kld\+kld: kld given twice"),
    (["train", "--loss", "kld++label"], r"--loss kld\+\+label: an empty part between '\+' signs"),
    (["label", "--teacher", "mini_xception+", "x"], r"--teacher mini_xception\+: an empty part between '\+' signs"),
    (["label", "--teacher", "mini_xception?crop=0.8&crop=0.9", "x"], r"option crop given twice"),
    (["compress", "--teach", "vgg"], r"--teach vgg: must be one of cache, float"),
    (["compress", "--loss", "kld:0"], r"--loss kld:0: the weight of kld must be > 0"),
    (["label", "--views", "-1"], r"--views -1: must be in \[0, 64\]"),
    (["label", "--combine", "mean"], r"--combine mean: must be one of prob, logit, geometric"),
    (["label", "--batch", "0"], r"--batch 0: must be >= 1"),
    (["crop", "--margin", "-1"], r"--margin -1.0: must be in \[0, 3\]"),
    (["crop", "--min-prob", "2"], r"--min-prob 2.0: must be in \[0, 1\]"),
    (["crop", "nowhere"], r"nowhere: no such folder"),
    (["export", "--format", "tflite"], r"--format tflite: must be one of pt2, onnx"),
    (["export", "--format", "pt2", "--int8"], r"--int8 is written as ONNX: --format onnx --int8"),
    (["export", "missing.pt"], r"--model missing.pt: no such file or folder"),
    (["eval", "csv", "--data", ".", "--model", "missing.pt"], r"--model missing.pt: no such file or folder"),
    (
        ["eval", "csv", "--data", ".", "--model", "mini_xeption"],
        r"no such file or folder, and no teacher of that name \(face_api",
    ),
    (["eval", "csv", "--data", ".", "--model", "runs/gone/"], r"--model runs/gone/: no such file or folder"),
    (["eval", "csv", "--size", "8"], r"--size 8: must be in \[16, 1024\]"),
    (["fit-teacher", "--data", "x", "--test-fraction", "0.6", "--val-fraction", "0.5"], r"must leave faces to train"),
    (
        ["fit-teacher", "--data", "x", "--arch", "resnet"],
        r"--arch resnet: must be vgg_s, timm:NAME or a student.s network \(.*squeezenet1_1_bn",
    ),
    (["train"], r"no cache artefact in .*/caches; make one with `distill label"),
    (["export"], r"no student in .*/runs or .*/compressed; make one with `distill train`"),
    (["label"], r"no faces artefact in .*/faces; make one with `distill crop SRC`"),
    (["info", "missing.h5"], r"missing.h5: no such file or folder"),
    (["predict"], r"give a photo, a folder of photos or a video, or --camera N"),
    (["predict", "missing.jpg"], r"missing.jpg: no such file or folder"),
    (["predict", "--smooth", "1"], r"--smooth 1.0: must be in \[0, 1\)"),
    (["predict", "--runtime", "tflite"], r"--runtime tflite: must be one of onnx, torch"),
    (["list", "nonsense"], r"unknown kind 'nonsense'; valid: teachers"),
    (["eval", "csv"], r"no csv dataset at .*data/expressions-dev; give its path with --data PATH"),
    (["eval", "auto"], r"eval auto tells the reader from the files: give them with --data PATH"),
    (["train", "--epochs", "three"], r"Invalid value for '--epochs'.* \(see `distill train --help`\)"),
    (["train", "--nope"], r"No such option: --nope .*\(see `distill train --help`\)"),
]


def run_cli(args: list[str], workdir, capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.setenv("DISTILL_WORKDIR", str(workdir))  # restored after the test (the CLI sets it)
    monkeypatch.setattr(sys, "argv", ["distill", "--workdir", str(workdir), *args])
    with pytest.raises(SystemExit) as done:
        cli.main()
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


@pytest.mark.parametrize(("args", "message"), MISUSE, ids=[" ".join(a) for a, _ in MISUSE])
def test_misuse_is_one_line_exit_2_and_writes_nothing(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(args, tmp_path / "w", capsys, monkeypatch)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert re.search(message, err), err
    assert list(tmp_path.rglob("*")) == [], "a refused command wrote something"


def test_version(tmp_path, capsys, monkeypatch):
    from distill import __version__

    code, out, _ = run_cli(["--version"], tmp_path, capsys, monkeypatch)
    assert code == 0 and out.strip() == f"distill {__version__}"


def test_ctrl_c_exits_130_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    import distill.commands.crop as crop

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(crop, "run", interrupted)
    code, _, err = run_cli(["crop", str(tmp_path)], tmp_path / "w", capsys, monkeypatch)
    assert code == 130 and "interrupted — run the same command again to resume" in err


def test_help_shows_each_default_and_range(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(["train", "--help"], tmp_path, capsys, monkeypatch)
    assert code == 0
    line = next(x for x in out.splitlines() if "--temperature" in x)
    assert "valid: in (0, 100]" in line and "default: 1.0" in line


def test_help_lists_only_the_accelerators_this_machine_has_and_names_workdir(tmp_path, capsys, monkeypatch):
    from distill.config import machine_accelerators

    monkeypatch.setenv("COLUMNS", "400")
    code, out, _ = run_cli(["train", "--help"], tmp_path, capsys, monkeypatch)
    line = next(x for x in out.splitlines() if "--accelerator" in x)
    assert code == 0 and f"valid: one of {', '.join(machine_accelerators())})" in line
    assert ("tpu" in line) == ("tpu" in machine_accelerators())
    assert "--workdir PATH" in out


def test_eval_help_sends_the_user_to_the_list_of_readers(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    _, out, _ = run_cli(["eval", "--help"], tmp_path, capsys, monkeypatch)
    _, listing, _ = run_cli(["list", "datasets"], tmp_path, capsys, monkeypatch)
    assert "distill list datasets" in out and "pubfig83" in listing


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("happiness=joy", r"--class-map happiness=happiness: maps the class onto itself \(synonyms\)"),
        ("anger=bored", r"--class-map anger=bored: the labelled set has no class bored \(its classes: happiness, "),
        ("nosuchclass=happiness", r"--class-map nosuchclass=happiness: no model has a class nosuchclass \(theirs: "),
    ],
)
def test_a_class_map_that_maps_nothing_is_refused_before_any_crop(mapping, message, tmp_path, capsys, monkeypatch):
    (tmp_path / "set" / "images").mkdir(parents=True)
    (tmp_path / "set" / "labels.csv").write_text("image,emotion\na.jpg,happy\nb.jpg,sad\n")
    args = ["eval", "csv", "--data", str(tmp_path / "set"), "--model", "mini_xception", "--class-map", mapping]
    code, _, err = run_cli(args, tmp_path / "w", capsys, monkeypatch)
    assert code == 2 and re.search(message, err) and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "w" / "evals").exists()


def test_a_teacher_that_cannot_be_built_is_refused_before_any_photo_is_cropped(
    face_photos, tmp_path, capsys, monkeypatch
):
    args = ["label", "--teacher", f"vgg_s:{tmp_path / 'nosuch.pt'}", str(face_photos)]
    code, _, err = run_cli(args, tmp_path / "w", capsys, monkeypatch)
    assert code == 2 and "nosuch.pt" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "w" / "faces").exists()  # nothing cropped


EMPTY = [
    ["info", "empty.pt"],
    ["info", "empty.distill"],
    ["info", "best.ckpt"],
    ["info", "empty.onnx"],
    ["predict", "photos", "--model", "empty.pt"],
    ["predict", "photos", "--model", "empty.distill"],
    ["import-teacher", "empty.pt"],
    ["label", "--teacher", "onnx:empty.onnx", "photos"],
]


@pytest.mark.parametrize("args", EMPTY, ids=[" ".join(a) for a in EMPTY])
def test_an_empty_file_is_one_line_that_says_so(args, face_photos, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("empty.pt", "empty.distill", "best.ckpt", "empty.onnx"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "photos").symlink_to(face_photos)
    code, _, err = run_cli(args, tmp_path / "w", capsys, monkeypatch)
    assert code == 2 and re.search(r"is empty \(0 bytes\)", err) and len(err.strip().splitlines()) == 1, err


JUNK = [
    (["info", "junk.pt2"], "junk.pt2 is not a torch.export program"),
    (["eval", "csv", "--data", "photos", "--model", "junk.pt2"], "junk.pt2 is not a torch.export program"),
    (["label", "--teacher", "torchscript:junk.pt2", "photos"], "junk.pt2 is not a torch.export program"),
    (["label", "--teacher", "torchscript:junk.pt", "photos"], "junk.pt is not a TorchScript archive"),
]


def test_a_pickle_that_is_no_torch_file_is_one_line_with_no_torch_warning_before_it(tmp_path, capfd, monkeypatch):
    import pickle

    monkeypatch.chdir(tmp_path)
    (tmp_path / "p4.pt").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    code, _, err = run_cli(["info", "p4.pt"], tmp_path / "w", capfd, monkeypatch)
    assert code == 2 and err.startswith("error: p4.pt is not a safe torch file: torch's weights-only reader refused")
    assert len(err.strip().splitlines()) == 1, err  # no "Detected pickle protocol 4" before it
    (tmp_path / "junk.pt").write_bytes(b"junk\n")  # read as a legacy torch file: a bad magic number
    code, _, err = run_cli(["info", "junk.pt"], tmp_path / "w", capfd, monkeypatch)
    assert code == 2 and "junk.pt is not a safe torch file (neither a torch archive nor a pickle)" in err


@pytest.mark.parametrize(("args", "message"), JUNK, ids=[" ".join(a) for a, _ in JUNK])
def test_a_junk_torch_archive_is_one_line_with_no_torch_noise_before_it(
    args, message, face_photos, tmp_path, capfd, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.pt2").write_bytes(b"not an archive")
    (tmp_path / "junk.pt").write_bytes(b"not an archive")
    (tmp_path / "photos").symlink_to(face_photos)
    code, _, err = run_cli(args, tmp_path / "w", capfd, monkeypatch)  # capfd: torch logs to the process's stderr
    assert code == 2 and err.strip() == f"error: {message} (not a zip archive)", err


def test_a_resume_from_what_is_no_runs_checkpoint_says_what_it_is(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    code, _, err = run_cli(["train", "--resume", "junk.pt"], tmp_path / "w", capsys, monkeypatch)
    assert code == 2 and "--resume junk.pt: not a checkpoint of a training run" in err
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 cut short")  # a zip's first bytes, then nothing
    code, _, err = run_cli(["train", "--resume", "run/checkpoints/last.ckpt"], tmp_path / "w", capsys, monkeypatch)
    assert code == 2 and "is not a safe torch file" in err and len(err.strip().splitlines()) == 1


def test_info_describes_every_argument_and_names_the_unreadable_ones_at_the_end(
    face_store, tmp_path, capsys, monkeypatch
):
    (tmp_path / "empty.pt").write_bytes(b"")
    args = ["info", str(tmp_path / "empty.pt"), str(face_store), str(tmp_path / "gone.h5")]
    code, out, err = run_cli(args, tmp_path / "w", capsys, monkeypatch)
    assert code == 2 and "(face store)" in out  # the readable one after the unreadable one is still described
    assert "empty.pt is empty (0 bytes)" in err and "gone.h5: no such file or folder" in err
    assert len(err.strip().splitlines()) == 1


def test_predict_into_a_file_is_refused_and_the_file_kept(face_photos, tmp_path, capsys, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine")
    args = ["predict", str(face_photos), "--out", str(tmp_path / "notes.txt")]
    code, _, err = run_cli(args, tmp_path / "w", capsys, monkeypatch)
    assert code == 2 and "notes.txt is a file: give a folder" in err and (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("labels", "arch", "message"),
    [
        (None, "vgg_s", r"has no labelled photos"),
        (["happiness", "happiness"], "vgg_s", r"every label is happiness; fit-teacher needs at least two classes"),
        (["happiness", "sadness"], "timm:nosuch", r"unknown timm architecture 'nosuch'"),
    ],
)
def test_fit_teacher_refuses_before_any_photo_is_cropped(
    labels, arch, message, face_photos, tmp_path, capsys, monkeypatch
):
    data = tmp_path / "set"
    shutil.copytree(face_photos, data / "images")
    if labels:
        names = sorted(p.name for p in (data / "images").iterdir())[: len(labels)]
        rows = "".join(f"{name},{label}\n" for name, label in zip(names, labels, strict=True))
        (data / "labels.csv").write_text("image,emotion\n" + rows)
    code, _, err = run_cli(["fit-teacher", "--arch", arch, "--data", str(data)], tmp_path / "w", capsys, monkeypatch)
    assert code == 2 and re.search(message, err) and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "w").exists()  # nothing cropped


def test_import_teacher_of_a_folder_says_what_the_folder_is(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "student.pt").write_bytes(b"x")
    code, _, err = run_cli(["import-teacher", "empty"], tmp_path / "w", capsys, monkeypatch)
    assert code == 2 and "empty is a folder without teacher.pt" in err
    code, _, err = run_cli(["import-teacher", "run"], tmp_path / "w", capsys, monkeypatch)
    assert code == 2 and "run is a training run (a student)" in err and len(err.strip().splitlines()) == 1
