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
        "distill.storage",  # files, hdf5, locks
        "distill.distributed",
        "distill.teachers.assets",
    ],
    "models and file formats": [
        "distill.storage.torch_files",
        "distill.datasets",
        "distill.faces",
        "distill.faces.images",
        "distill.faces.store",
        "distill.faces.detectors",
        "distill.labelling",  # the cache (label itself is a step)
        "distill.faces.augment",
        "distill.teachers",
        "distill.students",
        "distill.losses",
        "distill.compress",
        "distill.export",
        "distill.artifacts",
        "distill.datasets.demo",
        "distill.evaluate.speed",  # timing and sizing tools: compress times its candidate layers with them
    ],
    "steps": [
        "distill.faces.crop",
        "distill.labelling.label",
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


def _calls(attribute: str) -> list[str]:
    """The modules of the package that call `X.<attribute>(...)` for X a class name (e.g. LossSpec.parse)."""
    owner, method = attribute.split(".")
    sites = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            func = getattr(node, "func", None)
            if isinstance(node, ast.Call) and isinstance(func, ast.Attribute) and func.attr == method:
                if isinstance(func.value, ast.Name) and func.value.id == owner:
                    sites.append(name)
    return sites


def test_the_loss_spec_and_the_compress_plan_are_parsed_at_the_settings_edge_only():
    assert _calls("LossSpec.parse") == ["distill.config"]  # config.parsed_loss: cfg.loss_spec goes down
    assert _calls("CompressPlan.parse") == ["distill.config"]  # CompressConfig.plan goes down
    assert _calls("MethodSpec.parse") == ["distill.specs", "distill.compress.factory", "distill.compress.pipeline"]


def test_the_top_level_is_short_and_no_two_modules_differ_by_a_letter():
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(top) <= 15, top
    stems = sorted({p.stem for p in PACKAGE.rglob("*.py") if p.stem != "__init__"})
    close = [(a, b) for a in stems for b in stems if a < b and _one_letter_apart(a, b)]
    assert not close, close


def _one_letter_apart(a: str, b: str) -> bool:
    """Names a newcomer confuses: equal but for one letter added, dropped or changed (spec/specs, model/models)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))
