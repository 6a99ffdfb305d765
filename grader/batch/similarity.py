"""Similar submissions: which learners wrote much the same code, function by function, with
the stub's own text taken away first. A list to look at, never a verdict.

Every learner starts from the same stubs and calls the same MLflow APIs, so comparing
whole files would pair everyone. Here, for each function (and class) the stub defines:

- the learner's definition is found with ``ast`` in the module core/submission.py read
  (folders, zips and notebooks alike; nothing is imported or run), docstrings cut out;
- Python's own tokenizer writes it in copydetect's normalised form (every name one
  letter, every string one, comments and layout dropped: renamed variables and rewritten
  comments change nothing; copydetect's own tokenizer, pygments, is four times slower),
  and copydetect (pinned in requirements.txt) fingerprints it (every run of NOISE
  characters) and compares it;
- the fingerprints of the stub's own definition (signature, the code it already holds)
  are boilerplate, taken away: what is left is what the learner wrote;
- functions are matched by name, so their order in the file does not matter.

A learner's **share** in common with another is the part of all they wrote (over every
function) that the other's code holds too. A pair is listed when one side's share is at
least ``threshold`` and that side wrote at least ``min_length`` tokens of their own
(copydetect's tokens: a name, a keyword, a digit, a bracket each count one; a full
submission holds about 3,500). Below that, work written apart looks alike: the docstrings
spell the steps out, so the kit's solutions and its independent implementation share
about half of what they wrote, and 81% of the 1,700 tokens of the functions they agree on
most (tests/test_similarity.py measures both; README.md has the figures).

Comparing is quick: learners are read in a process per core, every two entries are
screened at once with copydetect's measure (shares_in_common), and only the pairs listed
are compared again by copydetect's compare_files, for where their shared code stands.

Outputs, in the batch's OUT folder: similarity.csv (a row per listed pair and function),
similarity/pair-NNN.html (one offline page per pair, the shared code highlighted, learner
text escaped and its control characters shown), and a section of report.html.
"""
from __future__ import annotations

import ast
import builtins
import html
import io
import keyword
import os
import re
import shutil
import stat
import tempfile
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from grader.batch import sheets
from grader.batch.collect import Submission, collect, pack, unpack
from grader.batch.outputs import SIMILARITY, SIMILARITY_PAGES, replace_file
from grader.core.submission import MAX_NOTEBOOK_CODE_BYTES, SubmissionError, read_file
from grader.core.text import printable, visible

# Defaults, justified by tests/test_similarity.py (the figures are in README.md).
THRESHOLD = 0.8
MIN_LENGTH = 2000
# copydetect's k: the shortest run of tokens that counts as shared (its own default).
NOISE = 25
AGAINST = {"solutions": "solutions/"}  # --against: the kit's reference, by a name no learner can have
MAX_MODULE_BYTES = MAX_NOTEBOOK_CODE_BYTES  # a module longer than this is left out of the comparison
CSV_COLUMNS = ["learner_a", "learner_b", "pair_share", "function", "share_a", "share_b", "tokens_a", "tokens_b", "page"]


@dataclass(frozen=True)
class Settings:
    threshold: float = THRESHOLD
    min_length: int = MIN_LENGTH
    against: str | None = None  # a key of AGAINST


class Written:
    """One learner's definition of one function: its text (docstrings cut out), copydetect's
    fingerprint of what is left once the stub's (``boilerplate``) is taken away, and where
    each character of the normalised code comes from in the text. The fingerprint is made
    again where it is needed after a trip to another process (it pickles slowly)."""

    def __init__(self, text: str, boilerplate) -> None:
        self.text, self.boilerplate = text, boilerplate
        self._made = _fingerprint(text, boilerplate)
        self.tokens = int(self.fingerprint.token_coverage)

    def _fingerprinted(self) -> tuple:
        if self._made is None:
            self._made = _fingerprint(self.text, self.boilerplate)
        return self._made

    @property
    def fingerprint(self):  # copydetect.CodeFingerprint
        return self._fingerprinted()[0]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_made": None}

    def in_text(self, slices) -> list[tuple[int, int]]:
        """copydetect's slices of the normalised code, as (start, end) in the text: its
        tokens, joined across the white space between them but not across a comment."""
        _, starts, ends = self._fingerprinted()
        found: list[tuple[int, int]] = []
        for first, last in zip(*slices) if len(slices) and len(slices[0]) else ():
            for index in range(int(first), min(int(last), len(starts))):
                start, end = starts[index], ends[index]
                if found and (start <= found[-1][1] or not self.text[found[-1][1]:start].strip()):
                    found[-1] = (found[-1][0], max(end, found[-1][1]))
                else:
                    found.append((start, end))
        return found


