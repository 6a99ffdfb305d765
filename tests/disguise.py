"""A copy made to look like other work: every local name of every function renamed, the
module's functions in another order, its comments rewritten and new ones added. What a
learner who copies and covers it up does by hand (tests/test_similarity.py, bench/similarity.py).
The code still runs as before: parameters, imports and globals keep their names."""
from __future__ import annotations

import ast
import io
import random
import tokenize


def _locals(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names the function binds itself (not its parameters, not ``except ... as`` names)."""
    arguments = {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}
    declared = {n for node in ast.walk(function) if isinstance(node, (ast.Global, ast.Nonlocal)) for n in node.names}
    handlers = {node.name for node in ast.walk(function) if isinstance(node, ast.ExceptHandler) and node.name}
    bound = {node.id for node in ast.walk(function) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    return bound - arguments - declared - handlers


def _renamed(text: str, rng: random.Random) -> str:
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    edits = []  # (line, start column, end column, new text), UTF-8 columns as ast gives them
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names = {name: f"{rng.choice(['tmp', 'val', 'obj', 'res', 'item'])}_{rng.randrange(10**6):06d}"
                     for name in _locals(function)}
            edits += [(n.lineno, n.col_offset, n.end_col_offset, names[n.id])
                      for n in ast.walk(function) if isinstance(n, ast.Name) and n.id in names]
    for line, start, end, new in sorted(set(edits), reverse=True):
        raw = lines[line - 1].encode()
        lines[line - 1] = (raw[:start] + new.encode() + raw[end:]).decode()
    return "".join(lines)


def _comments_rewritten(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    commented = {t.start[0] for t in tokens if t.type == tokenize.COMMENT}
    for t in reversed([t for t in tokens if t.type == tokenize.COMMENT]):
        line = lines[t.start[0] - 1]
        lines[t.start[0] - 1] = line[:t.start[1]] + f"# note {rng.randrange(1000)}: done my own way" + line[t.end[1]:]
    for t in tokens:  # a comment of its own on every line that opens a block
        if t.type == tokenize.OP and t.string == ":" and t.end[0] not in commented:
            line = lines[t.end[0] - 1]
            if line.rstrip("\n").endswith(":"):
                lines[t.end[0] - 1] = line.rstrip("\n") + f"  # step {rng.randrange(100)}\n"
                commented.add(t.end[0])
    return "".join(lines)


def _reordered(text: str, rng: random.Random) -> str:
    """The top-level functions and classes in a shuffled order, after everything else."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    definitions, rest = [], []
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        piece = "".join(lines[first - 1:node.end_lineno])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            definitions.append(piece)
        else:
            rest.append(piece)
    before = list(definitions)
    rng.shuffle(definitions)
    if definitions == before:
        definitions.reverse()
    return "\n".join(rest) + "\n\n\n" + "\n\n".join(definitions)


def disguise(text: str, seed: int = 0) -> str:
    rng = random.Random(seed)
    return _reordered(_comments_rewritten(_renamed(text, rng), rng), rng)
