"""Video in and out with PyAV (FFmpeg's libraries): frames of a file or a camera decoded in a thread of their own,
and an annotated copy at the same frame rate, encoded in another, with the source's audio stream copied across."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

from PIL import Image

from distill.errors import DistillError

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v"}
QUEUE_FRAMES = 8  # decoded frames waiting (8 1080p RGB frames: 50 MB)


def _av():
    try:
        import av
    except ImportError as err:  # pragma: no cover - a dependency
        raise DistillError("video needs PyAV: pip install av (make setup installs it)") from err
    return av


def _reason(err: Exception) -> str:
    """FFmpeg's message without its raw error number ('[Errno 1094995529] Invalid data...')."""
    text = getattr(err, "strerror", None) or str(err)
    return str(text).splitlines()[0]


def open_video(source: Path | int):
    """(container, stream, fps, frame count or 0) of a video file, or of camera N (/dev/videoN, Linux)."""
    av = _av()
    try:
        if isinstance(source, int):
            container = av.open(f"/dev/video{source}", format="v4l2")
        else:
            container = av.open(str(source))
    except (av.FFmpegError, OSError) as err:
        what = f"camera {source}" if isinstance(source, int) else str(source)
        raise DistillError(f"{what} cannot be read as a video: {_reason(err)}") from err
    if not container.streams.video:
        container.close()
        raise DistillError(f"{source} has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # FFmpeg's own decoding threads
    fps = float(stream.average_rate or stream.guessed_rate or 25)
    return container, stream, fps, int(stream.frames or 0)


def audio_stream(container):
    """The container's first audio stream, or None."""
    return container.streams.audio[0] if container.streams.audio else None


def frames(container, stream, audio=None) -> Iterator[tuple[int, Image.Image | None, object]]:
    """(index, RGB picture, None) for each decodable frame and (-1, None, packet) for each packet of `audio`, in the
    file's order; a damaged stream ends the iteration with an error that says where."""
    av = _av()
    index = -1
    try:
        for packet in container.demux([s for s in (stream, audio) if s is not None]):
            if packet.stream is audio:
                if packet.dts is not None:  # not the demuxer's empty end-of-stream packet
                    yield -1, None, packet
                continue
            for frame in packet.decode():
                index += 1
                yield index, frame.to_image(), None
    except av.FFmpegError as err:
        raise DistillError(f"the video stops being readable after frame {index}: {_reason(err)}") from err


class Background:
    """Runs a producer (`frames` of a video) in a thread, a few items ahead; its error comes out where it stood."""

    def __init__(self, items: Iterator, size: int = QUEUE_FRAMES):
        self.items, self.queue, self.stop = items, queue.Queue(size), threading.Event()
        self.busy = 0.0  # seconds spent producing (decoding), not waiting
        self.thread = threading.Thread(target=self._run, daemon=True, name="video-reader")
        self.thread.start()

    def _run(self) -> None:
        try:
            items, t0 = iter(self.items), time.perf_counter()
            for item in items:
                self.busy += time.perf_counter() - t0
                while not self.stop.is_set():
                    try:
                        self.queue.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self.stop.is_set():
                    return
                t0 = time.perf_counter()
            self.queue.put(("end", None))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, who raises it
            self.queue.put(("error", err))

    def __iter__(self):
        while True:
            kind, value = self.queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


class VideoWriter:
    """An H.264 (or MPEG-4 Part 2, where this FFmpeg lacks an H.264 encoder) file of RGB pictures at `fps`, with a
    copy of an audio stream when given one."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], audio=None):
        av = _av()
        self.container = av.open(str(path), "w")
        rate = Fraction(fps).limit_denominator(1001)
        for codec in ("libx264", "h264", "mpeg4"):
            try:
                self.stream = self.container.add_stream(codec, rate=rate)
                break
            except (av.FFmpegError, ValueError):
                continue
        else:  # pragma: no cover - every FFmpeg build has mpeg4
            raise DistillError("no video encoder (libx264, h264, mpeg4) in this PyAV's FFmpeg")
        if self.stream.codec_context.name == "libx264":
            self.stream.options = {"preset": "ultrafast"}  # encoding beside the frame loop must cost little
        # yuv420p wants even sides
        self.stream.width, self.stream.height = size[0] - size[0] % 2, size[1] - size[1] % 2
        self.stream.pix_fmt = "yuv420p"
        self.audio = self.container.add_stream_from_template(audio) if audio is not None else None
        self.av = av

    def write(self, picture: Image.Image) -> None:
        size = (self.stream.width, self.stream.height)
        frame = self.av.VideoFrame.from_image(picture if picture.size == size else picture.crop((0, 0, *size)))
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def write_audio(self, packet) -> None:
        if self.audio is not None:
            packet.stream = self.audio
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


class WriterThread:
    """A VideoWriter fed from a queue by a thread of its own: drawing and encoding run beside detection. `draw`
    turns a queued frame into the picture to write. An error (a full disk) is raised at the next put or close."""

    def __init__(self, make: Callable[[], VideoWriter], draw: Callable[..., Image.Image]):
        self.make, self.draw, self.queue = make, draw, queue.Queue(QUEUE_FRAMES)
        self.error: BaseException | None = None
        self.writer: VideoWriter | None = None
        self.busy = 0.0  # seconds spent drawing and encoding
        self.thread = threading.Thread(target=self._run, daemon=True, name="video-writer")
        self.thread.start()

    def _run(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                t0 = time.perf_counter()
                self.writer = self.writer or self.make()
                kind, value = item
                if kind == "audio":
                    self.writer.write_audio(value)
                else:
                    self.writer.write(self.draw(*value))
                self.busy += time.perf_counter() - t0
            if self.writer is not None:
                self.writer.close()
        except BaseException as err:  # noqa: BLE001 - raised in the caller's thread
            self.error = err
            while self.queue.get() is not None:  # let the caller finish putting
                pass

    def put(self, kind: str, value) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((kind, value))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
