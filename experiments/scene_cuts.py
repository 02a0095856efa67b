"""What predict's cut detector sees on a real clip: the pixel change and colour distance between frames of the shot,
at splices of two segments of it (the same palette, other people) and over pans of one of its frames.

Usage: python experiments/scene_cuts.py [VIDEO]   (default: ../shared/data/videos/people-1080p.mp4)
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps

from distill.predict.tracks import CutDetector, colour_distance, pixel_change, signature

VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "people-1080p.mp4"


def cuts(frames: list[Image.Image]) -> list[int]:
    detector = CutDetector()
    return [i for i, frame in enumerate(frames) if detector(signature(frame))]


def jump(a: Image.Image, b: Image.Image) -> str:
    sa, sb = signature(a), signature(b)
    colours = colour_distance(sa.histogram, sb.histogram)
    return f"pixel change {pixel_change(sa.grey, sb.grey):.1f}, colour distance {colours:.3f}"


def main(video: Path) -> None:
    with av.open(str(video)) as container:
        frames = [f.to_image() for f in container.decode(video=0)]
    sigs = [signature(f) for f in frames]
    changes = [pixel_change(a.grey, b.grey) for a, b in zip(sigs, sigs[1:], strict=False)]
    print(
        f"{video.name}: {len(frames)} frames; pixel change between frames: median {np.median(changes):.2f}, "
        f"max {max(changes):.2f}; cuts found: {cuts(frames)}"
    )
    second = len(frames) // 4
    print(
        f"first and last second joined: {jump(frames[second - 1], frames[-second])}; "
        f"cuts at {cuts(frames[:second] + frames[-second:])} (splice at {second})"
    )
    half = len(frames) // 2
    mirrored = frames[:half] + [ImageOps.mirror(f) for f in frames[half:]]
    print(
        f"second half mirrored: {jump(frames[half - 1], mirrored[half])}; cuts at {cuts(mirrored)} (splice at {half})"
    )
    base = frames[0].resize((frames[0].width * 2, frames[0].height * 2))
    for speed in (4, 16):
        pan = [base.crop((speed * i, 0, speed * i + frames[0].width, frames[0].height)) for i in range(30)]
        print(f"pan of {speed} px a frame over 30 frames: cuts at {cuts(pan)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else VIDEO)
