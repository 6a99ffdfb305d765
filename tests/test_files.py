"""Removing what learner code or a submission could have filled: at any depth, through no
link, never raising (grader/ground/files.py's remove_tree); the batch's sweep of a killed
batch's folder uses it too."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import deep_tree
from grader.batch import scratch
from grader.ground import files

@pytest.fixture
def outside(tmp_path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "kept.txt").write_text("kept")
    return folder


def test_a_tree_thousands_deep_with_links_goes_and_nothing_outside_it(tmp_path, outside):
    top = tmp_path / "learner"
    deep_tree(top, outside)
    for n in range(500):  # and wide
        (top / f"wide-{n}").mkdir()
    with pytest.raises(RecursionError):  # why the kit has its own: rmtree recurses
        shutil.rmtree(top, ignore_errors=True)
    assert files.remove_tree(top) is True
    assert not top.exists()
    assert sorted(p.name for p in outside.iterdir()) == ["kept.txt"] and (outside / "kept.txt").read_text() == "kept"


def test_a_link_is_removed_never_followed_and_nothing_raises(tmp_path, outside):
    link = tmp_path / "link"
    link.symlink_to(outside, target_is_directory=True)
    assert files.remove_tree(link) is True
    assert not link.is_symlink() and (outside / "kept.txt").read_text() == "kept"
    assert files.remove_tree(tmp_path / "never-there") is True
    assert files.remove_tree(tmp_path / "no-parent" / "x") is True


def test_a_killed_batchs_folder_is_swept_whatever_it_holds(tmp_path, outside):
    left = tmp_path / "place" / f"{scratch.PREFIX}killed"
    deep_tree(left / "slot-0" / "learner-0", outside)
    (left / scratch.LOCK).touch()  # no live batch holds it
    assert scratch.sweep(tmp_path / "place") == [left]
    assert not left.exists() and (outside / "kept.txt").read_text() == "kept"
