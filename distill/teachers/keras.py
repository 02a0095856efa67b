"""Build a PyTorch graph from a Keras HDF5 model file (model_config + model_weights), without TensorFlow.

No maintained library converts Keras 2 HDF5 files to PyTorch without TensorFlow installed (onnx2torch and
nobuco need TF/ONNX exports first), so this module interprets the file's layer graph itself. Tensors are
NCHW inside; Keras is channels-last, which matters for Flatten, Dense after Flatten and Concatenate axes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from distill.errors import DistillError


def _same_pad(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF 'same' padding: total = max((ceil(n/s)-1)*s + (k-1)*d + 1 - n, 0); the extra pixel goes bottom/right."""
    eff = (k - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, k, stride, dilation=(1, 1), value: float = 0.0) -> torch.Tensor:
    top, bottom = _same_pad(x.shape[2], k[0], stride[0], dilation[0])
    left, right = _same_pad(x.shape[3], k[1], stride[1], dilation[1])
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), value=value)
    return x


ACTIVATIONS = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "softplus": nn.Softplus,
    "softsign": nn.Softsign,
    "relu6": nn.ReLU6,
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "hard_sigmoid": nn.Hardsigmoid,
    "softmax": lambda: nn.Softmax(dim=1),
}


def _activation(name: str | None, layer: str) -> nn.Module:
    name = name or "linear"
    if name not in ACTIVATIONS:
        raise DistillError(f"Keras layer '{layer}': unsupported activation '{name}'")
    return ACTIVATIONS[name]()


class KerasConv(nn.Module):
    """Conv2D / DepthwiseConv2D / SeparableConv2D with Keras padding and fused activation."""

    def __init__(self, convs: list[nn.Conv2d], padding: str, activation: nn.Module):
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.padding = padding
        self.activation = activation

    def forward(self, x):
        for conv in self.convs:
            if self.padding == "same":
                x = _pad_same(x, conv.kernel_size, conv.stride, conv.dilation)
            x = conv(x)
        return self.activation(x)


class KerasPool(nn.Module):
    def __init__(self, kind: str, pool, strides, padding: str):
        super().__init__()
        self.kind, self.pool, self.strides, self.padding = kind, tuple(pool), tuple(strides), padding

    def forward(self, x):
        if self.kind == "max":
            if self.padding == "same":
                x = _pad_same(x, self.pool, self.strides, value=float("-inf"))
            return F.max_pool2d(x, self.pool, self.strides)
        if self.padding != "same":
            return F.avg_pool2d(x, self.pool, self.strides)
        # TF's 'same' average excludes the padding from the count, and pads bottom/right first.
        ones = _pad_same(torch.ones_like(x[:, :1]), self.pool, self.strides)
        return F.avg_pool2d(_pad_same(x, self.pool, self.strides), self.pool, self.strides) / F.avg_pool2d(
            ones, self.pool, self.strides
        )