@dataclass
class Entry:
    """A learner (or the reference, with --against): their functions, by ``module.function``."""

    name: str
    functions: dict[str, Written] = field(default_factory=dict)
    problem: str | None = None  # why nothing of it could be compared

    @property
    def tokens(self) -> int:
        return sum(w.tokens for w in self.functions.values())

    def index(self):
        """Every fingerprint of every function, as arrays for comparing many at once: (where
        it stands, all functions end to end, NOISE apart; its hash, salted with the
        function's name; the salted hashes, sorted and unique)."""
        if "_index" not in self.__dict__:
            import numpy as np

            where, keys, offset = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], 0
            for name, written in sorted(self.functions.items()):
                places = written.fingerprint.hash_idx
                counts = [len(p) for p in places.values()]
                where.append(np.fromiter((p for ps in places.values() for p in ps), np.int64, sum(counts)) + offset)
                keys.append(np.repeat(np.fromiter(places, np.int64, len(places)), counts) ^ hash(name))
                offset += len(written.fingerprint.filtered_code) + NOISE
            where, keys = np.concatenate(where), np.concatenate(keys)
            order = np.argsort(where, kind="stable")
            self.__dict__["_index"] = (where[order], keys[order], np.unique(keys))
        return self.__dict__["_index"]


@dataclass
class Shared:
    """One function both learners wrote: the share of each one's code in common, and where."""

    function: str
    share_a: float
    share_b: float
    tokens_a: int
    tokens_b: int
    slices_a: list[tuple[int, int]]
    slices_b: list[tuple[int, int]]

    @property
    def share(self) -> float:
        return max(self.share_a, self.share_b)


@dataclass
class Pair:
    a: Entry
    b: Entry
    share_a: float  # of all a wrote, the part b's code holds too
    share_b: float
    functions: list[Shared]  # every function both wrote, most shared first
    page: str = ""  # similarity/pair-NNN.html

    def share(self, min_length: int) -> float:
        """The larger share of a side that wrote at least ``min_length`` tokens."""
        return max([s for s, e in ((self.share_a, self.a), (self.share_b, self.b)) if e.tokens >= min_length],
                   default=0.0)

    def listed_functions(self, threshold: float) -> list[Shared]:
        return [f for f in self.functions if f.share >= threshold]


@dataclass
class Similarity:
    settings: Settings
    entries: list[Entry]
    pairs: list[Pair]  # the listed pairs, most shared first

    @property
    def unreadable(self) -> list[Entry]:
        return [e for e in self.entries if e.problem]


# ---- what each learner wrote ----------------------------------------------------------

def _line_starts(text: str) -> list[int]:
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _offset(text: str, starts: list[int], line: int, column: int) -> int:
    """A character offset from ast's (line, UTF-8 byte column)."""
    start = starts[line - 1]
    end = starts[line] if line < len(starts) else len(text)
    return start + len(text[start:end].encode("utf-8")[:column].decode("utf-8", errors="ignore"))


def _docstrings(node: ast.AST) -> list[ast.Expr]:
    """The docstrings of a definition and of the definitions in it (statements only are walked)."""
    found, todo = [], [node]
    while todo:
        inner = todo.pop()
        body = getattr(inner, "body", None)
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body \
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            found.append(body[0])
        for block in ("body", "orelse", "finalbody", "handlers"):
            todo += [s for s in getattr(inner, block, ()) if isinstance(s, ast.AST)]
    return found


def definitions(text: str) -> dict[str, str]:
    """Each top-level function's and class's source (the last one of a name, as Python
    keeps it), decorators included and docstrings cut out. Raises SyntaxError and the like."""
    tree = ast.parse(text)
    starts = _line_starts(text)
    found = {}
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        begin, end = starts[first - 1], _offset(text, starts, node.end_lineno, node.end_col_offset)
        cuts = [(_offset(text, starts, d.lineno, d.col_offset), _offset(text, starts, d.end_lineno, d.end_col_offset))
                for d in _docstrings(node)]
        pieces, at = [], begin
        for cut_from, cut_to in sorted(cuts):
            pieces.append(text[at:cut_from])
            at = cut_to
        pieces.append(text[at:end])
        # a line the docstring alone stood on goes with it
        found[node.name] = re.sub(r"\n[ \t]*(?=\n)", "", "".join(pieces)) + "\n"
    return found


