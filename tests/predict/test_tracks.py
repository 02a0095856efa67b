"""Tracks: a face seen once is no track, a scene cut ends every track, a face that looks different is not joined
to a track it overlaps, boxes move at their track's speed, and a saved tracker goes on as the one it was saved from."""

import numpy as np
from PIL import Image

from distill.predict.faces import Face, clip_box
from distill.predict.outputs import _free_place, _overlap
from distill.predict.tracks import Tracker, appearance, colour_histogram, is_cut

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


def test_a_cut_ends_every_track_and_is_told_by_the_colours():
    tracker = Tracker(0.5)
    _run(tracker, [[(10, LOOK_A)], [(10, LOOK_A)]])
    tracker.cut()
    assert tracker.live == [] and [t["last_frame"] for t in tracker.summary(10)] == [1]
    green, grey = Image.new("RGB", (320, 240), (40, 90, 60)), Image.new("RGB", (320, 240), (200, 190, 180))
    shifted = Image.new("RGB", (320, 240), (40, 90, 60))
    shifted.paste(Image.new("RGB", (40, 40), (200, 0, 0)), (10, 10))  # a small change: no cut
    assert is_cut(colour_histogram(green), colour_histogram(grey))
    assert not is_cut(colour_histogram(green), colour_histogram(shifted)) and not is_cut(None, colour_histogram(grey))


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
