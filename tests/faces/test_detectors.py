"""The detector registry: BlazeFace (LiteRT) finds the faces MTCNN finds, in MTCNN's framing and with the eyes in
MTCNN's order, so a crop or a prediction is cut the same way whichever found the face."""

import h5py
import numpy as np
import pytest
from PIL import Image

from distill.datasets.demo import demo_samples
from distill.faces.detectors import Detections, box_iou, make_detector, min_face_for, one_box_a_face
from tests.conftest import CROWD_CLIP
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return [Image.fromarray(s.pixels).convert("RGB") for s in demo_samples(tmp_path_factory.mktemp("d"))[1:21]]


def _best(found, min_prob):
    keep = found.probs >= min_prob
    i = int(np.argmax(np.where(keep, found.probs, -1)))
    return found.boxes[i], found.landmarks[i]


def test_blazeface_keeps_mtcnns_faces_in_mtcnns_framing(photos):
    mtcnn, blaze = make_detector("mtcnn", 20), make_detector("blazeface", 20)
    references = matched = 0
    for img in photos:
        reference, found = mtcnn.detect([img])[0], blaze.detect([img])[0]
        if reference is None or not (reference.probs >= 0.9).any():
            continue
        references += 1
        if found is None or not (found.probs >= 0.6).any():
            continue
        (box, eyes), (ref_box, ref_eyes) = _best(found, 0.6), _best(reference, 0.9)
        side = max(ref_box[2] - ref_box[0], ref_box[3] - ref_box[1])
        assert box_iou(ref_box, box[None])[0] > 0.5
        assert np.abs(eyes[:2] - ref_eyes[:2]).max() < 0.12 * side  # the same eyes, the picture's left one first
        matched += 1
    assert references >= 18 and matched >= 0.9 * references


def test_a_face_too_small_for_the_whole_picture_is_found_in_a_tile(photos):
    canvas = Image.new("RGB", (1280, 720), (90, 90, 90))
    canvas.paste(photos[0].resize((100, 100)), (900, 500))  # a face of about 50 px: 5 px in the whole-picture model
    found = make_detector("blazeface", 20).detect([canvas])[0]
    assert found is not None
    box = found.boxes[np.argmax(found.probs)]
    assert 890 < box[0] < 980 and 490 < box[1] < 580 and found.probs.max() >= 0.5


def test_the_smallest_face_is_a_share_of_the_picture_unless_given():
    assert min_face_for((640, 360), None) == 18 and min_face_for((1920, 1080), None) == 54
    assert min_face_for((250, 250), None) == 16 and min_face_for((1920, 1080), 20) == 20


def test_crop_with_blazeface_records_its_detector_and_lists_detectors(face_photos, tmp_path, capsys, monkeypatch):
    code, out, _ = run_cli(["list", "detectors"], tmp_path / "w", capsys, monkeypatch)
    assert code == 0 and "blazeface" in out and "mtcnn" in out
    store = tmp_path / "s.h5"
    code, _, _ = run_cli(
        ["crop", str(face_photos), "--detector", "blazeface", "--out", str(store)], tmp_path / "w", capsys, monkeypatch
    )
    assert code == 0
    with h5py.File(store) as f:
        assert f.attrs["detector"] == "blazeface" and len(f["pixels"]) >= 10
    code, _, err = run_cli(["crop", str(face_photos), "--detector", "nosuch"], tmp_path / "w", capsys, monkeypatch)
    assert code == 2 and "unknown detector 'nosuch'; valid detectors: blazeface, mtcnn" in err


def _holds_two_centres(boxes: np.ndarray) -> bool:
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    return any(
        sum(b[0] < c[0] < b[2] and b[1] < c[1] < b[3] for j, c in enumerate(centres) if j != i) >= 2
        for i, b in enumerate(boxes)
    )


def test_a_box_over_two_faces_is_dropped_and_each_face_keeps_its_own():
    boxes = np.array([[290, 30, 428, 175], [295, 40, 355, 110], [365, 45, 425, 115], [600, 40, 660, 110.0]])
    found = one_box_a_face(Detections(boxes, np.array([0.9, 0.8, 0.8, 0.7]), np.zeros((4, 5, 2))))
    assert found.boxes.tolist() == boxes[1:].tolist() and found.probs.tolist() == [0.8, 0.8, 0.7]
    big = np.array([[0, 0, 200, 200], [80, 80, 120, 120.0]])  # a face with one small false box inside: both stay
    assert len(one_box_a_face(Detections(big, np.ones(2), np.zeros((2, 5, 2)))).boxes) == 2


@pytest.mark.skipif(not CROWD_CLIP.exists(), reason=f"no {CROWD_CLIP}")
def test_no_box_holds_two_other_faces_on_real_crowd_frames():
    av = pytest.importorskip("av")
    blaze = make_detector("blazeface")
    with av.open(str(CROWD_CLIP)) as container:
        frames = [f.to_image() for i, f in enumerate(container.decode(video=0)) if i % 20 == 0]
    found = [blaze.detect([frame])[0] for frame in frames]
    assert sum(len(f.boxes) for f in found if f is not None) >= 2 * len(frames)  # a crowd: faces in every frame
    assert not any(_holds_two_centres(f.boxes) for f in found if f is not None)
