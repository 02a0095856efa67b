"""Pruning: unstructured magnitude pruning (mask + survivors) and structured channel pruning (torch-pruning)."""

from __future__ import annotations

import json

import torch
from torch import nn

from distill.compress.base import Compressor, convs, eval_mode, example_input
from distill.compress.encoding import FloatWeights, Sparse
from distill.registry import COMPRESSORS


@COMPRESSORS.register("prune")
class MagnitudePruning(Compressor):
    """Unstructured magnitude pruning: the smallest |W| of each layer are zero, the file stores a bit mask and
    the surviving values. The sparsity grows over `stages` prune -> fine-tune rounds on Zhu & Gupta's cubic
    schedule; the mask follows the latent weights (pruned weights get straight-through gradients and may return
    while the rounds go on)."""

    name = "prune"
    option = ("sparsity", {"gt": 0, "lt": 1})
    stages = 3
    iterative = True
    sparsifies = True

    def __init__(self, sparsity: float = 0.5):
        self.sparsity, self.now = sparsity, sparsity

    def advance(self, net: nn.Module, stage: int, stages: int) -> None:
        self.now = self.sparsity * (1 - (1 - stage / stages) ** 3)

    def effective(self, w: torch.Tensor) -> torch.Tensor:
        k = int(self.now * w.numel())
        if k == 0:
            return w
        threshold = w.detach().abs().flatten().kthvalue(k).values
        return w * (w.abs() > threshold)

    def encode(self, w: torch.Tensor) -> dict:
        return Sparse(FloatWeights()).encode(w)

    def decode(self, blob: dict) -> torch.Tensor:
        return Sparse(FloatWeights()).decode(blob)


@COMPRESSORS.register("prune-ch", recommended={"stages": 1, "epochs": 20, "lr": 1e-3})
class ChannelPruning(Compressor):
    """Structured pruning (torch-pruning): whole channels of the lowest L2 norm go, with everything coupled to
    them (BN, the next layer's inputs, concatenations, residual sums), so the network is physically smaller and
    faster. `ratio` of each layer's channels goes over `stages` prune -> fine-tune rounds; the classifier stays.
    The file stores each conv's remaining width; loading prunes a fresh network to those widths and loads the
    weights into it."""

    name = "prune-ch"
    option = ("channel ratio", {"gt": 0, "lt": 1})
    stages = 3
    iterative = True
    # where the ratio holds: "layer" (each layer loses it) or "global" (the network does: the channels of lowest
    # importance anywhere go first, each layer keeping at least MIN_KEPT of its own)
    scope = "layer"
    MIN_KEPT = 0.1
    # every pruned width a multiple of 8: ONNX Runtime's int8 convolutions run in blocks of channels, and ragged
    # widths made a pruned int8 graph slower than the unpruned one (docs/results.md, compression)
    ROUND_TO = 8

    def __init__(self, ratio: float = 0.5):
        self.ratio, self.pruner, self.done = ratio, None, 0

    def targets(self, net: nn.Module) -> list[str]:
        return [""]  # the whole network

    def advance(self, net: nn.Module, stage: int, stages: int) -> None:
        import torch_pruning as tp

        with eval_mode(net):
            if self.pruner is None:
                self.pruner = tp.pruner.BasePruner(
                    net,
                    example_input(net, self.size),
                    importance=tp.importance.GroupMagnitudeImportance(p=2),
                    pruning_ratio=self.ratio,
                    global_pruning=self.scope == "global",
                    max_pruning_ratio=1 - self.MIN_KEPT if self.scope == "global" else 1.0,
                    iterative_steps=stages,
                    ignored_layers=[net.get_submodule(convs(net)[-1])],
                    round_to=self.ROUND_TO,
                )
            while self.done < stage:  # the pruner's own linear schedule, one step a round
                self.pruner.step()
                self.done += 1

    def restructure(self, net: nn.Module, names: list[str], blob: dict | None = None) -> None:
        """For a loaded file: prune a fresh network to the stored widths (which channels does not matter: the
        stored weights replace them all)."""
        if blob is None:
            return
        import torch_pruning as tp

        widths = json.loads(blob["widths"])
        with eval_mode(net):
            graph = tp.DependencyGraph().build_dependency(net, example_inputs=example_input(net))
            for name in convs(net):
                layer = net.get_submodule(name)
                now = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
                if widths[name] < now:
                    fn = tp.prune_conv_out_channels if isinstance(layer, nn.Conv2d) else tp.prune_linear_out_channels
                    graph.get_pruning_group(layer, fn, idxs=list(range(widths[name], now))).prune()

    def wrap(self, net: nn.Module, names: list[str]) -> None:
        """Nothing to parametrise: the pruned layers are plain layers."""

    def encode_layer(self, state: dict, name: str) -> dict:
        widths = {k[: -len(".weight")]: int(v.shape[0]) for k, v in state.items() if k.endswith(".weight")}
        return {"widths": json.dumps(widths)}

    def decode_layer(self, state: dict, name: str, blob: dict) -> None:
        """The weights are in the state already."""
