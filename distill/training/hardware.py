"""What a training run takes from the machine it runs on, each measured in benchmarks/bench_speed.py: the
precision its hardware computes fast, whether the pool's faces fit in memory, and so the DataLoader's workers."""

from __future__ import annotations

import os

from distill.config import TrainConfig


def for_this_machine(cfg: TrainConfig, face_bytes: int) -> tuple[dict, list[str]]:
    """Values for the unset precision, in_memory and workers, and a note for each; face_bytes: the pool's pixels at
    the side training holds them."""
    chosen, notes = {}, []
    if cfg.precision == "auto":
        chosen["precision"] = auto_precision(cfg.accelerator)
        notes.append(f"precision {chosen['precision']} (this machine)")
    in_memory = cfg.in_memory
    if in_memory is None:
        in_memory = chosen["in_memory"] = face_bytes <= available_memory() / 4
        notes.append(f"in_memory {in_memory} ({face_bytes / 2**20:,.0f} MiB of faces)")
    if cfg.workers is None:
        chosen["workers"] = 0 if in_memory else 2
        notes.append(f"workers {chosen['workers']}")
    return chosen, notes


def auto_precision(accelerator: str) -> str:
    """bf16-mixed where the hardware computes in bf16 natively (a GPU, 16-mixed on one without bf16; a CPU with
    AVX-512 BF16 or AMX), else 32: an AVX2 CPU emulates bf16 at 0.3 GFLOP/s against 130 in fp32 (measured)."""
    import torch

    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "16-mixed"
    if accelerator in ("cpu", "auto") and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()):
        return "bf16-mixed"
    return "32"


def available_memory() -> int:
    """Bytes of memory free for use (Linux's MemAvailable; the free pages elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