KEPT_NAMES = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))


def normalised(code: str) -> tuple[str, list[int], list[int]]:
    """``code`` as copydetect's filter_code writes it for its tokeniser (each name ``V``, a
    function's name where it is defined ``F``, a class's ``O``, each string ``S``; keywords,
    builtins, numbers and operators as they are; comments and layout left out), tokenised by
    Python's own ``tokenize`` (four times quicker than pygments here: README.md, Speed);
    and for each of its characters, where it starts and ends in ``code``."""
    lines = _line_starts(code)
    out, starts, ends, previous = [], [], [], ""
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            kind, text = token.type, token.string
            if kind == tokenize.NAME:
                word = text if text in KEPT_NAMES else "F" if previous == "def" else "O" if previous == "class" else "V"
            elif kind == tokenize.STRING:
                word = "S"
            elif kind in (tokenize.NUMBER, tokenize.OP):
                word = text
            else:
                continue
            start = lines[token.start[0] - 1] + token.start[1]
            end = lines[token.end[0] - 1] + token.end[1]
            for index in range(len(word)):
                starts.append(start + index if word == text else start)
                ends.append(start + index + 1 if word == text else end)
            out.append(word)
            previous = text
    except (tokenize.TokenError, SyntaxError):
        pass  # code ast parsed tokenizes; anything else compares as far as it went
    return "".join(out), starts, ends


def _fingerprint(code: str, boilerplate=None):
    """copydetect's fingerprint of the normalised code (winnowing with a window of one:
    every run of NOISE characters), the stub's fingerprints (``boilerplate``) taken away."""
    from copydetect import CodeFingerprint

    filtered, starts, ends = normalised(code)
    found = CodeFingerprint("code.py", NOISE, 1, boilerplate=boilerplate, filter=False, fp=io.StringIO(filtered))
    found.raw_code = code
    # plain ints, not NumPy's: the same hashes and places, a hundred times quicker to pickle
    found.hash_idx = {int(h): [int(p) for p in places] for h, places in found.hash_idx.items()}
    found.hashes = set(found.hash_idx)
    return found, starts, ends


@dataclass
class Stubs:
    """Per ``module.function``: the stub's fingerprints (taken away from every learner's)."""

    boilerplate: dict[str, object]
    modules: dict[str, list[str]]  # module -> its functions' names


def stubs() -> Stubs:
    import numpy as np

    from grader.authoring.stubgen import expected_stubs

    boilerplate, modules = {}, {}
    for file_name, text in expected_stubs().items():
        module = file_name.removesuffix(".py")
        names = definitions(text)
        modules[module] = list(names)
        for name, code in names.items():
            boilerplate[f"{module}.{name}"] = np.unique(np.array(sorted(_fingerprint(code)[0].hashes), dtype=np.int64))
    return Stubs(boilerplate, modules)


