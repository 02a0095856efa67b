import numpy as np
import pytest
import torch
from torch import nn

from distill.errors import DistillError
from distill.faces.framing import Preprocess
from distill.specs import parse_member
from distill.teachers.base import Teacher
from distill.teachers.build import build_teacher
from distill.teachers.ensemble import Ensemble
from distill.teachers.vgg_s import VGGS, save_checkpoint
from tests.conftest import SHARED, requires_face_api, requires_shared


class Fixed(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, x):
        return self.logits.expand(len(x), -1)


def _teacher(logits, classes, size=8, grey=False):
    return Teacher(Fixed(logits), classes, Preprocess(size, grey), "fixed", "0")


def test_spec_parsing():
    assert parse_member("keras:/a/b.hdf5?classes=x,y&scale=0,1@0.25") == (
        "keras",
        "/a/b.hdf5",
        {"classes": "x,y", "scale": "0,1"},
        0.25,
    )


def test_ensemble_reorders_classes_and_combines():
    a = _teacher([2.0, 0.0, -1.0], ["anger", "happiness", "neutral"])
    b = _teacher([0.0, -1.0, 2.0], ["neutral", "anger", "happiness"], grey=True)  # same classes, other order
    x = torch.rand(2, 3, 16, 16)
    ens = Ensemble([a, b], [1.0, 1.0])
    pa, pb = a(x).softmax(1), b(x).softmax(1)[:, [1, 2, 0]]
    np.testing.assert_allclose(ens(x).exp().numpy(), ((pa + pb) / 2).numpy(), rtol=1e-5)
    geo = Ensemble([a, b], [1.0, 1.0], "geometric")(x).softmax(1)
    ref = (pa.log() + pb.log()).div(2).softmax(1)
    np.testing.assert_allclose(geo.numpy(), ref.numpy(), rtol=1e-5)


def test_ensemble_refuses_other_class_sets_unless_mapped():
    a = _teacher([1.0, 0.0], ["anger", "happiness"])
    b = _teacher([1.0, 0.0], ["anger", "joy"])
    with pytest.raises(DistillError, match="class-map"):
        Ensemble([a, b], [1, 1])
    assert Ensemble([a, b], [1, 1], mapping={"joy": "happiness"}).classes == ["anger", "happiness"]


def test_ensemble_drops_and_lacks_classes_only_when_told():
    rafd = _teacher([0.0, 1.0, 2.0], ["anger", "contempt", "happiness"])  # 8-class style member
    fer = _teacher([0.0, 3.0, 1.0], ["anger", "fear", "happiness"])  # no contempt, has fear
    with pytest.raises(DistillError, match="fear"):
        Ensemble([rafd, fer], [1, 1])
    x = torch.rand(1, 3, 8, 8)
    ens = Ensemble([rafd, fer], [1, 1], mapping={"fear": "-"})
    p_fer = torch.tensor([[0.0, 1.0]]).softmax(1)  # fer's anger/happiness, renormalised without fear
    expected = (rafd(x).softmax(1) + torch.stack([p_fer[:, 0], torch.zeros(1), p_fer[:, 1]], 1)) / 2
    np.testing.assert_allclose(ens(x).exp().numpy(), expected.numpy(), rtol=1e-5)
    with pytest.raises(DistillError, match="--combine prob"):
        Ensemble([rafd, fer], [1, 1], "logit", mapping={"fear": "-"})


