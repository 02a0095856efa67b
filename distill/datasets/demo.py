"""Real faces that ship with scikit-image, so a fresh machine has something to crop with no user data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distill.datasets.readers import Sample


def demo_samples(workdir: Path) -> list[Sample]:
    """scikit-image's LFW subset (100 faces, 25x25 grey) upscaled, plus the astronaut photo."""
    from PIL import Image
    from skimage import data

    samples = [Sample("astronaut", pixels=data.astronaut(), meta={"source": "skimage.data.astronaut"})]
    faces = data.lfw_subset()[:100]  # (200, 25, 25) float in [0,1]: first 100 are faces, the rest are not
    for i, face in enumerate(faces):
        img = Image.fromarray((face * 255).astype(np.uint8)).resize((100, 100), Image.Resampling.BICUBIC)
        # a border around the tight 25 px crop gives MTCNN the context it needs to find the face
        arr = np.pad(np.asarray(img), 30, mode="edge")
        samples.append(Sample(f"lfw_subset_{i:03d}", pixels=np.stack([arr] * 3, -1), meta={"source": "lfw_subset"}))
    return samples
