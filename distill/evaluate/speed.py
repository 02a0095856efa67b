"""Model facts: parameters, bytes on disk, CPU latency at batch 1 (median after warm-up), throughput at 64."""

from __future__ import annotations

import copy
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


def serialized_bytes(model: nn.Module) -> int:
    """Bytes of the model's state_dict as torch.save writes it (what a file of its weights costs)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


def time_forward(model: nn.Module, batch: int, size: int, repeats: int, warmup: int = 3) -> float:
    """Median seconds per forward on random RGB faces in [0, 1]."""
    x = torch.rand(batch, 3, size, size)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


Forward = Callable[[torch.Tensor], torch.Tensor]  # a module, or a runtime session called like one


def compare_latency(models: dict[str, Forward], size: int, rounds: int = 7, per_round: int = 20) -> dict[str, float]:
    """ms per batch-1 forward of each model in its fastest round; the models take turns each round, so the
    machine's noise (other jobs, frequency changes) hits all alike. The fastest round, not the median: beside other
    jobs a median times the neighbours (two identical ONNX graphs timed 0.45 and 0.33 ms by their medians, 0.23 and
    0.23 by their fastest rounds), and what a model costs is what it takes when the machine lets it run."""
    return compare_latency_on(models, torch.rand(1, 3, size, size), rounds, per_round)


def compare_latency_on(models: dict[str, Forward], x: torch.Tensor, rounds: int, per_round: int) -> dict[str, float]:
    """compare_latency on a given input (a layer's own, say)."""
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for m in models.values():
            for _ in range(3):
                m(x)  # warm-up (and an exported graph's compilation)
        for _ in range(rounds):
            for name, m in models.items():
                start = time.perf_counter()
                for _ in range(per_round):
                    m(x)
                times[name].append((time.perf_counter() - start) / per_round * 1000)
    return {name: min(t) for name, t in times.items()}


def compare_training_step(models: dict[str, nn.Module], x: torch.Tensor, rounds: int = 3) -> dict[str, float]:
    """ms per training step (forward, cross-entropy on random classes, backward; train mode) of each model on the
    batch x, in its fastest of `rounds` interleaved rounds as compare_latency does: what fine-tuning or retraining
    the model's structure costs (the papers' Table 2 training column). Copies are trained, so the models' weights
    and BatchNorm statistics stay as they were, ready to be scored."""
    copies = {name: copy.deepcopy(model).train() for name, model in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    for i in range(rounds + 1):  # the first round warms up (allocator, kernels), untimed
        for name, model in copies.items():
            start = time.perf_counter()
            logits = model(x)  # (batch, classes)
            target = torch.randint(0, logits.shape[1], (logits.shape[0],), generator=torch.Generator().manual_seed(i))
            nn.functional.cross_entropy(logits, target).backward()
            if i:
                times[name].append((time.perf_counter() - start) * 1000)
            model.zero_grad(set_to_none=True)
    return {name: min(t) for name, t in times.items()}


def model_facts(
    model: nn.Module, size: int, file: Path | None = None, repeats: int = 30, runner: nn.Module | None = None
) -> dict:
    """Parameters and bytes of `model`; latency and throughput of `runner` (its inference form, default itself)."""
    from distill.storage.torch_files import parameter_count

    model.eval()
    params = parameter_count(model)
    runner = runner or model
    latency = time_forward(runner, 1, size, repeats)
    batch64 = time_forward(runner, 64, size, max(3, repeats // 10), warmup=1)
    facts = {
        "parameters": params,
        "bytes_on_disk": file.stat().st_size if file and file.is_file() else None,
        "state_dict_bytes": serialized_bytes(model),
        "cpu_latency_ms_batch1": latency * 1000,
        "cpu_throughput_img_s_batch64": 64 / batch64,
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available() and any(True for _ in model.parameters()):  # an ONNX graph stays on the CPU
        gpu = model.cuda()
        facts["gpu_latency_ms_batch1"] = _time_cuda(gpu, size) * 1000
        model.cpu()
    return facts


def onnx_latency(session: nn.Module, size: int) -> dict:
    """ms per batch-1 forward and images/s at batch 64 of a model in ONNX Runtime (an `OnnxModel`)."""
    return {
        "onnx_latency_ms_batch1": time_forward(session, 1, size, 30) * 1000,
        "onnx_throughput_img_s_batch64": 64 / time_forward(session, 64, size, 3, warmup=1),
    }


def _time_cuda(model: nn.Module, size: int, repeats: int = 50) -> float:  # pragma: no cover - no GPU in CI
    x = torch.rand(1, 3, size, size, device="cuda")
    with torch.inference_mode():
        for _ in range(5):
            model(x)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            model(x)
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


# Peak memory is measured in a fresh process: after importing torch and distill, the kernel's RSS high-water mark
# is reset (Linux /proc/self/clear_refs "5"), then the model is loaded and run once at batch 1; the result is the
# new high-water mark minus the RSS before loading. In-process numbers would be polluted by whatever ran before
# (torch's CPU allocator has no max_memory_allocated like CUDA's).
_PEAK_CHILD = """
import sys, torch
import h5py, timm, torchvision  # imported before the reset: library code is not the model's memory
from distill.artifacts import load_model
from distill.registry import REGISTRIES

for registry in REGISTRIES.values():
    registry.names()  # imports every kind's entry modules before the reset

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS:")
model, _ = load_model(sys.argv[1], sys.argv[3], sys.argv[4] or None)
with torch.inference_mode():
    model(torch.rand(1, 3, int(sys.argv[2]), int(sys.argv[2])))
print((status("VmHWM:") - base) / 1024)
"""


def peak_memory_mib(spec: str, size: int, combine: str = "prob", ensemble_map: str | None = None) -> float | None:
    """MiB a model adds to a process's peak RSS to load and run once at batch 1 (None if it cannot be measured)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_CHILD, spec, str(size), combine, ensemble_map or ""],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    try:
        return float(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return None
