"""Static int8 ONNX with ONNX Runtime's own quantizer: QDQ format, per-channel int8 weights, uint8 activations
calibrated on real faces (the unlabelled pool's store: no labels needed). The file stores int8 weights, a quarter
of float32's bytes, and runs on ONNX Runtime's int8 kernels (VNNI where the CPU has it).

Weights are 7-bit (reduce_range): on x86 CPUs without VNNI, ONNX Runtime's uint8 x int8 kernels sum pairs of products
in 16 bits (VPMADDUBSW), and full 8-bit weights saturate them where the activations span their range (the first
conv, on the raw face): on an AVX2 CPU 8-bit weights lost much of their agreement with the float graph and 7-bit
ones kept it, at the same speed (docs/cli.md, export)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from distill import augment

CALIBRATION_BATCH = 32


class _Faces:
    """onnxruntime's CalibrationDataReader over uint8 faces (N, S, S, 3), as (B, 3, size, size) in [0, 1]."""

    def __init__(self, input_name: str, faces: np.ndarray, size: int):
        self.input, self.faces, self.size, self.at = input_name, faces, size, 0

    def get_next(self) -> dict | None:
        if self.at >= len(self.faces):
            return None
        x = augment.resize(augment.to_float(self.faces[self.at : self.at + CALIBRATION_BATCH]), self.size)
        self.at += CALIBRATION_BATCH
        return {self.input: x.numpy()}

    def rewind(self) -> None:
        self.at = 0


def quantize_onnx(float_path: Path, out: Path, faces: np.ndarray, size: int) -> None:
    """Write the int8 form of the float graph `float_path` to `out`, its metadata (classes, size) kept."""
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
        quantize_static(
            str(prepared),
            str(out),
            Reader(name, faces, size),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,  # 7-bit weights: no 16-bit saturation on CPUs without VNNI (module docstring)
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    source, quantized = onnx.load(str(float_path)), onnx.load(str(out))
    props = {p.key: p.value for p in source.metadata_props}
    onnx.helper.set_model_props(quantized, props)
    onnx.save(quantized, str(out))
