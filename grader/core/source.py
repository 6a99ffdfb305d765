"""What the learner's code says: whether a function is still an untouched stub, whether a
module compiles, and what each verdict depends on (fingerprints). Reads code, never runs
it. (Where the code is, and copying it: grader/core/submission.py.)"""
from __future__ import annotations

import ast
import functools
import hashlib
import threading
from pathlib import Path

from grader.core import catalogue


# Scenarios run in threads, and CPython 3.11 builds AST objects with interpreter-wide state:
# two parses at once can fail with "SystemError: AST constructor recursion depth mismatch"
# (python/cpython#106905). One parse at a time, and each module's source parsed once.
_PARSING = threading.RLock()


def one_parse_at_a_time() -> None:
    """Make every ``ast.parse`` of this process take the lock the grader's own parses take.
    Others parse too, from any thread: NumPy reads each ``.npy`` header with
    ``ast.literal_eval`` (a call's array, read while a scenario parses a module)."""
    if getattr(ast.parse, "one_at_a_time", False):
        return
    parse = ast.parse

    @functools.wraps(parse)
    def locked(*args, **kwargs):
        with _PARSING:
            return parse(*args, **kwargs)

    locked.one_at_a_time = True
    ast.parse = locked


@functools.lru_cache(maxsize=32)
def _parsed(source: str) -> ast.Module | None:
    with _PARSING:
        try:
            return ast.parse(source)
        except SyntaxError:
            return None


def is_untouched_stub(source: str, function: str) -> bool:
    """Whether ``function`` is still exactly a stub: a docstring and ``raise NotImplementedError``,
    defined once, undecorated, never rebound."""
    tree = _parsed(source)
    if tree is None:
        return False
    bindings = [
        node for node in tree.body
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == function)
        or (isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Import, ast.ImportFrom)) and function in ast.dump(node))
    ]
    if len(bindings) != 1 or not isinstance(bindings[0], ast.FunctionDef) or bindings[0].decorator_list:
        return False
    return raises_not_implemented(bindings[0])


