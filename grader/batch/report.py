"""report.html: the class report, one self-contained file that opens offline and can be
mailed around: inline CSS and SVG, and one small inline script that sorts the learners'
table. A Content-Security-Policy allows exactly that script and that style (by hash) and
nothing else: no other script, no remote resource. Every learner text is escaped.
"""
from __future__ import annotations

import base64
import bisect
import hashlib
import html
import json
import statistics
from pathlib import Path
from urllib.parse import quote

from grader.batch.gradebook import STATUSES
from grader.batch import sheets
from grader.batch.outputs import FACTS, FEEDBACK, FUNCTIONS, REPORT, RESULTS, learner_file, replace_file
from grader.core import catalogue
from grader.core.results import Results, ResultsError

BANDS = 10
SLOWEST_SHOWN = 5
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
p, .warn { max-width: 60em; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { padding: .25em .6em; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; }
.warn { background: #fff3cd; border: 1px solid #e0b400; padding: .8em; }
.wide { overflow-x: auto; }
th button { font: inherit; font-weight: bold; background: none; border: 0; padding: 0; cursor: pointer; }
th[aria-sort=ascending] button::after { content: " \\25B2"; }
th[aria-sort=descending] button::after { content: " \\25BC"; }
td.full { background: #c8e6c9; } td.part { background: #ffe0a3; } td.zero { background: #f4b8b8; }
td.none { color: #888; }
.why { max-width: 30em; overflow-wrap: anywhere; }
.nowrap { white-space: nowrap; }
#learners { font-size: .85em; }
#learners td, #learners th { padding: .15em .2em; white-space: nowrap; }
#learners td.learner, #learners td.student, #learners td.why { max-width: 9em; overflow: hidden; text-overflow: ellipsis; }
"""
# Sorts a table.sortable by the clicked column: numbers as numbers (a cell's data-sort when
# it has one), the rest as text; a second click reverses.
SCRIPT = """
for (const table of document.querySelectorAll("table.sortable")) {
  table.querySelectorAll("thead th").forEach((th, index) => {
    th.querySelector("button").addEventListener("click", () => {
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("thead th").forEach(h => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const key = row => { const cell = row.cells[index]; return cell.dataset.sort ?? cell.textContent.trim(); };
      const rows = [...table.tBodies[0].rows].sort((a, b) => {
        const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        const order = isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
        return ascending ? order : -order;
      });
      table.tBodies[0].append(...rows);
    });
  });
}
"""


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def policy(style: str, script: str | None = None) -> str:
    """A Content-Security-Policy that allows this style and this script (by hash) and nothing else."""
    scripts = _hash(script) if script else "'none'"
    return (f"default-src 'none'; script-src {scripts}; style-src {_hash(style)}; "
            "img-src 'none'; base-uri 'none'; form-action 'none'")


POLICY = policy(STYLE, SCRIPT)
esc = html.escape


def page(title: str, body: str, style: str) -> str:
    """Another offline page of the batch's (similarity.py's side-by-side views): no script."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{policy(style)}\">"
            f"<title>{esc(title)}</title><style>{style}</style></head><body>{body}</body></html>")


def bands(max_score: int) -> list[tuple[int, int]]:
    """(lowest, highest) score of each band, whole points, never overlapping: 0–9 … 90–100."""
    lows = sorted({band * max_score // BANDS for band in range(BANDS)})
    return [(low, (lows[i + 1] - 1) if i + 1 < len(lows) else max_score) for i, low in enumerate(lows)]


def band_counts(scores: list[int], max_score: int) -> list[tuple[str, int]]:
    ranges = bands(max_score)
    counts = [0] * len(ranges)
    for score in scores:
        counts[max(0, bisect.bisect_right([low for low, _ in ranges], score) - 1)] += 1
    return [(f"{low}–{high}", count) for (low, high), count in zip(ranges, counts)]


def _histogram_svg(scores: list[int], max_score: int) -> str:
    counts = band_counts(scores, max_score)
    pitch, bar, height, top, left = 56, 44, 180, 22, 10
    width = left + pitch * len(counts)
    tallest = max([c for _, c in counts] + [1])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + height + 30}" '
             f'viewBox="0 0 {width} {top + height + 30}" role="img" aria-label="score distribution">']
    for i, (label, count) in enumerate(counts):
        h = round(count / tallest * height)
        x, base = left + i * pitch, top + height
        parts.append(f'<rect x="{x}" y="{base - h}" width="{bar}" height="{h}" fill="#4a7bd0">'
                     f'<title>{label}: {count}</title></rect>')
        parts.append(f'<text class="count" x="{x + bar / 2}" y="{base - h - 6}" font-size="12" '
                     f'text-anchor="middle">{count}</text>')
        parts.append(f'<text class="band" x="{x + bar / 2}" y="{base + 18}" font-size="11" '
                     f'text-anchor="middle">{label}</text>')
    parts.append(f'<line x1="{left - 4}" y1="{top + height}" x2="{width}" y2="{top + height}" stroke="#444"/></svg>')
    return "".join(parts)


def _score(row: dict, key: str) -> int | None:
    try:
        return int(row.get(key, ""))
    except ValueError:
        return None


def per_function(graded: list[dict]) -> list[tuple[catalogue.Exercise, float, float]]:
    """(function, share of the graded with full marks, mean share of its points earned)."""
    found = []
    for exercise in catalogue.load().exercises:
        scores = [s for s in (_score(r, exercise.key) for r in graded) if s is not None]
        full = sum(s == exercise.points for s in scores) / len(scores) if scores else 0.0
        partial = sum(scores) / (len(scores) * exercise.points) if scores else 0.0
        found.append((exercise, full, partial))
    return found


def _check_scores(out: Path, graded: list[dict]) -> dict[str, list[int]]:
    """Each check's points ("module.function: check words") over the graded learners' results.json."""
    found: dict[str, list[int]] = {}
    for row in graded:
        path = learner_file(out, row["learner"], RESULTS)
        try:
            tests = Results.read(path).tests if path else []
        except ResultsError:
            continue
        for test in tests:
            found.setdefault(test.name, []).append(test.score)
    return found


FUNCTION_COLUMNS = ["function", "check", "points", "graded", "full_marks_share", "mean_points_share"]


def functions_table(out: Path, graded: list[dict]) -> list[dict]:
    """functions.csv: per function (its check left empty), then per check of it, among the
    graded: how many, the share with full marks, the mean share of its points earned."""
    checks = _check_scores(out, graded)
    lines = []
    for exercise, full, partial in per_function(graded):
        lines.append({"function": exercise.key, "check": "", "points": exercise.points, "graded": len(graded),
                      "full_marks_share": f"{full:.3f}", "mean_points_share": f"{partial:.3f}"})
        for check in exercise.checks:
            scores = checks.get(f"{exercise.key}: {check.name.replace('_', ' ')}", [])
            lines.append({"function": exercise.key, "check": check.name, "points": check.points, "graded": len(scores),
                          "full_marks_share": f"{sum(s == check.points for s in scores) / len(scores):.3f}" if scores else "",
                          "mean_points_share": f"{sum(scores) / (len(scores) * check.points):.3f}" if scores else ""})
    return lines


def lost_most(row: dict, shown: int = 3) -> str:
    """A graded learner's "why": the functions that lost the most points."""
    lost = []
    for exercise in catalogue.load().exercises:
        score = _score(row, exercise.key)
        if score is not None and score < exercise.points:
            lost.append((exercise.points - score, exercise.function, score, exercise.points))
    lost.sort(key=lambda item: -item[0])
    return "lost most on " + ", ".join(f"{name} ({score}/{points})" for _, name, score, points in lost[:shown])


def _bar_svg(share: float) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="104" height="12" aria-hidden="true">'
            f'<rect x="0" y="1" width="104" height="10" fill="#e4e4e4"/>'
            f'<rect x="0" y="1" width="{104 * share:.1f}" height="10" fill="#4a7bd0"/></svg>')


def _facts(out: Path, learner: str) -> dict:
    path = learner_file(out, learner, FACTS)
    try:
        facts = json.loads(path.read_text()) if path else {}
    except (OSError, ValueError):
        return {}
    return facts if isinstance(facts, dict) else {}


def _peak_kb(facts: dict) -> int:
    """Peak memory of one learner's grading: PSS (shared pages once), else summed RSS."""
    return facts.get("peak_pss_kb") or facts.get("peak_rss_kb", 0)


def describe_sandbox(sandbox: dict) -> str:
    """The batch's isolation, from results.json's ``extra_data.sandbox``, in words."""
    said = []
    cgroup = sandbox.get("cgroup")
    if cgroup in ("v1", "v2"):
        limits = [f"memory {sandbox['memory_limit_mb']} MB" if sandbox.get("memory_limit_mb") else "",
                  f"{sandbox['pids_limit']} processes" if sandbox.get("pids_limit") else ""]
        said.append(f"cgroup {cgroup} limits per learner ({', '.join(l for l in limits if l) or 'no figures'})")
    elif cgroup:
        said.append("no cgroup limits (per-process limits only)")
    if sandbox.get("uid") == "separate":
        said.append("learner code ran as a separate user")
    elif sandbox.get("uid"):
        said.append("learner code ran as the grader's user")
    if isinstance(sandbox.get("namespaces"), list) and sandbox["namespaces"]:
        said.append("namespaces " + ", ".join(str(n) for n in sandbox["namespaces"]))
    if sandbox.get("fresh_per_learner"):
        said.append("a fresh sandbox per learner")
    return "; ".join(said)


def _isolation(rows: list[dict], facts: dict[str, dict]) -> str:
    """One paragraph on how learner code was fenced in, when any learner code ran."""
    ran = [facts[r["learner"]] for r in rows if r["status"] in ("graded", "timeout")]
    if not ran:
        return ""
    modes = sorted({str(f.get("isolation") or "unknown") for f in ran})
    if modes != ["bwrap"]:
        return ("<p class='warn' id='isolation'><b>Warning:</b> learner code ran with isolation "
                f"<code>{esc(', '.join(modes))}</code>, not bubblewrap: process limits only. Learner code could "
                "read other files of this machine (including solutions/ and other submissions) and reach the "
                "network. Install <code>bubblewrap</code> and grade again for untrusted submissions.</p>")
    details = sorted({describe_sandbox(f["sandbox"]) for f in ran if isinstance(f.get("sandbox"), dict)} - {""})
    said = "; ".join(details) if details else "no network, only its own folder writable"
    return f"<p id='isolation'>Learner code ran in a bubblewrap sandbox ({esc(said)}).</p>"


def _summary(rows: list[dict], graded: list[dict], max_score: int) -> str:
    counts = ", ".join(f"{sum(r['status'] == s for r in rows)} {s}" for s in STATUSES)
    text = f"<p id='summary'>{len(rows)} learners: {esc(counts)}."
    scores = [int(r["score"]) for r in graded]
    if scores:
        text += (f" Of the graded: mean <b>{statistics.mean(scores):.1f}</b>, median "
                 f"<b>{statistics.median(scores):g}</b> of {max_score} points.")
    else:
        text += " No submission was graded."
    return text + "</p>"


def _header(cells: list[tuple[str, str] | tuple[str, str, str]]) -> str:
    """A sortable table's head: (text, css class[, what it stands for, shown on hover]) per column."""
    return "<thead><tr>" + "".join(
        f"<th class='{c[1]}'" + (f" title='{esc(c[2])}' data-key='{esc(c[2])}'" if len(c) > 2 else "")
        + f"><button type='button'>{esc(c[0])}</button></th>" for c in cells) + "</tr></thead>"


def short_labels() -> dict[str, str]:
    """``1.1`` for the first function of module 1...: the grid's column labels."""
    return {e.key: f"{number}.{index}" for number, module in enumerate(catalogue.load().modules, start=1)
            for index, e in enumerate(module.exercises, start=1)}


def _learner_cell(out: Path, row: dict) -> str:
    name = esc(row["learner"])
    if learner_file(out, row["learner"], FEEDBACK):
        href = esc(f"{quote(row['learner'], safe='')}/{FEEDBACK}")
        return f"<td class='learner' data-sort='{name}' title='{name}'><a href='{href}'>{name}</a></td>"
    return f"<td class='learner' data-sort='{name}' title='{name}'>{name}</td>"


def _function_cell(row: dict, exercise: catalogue.Exercise) -> str:
    score = _score(row, exercise.key)
    if row["status"] != "graded" or score is None:
        return "<td class='num none' data-sort='-1'>–</td>"
    kind = "full" if score == exercise.points else "part" if score else "zero"
    return f"<td class='num {kind}' data-sort='{score}' title='{esc(exercise.key)}'>{score}</td>"


def _student_cell(row: dict, student_columns: list[str]) -> str:
    """One column for the roster's fields: the name (else the first filled), all on hover."""
    shown = row.get("name") or next((row.get(c, "") for c in student_columns if row.get(c, "")), "")
    every = " · ".join(f"{c}: {row.get(c, '')}" for c in student_columns if row.get(c, ""))
    return f"<td class='student' title='{esc(every)}'>{esc(shown)}</td>"


def _learners_table(out: Path, rows: list[dict], student_columns: list[str]) -> str:
    """The grid: a row per learner, a compact cell per function (its short label on the
    column, its full name on hover), so that the whole grid fits a wide screen."""
    exercises, labels = catalogue.load().exercises, short_labels()
    head = _header([("learner", ""), *([("student", "")] if student_columns else []), ("status", ""), ("score", "num"),
                    *[(labels[e.key], "num", e.key) for e in exercises], ("seconds", "num"), ("reason", "")])
    body = []
    for row in rows:
        cells = [_learner_cell(out, row), *([_student_cell(row, student_columns)] if student_columns else []),
                 f"<td class='status'>{esc(row['status'])}</td>",
                 f"<td class='num score' data-sort='{esc(row['score'] or '0')}'>{esc(row['score'])}</td>",
                 *[_function_cell(row, e) for e in exercises],
                 f"<td class='num'>{esc(row['seconds'])}</td>",
                 f"<td class='why' title='{esc(row['reason'])}'>{esc(row['reason'])}</td>"]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div class='wide'><table class='sortable' id='learners'>{head}<tbody>{''.join(body)}</tbody></table></div>"
            "<p>A column per function, labelled as in the table above (module.function; hover for its name). "
            "Green: full marks; amber: some points; red: none; –: not graded. Each learner's name links to "
            "their feedback.md. Click a column's name to sort by it.</p>")


def plain_table(headers: list[str], rows: list[list[str]], table_id: str) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table id='{table_id}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(out: Path, rows: list[dict], student_columns: list[str] | None = None, similar: str = "") -> str:
    """The class report; ``similar``: the similar submissions' section (similarity.py), when asked for."""
    graded = [r for r in rows if r["status"] == "graded"]
    max_score = catalogue.load().points
    facts = {r["learner"]: _facts(out, r["learner"]) for r in rows}
    student_columns = student_columns or []
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta http-equiv='Content-Security-Policy' content=\"{POLICY}\">"
             f"<title>Class report</title><style>{STYLE}</style></head><body><h1>Class report</h1>",
             _summary(rows, graded, max_score), _isolation(rows, facts)]
    parts.append("<h2>Score distribution</h2><p>Graded learners per band of points.</p>"
                 + _histogram_svg([int(r["score"]) for r in graded], max_score))
    labels = short_labels()
    rates = [[labels[e.key], f"<code>{esc(e.key)}</code>", str(e.points), f"{full:.0%}", _bar_svg(full), f"{partial:.0%}"]
             for e, full, partial in per_function(graded)]
    parts.append("<h2>Pass rate per function</h2><p>Among the graded: the share with full marks, and the mean "
                 "share of the function's points earned (partial credit); per check in functions.csv.</p>"
                 + plain_table(["", "function", "points", "full marks", "", "mean points"], rates, "functions"))
    parts.append("<h2>Every learner</h2>" + _learners_table(out, rows, student_columns))
    failing = [r for r in rows if r["status"] != "graded" or int(r["score"]) < max_score / 2]
    parts.append("<h2>Failing submissions</h2><p>Not graded, or below half marks.</p>" + plain_table(
        ["learner", "status", "score", "why"],
        [[esc(r["learner"]), esc(r["status"]), f"{esc(r['score'])}/{esc(r['max_score'])}",
          f"<span class='why'>{esc(r['reason'] if r['status'] != 'graded' else lost_most(r))}</span>"]
         for r in failing], "failing"))
    ran = [r for r in rows if r["status"] in ("graded", "timeout")]
    slowest = sorted(ran, key=lambda r: -float(r["seconds"] or 0))[:SLOWEST_SHOWN]
    parts.append("<h2>Slowest submissions</h2>" + plain_table(
        ["learner", "seconds", "status", "peak memory"],
        [[esc(r["learner"]), esc(r["seconds"]), esc(r["status"]),
          f"{_peak_kb(facts[r['learner']]) / 1024:.0f} MB"] for r in slowest], "slowest"))
    if similar:
        parts.append(similar)
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def write(out: Path, rows: list[dict], student_columns: list[str] | None = None, similar: str = "") -> Path:
    """report.html, and functions.csv beside it (the same statistics, per check too, for a spreadsheet)."""
    path = out / REPORT
    replace_file(path, render(out, rows, student_columns, similar))
    graded = [r for r in rows if r["status"] == "graded"]
    sheets.write_csv(out / FUNCTIONS, FUNCTION_COLUMNS, functions_table(out, graded), excel=False)
    return path