def entry_of(name: str, modules: dict[str, str], kit: Stubs) -> Entry:
    """A learner's functions from their modules' text (``module`` -> source)."""
    entry = Entry(name)
    for module, functions in kit.modules.items():
        text = modules.get(module)
        if text is None:
            continue
        try:
            found = definitions(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # a module that does not parse defines nothing to compare
        for function in functions:
            if function in found:
                key = f"{module}.{function}"
                written = Written(found[function], kit.boilerplate[key])
                if written.tokens:
                    entry.functions[key] = written
    return entry


def read_modules(folder: Path, modules: list[str]) -> dict[str, str]:
    """The modules' text from a learner's unpacked folder (regular files, no links); a
    module longer than MAX_MODULE_BYTES is left out."""
    found = {}
    for module in modules:
        try:
            data = read_file(folder, f"{module}.py", MAX_MODULE_BYTES, "too long")
        except (SubmissionError, OSError):
            continue
        found[module] = data.decode("utf-8", errors="replace")
    return found


def read_submission(submission: Submission, destination: Path, kit: Stubs, time_limit: float) -> Entry:
    """A learner's entry, read as the batch reads it (collect.py's pack and unpack into
    ``destination``, removed after)."""
    if submission.problem:
        return Entry(submission.learner, problem=submission.problem)
    try:
        unpacked = unpack(pack(submission), destination, time_limit)
        return entry_of(submission.learner, read_modules(unpacked.target, list(kit.modules)), kit)
    except SubmissionError as error:
        return Entry(submission.learner, problem=str(error))
    finally:
        shutil.rmtree(destination, ignore_errors=True)
        destination.with_name(destination.name + ".ipynb").unlink(missing_ok=True)


def reference(against: str, kit: Stubs) -> Entry:
    from grader import KIT_ROOT
    from grader.authoring.stubgen import drop_markers

    folder = KIT_ROOT / against
    return entry_of(AGAINST[against], {m: drop_markers((folder / f"{m}.py").read_text(encoding="utf-8"))
                                       for m in kit.modules}, kit)


# ---- comparing ------------------------------------------------------------------------

def compare_pair(a: Entry, b: Entry) -> Pair:
    """The two learners' shares in common, function by function (copydetect's compare_files:
    the shares and where the shared code stands) and in all."""
    from copydetect import compare_files

    shared, common_a, common_b = [], 0.0, 0.0
    for key in sorted(a.functions.keys() & b.functions.keys()):
        first, second = a.functions[key], b.functions[key]
        if not first.fingerprint.hashes & second.fingerprint.hashes:
            continue
        _, (share_a, share_b), (slices_a, slices_b) = compare_files(first.fingerprint, second.fingerprint)
        share_a, share_b = min(1.0, float(share_a)), min(1.0, float(share_b))
        common_a += share_a * first.tokens
        common_b += share_b * second.tokens
        shared.append(Shared(key, share_a, share_b, first.tokens, second.tokens,
                             first.in_text(slices_a), second.in_text(slices_b)))
    shared.sort(key=lambda s: (-s.share, s.function))
    return Pair(a, b, common_a / a.tokens if a.tokens else 0.0, common_b / b.tokens if b.tokens else 0.0, shared)


def shares_in_common(everyone: list[Entry]):
    """A matrix: row x, column y, the share of all x wrote that y's code holds too, for every
    two entries at once (compare_pair's share_a, without where; only the pairs listed are
    then compared again by copydetect). The fingerprints of x that y holds, in positions
    of x's code; then copydetect's measure: the characters their runs of NOISE cover."""
    import numpy as np
    from scipy import sparse

    count = len(everyone)
    found = np.zeros((count, count))
    held = [e.index()[2] for e in everyone]
    known = np.unique(np.concatenate(held)) if count else np.array([], dtype=np.int64)
    holders = sparse.csr_matrix(
        (np.ones(sum(map(len, held)), dtype=np.int8),
         (np.concatenate([np.searchsorted(known, h) for h in held]) if count else [],
          np.concatenate([np.full(len(h), n) for n, h in enumerate(held)]) if count else [])),
        shape=(len(known), count))
    for x, entry in enumerate(everyone):
        positions, salted, _ = entry.index()
        if not len(positions) or not entry.tokens:
            continue
        # who holds each fingerprint of x: by entry, x's positions in order (a column each)
        hit = holders[np.searchsorted(known, salted)].tocsc()
        hit.sort_indices()
        at = positions[hit.indices]
        # each shared run covers NOISE characters, less where the next one of the column overlaps it
        cover = np.full(len(at), NOISE, dtype=np.int64)
        cover[:-1] = np.minimum(np.diff(at), NOISE)
        ends = hit.indptr[1:] - 1
        filled = hit.indptr[1:] > hit.indptr[:-1]
        cover[ends[filled]] = NOISE
        covered = np.zeros(count)
        covered[filled] = np.add.reduceat(cover, hit.indptr[:-1][filled]) if len(cover) else 0
        covered[x] = 0
        found[x] = np.minimum(1.0, covered / entry.tokens)
    return found


def compare(entries: list[Entry], settings: Settings = Settings(), reference_entry: Entry | None = None) -> Similarity:
    """Every pair of learners (and each learner against the reference, when given) whose
    share in common reaches the threshold (a side of at least the minimum length)."""
    readable = [e for e in entries if not e.problem and e.tokens]
    everyone = readable + ([reference_entry] if reference_entry is not None else [])
    shares = shares_in_common(everyone)
    counts = [e.tokens >= settings.min_length for e in everyone]
    listed = [(i, j) for i in range(len(readable)) for j in range(i + 1, len(everyone))
              if max(shares[i, j] if counts[i] else 0.0, shares[j, i] if counts[j] else 0.0)
              >= settings.threshold - 1e-9]
    pairs = [pair for pair in (compare_pair(everyone[i], everyone[j]) for i, j in listed)
             if pair.share(settings.min_length) >= settings.threshold]
    pairs.sort(key=lambda p: (-p.share(settings.min_length), p.a.name, p.b.name))
    for number, pair in enumerate(pairs, start=1):
        pair.page = f"{SIMILARITY_PAGES}/pair-{number:03d}.html"
    return Similarity(settings, entries, pairs)


# In a worker process of _pool: the kit's stubs (never set in the batch's own process).
_IN_WORKER: dict = {}


def _start_worker(kit) -> None:
    _IN_WORKER.update(kit=kit)


def _read(submission: Submission, destination: Path, time_limit: float) -> Entry:
    entry = read_submission(submission, destination, _IN_WORKER["kit"], time_limit)
    entry.index()
    return entry


def processes() -> int:
    """Processes to read and fingerprint with: every core (at most 8), when this process has
    no other thread (a fork copies one thread only); else this process alone."""
    import threading

    return min(8, os.cpu_count() or 1) if threading.active_count() == 1 else 1


def run(submissions: Path, settings: Settings = Settings(), time_limit: float = 900.0) -> Similarity:
    """Read every submission of the folder as the batch does, and compare them. Learners are
    read in processes forked from this one (Python's hash of a string, which fingerprints
    are, is the same in them), handed the kit's stubs as they are, not pickled."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    kit, count = stubs(), processes()
    with tempfile.TemporaryDirectory(prefix="mlflow-kit-similarity-") as scratch:
        found = collect(submissions)
        places = [Path(scratch) / f"learner-{n}" for n in range(len(found))]
        if count > 1 and len(found) > 8:
            with ProcessPoolExecutor(count, multiprocessing.get_context("fork"), initializer=_start_worker,
                                     initargs=(kit,)) as pool:
                entries = list(pool.map(_read, found, places, [time_limit] * len(found), chunksize=4))
        else:
            entries = [read_submission(s, place, kit, time_limit) for s, place in zip(found, places)]
    return compare(entries, settings, reference(settings.against, kit) if settings.against else None)


# ---- what is written ------------------------------------------------------------------

def rows(found: Similarity) -> list[dict]:
    """similarity.csv: a row per listed pair and function it shares (at the threshold)."""
    lines = []
    for pair in found.pairs:
        for shared in pair.listed_functions(found.settings.threshold) or pair.functions[:1]:
            lines.append({"learner_a": pair.a.name, "learner_b": pair.b.name,
                          "pair_share": f"{pair.share(found.settings.min_length):.2f}", "function": shared.function,
                          "share_a": f"{shared.share_a:.2f}", "share_b": f"{shared.share_b:.2f}",
                          "tokens_a": shared.tokens_a, "tokens_b": shared.tokens_b, "page": pair.page})
    return lines


def write_all(out: Path, found: Similarity) -> Path:
    """similarity.csv, the pairs' pages, and report.html with the section: the batch's
    report when ``out`` holds its gradebook, else a page of the section alone."""
    from grader.batch import report
    from grader.batch.outputs import GRADEBOOK, REPORT

    out.mkdir(parents=True, exist_ok=True)
    write(out, found)
    gradebook = out / GRADEBOOK
    if gradebook.is_file():
        header, graded = sheets.read_csv(gradebook)
        roster = header[1:header.index("status")] if "status" in header else []
        return report.write(out, graded, roster, section(found))
    replace_file(out / REPORT, report.page("Similar submissions", section(found), report.STYLE))
    return out / REPORT


def write(out: Path, found: Similarity) -> None:
    """similarity.csv and one page per listed pair (the pages of an earlier run removed)."""
    pages = out / SIMILARITY_PAGES
    try:
        if not stat.S_ISDIR(os.lstat(pages).st_mode):
            pages.unlink()
    except FileNotFoundError:
        pass
    pages.mkdir(exist_ok=True)
    for old in pages.iterdir():
        if re.fullmatch(r"pair-\d+\.html", old.name) and old.is_file() and not old.is_symlink():
            old.unlink()
    for pair in found.pairs:
        replace_file(out / pair.page, pair_page(pair, found))
    sheets.write_csv(out / SIMILARITY, CSV_COLUMNS, rows(found), excel=False)


PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
p { max-width: 60em; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
.side > div { min-width: 0; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: .6em; overflow-x: auto; font-size: .85em; margin: 0; }
mark { background: #ffe08a; }
h3 { margin-top: 1.6em; }
h4 { margin: .3em 0; overflow-wrap: anywhere; }
"""


def _highlighted(text: str, slices: list[tuple[int, int]]) -> str:
    """``text`` escaped, its control characters shown, the shared slices in <mark>."""
    parts, at = [], 0
    for start, end in sorted(slices):
        start, end = max(start, at), min(end, len(text))
        if start >= end:
            continue
        parts.append(html.escape(visible(text[at:start])))
        parts.append("<mark>" + html.escape(visible(text[start:end])) + "</mark>")
        at = end
    parts.append(html.escape(visible(text[at:])))
    return "".join(parts)


def pair_page(pair: Pair, found: Similarity) -> str:
    from grader.batch.report import page

    a, b = html.escape(printable(pair.a.name)), html.escape(printable(pair.b.name))
    body = [f"<h1>{a} and {b}</h1>",
            f"<p>Of all {a} wrote ({pair.a.tokens} tokens, the stub's taken away), {pair.share_a:.0%} is in {b}'s "
            f"code too; of all {b} wrote ({pair.b.tokens} tokens), {pair.share_b:.0%} is in {a}'s. "
            "Highlighted: the code both hold, compared with every name made alike and comments left out. "
            "A similarity is a place to look, not a finding: code the docstrings spell out looks alike anyway.</p>",
            "<p><a href='../report.html'>Back to the class report</a></p>"]
    listed = {id(s) for s in pair.listed_functions(found.settings.threshold)}
    for shared in pair.functions:
        note = "" if id(shared) in listed else " (below the threshold)"
        body.append(f"<h3 id='{html.escape(shared.function)}'><code>{html.escape(shared.function)}</code>: "
                    f"{shared.share_a:.0%} of {a}'s, {shared.share_b:.0%} of {b}'s{note}</h3>")
        body.append("<div class='side'>"
                    f"<div><h4>{a}</h4><pre>{_highlighted(pair.a.functions[shared.function].text, shared.slices_a)}</pre></div>"
                    f"<div><h4>{b}</h4><pre>{_highlighted(pair.b.functions[shared.function].text, shared.slices_b)}</pre></div>"
                    "</div>")
    return page(f"Similar code: {printable(pair.a.name)} and {printable(pair.b.name)}", "\n".join(body), PAGE_STYLE)


def section(found: Similarity) -> str:
    """report.html's section: the listed pairs, each linking to its page."""
    from grader.batch.report import plain_table

    esc = html.escape
    against = (f" (and each learner with the kit's reference {esc(found.settings.against)}, named "
               f"{esc(AGAINST[found.settings.against])})") if found.settings.against else ""
    intro = (f"<h2 id='similarity'>Similar submissions</h2><p>Pairs of learners{against} whose own code (what is left "
             f"of each function once the stub's text is taken away, names made alike, comments left out) is at "
             f"least {found.settings.threshold:.0%} in common, for a side that wrote at least {found.settings.min_length} tokens "
             f"of its own. A list to look at: code the docstrings spell out step by step looks alike anyway. "
             f"Each pair's page shows the shared code side by side; similarity.csv has the figures.</p>")
    unreadable = found.unreadable
    if unreadable:
        intro += (f"<p>{len(unreadable)} submission(s) could not be read and were not compared: "
                  f"{esc(printable(', '.join(e.name for e in unreadable)))}.</p>")
    short = [e for e in found.entries if not e.problem and e.tokens < found.settings.min_length]
    if short:
        intro += (f"<p>{len(short)} of the {len(found.entries)} submissions hold fewer than {found.settings.min_length} "
                  "tokens of their own: what they share counts only on the other side of a pair.</p>")
    if not found.pairs:
        return intro + f"<p id='similar-none'>No pair of the {len(found.entries)} submissions reaches it.</p>"
    lines = []
    for pair in found.pairs:
        listed = pair.listed_functions(found.settings.threshold)
        functions = f"{len(listed)} of the {len(pair.functions)} both wrote: " + ", ".join(
            f"<code>{esc(s.function)}</code> {s.share:.0%}" for s in listed)
        lines.append([esc(printable(pair.a.name)), esc(printable(pair.b.name)), f"{pair.share(found.settings.min_length):.0%}",
                      f"<span class='why'>{functions}</span>",
                      f"<a class='nowrap' href='{esc(pair.page)}'>side by side</a>"])
    return intro + plain_table(["learner", "learner", "share in common", "functions (share)", ""], lines, "similar")