class ChannelsLastFlatten(nn.Module):
    """Keras flattens NHWC: permute first so Dense weights line up."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1).flatten(1) if x.ndim == 4 else x.flatten(1)


class Merge(nn.Module):
    def __init__(self, op: str, axis: int = -1):
        super().__init__()
        self.op, self.axis = op, axis

    def forward(self, *xs):
        if self.op == "concat":
            nd = xs[0].ndim
            axis = self.axis % nd
            axis = 1 if axis == nd - 1 else axis + 1 if nd == 4 else axis  # channels-last axis -> NCHW axis
            return torch.cat(xs, dim=axis)
        stacked = torch.stack(xs)
        return {
            "add": stacked.sum,
            "multiply": stacked.prod,
            "average": stacked.mean,
            "maximum": lambda dim: stacked.max(dim).values,
        }[self.op](0)


class ReLULayer(nn.Module):
    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0):
        super().__init__()
        self.max_value, self.slope, self.threshold = max_value, float(negative_slope or 0.0), float(threshold or 0)

    def forward(self, x):
        y = torch.where(x >= self.threshold, x, self.slope * (x - self.threshold))
        return y.clamp(max=self.max_value) if self.max_value is not None else y


class ZeroPad(nn.Module):
    def __init__(self, padding):
        super().__init__()
        (t, b), (lft, r) = padding if isinstance(padding[0], (list, tuple)) else ((padding[0],) * 2, (padding[1],) * 2)
        self.pad = (lft, r, t, b)

    def forward(self, x):
        return F.pad(x, self.pad)


class KerasGraph(nn.Module):
    """Runs the layer graph in file order (Keras stores layers topologically sorted)."""

    def __init__(
        self, layers: dict[str, nn.Module], inbound: dict[str, list[str]], inputs: list[str], outputs: list[str]
    ):
        super().__init__()
        self.layers = nn.ModuleDict({_safe(n): m for n, m in layers.items()})
        self.order = list(layers)
        self.inbound, self.inputs, self.outputs = inbound, inputs, outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.inputs[0]: x}
        for name in self.order:
            if name in values:
                continue
            args = [values[src] for src in self.inbound[name]]
            values[name] = self.layers[_safe(name)](*args)
        return values[self.outputs[0]]


def _safe(name: str) -> str:
    return name.replace(".", "_")


def _history(node) -> list[str]:
    """Inbound layer names from a Keras 2 node list or a Keras 3 {'args': ...} node."""
    if isinstance(node, dict):
        found = []

        def walk(obj):
            if isinstance(obj, dict):
                if "keras_history" in obj.get("config", {}):
                    found.append(obj["config"]["keras_history"][0])
                for v in obj.values():
                    walk(v)
            elif isinstance(obj, list):
                for v in obj:
                    walk(v)

        walk(node.get("args", []))
        return found
    return [entry[0] for entry in node]


def _weights(group: h5py.Group | None) -> dict[str, np.ndarray]:
    """Layer weights keyed by short name ('kernel', 'bias', 'gamma', ...)."""
    if group is None:
        return {}
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("weight_names", [])]
    return {n.split("/")[-1].split(":")[0]: np.asarray(group[n], dtype=np.float32) for n in names}


def _conv(w: np.ndarray, cfg: dict, groups: int = 1, bias=None) -> nn.Conv2d:
    """HWIO (or depthwise HW,in,mult) -> OIHW."""
    if groups == 1:
        weight = torch.from_numpy(w).permute(3, 2, 0, 1)
    else:  # depthwise: output channel c*mult + m takes input channel c
        kh, kw, cin, mult = w.shape
        weight = torch.from_numpy(w.reshape(kh, kw, cin * mult)).permute(2, 0, 1).unsqueeze(1)
    out_c, in_c = weight.shape[0], weight.shape[1] * groups
    stride = tuple(cfg.get("strides", (1, 1)))
    conv = nn.Conv2d(
        in_c,
        out_c,
        weight.shape[-2:],
        stride=stride,
        dilation=tuple(cfg.get("dilation_rate", (1, 1))),
        groups=groups,
        bias=bias is not None,
    )
    conv.weight.data.copy_(weight)
    if bias is not None:
        conv.bias.data.copy_(torch.from_numpy(bias))
    return conv


def _build_layer(cls: str, cfg: dict, w: dict[str, np.ndarray], name: str) -> nn.Module:
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise DistillError(f"Keras layer '{name}' ({cls}): only channels_last models are supported")
    pad = cfg.get("padding", "valid")
    act = lambda: _activation(cfg.get("activation"), name)  # noqa: E731
    if cls == "Conv2D":
        return KerasConv([_conv(w["kernel"], cfg, bias=w.get("bias"))], pad, act())
    if cls == "DepthwiseConv2D":
        return KerasConv(
            [_conv(w["depthwise_kernel"], cfg, groups=w["depthwise_kernel"].shape[2], bias=w.get("bias"))], pad, act()
        )
    if cls == "SeparableConv2D":
        dw = _conv(w["depthwise_kernel"], cfg, groups=w["depthwise_kernel"].shape[2])
        pw = _conv(w["pointwise_kernel"], {}, bias=w.get("bias"))
        return KerasConv([dw, pw], pad, act()) if pad == "valid" else _SeparableSame(dw, pw, act())
    if cls == "BatchNormalization":
        if cfg.get("axis", -1) not in (-1, 3, [3], [-1]):
            raise DistillError(f"Keras layer '{name}' (BatchNormalization): only the channel axis is supported")
        n = w["moving_mean"].shape[0]
        bn = nn.BatchNorm2d(n, eps=float(cfg.get("epsilon", 1e-3)))
        bn.weight.data.copy_(torch.from_numpy(w.get("gamma", np.ones(n, np.float32))))
        bn.bias.data.copy_(torch.from_numpy(w.get("beta", np.zeros(n, np.float32))))
        bn.running_mean.copy_(torch.from_numpy(w["moving_mean"]))
        bn.running_var.copy_(torch.from_numpy(w["moving_variance"]))
        return _BNAnyRank(bn)
    if cls == "Dense":
        lin = nn.Linear(*w["kernel"].shape, bias="bias" in w)
        lin.weight.data.copy_(torch.from_numpy(w["kernel"].T))
        if "bias" in w:
            lin.bias.data.copy_(torch.from_numpy(w["bias"]))
        return nn.Sequential(lin, act())
    if cls == "Activation":
        return act()
    if cls == "ReLU":
        return ReLULayer(cfg.get("max_value"), cfg.get("negative_slope", 0.0), cfg.get("threshold", 0.0))
    if cls == "LeakyReLU":
        return nn.LeakyReLU(float(cfg.get("alpha", cfg.get("negative_slope", 0.3))))
    if cls == "Softmax":
        return nn.Softmax(dim=1)
    if cls in ("MaxPooling2D", "AveragePooling2D"):
        pool = cfg["pool_size"]
        return KerasPool("max" if cls.startswith("Max") else "avg", pool, cfg.get("strides") or pool, pad)
    if cls == "GlobalAveragePooling2D":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if cls == "GlobalMaxPooling2D":
        return nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
    if cls == "Flatten":
        return ChannelsLastFlatten()
    if cls in ("Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "InputLayer"):
        return nn.Identity()
    if cls in ("Add", "Multiply", "Average", "Maximum"):
        return Merge(cls.lower())
    if cls == "Concatenate":
        return Merge("concat", cfg.get("axis", -1))
    if cls == "ZeroPadding2D":
        return ZeroPad(cfg["padding"])
    raise DistillError(f"Keras layer '{name}' has unsupported class {cls}; supported: {', '.join(SUPPORTED)}")


SUPPORTED = (
    "InputLayer",
    "Conv2D",
    "SeparableConv2D",
    "DepthwiseConv2D",
    "BatchNormalization",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "Softmax",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Add",
    "Multiply",
    "Average",
    "Maximum",
    "Concatenate",
    "Flatten",
    "Dense",
    "Dropout",
    "SpatialDropout2D",
    "ZeroPadding2D",
)


class _SeparableSame(nn.Module):
    """SeparableConv2D 'same': padding applies to the depthwise step only."""

    def __init__(self, dw: nn.Conv2d, pw: nn.Conv2d, activation: nn.Module):
        super().__init__()
        self.dw, self.pw, self.activation = dw, pw, activation

    def forward(self, x):
        x = _pad_same(x, self.dw.kernel_size, self.dw.stride, self.dw.dilation)
        return self.activation(self.pw(self.dw(x)))


class _BNAnyRank(nn.Module):
    """BatchNorm over the channel axis for 4-D (NCHW) and 2-D (after Dense) tensors."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        self.bn = bn

    def forward(self, x):
        return self.bn(x) if x.ndim == 4 else self.bn(x[:, :, None, None])[:, :, 0, 0]


