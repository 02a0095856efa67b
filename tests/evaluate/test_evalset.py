"""Which labelled images an evaluation scores."""

import numpy as np
import pytest

from distill.datasets.readers import Sample
from distill.errors import DistillError
from distill.evaluate.evalset import EvalSet, one_label_each, only_keys
from distill.evaluate.render import markdown_report


def test_a_key_listed_with_two_labels_is_left_out_and_a_plain_repeat_is_scored_once():
    samples = [
        Sample("a.jpg", label="sadness"),
        Sample("b.jpg", label="happiness"),
        Sample("a.jpg", label="surprise"),
        Sample("b.jpg", label="happiness"),
        Sample("c.jpg", label=None),
    ]
    kept, ambiguous = one_label_each(samples)
    assert [s.key for s in kept if s.label] == ["b.jpg"]
    assert ambiguous == {"a.jpg": ["sadness", "surprise"]}


def test_the_report_says_which_keys_were_left_out_and_why():
    evalset = EvalSet(
        ["b.jpg"], np.zeros((1, 8, 8, 3), np.uint8), ["happiness"], {}, 1, {"a.jpg": ["sadness", "surprise"]}
    )
    text = markdown_report("dev", [], evalset)
    assert "1 left out, listed with different labels: a.jpg (sadness / surprise)" in text.splitlines()[2]


def test_the_report_of_a_no_crop_evaluation_says_so():
    evalset = EvalSet(["b.jpg"], np.zeros((1, 8, 8, 3), np.uint8), ["happiness"], {}, 0, detected=False)
    assert "all 1 whole images, resized (--no-crop)" in markdown_report("dev", [], evalset).splitlines()[2]


def test_a_keys_file_naming_images_the_set_lacks_is_refused(tmp_path):
    samples = [Sample("a.jpg", label="sadness"), Sample("b.jpg", label="happiness")]
    keys = tmp_path / "keys.txt"
    keys.write_text("a.jpg\nb.jpg\n")
    assert [s.key for s in only_keys(samples, keys)] == ["a.jpg", "b.jpg"]
    keys.write_text("a.jpg\nz.jpg\n")
    with pytest.raises(
        DistillError, match=r"1 of the 2 keys in .*keys.txt name no image of this dataset \(e.g. z.jpg\)"
    ):
        only_keys(samples, keys)
