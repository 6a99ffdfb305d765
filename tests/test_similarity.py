"""Similar submissions (grader/batch/similarity.py): the defaults are justified here, on
work written apart, the kit's solutions and its independent implementation, and on copies
of them disguised as a learner would (tests/disguise.py): names changed, functions
reordered, comments rewritten. Then one real batch with --similarity, its report section
and a pair's page seen in headless Chromium (screenshots kept: SCREENSHOTS=DIR)."""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from browser import CHROMIUM, Chromium
from conftest import REPO, SUBMISSIONS, grade_batch
from disguise import disguise
from grader.authoring.stubgen import drop_markers
from grader.batch import similarity
from grader.batch.similarity import MIN_LENGTH, THRESHOLD, Entry, Settings
from grader.core import catalogue

MODULES = [m.name for m in catalogue.load().modules]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")


def learner(folder: Path, source: Path, *, disguised: int | None = None, markers: bool = False) -> Path:
    """A learner's folder: the modules of ``source`` (solutions without their markers), disguised with a seed."""
    folder.mkdir(parents=True)
    for module in MODULES:
        text = (source / f"{module}.py").read_text()
        text = drop_markers(text) if not markers else text
        (folder / f"{module}.py").write_text(disguise(text, disguised) if disguised is not None else text)
    return folder


def figures(found: similarity.Similarity) -> str:
    return "; ".join(f"{p.a.name}~{p.b.name} {p.share_a:.2f}/{p.share_b:.2f}" for p in found.pairs)


@pytest.fixture(scope="module")
def kit():
    return similarity.stubs()


@pytest.fixture(scope="module")
def written_apart(kit) -> tuple[Entry, Entry]:
    read = lambda name, folder: similarity.entry_of(name, similarity.read_modules(folder, MODULES), kit)  # noqa: E731
    return read("solutions", REPO / "solutions"), read("independent", SUBMISSIONS / "independent")


def test_work_written_apart_is_not_listed(tmp_path):
    """The class: the solutions, the independent implementation and an untouched stub."""
    learner(tmp_path / "class" / "ada", REPO / "solutions", markers=True)
    learner(tmp_path / "class" / "bo", SUBMISSIONS / "independent")
    shutil.copytree(REPO / "exercises", tmp_path / "class" / "cy", ignore=shutil.ignore_patterns("__pycache__"))
    found = similarity.run(tmp_path / "class")
    assert not found.pairs, figures(found)
    everything = similarity.run(tmp_path / "class", Settings(0.0, 0))
    (pair,) = [p for p in everything.pairs if {p.a.name, p.b.name} == {"ada", "bo"}]
    # the figures README.md gives: far under the threshold, though the docstrings dictate much alike
    print(f"written apart: shares {pair.share_a:.2f} / {pair.share_b:.2f}, tokens {pair.a.tokens} / {pair.b.tokens}")
    assert max(pair.share_a, pair.share_b) < THRESHOLD - 0.2
    assert {e.name: e.tokens for e in everything.entries}["cy"] == 0  # the stub alone: nothing of its own


def test_the_minimum_length_keeps_partial_work_written_apart_off_the_list(written_apart):
    """The worst case: two learners who each wrote only the functions on which the two
    implementations agree most (the docstrings spell them out step by step), for every
    number of such functions. At the default minimum length none is listed; without it,
    the first ones would be."""
    ours, theirs = written_apart
    every = similarity.compare_pair(ours, theirs).functions  # most shared first
    listed_without_minimum = 0
    for count in range(1, len(every) + 1):
        keys = {f.function for f in every[:count]}
        a = Entry("a", {k: w for k, w in ours.functions.items() if k in keys})
        b = Entry("b", {k: w for k, w in theirs.functions.items() if k in keys})
        assert not similarity.compare([a, b]).pairs, (count, a.tokens, b.tokens)
        listed_without_minimum += bool(similarity.compare([a, b], Settings(THRESHOLD, 0)).pairs)
        if count == 12:
            print(f"the 12 functions most alike: {a.tokens} / {b.tokens} tokens, shares "
                  f"{similarity.compare_pair(a, b).share_a:.2f} / {similarity.compare_pair(a, b).share_b:.2f}")
    assert listed_without_minimum >= 10


