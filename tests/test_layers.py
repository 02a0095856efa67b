"""The package's layers import only downward, and no import circle (imports inside functions included) exists."""

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "distill"

# bottom to top; a module belongs to the longest prefix listed
LAYERS = {
    "settings and errors": [
        "distill",
        "distill.errors",
        "distill.settings",
        "distill.config",
        "distill.specs",
        "distill.registry",
        "distill.provenance",
        "distill.progress",
        "distill.summary",
        "distill.fileio",
        "distill.h5util",
        "distill.locks",
        "distill.distributed",
        "distill.assets",
    ],
    "models and file formats": [
        "distill.torchfile",
        "distill.datasets",
        "distill.faces",
        "distill.faces.images",
        "distill.faces.store",
        "distill.faces.detectors",
        "distill.cache",
        "distill.augment",
        "distill.teachers",
        "distill.students",
        "distill.losses",
        "distill.compress",
        "distill.quantize_onnx",
        "distill.export",
        "distill.artifacts",
        "distill.demo_data",
        "distill.evaluate.speed",  # timing and sizing tools: compress times its candidate layers with them
    ],
    "steps": [
        "distill.faces.crop",
        "distill.label",
        "distill.training",
        "distill.compress.pipeline",
        "distill.compress.auto",
        "distill.evaluate",
        "distill.predict",
    ],
    "commands": ["distill.commands", "distill.workspace"],
    "command line": ["distill.cli", "distill.options"],
}
LEVEL = {prefix: i for i, prefixes in enumerate(LAYERS.values()) for prefix in prefixes}
UPWARD_ALLOWED = 0


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(found: dict[str, Path]) -> nx.DiGraph:
    """Module -> module it imports (at the top or inside a function), within the package."""
    graph = nx.DiGraph()
    for name, path in found.items():
        graph.add_node(name)
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            hit = next((t for t in targets if t in found and t != name), None)
            if hit and not (found[name].name == "__init__.py" and hit.startswith(name + ".")):
                graph.add_edge(name, hit)
    return graph


def level(module: str) -> int:
    prefix = max((p for p in LEVEL if module == p or module.startswith(p + ".")), key=len)
    return LEVEL[prefix]


def test_no_import_circle():
    circles = [sorted(c) for c in nx.strongly_connected_components(imports(modules())) if len(c) > 1]
    assert not circles, circles


def test_every_module_has_a_layer_and_imports_run_downward():
    graph = imports(modules())
    assert all(level(m) >= 0 for m in graph)  # level() fails on a module no layer lists
    upward = [(a, b) for a, b in graph.edges if level(a) < level(b)]
    assert len(upward) <= UPWARD_ALLOWED, upward


def test_no_library_module_reaches_the_workspace():
    graph = imports(modules())
    users = {a for a, b in graph.edges if b == "distill.workspace"}
    assert all(level(a) >= LEVEL["distill.commands"] for a in users), users
