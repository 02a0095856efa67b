"""Static int8 ONNX with ONNX Runtime's own quantizer: QDQ format, per-channel int8 weights, uint8 activations
calibrated on real faces (the unlabelled pool's store: no labels needed). The file stores int8 weights, a quarter
of float32's bytes, and runs on ONNX Runtime's int8 kernels (VNNI where the CPU has it).

Weights are 7-bit (reduce_range): on x86 CPUs without VNNI, ONNX Runtime's uint8 x int8 kernels sum pairs of products
in 16 bits (VPMADDUBSW), and full 8-bit weights saturate them where the activations span their range (the first
conv, on the raw face): on an AVX2 CPU 8-bit weights lost much of their agreement with the float graph and 7-bit
ones kept it, at the same speed (docs/cli.md, export)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from distill.faces import augment

CALIBRATION_BATCH = 32
QUANT_OPTIONS = {"per_channel": True, "reduce_range": True}  # 7-bit weights: no 16-bit saturation without VNNI


class _Faces:
    """onnxruntime's CalibrationDataReader over uint8 faces (N, S, S, 3) as stored, cut as the graph takes them by
    `frame` ((B,3,S,S) in [0, 1] -> the graph's input)."""

    def __init__(self, input_name: str, faces: np.ndarray, frame: Callable[[torch.Tensor], torch.Tensor]):
        self.input, self.faces, self.frame, self.at = input_name, faces, frame, 0

    def get_next(self) -> dict | None:
        if self.at >= len(self.faces):
            return None
        x = self.frame(augment.to_float(self.faces[self.at : self.at + CALIBRATION_BATCH]))
        self.at += CALIBRATION_BATCH
        return {self.input: x.contiguous().numpy()}

    def rewind(self) -> None:
        self.at = 0


def quantize_onnx(
    float_path: Path, out: Path, faces: np.ndarray, frame: Callable[[torch.Tensor], torch.Tensor]
) -> None:
    """Write the int8 form of the float graph `float_path` to `out`, its metadata (classes, size) kept.

    Calibrated twice: the second pass gives every Concat's inputs and output one shared range (the union of their
    calibrated ones), so ONNX Runtime's QLinearConcat copies bytes instead of requantising each input through a
    lookup table (SqueezeNet's fire modules each end in one; docs/results.md, compression)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_Faces, CalibrationDataReader):
        pass

    name = ort.InferenceSession(str(float_path), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_path), str(prepared))  # shapes inferred, graph optimised: what quantize wants

        def quantize(target: Path, overrides: dict) -> None:
            quantize_static(
                str(prepared),
                str(target),
                Reader(name, faces, frame),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                extra_options={"TensorQuantOverrides": overrides} if overrides else None,
                **QUANT_OPTIONS,
            )

        first = Path(tmp) / "first.onnx"
        quantize(first, {})
        shared = shared_concat_ranges(onnx.load(str(prepared)), onnx.load(str(first)))
        if shared:
            quantize(out, shared)
        else:
            out.write_bytes(first.read_bytes())
    source, quantized = onnx.load(str(float_path)), onnx.load(str(out))
    props = {p.key: p.value for p in source.metadata_props}
    onnx.helper.set_model_props(quantized, props)
    onnx.save(quantized, str(out))


def shared_concat_ranges(prepared, quantized) -> dict[str, list[dict]]:
    """TensorQuantOverrides giving each Concat's inputs and output of the float graph `prepared` the union of the
    ranges its first quantisation `quantized` (QDQ, uint8) calibrated for them; a tensor in two Concats joins both."""
    from onnx import numpy_helper

    weights = {i.name: numpy_helper.to_array(i) for i in quantized.graph.initializer}
    ranges = {}
    for node in quantized.graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) == 3:
            scale, zero = float(weights[node.input[1]]), int(weights[node.input[2]])
            ranges[node.input[0]] = ((0 - zero) * scale, (255 - zero) * scale)  # uint8 codes 0..255 in real units
    concats = [node for node in prepared.graph.node if node.op_type == "Concat"]
    groups = [g for g in ([t for t in (*n.input, *n.output) if t in ranges] for n in concats) if len(g) > 1]
    union = {t: ranges[t] for group in groups for t in group}
    changed = True
    while changed:  # until every group agrees: a tensor in two Concats joins their ranges (ranges only widen)
        changed = False
        for group in groups:
            joined = (min(union[t][0] for t in group), max(union[t][1] for t in group))
            for t in group:
                changed |= union[t] != joined
                union[t] = joined
    return {t: [{"rmin": np.float32(lo), "rmax": np.float32(hi)}] for t, (lo, hi) in union.items()}