def test_a_disguised_copy_is_listed_with_the_functions_it_shares(tmp_path):
    learner(tmp_path / "class" / "ada", REPO / "solutions", markers=True)
    learner(tmp_path / "class" / "bo", SUBMISSIONS / "independent")
    learner(tmp_path / "class" / "zed", SUBMISSIONS / "independent", disguised=1)
    original, copy = (SUBMISSIONS / "independent" / "ex03_registry.py").read_text(), \
        (tmp_path / "class" / "zed" / "ex03_registry.py").read_text()
    assert "client = MlflowClient()" in original and "client = MlflowClient()" not in copy  # renamed
    assert original.index("def register_run_model") < original.index("def set_alias")
    assert copy.index("def register_run_model") > copy.index("def set_alias")  # reordered
    found = similarity.run(tmp_path / "class")
    (pair,) = found.pairs
    assert (pair.a.name, pair.b.name) == ("bo", "zed"), figures(found)
    print(f"disguised copy: shares {pair.share_a:.2f} / {pair.share_b:.2f}")
    assert min(pair.share_a, pair.share_b) > 0.95
    listed = {f.function for f in pair.listed_functions(THRESHOLD)}
    assert {"ex01_tracking.tune_hyperparameters", "ex03_registry.promote_if_better",
            "ex06_reproducible.log_run_rest"} <= listed
    assert listed == set(pair.a.functions)  # every function the original wrote


def test_a_copy_of_the_solutions_is_listed_against_them_when_asked(tmp_path):
    learner(tmp_path / "class" / "bo", SUBMISSIONS / "independent")
    learner(tmp_path / "class" / "kim", REPO / "solutions", disguised=2)
    assert not similarity.run(tmp_path / "class").pairs
    found = similarity.run(tmp_path / "class", Settings(against="solutions"))
    (pair,) = found.pairs
    assert (pair.a.name, pair.b.name) == ("kim", "solutions/"), figures(found)
    assert pair.share(MIN_LENGTH) > 0.95


def test_a_notebook_is_compared_on_its_extracted_code(tmp_path):
    """A notebook (a cell per module) against the same code handed in as files, disguised."""
    cells = [nbformat.v4.new_markdown_cell("My work")] + [
        nbformat.v4.new_code_cell((SUBMISSIONS / "independent" / f"{m}.py").read_text()) for m in MODULES]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / "class" / "nora.ipynb") if \
        (tmp_path / "class").mkdir() is None else None
    learner(tmp_path / "class" / "zed", SUBMISSIONS / "independent", disguised=4)
    found = similarity.run(tmp_path / "class")
    (pair,) = found.pairs
    assert (pair.a.name, pair.b.name) == ("nora", "zed")
    assert pair.share(MIN_LENGTH) > 0.95


def test_the_pair_page_shows_learner_text_escaped_and_control_characters_visible(tmp_path):
    hostile = '    note = "\\x1b[2J</pre><script>alert(1)</script>\u202e"  # </pre><b>\x1b]0;title\x07\n'
    for name, seed in (("ada", 5), ("bo", 6)):
        folder = learner(tmp_path / "class" / name, SUBMISSIONS / "independent", disguised=seed)
        path = folder / "ex03_registry.py"
        text = path.read_text()
        at = text.index("\n", text.index("def set_alias")) + 1
        path.write_text(text[:at] + hostile + text[at:])
    found = similarity.run(tmp_path / "class")
    out = tmp_path / "out"
    similarity.write_all(out, found)
    page = (out / found.pairs[0].page).read_text()
    assert "<script>" not in page and "</pre><b>" not in page and "\x1b" not in page and "\u202e" not in page
    assert "&lt;/pre&gt;&lt;script&gt;" in page and "\\x1b]0;title\\x07" in page and "\\u202e" in page
    assert "Content-Security-Policy" in page and "script-src 'none'" in page
    rows = list(csv.DictReader((out / "similarity.csv").open()))
    assert {r["page"] for r in rows} == {"similarity/pair-001.html"}
    assert "plagiari" not in (out / "report.html").read_text().lower() + page.lower()


