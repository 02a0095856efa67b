"""`distill info`'s account of artefacts."""

import json

from distill.commands.info import run as describe


def _run(tmp_path, files: list[str]):
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"train": {"student": "squeezenet1_1_bn", "loss": "kld"}}))
    for name in files:
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(b"x")
    return run


def test_a_run_stopped_before_its_first_checkpoint_offers_no_resume(tmp_path):
    kind, facts = describe(_run(tmp_path, []))
    assert kind == "training run"
    assert "nothing to resume" in facts["state"] and "--resume" not in facts["state"]


def test_an_unfinished_run_offers_the_resume_of_its_own_checkpoint(tmp_path):
    run = _run(tmp_path, ["checkpoints/last.ckpt"])
    assert (
        describe(run)[1]["state"]
        == f"unfinished (resume: distill train --resume {run.resolve()}/checkpoints/last.ckpt)"
    )


def test_a_finished_run_says_so(tmp_path):
    assert describe(_run(tmp_path, ["student.pt"]))[1]["state"] == "finished"


def test_a_compress_killed_before_its_model_is_described_and_named_by_the_next_one(tmp_path, capsys, monkeypatch):
    import distill.commands.compress as compress_command
    from distill.config import CompressConfig
    from distill.students.model import Student
    from distill.workspace import Workspace

    run = tmp_path / "runs" / "20261207-220302-squeezenet1_1_bn-kld"
    run.mkdir(parents=True)
    Student("squeezenet1_1_bn", ["happiness", "neutral"], 32).save(run / "student.pt")
    dead = tmp_path / "compressed" / f"20261207-230000-{run.name}-auto"
    (dead / "rounds").mkdir(parents=True)
    (dead / "rounds" / "ratio-0.1.int8.onnx").write_bytes(b"x")
    done = tmp_path / "compressed" / f"20261207-231000-{run.name}-bwn"
    done.mkdir()
    (done / "summary.json").write_text("{}")  # finished, or stopped with a summary: not dead
    kind, facts = describe(dead)
    assert kind.startswith("unfinished compress") and facts["rounds kept"] == "ratio-0.1.int8.onnx"
    monkeypatch.setattr(compress_command, "compress_run", lambda *a, **k: {"model": "made"})
    assert compress_command.run(Workspace(tmp_path), run, CompressConfig(method="bwn"), False) == {"model": "made"}
    captured = capsys.readouterr()
    said = "".join((captured.out + captured.err).split())  # the terminal wraps long paths anywhere
    assert "anearliercompressofthisrunstoppedbeforeitmadeamodel:" + str(dead.resolve()) in said
    assert str(done.resolve()) not in said
