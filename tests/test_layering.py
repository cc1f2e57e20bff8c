"""Data flows one way: adapters -> kernels -> sketches -> metrics -> monitor -> alerts -> ... -> report -> cli.

Each package may import only from packages to its left (plus errors); checked on the source's AST.
One exception, named in OWNER_IMPORTS: the module holding the Monitor (the owner of monitor state)
hands closed windows to the alert evaluator, so it imports alerts at its top and the exporters
inside a function (their optional dependency); nothing else in the monitor package may.
"""
import ast
import pathlib

import pytest

import fastdrift

ORDER = ["errors", "settings", "codec", "records", "adapters", "dataset", "kernels", "sketches", "schema", "metrics", "monitor",
         "alerts", "exporters", "fleet", "scan", "serving_skew", "profilefile", "report", "perf", "spark", "demo", "cli"]
# (module, later package) -> where the import may stand: "top" (module level) or "function"
OWNER_IMPORTS = {("monitor/monitor.py", "alerts"): "top", ("monitor/monitor.py", "exporters"): "function"}
ROOT = pathlib.Path(fastdrift.__file__).parent


def _layer(rel: pathlib.Path):
    head = rel.parts[0].removesuffix(".py")
    return head if head in ORDER else None


def _imports(path: pathlib.Path, pkg_parts):
    """(top-level package imported, "top" or "function") for every fastdrift import in ``path``."""
    tree = ast.parse(path.read_text())
    in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f)}
    for node in ast.walk(tree):
        where = "function" if id(node) in in_function else "top"
        if isinstance(node, ast.ImportFrom) and node.level:
            base = pkg_parts[: len(pkg_parts) - node.level + 1]
            mod = list(base) + (node.module.split(".") if node.module else [])
            yield (mod[0] if mod else None), where
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fastdrift."):
            yield node.module.split(".")[1], where
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("fastdrift."):
                    yield a.name.split(".")[1], where


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
        for target, where in _imports(path, pkg_parts):
            if target in ORDER and ORDER.index(target) > ORDER.index(layer) \
                    and OWNER_IMPORTS.get((rel.as_posix(), target)) != where:
                bad.append(f"{rel} imports {target} ({where} level)")
    assert not bad, bad


def test_the_owner_exception_is_used_as_named():
    # the exception stays exact: the owner module exists and imports each package where it says
    src = ROOT / "monitor" / "monitor.py"
    seen = set(_imports(src, ("monitor",)))
    assert {(target, where) for (mod, target), where in OWNER_IMPORTS.items()} <= seen



def test_numba_not_imported_by_fastdrift_import():
    import subprocess, sys
    code = "import sys, fastdrift; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_fastdrift_import_loads_its_names_on_first_use():
    # import fastdrift (and the benchmark gate's plugin, and the CLI) load no sketch, kernel or metric
    # until a name is used; every public name then resolves to the object its module defines
    import subprocess, sys
    code = ("import sys, fastdrift, fastdrift.perf.plugin, fastdrift.cli\n"
            "print(sorted(m for m in sys.modules if m.split('.')[1:2] in (['sketches'], ['kernels'], ['metrics'])))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    import fastdrift
    from fastdrift import metrics, monitor, serving_skew, sketches
    owners = {"psi": metrics, "Profile": sketches, "profile": sketches, "skew": serving_skew, "Monitor": monitor}
    for name in fastdrift.__all__:
        assert getattr(fastdrift, name) is not None and name in dir(fastdrift)
        if name in owners:
            assert getattr(fastdrift, name) is getattr(owners[name], name)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fastdrift.nope


def _private_imports(path: pathlib.Path, pkg_parts):
    """(module, name) of every private name taken from another fastdrift module: ``from X import _name``,
    or ``alias._name`` where ``alias`` was imported from fastdrift (``from . import quantile as kq``)."""
    tree = ast.parse(path.read_text())
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("fastdrift")):
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    yield node.module or ".", a.name
                bound[a.asname or a.name] = node.module or "."
        elif isinstance(node, ast.Import):
            bound.update({a.asname or a.name.split(".")[0]: a.name for a in node.names
                          if a.name.startswith("fastdrift")})
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound \
                and node.attr.startswith("_") and not node.attr.startswith("__"):
            yield f"{bound[node.value.id]} ({node.value.id})", node.attr


def test_no_module_imports_another_modules_private_names():
    bad = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        for mod, name in _private_imports(path, rel.parts[:-1]):
            bad.append(f"{rel}: {name} from {mod}")
    assert not bad, bad


def test_private_import_check_can_fail(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("from .scan import _ExactQuantiles\nfrom fastdrift.x import _y\nfrom . import codec as _c\n"
                 "from ..kernels import quantile as kq\nkq._order_statistics(1)\nkq.select(2)\n")
    assert sorted(_private_imports(p, ())) == [("fastdrift.x", "_y"), ("kernels (kq)", "_order_statistics"),
                                               ("scan", "_ExactQuantiles")]
