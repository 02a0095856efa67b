"""Each teacher's accuracy on expressions-dev's MTCNN crops at several framings (the central share of the stored
face it sees), the measurement behind the teachers' registered framing (docs/results.md).
Usage: python experiments/framing.py EVAL_STORE SPEC [SPEC ...]   (EVAL_STORE: the crops `distill eval csv` made,
e.g. distill-work/evals/crops/csv-expressions-dev-112.h5; one that does not exist yet is cropped there).
ALIGN=0 crops without levelling the eyes (into a new EVAL_STORE): alignment on against off, per teacher."""

import os
import sys
from pathlib import Path

from distill.datasets.readers import read_dataset
from distill.evaluate.evalset import load_cropped
from distill.evaluate.scores import predict, score
from distill.teachers.build import build_teacher

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "expressions-dev"

if __name__ == "__main__":
    samples, _ = read_dataset("csv", SHARED)
    faces = load_cropped(samples, Path(sys.argv[1]), 112, align=os.environ.get("ALIGN", "1") != "0")
    for spec in sys.argv[2:]:
        for crop in (1.0, 0.9, 0.8, 0.7):
            teacher = build_teacher("+".join(f"{member}?crop={crop}" for member in spec.split("+")))
            result = score(predict(teacher, faces.pixels), faces.labels, list(teacher.classes))
            print(f"{spec} crop {crop}: accuracy {100 * result['accuracy']:.2f}, UAR {100 * result['uar']:.2f}")
