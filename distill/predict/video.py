"""Video in and out with PyAV (FFmpeg's libraries): frames of a file or a camera, and an annotated copy at the
same frame rate."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from PIL import Image

from distill.errors import DistillError

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v"}


def _av():
    try:
        import av
    except ImportError as err:  # pragma: no cover - a dependency
        raise DistillError("video needs PyAV: pip install av (make setup installs it)") from err
    return av


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
        raise DistillError(f"{what} cannot be read as a video: {str(err).splitlines()[0]}") from err
    if not container.streams.video:
        container.close()
        raise DistillError(f"{source} has no video stream")
    stream = container.streams.video[0]
    fps = float(stream.average_rate or stream.guessed_rate or 25)
    return container, stream, fps, int(stream.frames or 0)


def frames(container, stream) -> Iterator[tuple[int, Image.Image]]:
    """(index, RGB picture) of each decodable frame; a damaged stream ends the iteration with an error that
    says where."""
    av = _av()
    index = -1
    try:
        for index, frame in enumerate(container.decode(stream)):
            yield index, frame.to_image()
    except av.FFmpegError as err:
        raise DistillError(f"the video stops being readable after frame {index}: {str(err).splitlines()[0]}") from err


class VideoWriter:
    """An H.264 (or MPEG-4 Part 2, where this FFmpeg lacks an H.264 encoder) file of RGB pictures at `fps`."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
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
        # yuv420p wants even sides
        self.stream.width, self.stream.height = size[0] - size[0] % 2, size[1] - size[1] % 2
        self.stream.pix_fmt = "yuv420p"
        self.av = av

    def write(self, picture: Image.Image) -> None:
        size = (self.stream.width, self.stream.height)
        frame = self.av.VideoFrame.from_image(picture if picture.size == size else picture.crop((0, 0, *size)))
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
