"""The rooms of the grader hold what ARCHITECTURE.md says they hold: the grader is a house
of floors, and no import runs up a floor or in a circle; grader/core depends on the
sandbox's protocol only, never on its processes; what runs inside the sandbox imports
nothing from the grader and nothing of the curriculum; no module keeps state in globals."""
from __future__ import annotations

import ast
from pathlib import Path

import fnmatch

from conftest import REPO
from grader.core import catalogue
from grader.sandbox.isolation import WORKER_SCRIPTS

GRADER = REPO / "grader"
# The floors of the house, lowest first (ARCHITECTURE.md): a module may import from its own
# floor and the ones below, never from above.
FLOORS = (
    ("ground", ("grader", "grader.ground.*")),
    ("sandbox", ("grader.sandbox.*",)),
    ("core", ("grader.core.*",)),
    ("checks and plugin", ("grader.test_ex*", "grader.plugin", "grader.conftest")),
    ("hosts", ("grader.host.*", "grader.notebook")),
    ("commands", ("grader.batch.*", "grader.learner.*", "grader.inspect.*", "grader.authoring.*", "grader.platforms.*",
                  "grader.__main__")),
)


def imported(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (``from a import b``: ``a.b`` and ``a``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(REPO).with_suffix("").parts)
    return name.removesuffix(".__init__")


def floor_of(module: str) -> int:
    for number, (_, patterns) in enumerate(FLOORS):
        if any(module == pattern.removesuffix(".*") or fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return number
    raise AssertionError(f"{module} is on no floor of FLOORS: say where it stands (and in ARCHITECTURE.md)")


def import_graph() -> dict[str, set[str]]:
    """Each module of grader/ and the modules of grader/ it imports, anywhere in it (a
    function's late import counts: it is an arrow all the same)."""
    paths = {module_name(path): path for path in GRADER.rglob("*.py")}
    graph = {}
    for module, path in paths.items():
        targets = set()
        for name in imported(path):
            while name and name not in paths:  # ``from a.b import c``: c is a module, or a name in a.b
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other, directly or around (Tarjan's strongly
    connected components of more than one module)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_import_runs_up_a_floor():
    up = [f"{module} ({FLOORS[floor_of(module)][0]}) imports {target} ({FLOORS[floor_of(target)][0]})"
          for module, targets in import_graph().items() for target in sorted(targets)
          if floor_of(target) > floor_of(module)]
    assert not up, "imports that run up a floor:\n" + "\n".join(up)


def test_no_modules_import_each_other_in_a_circle():
    assert circles(import_graph()) == []


def test_the_graph_sees_arrows_up_and_circles():
    """The two tests above could not pass by reading nothing."""
    graph = import_graph()
    assert "grader.ground.files" in graph["grader.core.read"] and "grader.sandbox.protocol" in graph["grader.core.session"]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert floor_of("grader.ground.files") < floor_of("grader.sandbox.client") < floor_of("grader.core.session") \
        < floor_of("grader.plugin") < floor_of("grader.host.main") < floor_of("grader.batch.run")


def test_core_imports_only_the_protocol_from_the_sandbox():
    for path in sorted((GRADER / "core").glob("*.py")):
        from_sandbox = {name for name in imported(path) if name.startswith("grader.sandbox.")
                        and not (name + ".").startswith("grader.sandbox.protocol.")}
        assert not from_sandbox, f"grader/core/{path.name} imports {sorted(from_sandbox)}: core may use the sandbox's protocol only"


def test_what_runs_in_the_sandbox_imports_nothing_from_the_grader_nor_knows_the_curriculum():
    functions = {e.function for e in catalogue.load().exercises}
    modules = {m.name for m in catalogue.load().modules}
    assert {path.parent.name for path in WORKER_SCRIPTS} == {"sandbox", "ground"}
    for path in WORKER_SCRIPTS:
        name = path.name
        assert not {n for n in imported(path) if n == "grader" or n.startswith("grader.")}, f"{name} imports the grader"
        words = {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)} | {
            n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not words & (functions | modules), f"{name} names the curriculum's {sorted(words & (functions | modules))}"


def test_no_module_of_the_grader_rebinds_its_globals():
    for path in sorted(GRADER.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rebinding = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Global)]
        assert not rebinding, f"{path.relative_to(REPO)}:{rebinding[0]} keeps state in a module global"


def test_every_scenario_returns_a_scenario():
    """One shape: checks read ``scenario.store``, ``scenario.call``... never a tuple's third item."""
    odd = []
    for path in sorted(GRADER.glob("test_ex*.py")):
        for cls in ast.parse(path.read_text(encoding="utf-8")).body:
            method = next((n for n in getattr(cls, "body", []) if isinstance(n, ast.FunctionDef) and n.name == "scenario"), None)
            if method is None:
                continue
            returns = [n for n in ast.walk(method) if isinstance(n, ast.Return)]
            odd += [f"{path.name}:{r.lineno} {cls.name}.scenario" for r in returns
                    if not (isinstance(r.value, ast.Call) and getattr(r.value.func, "id", None) == "Scenario")]
            assert returns, f"{path.name}: {cls.name}.scenario returns nothing"
    assert not odd, "scenarios that return something other than Scenario(...):\n" + "\n".join(odd)
