"""The README's points table, made from the catalogue: one row per module, with what it
teaches and its points (sums of its checks'). ``python -m grader generate`` writes it
between its two markers; ``pytest tests`` and ``python -m grader check`` fail when the
committed README differs."""
from __future__ import annotations

from pathlib import Path

from grader import KIT_ROOT
from grader.core import catalogue

README = KIT_ROOT / "README.md"
BEGIN = "<!-- points table: made from grader/catalogue.toml by `python -m grader generate` -->"
END = "<!-- end of points table -->"


class MarkerError(ValueError):
    pass


def points_table() -> str:
    loaded = catalogue.load()
    rows = ["| module | file | what it teaches | points |", "| --- | --- | --- | --- |"]
    rows += [f"| {number} | `exercises/{module.name}.py` | {module.teaches} | {module.points} |"
             for number, module in enumerate(loaded.modules, start=1)]
    return "\n".join(rows) + "\n"


def with_table(text: str) -> str:
    """``text`` (a README) with the region between the markers made anew."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise MarkerError(f"the README needs one {BEGIN!r} line and, after it, one {END!r} line")
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    return f"{before}{BEGIN}\n{points_table()}{END}{after}"


def expected_files(readme: Path = README) -> dict[Path, str]:
    """The README with its table made anew (nothing, for a copy of the kit without its README)."""
    return {readme: with_table(readme.read_text(encoding="utf-8"))} if readme.is_file() else {}
