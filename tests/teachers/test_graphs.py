"""Teachers a user brings as graph files: ONNX and TorchScript / torch.export, exported by distill or not."""

import pytest
import torch
from torch import nn

from distill.config import LabelConfig, TrainConfig
from distill.errors import DistillError
from distill.export.formats import export_model
from distill.labelling.label import label
from distill.students.model import Student
from distill.teachers.build import build_teacher
from distill.training.train import train

CLASSES = ["anger", "happiness", "neutral"]


@pytest.fixture(scope="module")
def student():
    torch.manual_seed(0)
    return Student("squeezenet1_1_bn", CLASSES, size=32, grey=False).eval()


class Softmaxed(nn.Module):
    """A foreign classifier that ends in a softmax: 5 probabilities per face of 24x24 RGB in [0, 1]."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3), nn.Linear(4, 5)

    def forward(self, x):
        return torch.softmax(self.fc(self.conv(x).mean((2, 3))), 1)


def _faces(n=4, side=40):
    return torch.rand(n, 3, side, side)


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_a_graph_distill_exported_reads_back_as_the_same_teacher(tmp_path, student, fmt):
    path = tmp_path / f"student.{fmt}"
    export_model(student, path, fmt)
    kind = "onnx" if fmt == "onnx" else "torchscript"
    teacher = build_teacher(f"{kind}:{path}")
    faces = _faces()
    assert teacher.classes == CLASSES  # from the file's metadata: no options needed
    with torch.no_grad():
        assert torch.allclose(teacher(faces), student(faces), atol=1e-4)


def test_a_foreign_onnx_graph_of_probabilities_teaches_with_their_log(tmp_path):
    net = Softmaxed().eval()
    path = tmp_path / "foreign.onnx"
    torch.onnx.export(net, (torch.rand(1, 3, 24, 24),), str(path), input_names=["x"], dynamo=False)
    names = "anger,happiness,neutral,sadness,surprise"
    teacher = build_teacher(f"onnx:{path}?classes={names}")  # the side (24) is read from the graph's input
    faces = torch.rand(3, 3, 24, 24)
    with torch.no_grad():
        assert torch.allclose(teacher(faces).softmax(1), net(faces), atol=1e-5)
    assert teacher.classes == names.split(",") and teacher.preprocess.size == 24


def test_a_torchscript_archive_needs_its_side_and_classes(tmp_path):
    path = tmp_path / "foreign.ts"
    torch.jit.save(torch.jit.script(Softmaxed().eval()), str(path))
    with pytest.raises(DistillError, match=r"give the graph's input side with \?size=S"):
        build_teacher(f"torchscript:{path}?classes=a,b,c,d,e")
    with pytest.raises(DistillError, match="has 5 outputs but 3 class names were given"):
        build_teacher(f"torchscript:{path}?size=24&classes=a,b,c")
    teacher = build_teacher(f"torchscript:{path}?size=24&classes=anger,fear,happiness,neutral,sadness")
    assert teacher(torch.rand(2, 3, 48, 48)).shape == (2, 5)


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        ("onnx", "junk.onnx", "is not an ONNX model"),
        ("torchscript", "junk.ts", "is not a TorchScript archive"),
        ("torchscript", "junk.pt2", "is not a torch.export program"),
        ("onnx", "missing.onnx", "onnx model file .* not found"),
    ],
)
def test_a_file_that_is_not_what_it_claims_is_one_line(tmp_path, kind, name, message):
    if name != "missing.onnx":
        (tmp_path / name).write_bytes(b"not a model at all\n" * 10)
    with pytest.raises(DistillError, match=message) as err:
        build_teacher(f"{kind}:{tmp_path / name}")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_an_exported_graph_labels_a_store_and_teaches_a_student(tmp_path, student, face_store, fmt):
    path = tmp_path / f"teacher.{fmt}"
    export_model(student, path, fmt)
    spec = f"{'onnx' if fmt == 'onnx' else 'torchscript'}:{path}"
    cache = tmp_path / "cache.h5"
    label(face_store, cache, LabelConfig(teacher=spec, views=0), show_progress=False)
    cfg = TrainConfig(epochs=1, batch_size=4, size=32, workers=0, online_teacher=False, mixup=0.0)
    summary = train([(face_store, cache)], tmp_path / "run", cfg, show_progress=False)
    assert (tmp_path / "run" / "student.pt").is_file() and summary["best_val_agreement"] is not None
