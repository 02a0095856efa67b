"""Held-out accuracy and UAR of a fitted VGG-S, plain and with each face's posterior averaged with its mirror's.

Usage: python experiments/mirror_average.py TEACHER/teacher.pt LABELLED_STORE TEACHER/test-keys.txt
(LABELLED_STORE: the store fit-teacher trained from, e.g. WORKDIR/teachers/crops/fer2013-train-labelled-whole.h5)
"""

import sys

import numpy as np
import torch

from distill.datasets.emotions import canonical
from distill.faces import augment
from distill.faces.store import FaceStore
from distill.teachers.build import build_teacher

t = build_teacher(f"vgg_s:{sys.argv[1]}?mirror=0")  # one pass; the mirror average is made below
store = FaceStore(sys.argv[2])
keys = set(open(sys.argv[3]).read().split())
idx = [i for i, k in enumerate(store.keys) if k in keys]
y = np.array([t.classes.index(canonical(store.labels[i]) or store.labels[i]) for i in idx])
plain, flip = [], []
with torch.no_grad():
    for s in range(0, len(idx), 256):
        x = augment.to_float(np.stack([store.pixels(i) for i in idx[s : s + 256]]))
        a = t(x)
        b = t(x.flip(-1))
        plain.append(a.argmax(1))
        flip.append((a.softmax(1) + b.softmax(1)).argmax(1))
p = torch.cat(plain).numpy()
f = torch.cat(flip).numpy()


def uar(pred):
    return np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)])


print(
    f"{len(y)} faces: plain accuracy {(p == y).mean():.4f} UAR {uar(p):.4f}; "
    f"mirror-averaged accuracy {(f == y).mean():.4f} UAR {uar(f):.4f}"
)
