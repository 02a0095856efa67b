"""face-api's FaceExpressionNet (npm `@vladmandic/face-api`, MIT) as a PyTorch teacher, from its TF.js weights.

The graph, as the package's src/faceFeatureExtractor, src/faceProcessor and src/common build it: four dense blocks
(the first opens with a plain 3x3/2 conv, the others with a separable 3x3/2 conv; each block's later convs are
separable 3x3/1, and each takes the ReLU of the sum of every earlier output of its block), TF 'SAME' padding, a 7x7
average pool, and a 256 -> 7 fully connected layer. Input: RGB 0-255 at 112 px, minus the mean (122.782, 117.001,
104.298), divided by 255. `make setup` fetches the two weight files with npm (`python -m
distill.teachers.assets DIR`); nothing is downloaded at run time.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from distill.errors import DistillError
from distill.faces.framing import Preprocess
from distill.registry import TEACHERS
from distill.teachers.assets import MANIFEST, PACKAGE, SHA256, WEIGHTS, sha256_of, weights_dir
from distill.teachers.base import Teacher
from distill.teachers.keras import KerasConv
from distill.teachers.tfjs import read_manifest

CLASSES = ["neutral", "happiness", "sadness", "anger", "fear", "disgust", "surprise"]  # face-api's order, canonical
MEAN_RGB = (122.782, 117.001, 104.298)


def _conv(w: np.ndarray, b: np.ndarray, stride: int) -> KerasConv:
    """A plain conv from TF's (kh, kw, in, out) filters."""
    conv = nn.Conv2d(w.shape[2], w.shape[3], w.shape[:2], stride)
    conv.weight.data, conv.bias.data = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(), torch.from_numpy(b)
    return KerasConv([conv], "same", nn.Identity())


def _separable(depthwise: np.ndarray, pointwise: np.ndarray, b: np.ndarray, stride: int) -> KerasConv:
    """TF's separableConv2d: depthwise (kh, kw, C, 1) with the stride, then pointwise (1, 1, C, out), then bias."""
    c = depthwise.shape[2]
    dw = nn.Conv2d(c, c, depthwise.shape[:2], stride, groups=c, bias=False)
    dw.weight.data = torch.from_numpy(depthwise).permute(2, 3, 0, 1).contiguous()  # (C, 1, kh, kw)
    pw = nn.Conv2d(c, pointwise.shape[3], 1)
    pw.weight.data, pw.bias.data = torch.from_numpy(pointwise).permute(3, 2, 0, 1).contiguous(), torch.from_numpy(b)
    return KerasConv([dw, pw], "same", nn.Identity())


class DenseBlock(nn.Module):
    """out_1 = relu(conv_0(x)) (stride 2), out_k = conv_k(relu(out_1 + ... + out_(k-1))), output relu(out_1 + ... +
    out_4): src/faceFeatureExtractor/denseBlock.ts's denseBlock4."""

    def __init__(self, weights: dict[str, np.ndarray], prefix: str, first: bool):
        super().__init__()
        w = {k[len(prefix) + 1 :]: v for k, v in weights.items() if k.startswith(prefix + "/")}
        opening = (
            _conv(w["conv0/filters"], w["conv0/bias"], 2)
            if first
            else _separable(w["conv0/depthwise_filter"], w["conv0/pointwise_filter"], w["conv0/bias"], 2)
        )
        rest = [
            _separable(w[f"conv{i}/depthwise_filter"], w[f"conv{i}/pointwise_filter"], w[f"conv{i}/bias"], 1)
            for i in (1, 2, 3)
        ]
        self.convs = nn.ModuleList([opening, *rest])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = torch.relu(self.convs[0](x))
        for conv in self.convs[1:]:
            total = total + conv(torch.relu(total))  # relu(out_1) = out_1: the first sum needs no special case
        return torch.relu(total)


class FaceExpressionNet(nn.Module):
    """(B,3,112,112) normalised RGB -> (B,7) logits (face-api applies the softmax after them)."""

    def __init__(self, weights: dict[str, np.ndarray]):
        super().__init__()
        self.blocks = nn.Sequential(*[DenseBlock(weights, f"dense{i}", first=i == 0) for i in range(4)])
        self.fc = nn.Linear(256, len(CLASSES))
        self.fc.weight.data = torch.from_numpy(weights["fc/weights"]).t().contiguous()
        self.fc.bias.data = torch.from_numpy(weights["fc/bias"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.avg_pool2d(self.blocks(x), 7, 2)  # 7x7 'valid' on the 7x7 map: (B,256,1,1)
        return self.fc(x.flatten(1))


# framing 0.8: the best of crop 1.0 / 0.9 / 0.8 / 0.7 on expressions-dev's MTCNN crops (docs/results.md)
@TEACHERS.register("face_api", framing=0.8)
def face_api(arg: str | None = None, spec: str = "face_api") -> Teacher:
    """face-api's FaceExpressionNet (npm, MIT; 112x112 RGB, 7 classes); face_api:DIR reads the files from DIR."""
    folder = weights_dir(arg)
    if arg is None:
        for name, expected in SHA256.items():
            if sha256_of(folder / name) != expected:
                raise DistillError(f"{folder / name} is not {PACKAGE}'s file (SHA-256 differs); re-run `make setup`")
    net = FaceExpressionNet(read_manifest(folder / MANIFEST)).eval()
    pre = Preprocess(size=112, grey=False, mean=tuple(m / 255 for m in MEAN_RGB), std=(1.0, 1.0, 1.0))
    return Teacher(net, CLASSES, pre, spec, sha256_of(folder / WEIGHTS))
