"""Registered students. Each entry returns (net, features, head): the network, a function giving its last
feature map (B,C,h,w) for FitNets hints (timm's forward_features, torchvision's .features), and the head
that turns that map into logits, so training computes both in one pass. `size` (the input side) matters only
to networks with a fixed-size head (VGG-S); the others take any side."""

from __future__ import annotations

import timm
import torchvision
from torch import nn

from distill.registry import STUDENTS


def _first_conv_to(net: nn.Module, conv_name: str, in_chans: int, stride: int | None) -> None:
    conv = net.get_submodule(conv_name)
    new = nn.Conv2d(
        in_chans, conv.out_channels, conv.kernel_size, stride or conv.stride, conv.padding, bias=conv.bias is not None
    )
    parent_name, _, attr = conv_name.rpartition(".")
    setattr(net.get_submodule(parent_name) if parent_name else net, attr, new)


@STUDENTS.register("squeezenet1_1", recommended={"ema_epochs": 2})
def squeezenet1_1(num_classes: int, in_chans: int = 3, small_input: bool = False, width: float = 1.0, size: int = 64):
    """SqueezeNet 1.1 (torchvision; the papers' student, ~2.8 MiB); small_input: stride-1 stem for <=64 px."""
    if width != 1.0:
        raise ValueError("squeezenet1_1 has no width multiplier; use a mobilenet student for width < 1")
    net = torchvision.models.squeezenet1_1(weights=None, num_classes=num_classes)
    if in_chans != 3 or small_input:
        _first_conv_to(net, "features.0", in_chans, 1 if small_input else None)
    return net, net.features, lambda f: net.classifier(f).flatten(1)


def _batchnorm_after_convs(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            setattr(module, name, nn.Sequential(child, nn.BatchNorm2d(child.out_channels)))
        else:
            _batchnorm_after_convs(child)


# the measured recipes (docs/results.md, "Students"): SqueezeNet-BN with a weight average spanning 2 epochs, a
# budget of face-views (epochs = budget / pool size), function matching (a cheap teacher run on a fresh mixed view
# each step) and each teacher class drawn equally often; MobileNetV3-small with a stride-1 stem, function matching
# and no weight average; the other MobileNets: the stride-1 stem only
SQUEEZENET_BN = {
    "ema_epochs": 2,
    "budget": 552_000,
    "online_teacher": True,
    "mixup": 0.4,
    "balance": 1.0,
    "start_size": 64,
}


@STUDENTS.register("squeezenet1_1_bn", recommended=SQUEEZENET_BN)
def squeezenet1_1_bn(
    num_classes: int, in_chans: int = 3, small_input: bool = False, width: float = 1.0, size: int = 64
):
    """SqueezeNet 1.1 + BatchNorm after every conv, linear logits: trains from scratch without collapsing."""
    # Why: trained from scratch (no hub weights here), plain SqueezeNet often collapses to the majority class
    # (its ReLU'd logits die and it agrees with the teacher only on the majority classes). BN (a few parameters
    # a layer) keeps every layer alive, and linear logits let the student put a class below the others.
    net, features, head = squeezenet1_1(num_classes, in_chans, small_input, width)
    _batchnorm_after_convs(net.features)
    net.classifier[2] = nn.Identity()
    return net, features, head


def _timm(name: str, num_classes: int, in_chans: int, small_input: bool, width: float):
    kwargs = {"channel_multiplier": width} if width != 1.0 else {}
    net = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)
    if small_input:  # a stride-2 stem leaves a 2x2 map at 64 px; stride 1 keeps 4x4
        net.conv_stem.stride = (1, 1)
    _small_classifier_init(net.get_classifier())
    return net, net.forward_features, net.forward_head


def _small_classifier_init(head: nn.Linear) -> None:
    """timm's EfficientNet/MobileNet init draws the classifier from U(+-1/sqrt(classes)): +-0.03 for ImageNet's
    1,000, but +-0.38 for 7 emotions, so a fresh student starts with logits of about 2 and spends its
    first epoch undoing them (MobileNetV3-small fitting 512 faces: KL 1.17 after 40 steps, 0.20 with this init)."""
    nn.init.normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)


@STUDENTS.register("mobilenetv2_100", recommended={"small_input": True})
def mobilenetv2_100(num_classes: int, in_chans: int = 3, small_input: bool = False, width: float = 1.0, size: int = 64):
    """MobileNetV2 (timm), width multiplier via --width."""
    return _timm("mobilenetv2_100", num_classes, in_chans, small_input, width)


@STUDENTS.register(
    "mobilenetv3_small_100",
    recommended={"small_input": True, "online_teacher": True, "mixup": 0.4, "ema": 0.0, "budget": 414_000},
)
def mobilenetv3_small_100(
    num_classes: int, in_chans: int = 3, small_input: bool = False, width: float = 1.0, size: int = 64
):
    """MobileNetV3-Small (timm), width multiplier via --width."""
    return _timm("mobilenetv3_small_100", num_classes, in_chans, small_input, width)


@STUDENTS.register("mobilenetv3_large_100", recommended={"small_input": True})
def mobilenetv3_large_100(
    num_classes: int, in_chans: int = 3, small_input: bool = False, width: float = 1.0, size: int = 64
):
    """MobileNetV3-Large (timm), width multiplier via --width."""
    return _timm("mobilenetv3_large_100", num_classes, in_chans, small_input, width)


@STUDENTS.register("vgg_s")
def vgg_s(num_classes: int, in_chans: int = 3, small_input: bool = False, width: float = 1.0, size: int = 224):
    """VGG-S (the papers' big teacher) as a network to compress (`distill import-teacher`) or a large student."""
    return _vgg_s(num_classes, in_chans, small_input, width, size, batch_norm=False)


@STUDENTS.register("vgg_s_bn")
def vgg_s_bn(num_classes: int, in_chans: int = 3, small_input: bool = False, width: float = 1.0, size: int = 224):
    """VGG-S with BatchNorm after every conv (what `distill fit-teacher` trains) as a network to compress."""
    return _vgg_s(num_classes, in_chans, small_input, width, size, batch_norm=True)


def _vgg_s(num_classes: int, in_chans: int, small_input: bool, width: float, size: int, batch_norm: bool):
    from distill.teachers.vgg_s import VGGS

    net = VGGS(num_classes, width, size, stem_stride=1 if small_input else 2, batch_norm=batch_norm)
    if in_chans != 3:
        _first_conv_to(net, "features.0", in_chans, None)
    return net, net.features, net.classifier
