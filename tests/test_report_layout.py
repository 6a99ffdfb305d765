"""The class report as an instructor sees it, in headless Chromium: a class of 25 with a
roster, error rows with long reasons and a retried learner. At 1400 px the whole grid
(every function of the kit: 25) shows without a horizontal
scrollbar; at 800 px it scrolls in its own box and the rest of the page still fits.
Screenshots of both are kept in the test's folder (SCREENSHOTS=DIR copies them there)."""
from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from browser import CHROMIUM, Chromium
from grader.batch import report
from grader.batch.gradebook import Gradebook, Row, columns
from grader.core import catalogue

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
ROSTER = ["student_id", "name", "email"]
ROOM_FOR = max(0, 25 - len(catalogue.load().exercises))  # the grid is meant for 25 functions


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    book = Gradebook(folder / "gradebook.csv", columns(ROSTER), keep=False, excel=False)
    rng, exercises = random.Random(7), catalogue.load().exercises
    for n in range(25):
        learner = f"learner-{n:02d}-{rng.choice(['ada', 'bo', 'christabel-montgomery'])}"
        student = {"student_id": f"{1000 + n}", "name": f"Student {n} Longname-Hyphenated", "email": f"s{n}@example.org"}
        if n % 6 == 5:
            book.write(Row(learner, "error", 0, 100, seed=1, student=student, reason=(
                "the grader could not grade it: ex01_tracking.py cannot be imported (SyntaxError: invalid syntax) "
                "at line 12, and more words than any cell should hold " * 2)))
            continue
        scores = {e.key: rng.choice([0, e.points, e.points, rng.randrange(e.points + 1)]) for e in exercises}
        reason = "graded again after its grading host died (1 time)" if n == 3 else ""
        book.write(Row(learner, "graded", sum(scores.values()), 100, scores, 12.3, 1, reason, student))
    report.write(folder, book.rows(), ROSTER)
    return folder


@needs_chromium
def test_the_whole_grid_fits_a_wide_screen_and_scrolls_in_its_box_on_a_narrow_one(out, tmp_path):
    shots = Path(os.environ.get("SCREENSHOTS", tmp_path))
    with Chromium(tmp_path) as browser:
        page = browser.open(out / "report.html")
        assert not page.problems, page.problems
        for width in (1400, 800):
            page.resize(width)
            page.screenshot(shots / f"report-{width}.png")
            sizes = page.value("""(() => {
                const grid = document.querySelector('#learners'), box = grid.parentElement;
                const column = grid.querySelector('thead th[data-key]').getBoundingClientRect().width;
                return {page: document.documentElement.scrollWidth, window: window.innerWidth, table: grid.getBoundingClientRect().right,
                        column, box: box.scrollWidth > box.clientWidth,
                        rows: [...grid.tBodies[0].rows].map(r => r.getBoundingClientRect().height)};
            })()""")
            assert sizes["page"] <= sizes["window"], f"the page scrolls sideways at {width} px: {sizes}"
            assert max(sizes["rows"]) < 2.2 * min(sizes["rows"]), f"a row is much taller than the others: {sizes['rows']}"
            if width == 1400:
                assert not sizes["box"] and sizes["table"] + ROOM_FOR * sizes["column"] <= width, sizes
        titles = page.value("[...document.querySelectorAll('#learners thead th[data-key]')].map(th => th.title)")
        assert titles == [e.key for e in catalogue.load().exercises]
        why = page.value("[...document.querySelectorAll('#failing tbody tr')].map(r => r.cells[3].innerText)")
        assert why and all(w.strip() for w in why), "every failing row says why"
        assert any(w.startswith("lost most on ") for w in why), why
        retried = page.value("[...document.querySelectorAll('#learners tbody tr')].map(r => r.innerText).join('\\n')")
        assert "graded again after its grading host died (1 time)" in retried
