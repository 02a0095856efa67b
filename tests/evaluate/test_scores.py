"""score(): the decision rule is the model's, whatever labels the scored faces happen to have."""

import numpy as np

from distill.datasets.emotions import FER2013
from distill.evaluate.scores import score

rng = np.random.default_rng(0)


def test_a_subset_of_two_label_classes_is_scored_by_the_models_seven_way_argmax():
    logits = rng.normal(size=(400, 7)).astype(np.float32)
    labels = list(rng.choice(["happiness", "neutral"], 400))
    result = score(logits, labels, list(FER2013))
    argmax = np.array(FER2013)[logits.argmax(1)]
    assert result["classes"] == list(FER2013)
    assert abs(result["accuracy"] - float((argmax == np.array(labels)).mean())) < 1e-6  # about 1/7, not 1/2
    assert result["accuracy"] < 0.25 and result["data_only_classes"] == []


def test_one_label_class_is_scored_not_a_crash_and_contempt_is_excluded():
    logits = np.eye(7, dtype=np.float32)[[3, 3, 6, 3]]  # happiness, happiness, neutral, happiness
    result = score(logits, ["happiness", "happiness", "happiness", "contempt"], list(FER2013))
    assert result["n_scored"] == 3 and result["n_excluded"] == 1 and result["data_only_classes"] == ["contempt"]
    assert abs(result["accuracy"] - 2 / 3) < 1e-6 and abs(result["uar"] - 2 / 3) < 1e-6