def test_a_learner_cannot_be_named_like_the_similarity_outputs(tmp_path):
    from grader.batch.outputs import name_problem

    assert name_problem("similarity") and name_problem("Similarity.csv")


def test_a_real_batch_lists_the_disguised_copy_in_its_report(tmp_path):
    """Two learners graded for real: the independent implementation and a disguised copy of
    it; then the report's section and the pair's page in headless Chromium."""
    learner(tmp_path / "class" / "bo", SUBMISSIONS / "independent")
    learner(tmp_path / "class" / "zed", SUBMISSIONS / "independent", disguised=7)
    out = tmp_path / "out"
    done = grade_batch(tmp_path / "class", out, "--workers", "1", "--seed", "3", "--similarity",
                       env={"MLFLOW_DISABLE_TELEMETRY": "true"}, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = list(csv.DictReader((out / "similarity.csv").open()))
    assert {(r["learner_a"], r["learner_b"]) for r in rows} == {("bo", "zed")}
    assert "ex03_registry.promote_if_better" in {r["function"] for r in rows}
    grades = {r["learner"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert grades["bo"]["status"] == grades["zed"]["status"] == "graded"
    assert grades["bo"]["score"] == grades["zed"]["score"]  # the copy works as the original does
    report = (out / "report.html").read_text()
    assert "id='similarity'" in report and "similarity/pair-001.html" in report
    json.loads((out / "bo" / "results.json").read_text())
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed: the report is not seen in a browser")
    shots = Path(os.environ.get("SCREENSHOTS", tmp_path))
    with Chromium(tmp_path) as browser:
        page = browser.open(out / "report.html")
        assert not page.problems, page.problems
        page.resize(1200)
        seen = page.value("""(() => {
            const rows = [...document.querySelectorAll('#similar tbody tr')];
            document.querySelector('#similarity').scrollIntoView();
            return rows.map(r => [...r.cells].map(c => c.textContent.trim()));
        })()""")
        assert [row[:2] for row in seen] == [["bo", "zed"]], seen
        assert seen[0][4] == "side by side"
        page.screenshot(shots / "similarity-section.png", full_page=False)
        pair = browser.open(out / "similarity" / "pair-001.html")
        assert not pair.problems, pair.problems
        pair.resize(1200)
        marked = pair.value("document.querySelectorAll('mark').length")
        assert marked > 20, marked
        pair.screenshot(shots / "similarity-pair.png", full_page=False)


def test_the_command_writes_the_list_and_refuses_what_it_cannot_read(tmp_path):
    import subprocess
    import sys

    learner(tmp_path / "class" / "kim", REPO / "solutions", disguised=8)
    command = [sys.executable, "-m", "grader", "similarity", str(tmp_path / "class"), "--out", str(tmp_path / "out")]
    done = subprocess.run([*command, "--against", "solutions"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert done.returncode == 0, done.stderr
    assert "kim ~ solutions/" in done.stderr
    assert "id='similarity'" in (tmp_path / "out" / "report.html").read_text()
    assert (tmp_path / "out" / "similarity" / "pair-001.html").is_file()
    refused = subprocess.run([*command[:4], str(tmp_path / "nothing"), "--out", str(tmp_path / "out")], cwd=REPO,
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "is not a folder" in refused.stderr
    batch = subprocess.run([sys.executable, "-m", "grader", "batch", str(tmp_path / "class"), "--out",
                            str(tmp_path / "graded"), "--against", "solutions"], cwd=REPO, capture_output=True, text=True)
    assert batch.returncode == 2 and "go with --similarity" in batch.stderr
    assert not (tmp_path / "graded" / "gradebook.csv").exists()
