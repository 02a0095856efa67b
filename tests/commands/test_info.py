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