def read_config(path: Path) -> tuple[dict, h5py.File]:
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DistillError(f"{path} is not a readable HDF5 file ({err})") from err
    if "model_config" not in f.attrs:
        f.close()
        raise DistillError(
            f"{path} has no model_config: it holds weights only, not a full Keras model "
            "(save it with model.save(), or give the architecture)"
        )
    raw = f.attrs["model_config"]
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw), f


def load_keras(path: Path | str, logits: bool = True) -> tuple[KerasGraph, tuple[int, int, int]]:
    """Build the graph of a Keras HDF5 model; returns (module, input shape H,W,C).

    With logits=True a softmax on the output layer is dropped, so the module returns logits.
    """
    path = Path(path)
    config, f = read_config(path)
    with f:
        weights_root = f["model_weights"] if "model_weights" in f else f
        cls, body = config["class_name"], config["config"]
        layer_cfgs = body if isinstance(body, list) else body["layers"]
        layers, inbound, prev = {}, {}, None
        for layer in layer_cfgs:
            name = layer.get("name") or layer["config"]["name"]
            lcls, lcfg = layer["class_name"], layer["config"]
            w = _weights(weights_root[name] if name in weights_root else None)
            layers[name] = _build_layer(lcls, lcfg, w, name)
            nodes = layer.get("inbound_nodes") or []
            inbound[name] = _history(nodes[0]) if nodes else ([prev] if prev and cls == "Sequential" else [])
            prev = name
        if cls == "Sequential":
            first = layer_cfgs[0]
            shape = first["config"].get("batch_input_shape") or first["config"].get("batch_shape")
            if layer_cfgs[0]["class_name"] != "InputLayer":
                layers = {"input": nn.Identity(), **layers}
                inbound = {"input": [], **inbound}
                inbound[first.get("name") or first["config"]["name"]] = ["input"]
            inputs, outputs = [next(iter(layers))], [prev]
        else:
            inputs = [i[0] for i in body["input_layers"]]
            outputs = [o[0] for o in body["output_layers"]]
            shape = next(
                lc["config"].get("batch_input_shape") or lc["config"].get("batch_shape")
                for lc in layer_cfgs
                if (lc.get("name") or lc["config"]["name"]) == inputs[0]
            )
        if len(inputs) != 1 or len(outputs) != 1:
            raise DistillError(f"{path}: only single-input single-output models are supported")
        if logits:
            _strip_softmax(layers, outputs[0])
    if not shape or len(shape) != 4:
        raise DistillError(f"{path}: input shape {shape} is not (batch, height, width, channels)")
    return KerasGraph(layers, inbound, inputs, outputs).eval(), tuple(int(s) for s in shape[1:])


def _strip_softmax(layers: dict[str, nn.Module], out: str) -> None:
    last = layers[out]
    if isinstance(last, nn.Softmax):
        layers[out] = nn.Identity()
    elif isinstance(last, nn.Sequential) and isinstance(last[-1], nn.Softmax):
        last[-1] = nn.Identity()
    elif isinstance(last, (KerasConv, _SeparableSame)) and isinstance(last.activation, nn.Softmax):
        last.activation = nn.Identity()
