"""`distill compress` tidies what an earlier, killed compress of the same run left, and says so."""

from distill.commands import compress
from distill.storage.locks import exclusive


def _left(folder, name):
    (folder / name / "rounds").mkdir(parents=True)
    (folder / name / "rounds" / "ratio-0.1.int8.onnx").write_bytes(b"x")
    return folder / name


def test_a_killed_compress_of_the_same_methods_is_removed_others_kept_a_live_one_untouched(tmp_path, capsys):
    run = "20261208-010000-squeezenet1_1_bn-kld"
    same = _left(tmp_path, f"20261208-020000-{run}-auto")
    same_again = _left(tmp_path, f"20261208-020000-{run}-auto-2")
    other = _left(tmp_path, f"20261208-030000-{run}-prune-ch_0.5")
    live = _left(tmp_path, f"20261208-040000-{run}-auto")
    finished = _left(tmp_path, f"20261208-050000-{run}-auto")
    (finished / "model.distill").write_bytes(b"x")
    with exclusive(live / "model.distill", "compress"):
        compress._tidy_unfinished(tmp_path, run, f"{run}-auto")
    said = " ".join(capsys.readouterr())
    assert not same.exists() and not same_again.exists() and f"removed {same}" in said
    assert other.exists() and f"stopped before it made a model: {other}" in said
    assert live.exists() and f"at work in {live}" in said
    assert finished.exists() and str(finished) not in said
