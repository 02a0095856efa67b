"""predict's frame loop over a video or a camera: frames decoded in one thread, faces detected (on both cores) and
classified in this one, the annotated copy drawn and encoded in a third. Every finished frame's rows are in the CSV;
progress.json (the CSV's length and the tracker after a frame) lets a stopped run go on where it stopped and give
the same rows as an unbroken one. A scene cut ends every track and forces a detection."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from distill.config import PredictConfig
from distill.errors import DistillError, Interrupted
from distill.predict.faces import Face, FaceFinder
from distill.predict.model import Classifier
from distill.predict.outputs import Rows, annotate, read_frames
from distill.predict.tracks import CutDetector, Tracker, appearance, signature
from distill.predict.video import Background, VideoWriter, WriterThread, audio_stream, frames
from distill.progress import progress_bar
from distill.storage.files import write_json

PROGRESS = "progress.json"
SAVE_EVERY = 25  # frames between two saves of progress.json (and at any stop)
# the frame loop's thread: where its time goes (decoding, drawing and encoding run in threads of their own; detection
# and the classification of detected faces on the workers)
STAGES = (
    "waiting for frames",
    "waiting for the workers",
    "classification here",
    "tracking and rows",
    "waiting for the writer",
)


@dataclass(frozen=True)
class VideoJob:
    """What makes two predict runs the same job: a stopped one is continued only by the same job."""

    source: str
    model: str
    settings: dict


def stopped_run(folder: Path, name: str, job: VideoJob) -> Path | None:
    """The newest folder under `folder` holding a stopped run of `job`, or None."""
    for path in sorted(folder.glob(f"*-{name}*/{PROGRESS}"), reverse=True):
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if saved.get("job") == asdict(job):
            return path.parent
    return None


@dataclass
class Resume:
    frames: int  # frames finished
    csv_bytes: int
    faces: int
    tracker: Tracker
    cuts: CutDetector  # as it was after the last finished frame


def _load_resume(out_dir: Path, job: VideoJob) -> Resume | None:
    path = out_dir / PROGRESS
    if not path.exists() or not (out_dir / "predictions.csv").exists():
        return None
    saved = json.loads(path.read_text())
    if saved["job"] != asdict(job):
        raise DistillError(
            f"{out_dir} holds a stopped run of {saved['job']['source']} with other settings or another model; "
            "give another --out, or the same command as that run to go on"
        )
    return Resume(
        saved["frames"],
        saved["csv_bytes"],
        saved["faces"],
        Tracker.from_state(saved["tracker"]),
        CutDetector.from_state(saved.get("cuts")),
    )


class FrameLoop:
    """The state of one predict over a video: what it writes, the tracker, the faces carried between detections.
    Frames go in with submit() (their detection starts on a worker thread, one detector each: LiteRT releases the
    GIL, so two detect at once on two cores) and come out, in order, with finish()."""

    def __init__(
        self, label: str, finders: list[FaceFinder], clf: Classifier, cfg: PredictConfig, out_dir: Path, fps: float
    ):
        self.label, self.clf, self.cfg, self.out_dir, self.fps = label, clf, cfg, out_dir, fps
        self.cutter = finders[0]  # cutting a carried face is pure: any finder does it
        self.idle: queue.Queue[FaceFinder] = queue.Queue()
        for finder in finders:
            self.idle.put(finder)
        self.pool = ThreadPoolExecutor(len(finders), thread_name_prefix="detect")
        self.depth = 2 * len(finders)  # frames in flight: each worker has one waiting
        self.pending: deque = deque()
        self.clock = dict.fromkeys(STAGES, 0.0)
        self.workers = {"detection": 0.0, "classification": 0.0}  # the workers' busy seconds, summed
        self.carried: list[tuple[Face, object]] = []  # (face, track) of the last detection round

    def start(self, job: VideoJob, resume: Resume | None) -> None:
        self.job = job
        self.rows = Rows(self.out_dir, self.clf.classes, resume.csv_bytes if resume else None)
        self.rows.faces = resume.faces if resume else 0
        self.tracker = resume.tracker if resume else Tracker(self.cfg.smooth)
        self.cuts = resume.cuts if resume else CutDetector()  # run on each frame as it is submitted
        self.finished_cuts = CutDetector(self.cuts.last, list(self.cuts.changes))  # as after the last finished frame
        self.first = resume.frames if resume else 0
        self.saved = self.snapshot(self.first)

    def submit(self, index: int, img: Image.Image) -> None:
        """Queue a frame; its detection starts now if it is due (every --detect-every frames, and after a cut)."""
        t0 = time.perf_counter()
        cut = self.cuts(signature(img))
        after = (self.cuts.last, tuple(self.cuts.changes))  # what a resume from this frame on needs
        due = index % self.cfg.detect_every == 0 or cut
        self.pending.append((index, img, after, cut, self.pool.submit(self._find, img) if due else None))
        self.clock["tracking and rows"] += time.perf_counter() - t0

    def full(self) -> bool:
        return len(self.pending) >= self.depth

    def _find(self, img: Image.Image) -> tuple[list[Face], np.ndarray, tuple[float, float]]:
        """On a worker: the frame's faces, their probabilities (ONNX Runtime takes calls from two threads at once)
        and the seconds detecting and classifying took."""
        finder = self.idle.get()
        try:
            t0 = time.perf_counter()
            faces = finder.find(img)
            t1 = time.perf_counter()
            return faces, self._classify(faces), (t1 - t0, time.perf_counter() - t1)
        finally:
            self.idle.put(finder)

    def _classify(self, faces: list[Face]) -> np.ndarray:
        return self.clf.probs(np.stack([f.pixels for f in faces])) if faces else np.zeros((0, len(self.clf.classes)))

    def finish(self) -> tuple[int, tuple]:
        """Classify, track and write the rows of the oldest queued frame: (its index, what its picture shows)."""
        index, img, (last, changes), cut, found = self.pending.popleft()
        t0 = time.perf_counter()
        self.finished_cuts = CutDetector(last, list(changes))
        if cut:
            self.tracker.cut(index)
        t1 = time.perf_counter()
        if found is not None:  # detected and classified on a worker
            faces, now, (detecting, classifying) = found.result()
            t2 = t3 = time.perf_counter()
            self.workers["detection"] += detecting
            self.workers["classification"] += classifying
            tracks = self.tracker.match([f.cut_box for f in faces], [appearance(f.pixels) for f in faces], index)
            self.carried = list(zip(faces, tracks, strict=True))
        else:  # the last detections, moved at their tracks' speed, cut again from this frame and classified here
            faces = [self.cutter.cut(img, _moved(face, track, index)) for face, track in self.carried]
            tracks = [track for _, track in self.carried]
            t2 = time.perf_counter()
            now = self._classify(faces)
            t3 = time.perf_counter()
        probs = [self.tracker.observe(t, p, index, self.clf.classes) for t, p in zip(tracks, now, strict=True)]
        probs = np.stack(probs) if probs else now
        ids = [t.id for t in tracks]
        self.rows.add(self.label, faces, probs, frame=index, time_s=index / self.fps, tracks=ids)
        if (index + 1) % self.cfg.detect_every == 0:  # the next frame detects: nothing carried needs saving
            self.saved = self.snapshot(index + 1)
            if self.saved["frames"] % SAVE_EVERY < self.cfg.detect_every:
                self.save()
        t4 = time.perf_counter()
        self.clock["waiting for the workers"] += t2 - t1  # or cutting carried faces
        self.clock["classification here"] += t3 - t2  # of carried faces
        self.clock["tracking and rows"] += (t1 - t0) + (t4 - t3)
        return index, (img, faces, probs, ids)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def snapshot(self, frames: int) -> dict:
        cuts = self.finished_cuts.state()
        state = {"frames": frames, "csv_bytes": self.rows.written, "faces": self.rows.faces, "cuts": cuts}
        return {"job": asdict(self.job), **state, "tracker": self.tracker.state()}

    def save(self) -> None:
        write_json(self.out_dir / PROGRESS, self.saved)


def _moved(face: Face, track, frame: int) -> Face:
    """A carried face where its track's speed says it is now (box and landmarks shifted alike)."""
    box = track.box_at(frame)
    shift = (box[:2] + box[2:]) / 2 - (track.box[:2] + track.box[2:]) / 2
    return Face(box, face.landmarks + shift, face.prob, cut_box=box)


