"""`distill predict` on a folder of real face photos and on a video made here from one (the face moves), through
the CLI as a user runs it; damaged input keeps what was written."""

import csv
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from distill.datasets.demo import demo_samples
from distill.students.model import Student
from tests.conftest import CROWD_CLIP

av = pytest.importorskip("av")


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """An untrained student file: predict's plumbing does not depend on what it learned."""
    path = tmp_path_factory.mktemp("model") / "student.pt"
    Student("squeezenet1_1_bn", ["anger", "happiness", "neutral"], 32, grey=True).save(path)
    return path


def _write_video(path):
    """12 frames at 10 fps of a real face photo sliding across a 320x240 background."""
    face = Image.fromarray(demo_samples(path.parent)[0].pixels).convert("RGB").resize((160, 160))
    out = av.open(str(path), "w")
    stream = out.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    stream.gop_size = 4  # a key frame every 4: a cut recording still holds whole groups of frames
    for i in range(12):
        canvas = Image.new("RGB", (320, 240), (40, 90, 60))
        canvas.paste(face, (10 + 4 * i, 40))
        for packet in stream.encode(av.VideoFrame.from_image(canvas)):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return _write_video(tmp_path_factory.mktemp("video") / "moving.mp4")


def _predict(args, tmp_path, capsys, monkeypatch):
    from tests.test_cli import run_cli

    code, out, err = run_cli(["predict", *args], tmp_path / "w", capsys, monkeypatch)
    return code, out, err


def _rows(folder):
    with open(next(folder.glob("predictions.csv"))) as f:
        return list(csv.DictReader(f))


