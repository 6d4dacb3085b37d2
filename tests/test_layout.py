"""The code's shape: every package folder is installed, and no import cycle among our modules."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Import name -> folder, as pyproject.toml's package-dir installs them.
FOLDERS = {"explain": ROOT / "explain", "explain.cli": ROOT / "cli", "explain.reports": ROOT / "reports"}


def _modules() -> dict[str, Path]:
    """Return {module name: file} for every module of the installed packages."""
    out: dict[str, Path] = {}
    for name, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("").parts
            if rel and rel[-1] == "__init__":
                rel = rel[:-1]
            if name == "explain" and rel and rel[0] in ("cli", "reports"):
                continue
            out[".".join((name, *rel))] = path
    return out


def _package(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Return the project modules `module` imports anywhere in its file (lazy imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = _package(module, path).split(".")
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.add(sub if sub in known else base)
        elif isinstance(node, ast.Call) and any(isinstance(x, ast.Name) and x.id == "__path__" for x in node.args):
            # A package that hands its __path__ to a discovery call imports each of its modules.
            prefix = _package(module, path) + "."
            found.update(m for m in known if m.startswith(prefix) and "." not in m[len(prefix):])
    return {m for m in found if m in known and m != module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    known = _modules()
    graph = {m: _imports(m, p, known) for m, p in known.items()}
    cycles = _cycles(graph)
    assert not cycles, "import cycles among the project's modules:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_planted_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_every_package_folder_is_installed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    for name, folder in FOLDERS.items():
        for init in folder.rglob("*.py"):
            pkg = init.parent.relative_to(folder).parts
            if name == "explain" and pkg and pkg[0] in ("cli", "reports"):
                continue
            if "__pycache__" in pkg:
                continue
            assert ".".join((name, *pkg)) in listed, f"{init.parent} holds modules but is not in pyproject's packages"
    assert {"explain.cli", "explain.reports"} <= listed and not {"cli", "reports"} & listed


# The pipeline, top to bottom: a module may import from its own stage or any stage below it,
# never above. Leaves are the single modules at explain/'s top (errors, version, ...).
STAGES = ["cli", "distributed", "reports", "running", "metrics", "loading", "methods", "adapters", "execution",
          "results", "leaves"]


def _stage(module: str) -> str:
    """Return the stage of a project module ('init' for the package itself)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "init"
    if parts[1] in STAGES:
        return parts[1]
    return "leaves"


def _stage_edges(graph: dict[str, set[str]]) -> dict[tuple[str, str], list[str]]:
    """Return {(stage, stage it imports): ['module -> module', ...]} over stages that differ."""
    out: dict[tuple[str, str], list[str]] = {}
    for m, deps in graph.items():
        for d in deps:
            a, b = _stage(m), _stage(d)
            if a != b and "init" not in (a, b):
                out.setdefault((a, b), []).append(f"{m} -> {d}")
    return out


def _upward(edges: dict[tuple[str, str], list[str]]) -> list[str]:
    """Return the imports that point up the pipeline."""
    return [x for (a, b), xs in edges.items() if STAGES.index(a) > STAGES.index(b) for x in xs]


def test_stages_import_downwards_only() -> None:
    known = _modules()
    assert {_stage(m) for m in known} - {"init"} <= set(STAGES)
    bad = _upward(_stage_edges({m: _imports(m, p, known) for m, p in known.items()}))
    assert not bad, "imports that run up the pipeline:\n" + "\n".join(sorted(bad))


def test_stage_check_finds_a_planted_upward_import() -> None:
    graph = {"explain.results.explanation": {"explain.running.engine"}, "explain.running.engine": set()}
    assert _upward(_stage_edges(graph)) == ["explain.results.explanation -> explain.running.engine"]


def test_explain_top_level_holds_only_stages_and_leaves() -> None:
    top = {p.name for p in (ROOT / "explain").iterdir() if p.name != "__pycache__"}
    folders = {n for n in top if (ROOT / "explain" / n).is_dir()}
    assert folders == set(STAGES) - {"cli", "reports", "leaves"}
    assert top - folders == {"__init__.py", "errors.py", "gradients.py", "images.py", "invalid.py", "version.py"}


if __name__ == "__main__":  # python tests/test_layout.py: the stage graph, top to bottom
    known = _modules()
    edges = _stage_edges({m: _imports(m, p, known) for m, p in known.items()})
    for stage in STAGES:
        below = sorted({b for (a, b) in edges if a == stage}, key=STAGES.index)
        print(f"{stage:>12} -> {', '.join(below) or '(nothing of ours)'}")
