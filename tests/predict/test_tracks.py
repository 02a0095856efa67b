"""Tracks: a face seen once is no track, a scene cut ends every track, a face that looks different is not joined
to a track it overlaps, boxes move at their track's speed, and a saved tracker goes on as the one it was saved from."""

import numpy as np
import pytest
from PIL import Image, ImageOps

from distill.predict.faces import Face, clip_box
from distill.predict.outputs import _free_place, _overlap
from distill.predict.tracks import CutDetector, Tracker, appearance, signature
from tests.conftest import CROWD_CLIP

CLASSES = ["happiness", "neutral"]
rng = np.random.default_rng(0)
LOOK_A, LOOK_B = (appearance(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)) for _ in range(2))


def _box(x):
    return np.array([x, 50.0, x + 40, 90.0])


def _run(tracker, frames, first=0):
    """frames: [[(x, look), ...] per frame from `first`]; returns each frame's track ids."""
    out = []
    for index, faces in enumerate(frames, first):
        tracks = tracker.match([_box(x) for x, _ in faces], [look for _, look in faces], index)
        for t in tracks:
            tracker.observe(t, np.array([0.8, 0.2]), index, CLASSES)
        out.append([t.id for t in tracks])
    return out


def test_a_face_seen_in_one_round_only_is_no_track():
    tracker = Tracker(0.5)
    ids = _run(tracker, [[(10, LOOK_A), (200, LOOK_B)], [(12, LOOK_A)], [(14, LOOK_A)]])
    assert ids == [[None, None], [0], [0]] and [t["track"] for t in tracker.summary(10)] == [0]


def test_a_different_face_in_the_same_place_starts_its_own_track():
    tracker = Tracker(0.5)
    ids = _run(tracker, [[(10, LOOK_A)], [(10, LOOK_A)], [(10, LOOK_B)], [(10, LOOK_B)]])
    assert ids == [[None], [0], [None], [1]]


def _cuts(frames) -> list[int]:
    """The indices of `frames` a fresh CutDetector calls cuts."""
    detector = CutDetector()
    return [i for i, frame in enumerate(frames) if detector(signature(frame))]


def test_a_cut_ends_every_track_and_is_told_by_the_colours():
    tracker = Tracker(0.5)
    _run(tracker, [[(10, LOOK_A)], [(10, LOOK_A)]])
    tracker.cut(2)
    assert tracker.live == [] and [t["last_frame"] for t in tracker.summary(10)] == [1]
    assert tracker.cuts == [2] and Tracker.from_state(tracker.state()).cuts == [2]
    green, grey = Image.new("RGB", (320, 240), (40, 90, 60)), Image.new("RGB", (320, 240), (200, 190, 180))
    shifted = Image.new("RGB", (320, 240), (40, 90, 60))
    shifted.paste(Image.new("RGB", (40, 40), (200, 0, 0)), (10, 10))  # a small change: no cut
    assert _cuts([green, grey]) == [1] and _cuts([green, shifted]) == [] and _cuts([grey]) == []


@pytest.fixture(scope="module")
def crowd():
    """The shared crowd clip's frames at 640x360 (a real, continuous shot of many people)."""
    if not CROWD_CLIP.exists():
        pytest.skip(f"no {CROWD_CLIP}")
    av = pytest.importorskip("av")
    with av.open(str(CROWD_CLIP)) as container:
        return [frame.to_image().resize((640, 360), Image.BILINEAR) for frame in container.decode(video=0)]


def test_real_cuts_between_look_alike_shots_are_seen_and_the_shot_itself_is_no_cut(crowd):
    assert _cuts(crowd) == []  # the shot: people moving, the camera still
    assert _cuts(crowd[:25] + crowd[-25:]) == [25]  # the first and last second joined: the same palette, others
    assert _cuts(crowd[:30] + [ImageOps.mirror(f) for f in crowd[30:60]]) == [30]  # mirrored: every pixel moves


