"""Every file ``python -m grader generate`` makes, with the text it writes: one list, which
``generate`` writes and ``python -m grader check`` compares with what is committed."""
from __future__ import annotations

from pathlib import Path

from grader import KIT_ROOT
from grader.authoring import curriculum, notebooks, readme, stubgen


def expected() -> dict[Path, str]:
    """The stubs, the lesson notebook, the nbgrader course, the README's table and CURRICULUM.md."""
    return {**stubgen.expected_files(), **notebooks.expected_files(), **readme.expected_files(),
            **curriculum.expected_files()}


def differs(path: Path, text: str) -> bool:
    return not path.is_file() or path.read_text(encoding="utf-8") != text


def write_changed(files: dict[Path, str]) -> list[Path]:
    """Write the files that differ (a folder made where needed); return them."""
    written = [path for path, text in files.items() if differs(path, text)]
    for path in written:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path], encoding="utf-8")
    return written


def drifted() -> list[str]:
    """One line per committed file that differs from what generating writes, with its fix."""
    return [f"{path.relative_to(KIT_ROOT)}: differs from what `python -m grader generate` writes "
            f"({_source_of(path)}): run `python -m grader generate`"
            for path, text in expected().items() if differs(path, text)]


def _source_of(path: Path) -> str:
    relative = path.relative_to(KIT_ROOT)
    if relative.parts[0] == "exercises":
        return f"made from solutions/{relative.name}"
    if relative.name == "README.md":
        return "its points table is made from grader/catalogue.toml"
    return "made from grader/catalogue.toml and solutions/"