def _draw(classes: list[str]):
    def draw(img: Image.Image, faces: list, probs: np.ndarray, ids: list) -> Image.Image:
        return annotate(img, faces, probs, classes, ids, copy=False) if faces else img  # a frame is drawn once

    return draw


@contextlib.contextmanager
def _kill_as_interrupt() -> Iterator[None]:
    """`kill` (SIGTERM) stops the loop as Ctrl-C does, so what was done is saved (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def predict_video(
    video: tuple,
    label: str,
    finders: list[FaceFinder],
    clf: Classifier,
    cfg: PredictConfig,
    out_dir: Path,
    job: VideoJob,
) -> dict:
    """Every frame of an open_video() (up to --max-frames), as FrameLoop says; an annotated video at the same rate
    with the source's audio. A stopped run (Ctrl-C, kill, a full disk) keeps its rows and says how to go on."""
    container, stream, fps, total = video
    resume = _load_resume(out_dir, job) if not job.source.startswith("camera ") else None
    loop = FrameLoop(label, finders, clf, cfg, out_dir, fps)
    loop.start(job, resume)
    replay = read_frames(out_dir / "predictions.csv", clf.classes, loop.first) if resume and cfg.annotate else {}
    limit = min(total, cfg.max_frames) if total and cfg.max_frames else (cfg.max_frames or total or None)
    audio = audio_stream(container) if cfg.annotate else None
    size = (stream.codec_context.width, stream.codec_context.height)
    writer = None
    if cfg.annotate:
        writer = WriterThread(lambda: VideoWriter(out_dir / "annotated.mp4", fps, size, audio), _draw(clf.classes))
    run = VideoRun(loop, Background(frames(container, stream, audio)), writer, replay, cfg.max_frames)
    start, error = time.perf_counter(), None
    try:
        with progress_bar(f"predict {label}", limit) as advance, _kill_as_interrupt():
            run.advance = advance
            advance(loop.first)
            run.feed()
            run.close_writer()
    except DistillError as err:  # a damaged file: what was read is kept
        error = str(err)
        run.drain()
    except KeyboardInterrupt as err:
        _stop(loop, run.reader, run.writer)
        again = "" if resume is None and job.source.startswith("camera ") else f"; {_go_on(loop)}"
        raise Interrupted(f"stopped after frame {run.done}: {_kept(loop)}{again}") from err
    except OSError as err:  # a full disk, a folder gone
        _stop(loop, run.reader, run.writer)
        raise DistillError(
            f"{err.strerror or err} while writing into {out_dir.resolve()} after frame {run.done}: {_kept(loop)}; "
            f"free some space and {_go_on(loop)}"
        ) from err
    finally:
        run.reader.close()
        loop.close()
        container.close()
    run.close_writer()  # the stream broke off: the annotated video keeps what was read
    if run.done == 0:
        raise DistillError(error or f"{label}: no video frame could be decoded")
    seconds = time.perf_counter() - start
    busy = {"decoding": run.reader.busy, "drawing and encoding": run.writer_busy}
    return _finish(loop, run.done, seconds, busy, error)


