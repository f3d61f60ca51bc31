"""The package's structure: imports between skasc's modules go one way.

Every ``import`` of a skasc module from another, at module level or hidden
inside a function, is an edge; the graph must have no cycle, so that each
module can be read (and changed) knowing only the modules below it.
"""

import ast
import pathlib

import skasc

PACKAGE = pathlib.Path(skasc.__file__).parent


def _module_name(path, package=PACKAGE):
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(current, is_package, level, module):
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([module] if module else []))


def import_graph(package=PACKAGE):
    """{module: set of the package's modules it imports}.

    A package's ``__init__`` counts as a module like the others: importing
    its children is a dependency of it (they run when it is imported), and
    a child importing the package (``from . import __version__``) closes a
    loop through it.
    """
    modules = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                target = (_resolve(name, is_package, node.level, node.module) if node.level
                          else node.module or "")
                for alias in node.names:  # "from . import x" may name a module
                    sub = f"{target}.{alias.name}"
                    edges.add(sub if sub in modules else target)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def _find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_imports_between_modules_have_no_cycle():
    graph = import_graph()
    assert "skasc.classifiers" in graph and graph["skasc.export"], "the scan found no imports"
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_loop_through_a_package_init_is_a_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .child import f\n__version__ = '1'\n")
    (pkg / "child.py").write_text("def f():\n    from . import __version__\n")
    assert _find_cycle(import_graph(pkg)) == ["pkg", "pkg.child", "pkg"]
    (pkg / "_version.py").write_text("__version__ = '1'\n")
    (pkg / "child.py").write_text("from ._version import __version__\n")
    assert _find_cycle(import_graph(pkg)) is None


def test_the_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


#: The longest a module of skasc may be: past it, a module holds more than one job.
MAX_MODULE_LINES = 700


def test_every_module_is_small_enough_to_have_one_job():
    sizes = {p.relative_to(PACKAGE.parent).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert len(sizes) > 40, "the scan found too few modules"
    too_long = {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def _private_names_imported_across_modules():
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("skasc")):
                found += [f"{path.name}: {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_no_private_name_is_imported_from_another_module():
    # a name one module shares with another is public in its (private) module
    assert _private_names_imported_across_modules() == []


def test_one_content_hash_and_one_atomic_write():
    uses = {}
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for marker in ("import hashlib", "os.replace(", "def write_atomically"):
            if marker in text:
                uses.setdefault(marker, []).append(path.name)
    assert uses["import hashlib"] == ["_hashing.py"]
    assert uses["os.replace("] == ["_files.py"] and uses["def write_atomically"] == ["_files.py"]
