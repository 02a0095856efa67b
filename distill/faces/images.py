"""Safe image loading: every way a file can be bad becomes a BadImage with a one-line reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from distill.config import MAX_PIXELS, MIN_SIDE


class BadImage(Exception):
    """Not usable; str(err) is 'kind: detail', kind being the manifest's skip category."""


def _to_rgb(img: Image.Image) -> tuple[Image.Image, str]:
    """Convert any PIL mode to 8-bit RGB; returns (image, note about the conversion or '')."""
    mode = img.mode
    if mode == "RGB":
        return img, ""
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8)).convert("RGB"), f"rescaled from {mode}"
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (128, 128, 128, 255))  # alpha composited on mid-grey
        return Image.alpha_composite(background, rgba).convert("RGB"), f"alpha composited ({mode})"
    return img.convert("RGB"), f"converted from {mode}"


def load_rgb(path: Path, min_side: int = MIN_SIDE, max_pixels: int = MAX_PIXELS) -> tuple[Image.Image, str]:
    """Open, fully decode and convert to RGB; raise BadImage with the reason otherwise.

    The bomb check reads the header (`Image.open` is lazy) and compares width x height with `max_pixels` before
    anything is decoded. It is a plain comparison, not PIL's DecompressionBombWarning turned into an error: warning
    filters are process-global, and decoding runs in threads, so one thread leaving `catch_warnings` switched the
    check off for another (a 67 Mpx image was then decoded in full)."""
    try:
        size = path.stat().st_size
    except OSError as err:  # dangling link, symlink loop, vanished file
        raise BadImage(f"unreadable: {err.strerror or err}") from err
    if size == 0:
        raise BadImage("empty: zero-byte file")
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise BadImage(f"bomb: {width}x{height} px = {width * height:,} px > the limit of {max_pixels:,}")
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb, note = _to_rgb(img)
    except BadImage:
        raise
    except Image.DecompressionBombError as err:  # PIL's own, far larger limit (2 x its MAX_IMAGE_PIXELS)
        raise BadImage(f"bomb: {err}".splitlines()[0][:200]) from err
    except PermissionError as err:
        raise BadImage("unreadable: permission denied") from err
    except UnidentifiedImageError as err:
        raise BadImage("not-an-image: cannot identify image file") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise BadImage(f"corrupt: {err}".splitlines()[0][:200]) from err
    if min(rgb.size) < min_side:
        raise BadImage(f"too-small: {rgb.size[0]}x{rgb.size[1]} px (minimum side {min_side})")
    return rgb, note


def aligned_crop(
    img: Image.Image, box: np.ndarray, landmarks: np.ndarray | None, size: int, margin: float, align: bool = True
) -> np.ndarray:
    """Square crop around the face, rotated so the eyes are level; side = max(box w, h) * (1 + margin).

    PIL's affine transform maps each output pixel (u, v) to the input point A @ (u, v, 1); we build A from
    centre, scale and eye angle. PIL has no antialiasing there, so big shrinks first reduce the image.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * (1 + margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    angle = 0.0
    if align and landmarks is not None:
        (lx, ly), (rx, ry) = landmarks[0], landmarks[1]  # MTCNN order: left eye, right eye, nose, mouth l, r
        angle = float(np.arctan2(ry - ly, rx - lx))
    factor = max(1, int(side / size / 2))
    if factor > 1:
        img = img.reduce(factor)
        side, cx, cy = side / factor, cx / factor, cy / factor
    k = side / size
    cos, sin = np.cos(angle) * k, np.sin(angle) * k
    half = size / 2
    tx, ty = cx - cos * half + sin * half, cy - sin * half - cos * half
    img, (tx, ty) = _pad_edges(img, cos, sin, tx, ty, size)
    coeffs = (cos, -sin, tx, sin, cos, ty)
    out = img.transform((size, size), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


def _pad_edges(img: Image.Image, cos: float, sin: float, tx: float, ty: float, size: int):
    """Replicate border pixels where the crop leaves the photo, so no black wedges teach the student."""
    u = np.array([0, size, 0, size])
    v = np.array([0, 0, size, size])
    xs, ys = cos * u - sin * v + tx, sin * u + cos * v + ty
    w, h = img.size
    left, top = max(0, int(np.ceil(-xs.min())) + 1), max(0, int(np.ceil(-ys.min())) + 1)
    right, bottom = max(0, int(np.ceil(xs.max() - w)) + 1), max(0, int(np.ceil(ys.max() - h)) + 1)
    if not (left or top or right or bottom):
        return img, (tx, ty)
    arr = np.pad(np.asarray(img), ((top, bottom), (left, right), (0, 0)), mode="edge")
    return Image.fromarray(arr), (tx + left, ty + top)