def _kept(loop: FrameLoop) -> str:
    return f"the rows of every finished frame are in {loop.rows.path.resolve()}"


def _go_on(loop: FrameLoop) -> str:
    return f"run the same command again to go on from frame {loop.saved['frames']}"


class VideoRun:
    """One video's frames through the FrameLoop: read in a thread (`reader`), classified, handed in order to the
    annotated video's `writer` (or None); frames a stopped run finished are only drawn again from `replay`."""

    def __init__(self, loop: FrameLoop, reader: Background, writer, replay: dict, max_frames: int | None):
        self.loop, self.reader, self.writer, self.replay, self.max_frames = loop, reader, writer, replay, max_frames
        self.done = loop.first  # frames finished, counting those of a run this one goes on from
        self.writer_busy = 0.0
        self.advance = lambda n=1: None  # the progress bar's, once it is shown

    def feed(self) -> None:
        """Every frame the reader gives, up to max_frames, and the audio packets beside them; then the rest."""
        for index, img, packet in _timed(self.reader, self.loop.clock):
            if packet is not None:
                self._put("audio", packet)
                continue
            if self.max_frames and index >= self.max_frames:
                break
            if index < self.loop.first:  # a frame a stopped run finished: only its picture is drawn again
                self._put("frame", _replayed(img, self.replay.get(index, [])))
                continue
            self.loop.submit(index, img)
            while self.loop.full():
                self.finish_one()
        self.drain()

    def finish_one(self) -> None:
        index, shown = self.loop.finish()
        t0 = time.perf_counter()
        self._put("frame", shown)
        self.loop.clock["waiting for the writer"] += time.perf_counter() - t0
        self.done = index + 1
        self.advance()

    def drain(self) -> None:
        while self.loop.pending:
            self.finish_one()

    def close_writer(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer_busy, self.writer = self.writer.busy, None

    def _put(self, kind: str, value) -> None:
        if self.writer is not None:
            self.writer.put(kind, value)


def _replayed(img: Image.Image, shown: list) -> tuple:
    """What a finished frame's picture showed, from its CSV rows (read_frames)."""
    probs = np.stack([p for _, p, _ in shown]) if shown else None
    return img, [f for f, _, _ in shown], probs, [t for _, _, t in shown]


def _timed(reader: Background, clock: dict) -> Iterator:
    """The reader's items, the time spent waiting for each counted as "waiting for frames"."""
    items = iter(reader)
    while True:
        t0 = time.perf_counter()
        item = next(items, None)
        clock["waiting for frames"] += time.perf_counter() - t0
        if item is None:
            return
        yield item


def _stop(loop: FrameLoop, reader: Background, writer: WriterThread | None) -> None:
    """After Ctrl-C, kill or a full disk: save where the run stands and close the annotated video if it can be."""
    reader.close()
    with contextlib.suppress(OSError, DistillError):
        loop.save()
    if writer is not None:
        with contextlib.suppress(Exception):
            writer.close()


def _finish(loop: FrameLoop, done: int, seconds: float, threads: dict, error: str | None) -> dict:
    """Close the rows (JSON twin with the tracks), drop progress.json, and the summary: frames/s, the ratio to the
    video's rate, and ms a frame of each thread's stages, each figure saying what it counts."""
    track_rows = loop.tracker.summary(loop.fps)
    loop.rows.close({"source": loop.label, "fps": loop.fps, "scene_cuts": loop.tracker.cuts, "tracks": track_rows})
    (loop.out_dir / PROGRESS).unlink(missing_ok=True)
    frames_now = max(done - loop.first, 1)
    waiting = ("waiting for frames", "waiting for the workers", "waiting for the writer")
    working = {**loop.workers, **threads, "frame loop": sum(v for k, v in loop.clock.items() if k not in waiting)}
    per_frame = lambda seconds: {k: round(1000 * v / frames_now, 1) for k, v in seconds.items()}  # noqa: E731
    summary = {
        "frames": done,
        "faces": loop.rows.faces,
        "tracks": len(track_rows),
        "scene_cuts": len(loop.tracker.cuts),
        "label_flips_per_track_second": loop.tracker.flips_per_track_second(loop.fps),
        "frames_per_s": round(frames_now / seconds, 2),
        "of_the_video_rate": f"{frames_now / seconds / loop.fps:.2f}x its {loop.fps:g} frames/s",
        "detection_share": f"detection took {working['detection'] / sum(working.values()):.0%} of the busy time "
        "of all threads (detecting, classifying, decoding, encoding, the frame loop)",
        "frame_loop_ms_a_frame": per_frame(loop.clock),
        "workers_ms_a_frame": per_frame(loop.workers),
        "other_threads_ms_a_frame": per_frame(threads),
        "csv": str(loop.rows.path.resolve()),
        "video": str((loop.out_dir / "annotated.mp4").resolve()) if loop.cfg.annotate else None,
    }
    if loop.first:
        summary["resumed_from_frame"] = loop.first
    return summary | ({"stopped": error} if error else {})
