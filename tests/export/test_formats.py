"""`distill export`: torch.export (.pt2, float and int8) and ONNX graphs that reproduce the model they came from."""

import numpy as np
import pytest
import torch

from distill.artifacts import load_model
from distill.errors import DistillError
from distill.export.formats import ExportedModel, export_model
from distill.faces.augment import to_float
from distill.faces.store import FaceStore
from distill.students.model import Student


@pytest.fixture(scope="module")
def student():
    torch.manual_seed(0)
    return Student("squeezenet1_1_bn", ["anger", "happiness", "neutral"], size=32, grey=True).eval()


def test_pt2_reloads_with_identical_outputs_and_is_scored_like_a_model(tmp_path, student):
    done = export_model(student, tmp_path / "m.pt2", "pt2")
    assert done["max_abs_diff_vs_model"] == 0.0
    model, file = load_model(str(tmp_path / "m.pt2"))  # the path `distill eval --model X.pt2` takes
    assert isinstance(model, ExportedModel) and model.classes == student.classes and file == tmp_path / "m.pt2"
    x = torch.rand(7, 3, 64, 64)  # another batch size than at export: the batch is dynamic
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), student(x).numpy(), atol=1e-5)  # grey after the resize here
        assert model(torch.rand(2, 3, 80, 80)).shape == (2, 3)  # other sides are resized to the graph's
    assert model.describe()["arch"] == "squeezenet1_1_bn" and not model.describe()["int8"]


def test_int8_is_onnx_only(tmp_path, student, face_store):
    faces = FaceStore(face_store).pixels(slice(None))
    with pytest.raises(DistillError, match="--format onnx --int8"):  # PT2E int8 ran slower than float ONNX: dropped
        export_model(student, tmp_path / "q.pt2", "pt2", calibration=faces)
    assert not list(tmp_path.iterdir())


def test_onnx_matches_in_onnxruntime(tmp_path, student):
    pytest.importorskip("onnxruntime")
    done = export_model(student, tmp_path / "m.onnx", "onnx")
    assert done["max_abs_diff_vs_model"] < 1e-4 and done["bytes_on_disk"] > 0


def test_onnx_int8_is_calibrated_on_faces_stores_int8_weights_and_stays_close(tmp_path, student, face_store):
    pytest.importorskip("onnxruntime")
    import onnx

    from distill.export.formats import OnnxModel

    faces = FaceStore(face_store).pixels(slice(None))
    float_done = export_model(student, tmp_path / "m.onnx", "onnx")
    done = export_model(student, tmp_path / "m.int8.onnx", "onnx", calibration=faces)
    graph = onnx.load(str(tmp_path / "m.int8.onnx")).graph
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)  # activations go through int8
    weights = [onnx.numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert weights  # the weights are stored as int8
    assert max(int(np.abs(w).max()) for w in weights) <= 64  # 7-bit: no 16-bit saturation on CPUs without VNNI
    assert done["bytes_on_disk"] < float_done["bytes_on_disk"] / 2.5
    model = OnnxModel(tmp_path / "m.int8.onnx")  # the metadata survived: eval and predict load it like any model
    assert model.classes == student.classes
    with torch.no_grad():
        logits = student(to_float(faces))  # what it was calibrated for, and what export checks it on
    assert done["max_abs_diff_vs_model"] < 0.15 * float(logits.abs().max())
    assert not list(tmp_path.glob("*.tmp*"))


def test_bad_requests_are_refused(tmp_path, student):
    with pytest.raises(DistillError, match="valid: pt2, onnx"):
        export_model(student, tmp_path / "m.ts", "torchscript")
    torch.save({"x": 1}, tmp_path / "foreign.pt2")
    with pytest.raises(DistillError, match="not a torch.export program"):
        ExportedModel(tmp_path / "foreign.pt2")


def test_a_graph_takes_faces_at_the_models_framing_and_side_and_cuts_nothing_itself(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx

    from distill.export.formats import OnnxModel

    torch.manual_seed(0)
    framed = Student("squeezenet1_1_bn", ["anger", "happiness", "neutral"], size=32, crop=0.8).eval()
    export_model(framed, tmp_path / "m.onnx", "onnx")
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim][1:] == [3, 32, 32]
    assert not {n.op_type for n in graph.node} & {"Resize", "Slice"}  # cutting and resizing are the caller's
    model = OnnxModel(tmp_path / "m.onnx")
    assert model.meta["framing"] == 0.8
    stored = torch.rand(4, 3, 50, 50)  # faces as `distill crop` stores them: framed and resized before the graph
    with torch.no_grad():
        np.testing.assert_allclose(model(stored).numpy(), framed(stored).numpy(), atol=1e-4)


def test_an_int8_graphs_concatenations_copy_bytes_their_inputs_share_one_scale(tmp_path, student, face_store):
    pytest.importorskip("onnxruntime")
    import onnx

    export_model(student, tmp_path / "m.int8.onnx", "onnx", calibration=FaceStore(face_store).pixels(slice(None)))
    graph = onnx.load(str(tmp_path / "m.int8.onnx")).graph
    values = {t.name: float(onnx.numpy_helper.to_array(t)) for t in graph.initializer if not t.dims}
    made_by = {out: n for n in graph.node for out in n.output}
    concats = [n for n in graph.node if n.op_type == "Concat"]
    assert len(concats) == 8  # SqueezeNet 1.1's fire modules
    for concat in concats:  # each input is DequantizeLinear(x, scale, zero point); QLinearConcat copies if all agree
        scales = {values[made_by[i].input[1]] for i in concat.input}
        after = next(n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == concat.output[0])
        assert scales == {values[after.input[1]]}


def test_export_never_replaces_the_graph_compress_chose_and_names_its_calibration(
    tmp_path, student, face_store, capsys, monkeypatch
):
    from tests.test_cli import run_cli

    folder = tmp_path / "compressed"
    folder.mkdir()
    student.save(folder / "student.pt")
    chosen = folder / "student.int8.onnx"
    chosen.write_bytes(b"the validated graph")
    (folder / "summary.json").write_text(f'{{"deployable": "{chosen}"}}')
    args = ["export", str(folder / "student.pt"), "--int8", "--calibrate", str(face_store)]
    code, _, err = run_cli(args, tmp_path / "w", capsys, monkeypatch)
    assert code == 2 and "is the graph `distill compress` chose and validated" in err
    assert chosen.read_bytes() == b"the validated graph"
    code, _, err = run_cli([*args, "--out", str(tmp_path / "m.txt")], tmp_path / "w", capsys, monkeypatch)
    assert code == 2 and "--out " in err and "the onnx file must end in .onnx" in err
    code, out, _ = run_cli([*args, "--out", str(tmp_path / "other.onnx")], tmp_path / "w", capsys, monkeypatch)
    faces = len(FaceStore(face_store))
    assert code == 0 and f"{faces} faces of {face_store.resolve()}" in " ".join(out.split())
    assert "512 calibration faces asked for" in " ".join(out.split())