def test_a_pan_over_a_real_frame_is_no_cut(crowd):
    frame = crowd[0].resize((1280, 720))
    for speed in (4, 16):  # px a frame: a slow pan, a quick one
        assert _cuts([frame.crop((speed * i, 0, speed * i + 640, 360)) for i in range(30)]) == []


def test_a_saved_cut_detector_goes_on_as_the_one_it_was_saved_from(crowd):
    whole = CutDetector()
    for frame in crowd[:20]:
        whole(signature(frame))
    again = CutDetector.from_state(whole.state())
    later = crowd[20:25] + crowd[-10:]
    assert (
        [whole(signature(f)) for f in later]
        == [again(signature(f)) for f in later]
        == [False] * 5 + [True] + [False] * 9
    )


def test_a_face_whose_look_jumps_against_its_tracks_history_starts_a_new_track():
    base = rng.integers(0, 255, (112, 112, 3)).astype(np.float32)
    other = rng.integers(0, 255, (112, 112, 3)).astype(np.float32)
    like = lambda share: appearance(((1 - share) * base + share * other).astype(np.uint8))  # noqa: E731
    steady = [[(10 + i, like(0.02 * (i % 2)))] for i in range(6)]  # the same face, frame to frame alike
    jumped = like(0.55)  # still above the fixed MIN_SIMILARITY to the last face, far below this track's usual
    assert 0.5 < float(jumped @ like(0.02)) < float(like(0.0) @ like(0.02)) - 0.3
    tracker = Tracker(0.5)
    ids = _run(tracker, [*steady, [(16, jumped)], [(17, jumped)]])
    assert ids[-3][0] == 0 and ids[-2] == [None] and ids[-1] == [1]


def test_a_track_moves_at_its_speed_and_a_saved_tracker_goes_on_alike():
    tracker = Tracker(0.5)
    _run(tracker, [[(10, LOOK_A)], [(16, LOOK_A)]])
    (track,) = tracker.live
    assert np.allclose(track.box_at(3), _box(28))  # 6 px a frame
    again = Tracker.from_state(tracker.state())
    for t in (tracker, again):
        _run(t, [[], [(28, LOOK_A)], [(34, LOOK_A)]], first=2)  # unseen at frame 2, then on at 6 px a frame
    assert tracker.state() == again.state() and again.live[0].id == 0 and again.live[0].box[0] == 34


def test_boxes_stay_inside_the_picture_and_labels_never_cover_each_other():
    assert clip_box(np.array([-5.0, -1.0, 50, 400]), (320, 240)).tolist() == [0, 0, 50, 240]
    taken = []
    for box in [(10, 10, 60, 60), (12, 12, 62, 62), (14, 8, 64, 58), (300, 0, 330, 30)]:
        rect = _free_place((80, 14), box, (320, 240), taken)
        assert 0 <= rect[0] and rect[2] <= 320 and 0 <= rect[1] and rect[3] <= 240
        assert not any(_overlap(rect, other) for other in taken)
        taken.append(rect)
    face = Face(np.array([0.0, 0, 10, 10]), np.zeros((5, 2)), 0.9)
    assert face.eye_angle == 0.0


def test_label_flips_are_counted_per_track_second_and_smoothing_lowers_them():
    flickering = [np.array([0.9, 0.1]) if i % 2 else np.array([0.2, 0.8]) for i in range(10)]
    rates = {}
    for smooth in (0.0, 0.8):
        tracker = Tracker(smooth)
        tracks = [tracker.match([_box(10)], [LOOK_A], i)[0] for i in range(10)]
        for i, (track, probs) in enumerate(zip(tracks, flickering, strict=True)):
            tracker.observe(track, probs, i, CLASSES)
        (row,) = tracker.summary(10)
        rates[smooth] = tracker.flips_per_track_second(10)
        assert row["label_flips_per_s"] == rates[smooth]
    assert rates[0.0] == 9.0 and rates[0.8] <= rates[0.0] / 3  # 9 changes in 10 frames at 10 frames/s; smoothed: few
    assert Tracker(0.5).flips_per_track_second(10) is None
