"""Data flows one way: adapters -> kernels -> sketches -> metrics -> monitor -> alerts -> ... -> report -> cli.

Each package may import only from packages to its left (plus errors); checked on the source's AST.
"""
import ast
import pathlib

import fastdrift

ORDER = ["errors", "records", "adapters", "dataset", "kernels", "sketches", "schema", "metrics", "monitor", "alerts",
         "exporters", "scan", "profilefile", "report", "pipeline", "spark", "demo", "cli"]
ROOT = pathlib.Path(fastdrift.__file__).parent


def _layer(rel: pathlib.Path):
    head = rel.parts[0].removesuffix(".py")
    return head if head in ORDER else None


def _imports(path: pathlib.Path, pkg_parts):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = pkg_parts[: len(pkg_parts) - node.level + 1]
            mod = list(base) + (node.module.split(".") if node.module else [])
            yield mod[0] if mod else None
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fastdrift."):
            yield node.module.split(".")[1]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("fastdrift."):
                    yield a.name.split(".")[1]


def test_no_stage_imports_a_later_one():
    bad = []
    files = [p for p in ROOT.rglob("*.py")]
    assert len(files) > 10
    for path in files:
        rel = path.relative_to(ROOT)
        layer = _layer(rel)
        if layer is None:
            continue
        pkg_parts = rel.parts[:-1]
        for target in _imports(path, pkg_parts):
            if target in ORDER and ORDER.index(target) > ORDER.index(layer):
                bad.append(f"{rel} imports {target}")
    assert not bad, bad


def test_numba_not_imported_by_fastdrift_import():
    import subprocess, sys
    code = "import sys, fastdrift; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
