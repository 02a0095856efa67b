"""Progress in a log (no terminal): one plain line every few seconds and one at the end, never a bar's redraws."""

from distill import progress


def test_a_log_gets_whole_plain_lines(capsys, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    with progress.progress_bar("crop photos", 400) as advance:
        for seconds in (5.0, 12.0, 20.0, 30.0):
            now[0] = seconds
            advance(100)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "crop photos: 200/400 (50%), 0:12, about 0:12 left"  # 10 s after the start, not at 5 s
    assert lines[1:] == ["crop photos: 400/400 (100%), 0:30"]  # at 30 s; the closing line would say the same
