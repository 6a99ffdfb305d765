"""report.html: the class report, one self-contained file (inline SVG and CSS, no scripts)
so it opens offline and can be mailed around."""
from __future__ import annotations

import html
import json
from pathlib import Path

from grader.core import catalogue

BINS = 10
FAILING_SHOWN = 20
SLOWEST_SHOWN = 5
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { padding: .25em .8em; border-bottom: 1px solid #ddd; text-align: left; }
.warn { background: #fff3cd; border: 1px solid #e0b400; padding: .8em; }
.bar { background: #4a7bd0; height: .9em; display: inline-block; }
"""


def _histogram_svg(scores: list[float], max_score: int) -> str:
    counts = [0] * BINS
    for score in scores:
        counts[min(int(score / max(max_score, 1) * BINS), BINS - 1)] += 1
    width, height, bar = 40 * BINS + 40, 220, 36
    top = max(counts + [1])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" '
             'role="img" aria-label="score distribution">']
    for i, count in enumerate(counts):
        h = round(count / top * height)
        x = 30 + i * 40
        low, high = i * max_score // BINS, (i + 1) * max_score // BINS
        parts.append(f'<rect x="{x}" y="{height - h + 10}" width="{bar}" height="{h}" fill="#4a7bd0">'
                     f'<title>{low}-{high}: {count}</title></rect>')
        parts.append(f'<text x="{x + bar / 2}" y="{height - h + 5}" font-size="11" text-anchor="middle">{count or ""}</text>')
        parts.append(f'<text x="{x + bar / 2}" y="{height + 25}" font-size="10" text-anchor="middle">{low}-{high}</text>')
    parts.append(f'<line x1="28" y1="{height + 10}" x2="{width - 8}" y2="{height + 10}" stroke="#444"/></svg>')
    return "".join(parts)


def _pass_rates(graded: list[dict]) -> list[tuple[str, int, float]]:
    rows = []
    for exercise in catalogue.load().exercises:
        full = sum(1 for r in graded if r.get(exercise.key) not in (None, "") and int(r[exercise.key]) == exercise.points)
        rows.append((exercise.key, exercise.points, full / len(graded) if graded else 0.0))
    return rows


def _facts(out: Path, learner: str) -> dict:
    try:
        return json.loads((out / learner / "batch.json").read_text())
    except (OSError, ValueError):
        return {}


def _peak_kb(facts: dict) -> int:
    """Peak memory of one learner's grading: PSS (shared pages once), else summed RSS."""
    return facts.get("peak_pss_kb") or facts.get("peak_rss_kb", 0)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(out: Path, rows: list[dict]) -> str:
    esc = html.escape
    graded = [r for r in rows if r["status"] == "graded"]
    max_score = catalogue.load().points
    facts = {r["learner"]: _facts(out, r["learner"]) for r in rows}
    isolations = {facts[r["learner"]].get("isolation") for r in graded} - {None}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Class report</title>"
             f"<style>{STYLE}</style></head><body><h1>Class report</h1>"]
    if isolations != {"bwrap"}:
        parts.append("<p class='warn'><b>Warning:</b> learner code ran with isolation "
                     f"<code>{esc(', '.join(sorted(i or '?' for i in isolations)) or 'unknown')}</code>, not "
                     "bubblewrap: process limits only. Learner code could read other files of this machine "
                     "(including solutions/ and other submissions) and reach the network. Install "
                     "<code>bubblewrap</code> and grade again for untrusted submissions.</p>")
    else:
        parts.append("<p>Learner code ran in a bubblewrap sandbox (no network, only its own folder writable).</p>")
    mean = sum(int(r["score"]) for r in graded) / len(graded) if graded else 0
    parts.append(f"<p>{len(rows)} learners: {len(graded)} graded, {len(rows) - len(graded)} not graded. "
                 f"Mean score of the graded: {mean:.1f}/{max_score}.</p>")
    parts.append("<h2>Score distribution</h2>" + _histogram_svg([int(r["score"]) for r in graded], max_score))
    rates = [[f"<code>{esc(key)}</code>", str(points), f"{rate:.0%}",
              f"<span class='bar' style='width:{rate * 10:.1f}em'></span>"] for key, points, rate in _pass_rates(graded)]
    parts.append("<h2>Pass rate per function</h2>" + _table(["function", "points", "full marks", ""], rates))
    slowest = sorted(rows, key=lambda r: -float(r["seconds"] or 0))[:SLOWEST_SHOWN]
    parts.append("<h2>Slowest submissions</h2>" + _table(
        ["learner", "seconds", "status", "peak memory"],
        [[esc(r["learner"]), esc(r["seconds"]), esc(r["status"]),
          f"{_peak_kb(facts[r['learner']]) / 1024:.0f} MB"] for r in slowest]))
    failing = [r for r in rows if r["status"] != "graded" or int(r["score"]) < max_score / 2][:FAILING_SHOWN]
    parts.append("<h2>Failing submissions</h2><p>Not graded, or below half marks.</p>" + _table(
        ["learner", "status", "score", "why"],
        [[esc(r["learner"]), esc(r["status"]), f"{esc(r['score'])}/{esc(r['max_score'])}",
          esc(facts[r["learner"]].get("message", ""))] for r in failing]))
    parts.append("</body></html>")
    return "\n".join(parts)


def write(out: Path, rows: list[dict]) -> Path:
    path = out / "report.html"
    path.write_text(render(out, rows), encoding="utf-8")
    return path