def raises_not_implemented(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether a function's body is a docstring (maybe) and ``raise NotImplementedError(...)``."""
    body = [n for n in function.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    return (
        len(body) == 1 and isinstance(body[0], ast.Raise) and body[0].exc is not None
        and "NotImplementedError" in ast.unparse(body[0].exc).split("(")[0]
    )


def read_module(sources: Path, module: str) -> str | None:
    path = sources / f"{module}.py"
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None


def anything_attempted(sources: Path) -> bool:
    """Whether some curriculum function is more than its stub (else no learner code need run)."""
    for exercise in catalogue.load().exercises:
        code = read_module(sources, exercise.module)
        if code is not None and not is_untouched_stub(code, exercise.function):
            return True
    return False


@functools.lru_cache(maxsize=32)
def compile_problem(source: str, filename: str) -> dict | None:
    """Why ``source`` cannot even be compiled (a syntax error), as the learner's editor would
    show it, or None. Compiling runs none of the code."""
    with _PARSING:
        try:
            compile(source, filename, "exec", dont_inherit=True)
            return None
        except SyntaxError as error:
            text = error.text
            if text is None and error.lineno:  # some errors (nonlocal...) come without the line
                lines = source.splitlines()
                text = lines[error.lineno - 1] if 0 < error.lineno <= len(lines) else None
            return {
                "error": f"{type(error).__name__}: {error.msg}",
                "line": error.lineno,
                "column": error.offset,
                "text": (text or "").rstrip("\n") or None,
            }


# -- fingerprints: what a function's verdict depends on, so only changed functions are graded again
def fingerprints(sources: Path) -> dict[str, str | None]:
    """``module.function`` -> a digest of everything that function's verdict depends on: the
    definition that counts (the last), and the same of every name it uses, transitively
    (imports, constants, helpers, other functions), with the module's statements that bind
    nothing (they may do anything); a catalogue module it imports counts whole. Comments,
    blank lines, moving code about and code it does not use change nothing (the AST is
    compared). And ``module`` -> the digest of what importing it runs (``_frame``). None: the
    module is missing or does not parse."""
    cat = catalogue.load()
    texts = {m.name: read_module(sources, m.name) for m in cat.modules}
    trees = {name: (_parsed(text) if text is not None else None) for name, text in texts.items()}
    found = {}
    for module in cat.modules:
        found[module.name] = _frame(trees[module.name], trees)
        for exercise in module.exercises:
            found[exercise.key] = _fingerprint(trees[module.name], exercise.function, trees)
    return found


def _frame(tree: ast.Module | None, trees: dict) -> str | None:
    """A digest of what importing a module runs: its top-level code but the definitions
    (imports, constants, statements), and the catalogue modules it imports. Whether it can
    be imported depends on nothing else."""
    if tree is None:
        return None
    parts = {ast.dump(n) for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    for node in tree.body:
        for name in _bound_names(node) or () if isinstance(node, (ast.Import, ast.ImportFrom)) else ():
            module = _import_target(node, name).split(".")[0]
            if module in trees and trees[module] is not tree:
                parts.add(ast.dump(trees[module]) if trees[module] is not None else f"<{module} does not parse>")
    return hashlib.sha256("".join(sorted(parts)).encode()).hexdigest()[:16]


def _fingerprint(tree: ast.Module | None, function: str, trees: dict) -> str | None:
    if tree is None:
        return None
    reached, unbound = _reached(tree, function)
    parts = set()
    for name, node in reached.items():
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            # What the name refers to (`import mlflow.sklearn` binds `mlflow` as `import mlflow`
            # does); a catalogue module it comes from counts whole.
            target = _import_target(node, name)
            parts.add(f"{name} = {target}")
            module = target.split(".")[0]
            if module in trees and trees[module] is not tree:
                parts.add(ast.dump(trees[module]) if trees[module] is not None else f"<{module} does not parse>")
        else:
            parts.add(ast.dump(node))
    return hashlib.sha256("".join(sorted(parts) + unbound).encode()).hexdigest()[:16]


def _reached(tree: ast.Module, function: str) -> tuple[dict[str, ast.stmt], list[str]]:
    """The top-level statements ``function`` depends on, itself included, by the name each
    binds (the binding that counts: the last), following every name they use; and the
    statements that bind no name we can tell (they always count)."""
    last: dict[str, ast.stmt] = {}  # name -> the top-level statement that binds it last
    unbound = []
    for node in tree.body:
        names = _bound_names(node)
        if names is None:
            unbound.append(ast.dump(node))
        for name in names or ():
            last[name] = node
    reached, todo = {}, [function]
    while todo:
        name = todo.pop()
        node = last.get(name)
        if name in reached or node is None:
            continue
        reached[name] = node
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            todo += [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
    return reached, unbound


def mlflow_uses(source: str, function: str) -> list[str]:
    """Where ``function`` reaches MLflow, directly or through the module's helpers it uses:
    an import of ``mlflow`` (at the top of the module, or inside a function) whose name it
    uses. Empty when it uses none (or the source does not parse)."""
    tree = _parsed(source)
    if tree is None:
        return []
    reached, _ = _reached(tree, function)
    found = {}
    for name, node in reached.items():
        top = isinstance(node, (ast.Import, ast.ImportFrom))
        for statement in [node] if top else [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]:
            targets = [alias.name for alias in statement.names] if isinstance(statement, ast.Import) else [statement.module or ""]
            if any(t == "mlflow" or t.startswith("mlflow.") for t in targets):
                where = f"line {statement.lineno}: {ast.unparse(statement)}"
                found[statement.lineno] = f"`{name}` ({where})" if top else where
    return [found[line] for line in sorted(found)]


def _import_target(node: ast.Import | ast.ImportFrom, name: str) -> str:
    for alias in node.names:
        if isinstance(node, ast.Import) and (alias.asname or alias.name.split(".")[0]) == name:
            return alias.name if alias.asname else name
        if isinstance(node, ast.ImportFrom) and (alias.asname or alias.name) == name:
            return f"{'.' * node.level}{node.module or ''}.{alias.name}"
    return name


def _bound_names(node: ast.stmt) -> list[str] | None:
    """The names a top-level statement binds, or None when it is not a plain binding."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Import):
        return [alias.asname or alias.name.split(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom) and all(alias.name != "*" for alias in node.names):
        return [alias.asname or alias.name for alias in node.names]
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        plain = all(isinstance(n, (ast.Name, ast.Tuple, ast.List, ast.Starred, ast.Store))
                    for t in targets for n in ast.walk(t))
        return names if plain and names else None
    return None


def may_bind(source: str, name: str) -> bool:
    """Whether the module's top level may bind ``name`` (a star import may bind anything);
    True for a module that does not parse, which the grader reports as it is."""
    tree = _parsed(source)
    if tree is None:
        return True
    for node in tree.body:
        names = _bound_names(node)
        if name in (names or ()) or (names is None and isinstance(node, ast.ImportFrom)):
            return True
    return False


def definition_span(source: str, name: str) -> tuple[int, int] | None:
    """(first line, last line) of the top-level definition of ``name`` that counts (the last
    one), decorators included; ``Class.method`` for a method. None when there is none (or
    the source does not parse)."""
    tree = _parsed(source)
    if tree is None:
        return None
    node = tree
    for part in name.split("."):
        found = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part]
        if not found:
            return None
        node = found[-1]
    return min([node.lineno] + [d.lineno for d in node.decorator_list]), node.end_lineno
