"""`distill compress`: wrap a trained student's layers, fine-tune from the run's own caches, encode to a file."""

from __future__ import annotations

from pathlib import Path

from distill.compress.artifact import save_compressed, strip_parametrizations
from distill.compress.methods import make_compressor
from distill.errors import DistillError
from distill.fileio import write_json
from distill.workspace import provenance


def wrap_chain(net, methods: str) -> dict[str, str]:
    """Apply 'a+b' in order; a later method takes only layers no earlier one took. Returns {layer: method}."""
    taken: dict[str, str] = {}
    for method in [m.strip() for m in methods.split("+") if m.strip()]:
        compressor = make_compressor(method)
        free = [n for n in compressor.targets(net) if n not in taken]
        compressor.restructure(net, free)
        compressor.wrap(net, free)
        taken.update(dict.fromkeys(free, method))
    if not taken:
        raise DistillError(f"'{methods}' found no layer to compress")
    return taken


def compress_run(
    run_dir: Path, out_dir: Path, methods: str, epochs: int, lr: float, loss: str | None, show_progress: bool = True
) -> dict:
    from distill.students.model import load_student
    from distill.training.train import load_run_config, run_train_config, train

    config = load_run_config(run_dir)
    student = load_student(run_dir / "student.pt").train()
    original = {k: v.numel() * v.element_size() for k, v in student.net.state_dict().items()}
    layers = wrap_chain(student.net, methods)
    cfg = run_train_config(config)
    cfg.epochs, cfg.lr, cfg.loss = epochs, lr, loss or cfg.loss
    summary: dict = {"methods": methods, "compressed_layers": len(layers), "fine_tune_epochs": epochs}
    if epochs > 0:
        sources = [(Path(s["store"]), Path(s["cache"])) for s in config["sources"]]
        fit = train(sources, out_dir, cfg, show_progress=show_progress, student=student)
        summary["best_val_agreement"] = fit["best_val_agreement"]
    strip_parametrizations(student.net)
    model = out_dir / "model.distill"
    save_compressed(model, student.eval(), layers, {"provenance": provenance("compress", run=str(run_dir))})
    float_bytes = (run_dir / "student.pt").stat().st_size
    summary.update(
        model=str(model),
        bytes_on_disk=model.stat().st_size,
        float_bytes_on_disk=float_bytes,
        size_ratio=float_bytes / model.stat().st_size,
        **_layer_bytes(student.net, layers, original),
    )
    write_json(out_dir / "summary.json", summary)
    return summary


def _layer_bytes(net, layers: dict[str, str], original: dict[str, int]) -> dict:
    """Bytes the compressed layers had (float32, before any restructure) vs now (encoded blob + what stays)."""
    import torch

    state = dict(net.state_dict())
    before = sum(n for k, n in original.items() if _in_layers(k, layers))
    after = 0
    for name, method in layers.items():
        blob = make_compressor(method).encode_layer(state, name)
        after += sum(v.numel() * v.element_size() for v in blob.values() if torch.is_tensor(v) and v.dim())
    after += sum(v.numel() * v.element_size() for k, v in state.items() if _in_layers(k, layers))
    return {
        "compressed_layers_float_bytes": before,
        "compressed_layers_bytes": after,
        "compressed_layers_ratio": before / max(after, 1),
    }


def _in_layers(key: str, layers: dict[str, str]) -> bool:
    return any(key.startswith(f"{name}.") for name in layers)
