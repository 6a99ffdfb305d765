"""What a platform package holds, and writing it as a folder or a zip.

Every package carries the kit's grader (grader/, with the catalogue and the checks),
pytest.ini (how `pytest grader` is run) and requirements.txt exactly as the kit pins it.
It never carries solutions/: learners can read what a platform runs (a Classroom
repository is theirs, a Gradescope container runs their code), so ``add_kit`` refuses a
path under it, and the kit's own tests look for the solutions' code in every file.
"""
from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader import KIT_ROOT

KIT_FILES = ("requirements.txt", "pytest.ini")
KIT_FOLDERS = ("grader",)
NEVER = ("solutions",)  # learners must never see these
LEFT_OUT = ("__pycache__", ".pytest_cache")
# Zip entries' dates: a package made twice from the same kit is the same bytes.
ZIP_DATE = (2024, 1, 1, 0, 0, 0)


class PackageError(Exception):
    """A package cannot be written as asked; in words for the instructor."""


@dataclass
class Package:
    """Files by their path in the package (POSIX, relative), and which of them are scripts."""

    files: dict[str, bytes] = field(default_factory=dict)
    scripts: set[str] = field(default_factory=set)

    def add(self, path: str, content: str | bytes, script: bool = False) -> None:
        if path.split("/")[0] in NEVER:
            raise PackageError(f"{path}: a package never carries {path.split('/')[0]}/")
        self.files[path] = content.encode() if isinstance(content, str) else content
        if script:
            self.scripts.add(path)

    def add_kit(self, prefix: str = "", parts: tuple[str, ...] = ()) -> None:
        """The kit's grader, pytest.ini and requirements.txt, under ``prefix``, and ``parts``
        (folders or files of the kit) besides."""
        for name in (*KIT_FILES, *KIT_FOLDERS, *parts):
            source = KIT_ROOT / name
            for path in ([source] if source.is_file() else sorted(source.rglob("*"))):
                relative = path.relative_to(KIT_ROOT)
                if path.is_file() and not path.is_symlink() and not set(relative.parts) & set(LEFT_OUT):
                    self.add(prefix + relative.as_posix(), path.read_bytes())

    def write_tree(self, folder: Path) -> None:
        """Into ``folder``, which must not exist or be empty (nothing of an earlier package stays)."""
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise PackageError(f"{folder} is not an empty folder: choose a new one")
        for path, content in sorted(self.files.items()):
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            if path in self.scripts:
                target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def write_zip(self, archive: Path) -> None:
        """A zip whose files sit at its root, as Gradescope wants; scripts keep their mode."""
        if archive.is_dir():
            raise PackageError(f"{archive} is a folder: name the .zip to write")
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_name(archive.name + ".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as bundle:
            for path, content in sorted(self.files.items()):
                entry = zipfile.ZipInfo(path, ZIP_DATE)
                entry.external_attr = ((0o755 if path in self.scripts else 0o644) | stat.S_IFREG) << 16
                entry.compress_type = zipfile.ZIP_DEFLATED
                bundle.writestr(entry, content)
        os.replace(partial, archive)