def test_photos_get_a_row_each_and_annotated_copies(face_photos, student, tmp_path, capsys, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted(face_photos.glob("*.jpg"))[:3]:
        (photos / p.name).write_bytes(p.read_bytes())
    (photos / "notes.jpg").write_bytes(b"not a jpeg")  # a photo that is not an image
    out = tmp_path / "out"
    code, stdout, _ = _predict([str(photos), "--model", str(student), "--out", str(out)], tmp_path, capsys, monkeypatch)
    assert code == 0 and f"csv {out.resolve()}/predictions.csv" in " ".join(stdout.split())
    rows = _rows(out)
    assert {r["source"] for r in rows} == {p.name for p in photos.iterdir()}
    bad = [r for r in rows if r["source"] == "notes.jpg"]
    assert len(bad) == 1 and bad[0]["note"].startswith(("not-an-image", "corrupt"))
    faces = [r for r in rows if r["label"]]
    assert faces and all(
        abs(sum(float(r[f"p_{c}"]) for c in ("anger", "happiness", "neutral")) - 1) < 1e-3 for r in faces
    )
    twin = json.loads((out / "predictions.json").read_text())["rows"]
    assert [r["source"] for r in twin] == [r["source"] for r in rows] and twin[0].keys() == rows[0].keys()
    annotated = {p.name for p in (out / "annotated").iterdir()}
    assert annotated == {r["source"] for r in faces}  # the photos with a face, as JPEGs
    assert (out / "model.onnx").is_file()  # the default runtime: the student exported once, run by ONNX Runtime


def test_a_video_gives_frames_tracks_and_an_annotated_video(video, student, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    args = [str(video), "--model", str(student), "--out", str(out), "--runtime", "torch", "--detect-every", "3"]
    code, _, _ = _predict(args, tmp_path, capsys, monkeypatch)
    assert code == 0
    rows = _rows(out)
    assert sorted({int(r["frame"]) for r in rows}) == list(range(12))  # every frame, faces carried in between
    faced = [r for r in rows if r["label"]]
    assert len(faced) >= 10 and {r["track"] for r in faced if int(r["frame"]) >= 3} == {"0"}  # followed as one track
    assert {r["track"] for r in faced if int(r["frame"]) < 3} == {""}  # a track once seen in two detection rounds
    xs = [float(r["x1"]) for r in faced]
    steps = [b - a for a, b in zip(xs[3:], xs[4:], strict=False)]
    assert min(steps) > -1.5 and xs[-1] - xs[0] > 25  # the box follows the face, between detections too
    summary = json.loads((out / "predictions.json").read_text())
    (track,) = summary["tracks"]
    assert track["dominant"] in summary["classes"] and abs(sum(track["share"].values()) - 1) < 1e-3
    decoded = av.open(str(out / "annotated.mp4"))
    assert sum(1 for _ in decoded.decode(video=0)) == 12  # the annotated copy has the same frames
    decoded.close()


def test_a_truncated_recording_keeps_the_frames_read_and_an_unreadable_video_is_refused(
    student, tmp_path, capsys, monkeypatch
):
    whole = _write_video(tmp_path / "whole.mkv")  # Matroska streams: a cut file still decodes up to the cut
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    out = tmp_path / "out"
    args = [str(cut), "--model", str(student), "--out", str(out), "--runtime", "torch"]
    code, _, _ = _predict(args, tmp_path, capsys, monkeypatch)
    frames = {int(r["frame"]) for r in _rows(out)}
    assert code == 0 and 0 < len(frames) < 12  # what could be decoded is predicted and kept
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0" * 1000)
    code, _, err = _predict(
        [str(junk), "--model", str(student), "--out", str(tmp_path / "o2")], tmp_path, capsys, monkeypatch
    )
    assert code == 2 and "junk.mp4 cannot be read as a video: Invalid data" in err and "Errno" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o2").exists()  # refused before any folder was made


def test_a_camera_that_is_not_there_is_one_line_and_no_folder(student, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    args = ["--camera", "63", "--model", str(student), "--out", str(out)]
    code, _, err = _predict(args, tmp_path, capsys, monkeypatch)
    assert code == 2 and "camera 63 cannot be read as a video" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.skipif(not Path("/dev/video0").exists(), reason="no camera at /dev/video0 on this machine")
def test_a_live_camera_gives_rows_for_the_frames_asked(student, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    args = ["--camera", "0", "--max-frames", "5", "--model", str(student), "--out", str(out), "--runtime", "torch"]
    code, _, _ = _predict(args, tmp_path, capsys, monkeypatch)
    assert code == 0 and {int(r["frame"]) for r in _rows(out)} == set(range(5))  # a row per frame, faced or not


def _write_clip(path, scenes, fps=10, audio=False):
    """A clip of `scenes` [(face picture, background colour, frames)], each face at the same place, so only a cut
    detector and the faces' looks can tell the scenes apart; with audio, a sine tone beside it."""
    import numpy as np

    out = av.open(str(path), "w")
    video = out.add_stream("mpeg4", rate=fps)
    video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
    sound = out.add_stream("aac", rate=16000) if audio else None
    t = 0
    for face, colour, count in scenes:
        for _ in range(count):
            canvas = Image.new("RGB", (320, 240), colour)
            canvas.paste(face, (80, 40))
            for packet in video.encode(av.VideoFrame.from_image(canvas)):
                out.mux(packet)
            if sound is not None:
                samples = np.sin(np.arange(1600) * 0.1 + t).astype(np.float32)[None]
                frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                frame.sample_rate, frame.pts, t = 16000, t * 1600, t + 1
                for packet in sound.encode(frame):
                    out.mux(packet)
    for stream in (video, sound):
        for packet in stream.encode() if stream is not None else []:
            out.mux(packet)
    out.close()
    return path


def _faces(n):
    samples = demo_samples(Path(__file__).parent)  # the LFW subset: different people
    return [Image.fromarray(s.pixels).convert("RGB").resize((160, 160)) for s in samples[1 : 1 + n]]


def test_a_hard_cut_between_two_people_in_one_place_gives_two_tracks(student, tmp_path, capsys, monkeypatch):
    first, second = _faces(2)
    clip = _write_clip(tmp_path / "cut.mp4", [(first, (40, 90, 60), 8), (second, (200, 180, 160), 8)])
    out = tmp_path / "out"
    code, _, _ = _predict([str(clip), "--model", str(student), "--out", str(out)], tmp_path, capsys, monkeypatch)
    assert code == 0
    tracks = json.loads((out / "predictions.json").read_text())["tracks"]
    assert [(t["first_frame"], t["last_frame"]) for t in tracks] == [(0, 7), (8, 15)]
    rows = _rows(out)
    assert {r["track"] for r in rows if r["label"] and int(r["frame"]) in (1, 7)} == {"0"}
    assert {r["track"] for r in rows if r["label"] and int(r["frame"]) in (9, 15)} == {"1"}


def test_a_stopped_predict_goes_on_and_ends_with_an_unbroken_runs_rows(student, tmp_path, capsys, monkeypatch):
    from distill.predict import stream

    face, other = _faces(2)
    clip = _write_clip(tmp_path / "talk.mp4", [(face, (40, 90, 60), 30), (other, (90, 40, 60), 30)])
    args = [str(clip), "--model", str(student), "--runtime", "torch"]
    code, _, _ = _predict([*args, "--out", str(tmp_path / "whole")], tmp_path, capsys, monkeypatch)
    assert code == 0
    finish = stream.FrameLoop.finish

    def stop_at(frame):
        def stopping(self):
            if self.pending[0][0] == frame:
                raise KeyboardInterrupt
            return finish(self)

        monkeypatch.setattr(stream.FrameLoop, "finish", stopping)

    stop_at(40)  # Ctrl-C: where it stands is saved
    code, _, err = _predict(args, tmp_path, capsys, monkeypatch)
    (folder,) = (tmp_path / "w" / "predictions").iterdir()
    assert code == 130 and "stopped after frame 40" in err and "go on from frame 40" in err
    message = [line for line in err.splitlines() if line.strip() and not line.startswith("predict talk.mp4")]
    assert str((folder / "predictions.csv").resolve()) in err and len(message) == 1  # less the progress lines
    assert {int(r["frame"]) for r in _rows(folder)} == set(range(40))  # every finished frame's rows are kept
    stop_at(52)  # then as SIGKILL would: nothing saved at the stop, the rows after the last save are cut back
    monkeypatch.setattr(stream, "SAVE_EVERY", 7)  # saved after frames 42 and 49
    monkeypatch.setattr(stream, "_stop", lambda *a: None)
    code, _, _ = _predict(args, tmp_path, capsys, monkeypatch)
    assert code == 130 and {int(r["frame"]) for r in _rows(folder)} == set(range(52))
    monkeypatch.setattr(stream.FrameLoop, "finish", finish)
    code, out, _ = _predict(args, tmp_path, capsys, monkeypatch)
    assert code == 0 and re.search(r"resumed_from_frame\s+49\n", out)
    assert [p.name for p in (tmp_path / "w" / "predictions").iterdir()] == [folder.name]  # the same folder
    assert (folder / "predictions.csv").read_bytes() == (tmp_path / "whole" / "predictions.csv").read_bytes()
    assert not (folder / "progress.json").exists()
    decoded = av.open(str(folder / "annotated.mp4"))
    assert sum(1 for _ in decoded.decode(video=0)) == 60  # drawn again from the kept rows, then on
    decoded.close()


def test_the_annotated_video_has_the_sources_audio_and_frames(student, tmp_path, capsys, monkeypatch):
    (face,) = _faces(1)
    clip = _write_clip(tmp_path / "voice.mp4", [(face, (40, 90, 60), 12)], audio=True)
    out = tmp_path / "out"
    code, _, _ = _predict([str(clip), "--model", str(student), "--out", str(out)], tmp_path, capsys, monkeypatch)
    assert code == 0
    source, annotated = av.open(str(clip)), av.open(str(out / "annotated.mp4"))
    assert annotated.streams.audio and annotated.streams.audio[0].codec_context.name == "aac"
    packets = [sum(1 for p in c.demux(c.streams.audio[0]) if p.dts is not None) for c in (source, annotated)]
    assert packets[0] == packets[1] > 0
    source.close(), annotated.close()
    annotated = av.open(str(out / "annotated.mp4"))
    assert sum(1 for _ in annotated.decode(video=0)) == 12
    annotated.close()


def test_a_full_disk_keeps_the_rows_and_is_one_line_exit_2(student, tmp_path, capsys, monkeypatch):
    import errno

    from distill.predict import outputs

    (face,) = _faces(1)
    clip = _write_clip(tmp_path / "long.mp4", [(face, (40, 90, 60), 20)])
    write = outputs.Rows._write

    def full_at_frame_12(self, rows):
        if rows and rows[0]["frame"] == 12:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, rows)

    monkeypatch.setattr(outputs.Rows, "_write", full_at_frame_12)
    out = tmp_path / "out"
    code, _, err = _predict([str(clip), "--model", str(student), "--out", str(out)], tmp_path, capsys, monkeypatch)
    message = [line for line in err.splitlines() if line.strip() and not line.startswith("predict long.mp4")]
    assert code == 2 and len(message) == 1 and message[0].startswith("error: ")
    assert "No space left on device" in err and str(out.resolve()) in err and "go on from frame 12" in err
    assert {int(r["frame"]) for r in _rows(out)} == set(range(12))


@pytest.mark.skipif(not CROWD_CLIP.exists(), reason=f"no {CROWD_CLIP}")
def test_a_real_splice_of_look_alike_shots_ends_every_track(student, tmp_path, capsys, monkeypatch):
    from distill.predict.video import VideoWriter

    with av.open(str(CROWD_CLIP)) as container:
        frames = [f.to_image().resize((640, 360), Image.BILINEAR) for f in container.decode(video=0)]
    writer = VideoWriter(tmp_path / "spliced.mp4", 25, (640, 360))
    for frame in frames[:25] + frames[-25:]:  # the first and the last second: one palette, other people
        writer.write(frame)
    writer.close()
    out = tmp_path / "out"
    args = [str(tmp_path / "spliced.mp4"), "--model", str(student), "--out", str(out)]
    code, _, _ = _predict(args, tmp_path, capsys, monkeypatch)
    assert code == 0
    rows = [r for r in _rows(out) if r["track"]]
    assert json.loads((out / "predictions.json").read_text())["scene_cuts"] == [25]  # the splice, nothing else
    before = {r["track"] for r in rows if int(r["frame"]) < 25}
    after = {r["track"] for r in rows if int(r["frame"]) >= 25}
    assert before and after and not before & after
