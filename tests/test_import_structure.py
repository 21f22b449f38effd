"""The package's import graph: acyclic, io/ a leaf, no hidden function-level imports.

Every module under proxylib/ is parsed (not imported); every ``import`` and
``from ... import`` naming a proxylib module, at any depth (function bodies
included), is an edge. ``from . import name`` counts as an import of the
submodule ``name`` when one exists, else of the package.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Tuple

import proxylib

ROOT = Path(proxylib.__file__).resolve().parent
#: What io/ may import from above itself.
IO_MAY_IMPORT = {"proxylib.errors", "proxylib.spec"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> Dict[str, Path]:
    return {_module_name(path): path for path in ROOT.rglob("*.py")}


def _resolve(module: str, is_package: bool, level: int, name: str) -> str:
    if not level:
        return name
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _is_import_module_call(node: ast.AST) -> bool:
    """``import_module("literal")`` or ``importlib.import_module("literal")``."""
    if not isinstance(node, ast.Call) or not node.args:
        return False
    function = node.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
    return (name == "import_module" and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str))


def _edges(modules: Dict[str, Path]) -> Dict[str, List[Tuple[str, int, bool]]]:
    """module -> [(imported proxylib module, line, at module level)]."""
    graph: Dict[str, List[Tuple[str, int, bool]]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        top_level = {id(node) for node in tree.body}
        # statements nested in module-level if/try blocks are still module level
        for node in tree.body:
            if isinstance(node, (ast.If, ast.Try)):
                top_level.update(id(child) for child in ast.walk(node))
        is_package = path.name == "__init__.py"
        found: List[Tuple[str, int, bool]] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, is_package, node.level, node.module or "")
                targets = [f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules
                           else target for alias in node.names]
            elif _is_import_module_call(node):  # import_module("proxylib.x"): an import too
                targets = [node.args[0].value]
            else:
                continue
            for target in targets:
                if target == "proxylib" or target.startswith("proxylib."):
                    while target not in modules:  # a name imported from a module
                        target = target.rpartition(".")[0]
                    if target != module:
                        found.append((target, node.lineno, id(node) in top_level))
        graph[module] = found
    return graph


def _cycle(graph: Dict[str, List[Tuple[str, int, bool]]]) -> List[str]:
    """One import cycle as a list of modules, or [] when the graph is acyclic.

    Importing a package runs its ``__init__``, but importing a submodule
    does not depend on anything but its own imports, so package
    ``__init__`` edges are followed like any other module's.
    """
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for target, _, _ in graph.get(node, ()):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


GRAPH = _edges(_modules())


def test_the_parser_sees_known_edges() -> None:
    # the test would pass vacuously if it saw no imports at all
    assert ("proxylib.io.sources", ) and any(
        target == "proxylib.io.sources" for target, _, _ in GRAPH["proxylib.execute"])
    assert any(target == "proxylib.errors" for target, _, _ in GRAPH["proxylib.io.sources"])
    assert _cycle({"a": [("b", 1, True)], "b": [("a", 2, False)]}) == ["a", "b", "a"]
    # import_module with a literal name is an import like any other
    assert ("proxylib.interop.nibabel_images", False) in {
        (target, top) for target, _, top in GRAPH["proxylib.formats.niftiimage"]}


def test_no_import_cycle_function_level_imports_included() -> None:
    assert _cycle(GRAPH) == []


def test_io_imports_nothing_above_it_but_errors_and_spec() -> None:
    wrong = sorted(f"{module}:{line} imports {target}"
                   for module, edges in GRAPH.items() if module.startswith("proxylib.io")
                   for target, line, _ in edges
                   if not target.startswith("proxylib.io") and target not in IO_MAY_IMPORT)
    assert wrong == []


#: Modules that exist to wrap an optional third-party package (they import it at
#: module level), so they are imported where used, never at import time.
OPTIONAL_WRAPPERS = {"proxylib.interop.nibabel", "proxylib.interop.nibabel_images"}


def test_proxylib_modules_are_imported_at_module_level() -> None:
    # a function-level import of a proxylib module hides a cycle or a module on the
    # wrong floor; lazy imports are for optional third-party packages only
    lazy = sorted(f"{module}:{line} imports {target}" for module, edges in GRAPH.items()
                  for target, line, top in edges if not top and target not in OPTIONAL_WRAPPERS)
    assert lazy == []


def test_optional_wrappers_import_their_package_at_module_level() -> None:
    for module in OPTIONAL_WRAPPERS:
        tree = ast.parse(_modules()[module].read_text(encoding="utf-8"))
        third_party = {alias.name.split(".")[0] for node in tree.body
                       if isinstance(node, ast.Import) for alias in node.names}
        assert third_party - {"io", "os", "sys", "numpy"}, module


def test_every_opener_implements_the_protocol(tmp_path) -> None:
    import io

    import numpy as np

    from proxylib import ArrayProxy
    from proxylib.io.protocol import Opener
    from proxylib.io.remote import RemoteOpener

    path = tmp_path / "a.raw"
    np.arange(6, dtype="<i2").tofile(path)
    with open(path, "rb") as handle:
        for file_like in (path, str(path), handle, io.BytesIO(path.read_bytes())):
            proxy = ArrayProxy(file_like, ((6,), "<i2"))
            assert isinstance(proxy.opener, Opener)
            assert isinstance(proxy.opener.clone(), Opener)
            hash(proxy.opener.identity())
            with proxy.opener.source() as source:
                assert source.name
    # a path's identity names the file version: it changes when the file is replaced
    first = ArrayProxy(path, ((6,), "<i2")).opener.identity()
    np.arange(7, dtype="<i2").tofile(path)
    assert ArrayProxy(path, ((6,), "<i2")).opener.identity() != first
    for member in ("source", "opened", "identity", "close", "clone", "is_open", "keep_open"):
        assert hasattr(RemoteOpener, member)


def test_load_url_lives_next_to_load_and_its_old_path_says_where() -> None:
    import pytest

    import proxylib.io.remote
    from proxylib import loading

    assert proxylib.load_url is loading.load_url
    with pytest.raises(AttributeError, match="proxylib.load_url"):
        proxylib.io.remote.load_url