class LeftHeavy(nn.Module):
    """Logits that tell a face from its mirror image: (left half's mean - right half's mean) x (1, -1)."""

    def forward(self, x):
        side = x.shape[-1]
        d = x[..., : side // 2].mean((1, 2, 3)) - x[..., side // 2 :].mean((1, 2, 3))
        return torch.stack([d, -d], 1)


def test_a_mirrored_teacher_averages_each_face_with_its_mirror_image():
    x = torch.rand(3, 3, 8, 8)
    teacher = Teacher(LeftHeavy(), ["a", "b"], Preprocess(8), "left", "0", mirror=True)
    plain, flipped = LeftHeavy()(x).softmax(1), LeftHeavy()(x.flip(-1)).softmax(1)
    assert not torch.allclose(plain, flipped)  # the check below can fail
    torch.testing.assert_close(teacher(x).exp(), (plain + flipped) / 2)
    torch.testing.assert_close(teacher(x).exp(), torch.full((3, 2), 0.5))  # this net's mirror undoes it exactly
    assert teacher.describe()["mirror"] is True
    assert "mirror" not in Teacher(LeftHeavy(), ["a", "b"], Preprocess(8), "left", "0").describe()  # old caches


def test_vgg_s_checkpoint_round_trip_and_unsafe_pickle(tmp_path):
    net = VGGS(num_classes=3, width=0.05, size=64)
    path = tmp_path / "t.pt"
    save_checkpoint(path, "vgg_s", net, ["anger", "happiness", "neutral"], Preprocess(64), {"width": 0.05, "size": 64})
    teacher = build_teacher(f"vgg_s:{path}")
    assert teacher(torch.rand(2, 3, 112, 112)).shape == (2, 3) and not teacher.mirror
    save_checkpoint(path, "vgg_s", net, ["a", "b", "c"], Preprocess(64), {"width": 0.05, "size": 64}, mirror=True)
    assert build_teacher(f"vgg_s:{path}").mirror and not build_teacher(f"vgg_s:{path}?mirror=0").mirror
    assert build_teacher("mini_xception?mirror=1").mirror and not build_teacher("mini_xception").mirror
    with pytest.raises(DistillError, match="mirror=yes must be 1"):
        build_teacher(f"vgg_s:{path}?mirror=yes")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"state_dict": {}, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(DistillError, match="not a safe"):
        build_teacher(f"vgg_s:{tmp_path / 'evil.pt'}")


def test_mini_xception_is_the_real_pretrained_model():
    teacher = build_teacher("mini_xception")
    assert teacher.preprocess.size == 64 and teacher.preprocess.grey
    assert teacher.classes == ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
    assert sum(p.numel() for p in teacher.parameters()) == 56_951


@requires_shared
@pytest.mark.parametrize(
    ("spec", "size", "ref"),
    [
        ("mini_xception?crop=1", 64, 49.05),
        (f"keras:{SHARED}/teachers/fer2013_big_XCEPTION.54-0.66.hdf5", 64, 49.4),
        pytest.param("face_api?crop=1", 112, 56.30, marks=requires_face_api),
    ],
)
def test_reference_accuracy_on_expressions_dev(spec, size, ref):
    """Each port against an independent one's figure (../shared/README.md): whole images resized, no crop (so the
    teachers' own framing, a central 0.8, is turned off)."""
    from distill.datasets.readers import read_csv_labels
    from distill.evaluate.evalset import load_uncropped
    from distill.evaluate.scores import predict, score

    evalset = load_uncropped(read_csv_labels(SHARED / "data" / "expressions-dev"), size)
    teacher = build_teacher(spec)
    result = score(predict(teacher, evalset.pixels), evalset.labels, teacher.classes)
    assert result["n_scored"] == 1158
    assert abs(100 * result["accuracy"] - ref) < 0.5


def test_a_framing_keeps_the_centre_of_the_stored_face_and_is_recorded():
    x = torch.arange(64.0).view(1, 1, 8, 8).expand(1, 3, 8, 8)
    pre = Preprocess(size=4, crop=0.5)
    torch.testing.assert_close(pre(x), x[..., 2:6, 2:6])  # the central half of the side, no resize needed
    assert pre.source_side == 8 and "crop" in pre.to_dict() and "crop" not in Preprocess(4).to_dict()
    teacher = build_teacher("mini_xception?crop=0.9")
    assert teacher.preprocess.crop == 0.9 and teacher.describe()["preprocess"]["crop"] == 0.9
    assert build_teacher("mini_xception").preprocess.crop == 0.8  # its registered, measured framing
    with pytest.raises(DistillError, match=r"crop=0.3 must be a share of the face's side in \[0.5, 1\]"):
        build_teacher("mini_xception?crop=0.3")
