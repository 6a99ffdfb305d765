"""`python -m grader package gradescope|github-classroom|prairielearn`: each package, unpacked
into its platform's layout on this machine (bubblewrap binds a temporary folder at
/autograder or /grade; a Classroom repository is a folder), grades the same five
submissions, and each score equals `pytest grader --grade-json` on the same submission and
seed, check by check. Results files are validated against each platform's documented format.

Each case is graded once by the kit and once per platform (module-scoped fixtures)."""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema  # pinned in requirements.txt
import nbformat
import pytest
import yaml  # MLflow's own dependency: pinned with it

from conftest import REPO, SEED, TOTAL, grade, kit_env, with_functions
from grader.core.submission import extract_submission

CASES = ("solutions", "stubs", "half", "notebook", "broken_zip")
GRADED = CASES[:-1]
CONTROL = "\x1b[2J"  # learner text a terminal would obey: shown as its escape everywhere


def _bwrap_works() -> bool:
    if shutil.which("bwrap") is None:
        return False
    probe = subprocess.run(["bwrap", "--bind", "/", "/", "--dev-bind", "/dev", "/dev", "true"], capture_output=True)
    return probe.returncode == 0


needs_bwrap = pytest.mark.skipif(not _bwrap_works(), reason="bubblewrap (bwrap) is not installed or cannot run here")


# --------------------------------------------------------------------------- the five submissions
def _solution_functions(module: str, names: set[str]) -> str:
    source = (REPO / "solutions" / f"{module}.py").read_text()
    return "\n\n".join(ast.get_source_segment(source, node) for node in ast.parse(source).body
                       if isinstance(node, ast.FunctionDef) and node.name in names)


def _half_done(folder: Path) -> Path:
    """Some functions whole from the solutions, one missing a check (partial credit within a
    function), one raising learner text with a control character, the rest stubs."""
    with_functions(folder, {("ex01_tracking", "get_or_create_experiment"): None, ("ex01_tracking", "log_run"): None,
                            ("ex02_models", "log_model"): None, ("ex05_serving", "serving_payload"): None,
                            ("ex01_tracking", "log_metric_history"):
                                f"def log_metric_history(*args, **kwargs):\n    raise ValueError({'boom ' + CONTROL!r})\n"})
    module = folder / "ex01_tracking.py"
    text = module.read_text()
    forgetful = text.replace("        client.restore_experiment(experiment_id)\n", "        pass  # never restores it\n")
    assert forgetful != text, "the solution's get_or_create_experiment changed: pick another one-check bug"
    module.write_text(forgetful)
    return folder


def _notebook(path: Path) -> Path:
    """The lesson notebook, with a last cell that defines two functions as the solutions do."""
    book = nbformat.read(str(REPO / "notebooks" / "mlflow_lesson.ipynb"), as_version=4)
    code = "import mlflow\nfrom mlflow import MlflowClient\n\n\n" + _solution_functions("ex01_tracking", {"log_run", "find_best_run"})
    book.cells.append(nbformat.v4.new_code_cell(code))
    nbformat.write(book, str(path))
    return path


@pytest.fixture(scope="module")
def handed_in(tmp_path_factory) -> dict[str, Path]:
    """What the learner handed in, per case: a folder whose contents a platform receives."""
    root = tmp_path_factory.mktemp("handed-in")
    folders = {case: root / case for case in CASES}
    for path in (REPO / "solutions").glob("*.py"):  # the modules at the top
        (folders["solutions"]).mkdir(exist_ok=True)
        shutil.copy(path, folders["solutions"] / path.name)
    shutil.copytree(REPO / "exercises", folders["stubs"] / "exercises", ignore=shutil.ignore_patterns("__pycache__"))
    half = _half_done(root / "half-work")
    folders["half"].mkdir()
    with zipfile.ZipFile(folders["half"] / "my-work.zip", "w") as bundle:  # a zip with a folder in it
        for path in sorted(half.glob("*.py")):
            bundle.write(path, f"work/{path.name}")
    folders["notebook"].mkdir()
    _notebook(folders["notebook"] / "mlflow_lesson.ipynb")
    folders["broken_zip"].mkdir()
    (folders["broken_zip"] / "submission.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    return folders


@pytest.fixture(scope="module")
def kit(handed_in, tmp_path_factory) -> dict[str, dict]:
    """`pytest grader --grade-json` on each gradable case, with the same seed: the scores to match."""
    root = tmp_path_factory.mktemp("kit")
    extract_submission(handed_in["notebook"] / "mlflow_lesson.ipynb", root / "notebook")
    with zipfile.ZipFile(handed_in["half"] / "my-work.zip") as bundle:
        bundle.extractall(root / "half")
    targets = {"solutions": handed_in["solutions"], "stubs": handed_in["stubs"] / "exercises",
               "half": root / "half" / "work", "notebook": root / "notebook"}
    with ThreadPoolExecutor(2) as pool:
        graded = pool.map(lambda case: grade(targets[case], seed=SEED, out=root / f"{case}.json"), GRADED)
        results = {case: g.results for case, g in zip(GRADED, graded)}
    assert results["solutions"]["score"] == TOTAL and results["stubs"]["score"] == 0, "the kit itself is off"
    assert 0 < results["half"]["score"] < TOTAL and 0 < results["notebook"]["score"] < TOTAL
    return results


def kit_checks(results: dict) -> dict[str, int]:
    return {test["name"]: test["score"] for test in results["tests"]}


# --------------------------------------------------------------------------- packaging
def package(platform: str, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "package", platform, str(out), "--seed", str(SEED), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120, env=kit_env())


def packaged(platform: str, out: Path, *args: str) -> Path:
    made = package(platform, out, *args)
    assert made.returncode == 0, made.stderr
    return out


def _solution_regions() -> list[str]:
    """The code of every solution of more than one line, as it stands between its markers (a
    one-line answer, such as save_local's, is the hint's own words and the checks' set-up)."""
    regions = []
    for path in (REPO / "solutions").glob("*.py"):
        regions += [region.strip() for region in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", path.read_text(), re.S)
                    if len(region.strip().splitlines()) > 1]
    assert len(regions) >= 20
    return regions


def _package_files(platform: str, tmp: Path) -> dict[str, bytes]:
    out = packaged(platform, tmp / ("gradescope.zip" if platform == "gradescope" else platform))
    if platform == "gradescope":
        with zipfile.ZipFile(out) as bundle:
            return {name: bundle.read(name) for name in bundle.namelist()}
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


@pytest.mark.parametrize("platform", ["gradescope", "github-classroom", "prairielearn"])
def test_a_package_carries_the_kit_and_never_the_solutions(platform, tmp_path):
    files = _package_files(platform, tmp_path)
    prefix = "serverFilesCourse/mlflow_kit/" if platform == "prairielearn" else ""
    assert files[f"{prefix}requirements.txt"] == (REPO / "requirements.txt").read_bytes(), "the pins, exactly"
    assert f"{prefix}grader/catalogue.toml" in files and f"{prefix}grader/test_ex01_tracking.py" in files
    assert not [name for name in files if "solutions" in name.split("/") or "__pycache__" in name]
    texts = [content.decode(errors="replace") for content in files.values()]
    leaked = [region[:60] for region in _solution_regions() if any(region in text for text in texts)]
    assert not leaked, f"solution code in the {platform} package: {leaked}"


def test_a_package_is_never_written_over_another_folder(tmp_path):
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "mine.txt").write_text("an instructor's file")
    refused = package("prairielearn", tmp_path / "course")
    assert refused.returncode == 2 and "not an empty folder" in refused.stderr
    assert [p.name for p in (tmp_path / "course").iterdir()] == ["mine.txt"]


# --------------------------------------------------------------------------- running a package
def in_bwrap(folder: Path, mount: str, command: list[str]) -> subprocess.CompletedProcess:
    """``command`` with ``folder`` at ``mount`` (/autograder, /grade), the rest of this
    machine as it is, and this test's Python first on PATH."""
    binds = []
    for entry in sorted(Path("/").iterdir()):
        if entry.name in ("proc", "dev", mount.strip("/")):
            continue
        if entry.is_symlink():
            binds += ["--symlink", os.readlink(entry), str(entry)]
        elif entry.is_dir():
            binds += ["--bind", str(entry), str(entry)]
    env = {**kit_env(), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bwrap", "--die-with-parent", *binds, "--proc", "/proc", "--dev-bind", "/dev", "/dev",
                           "--bind", str(folder), mount, "--chdir", mount, *command],
                          capture_output=True, text=True, timeout=600, env=env)


def run_platform(folder: Path, mount: str, handed: Path, submission: str, entry: str, schema: dict) -> dict:
    """The platform's run: the learner's files in ``mount/submission``, its entry point run
    there, and the results file it wrote, valid against the platform's ``schema``."""
    shutil.copytree(handed, folder / submission)
    (folder / "results").mkdir()
    ran = in_bwrap(folder, mount, [f"{mount}/{entry}"])
    assert ran.returncode == 0, ran.stderr[-3000:]
    results = json.loads((folder / "results" / "results.json").read_text())
    jsonschema.validate(results, schema)
    return results


def _unzip(archive: Path, folder: Path) -> None:
    """As Gradescope does, scripts keeping their mode."""
    with zipfile.ZipFile(archive) as bundle:
        for entry in bundle.infolist():
            bundle.extract(entry, folder)
            mode = entry.external_attr >> 16
            if mode & stat.S_IXUSR:
                (folder / entry.filename).chmod(0o755)


def _no_raw_control(text: str) -> None:
    assert CONTROL not in text and "\\x1b[2J" in text, "learner text reaches the platform with its escapes shown"


@pytest.fixture(scope="module")
def gradescope_zip(tmp_path_factory) -> Path:
    return packaged("gradescope", tmp_path_factory.mktemp("gradescope") / "autograder.zip", "--visibility", "after_due_date")


GRADESCOPE_VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
GRADESCOPE_FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}
# https://gradescope-autograders.readthedocs.io/en/latest/specs/: every field it documents, no other.
GRADESCOPE_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["score"],
    "properties": {
        "score": {"type": "number"}, "execution_time": {"type": "number"}, "output": {"type": "string"},
        "output_format": GRADESCOPE_FORMAT, "test_output_format": GRADESCOPE_FORMAT, "test_name_format": GRADESCOPE_FORMAT,
        "visibility": GRADESCOPE_VISIBILITY, "stdout_visibility": GRADESCOPE_VISIBILITY, "extra_data": {"type": "object"},
        "leaderboard": {"type": "array"},
        "tests": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "score": {"type": "number"}, "max_score": {"type": "number"}, "status": {"enum": ["passed", "failed"]},
                "name": {"type": "string"}, "name_format": GRADESCOPE_FORMAT, "number": {"type": "string"},
                "output": {"type": "string"}, "output_format": GRADESCOPE_FORMAT, "tags": {"type": "array", "items": {"type": "string"}},
                "visibility": GRADESCOPE_VISIBILITY, "extra_data": {"type": "object"}}}},
    },
}


@needs_bwrap
@pytest.mark.parametrize("case", CASES)
def test_gradescope_scores_as_the_kit(case, gradescope_zip, handed_in, kit, tmp_path):
    autograder = tmp_path / "autograder"
    _unzip(gradescope_zip, autograder / "source")
    assert {"setup.sh", "run_autograder"} <= {p.name for p in (autograder / "source").iterdir()}, "at the zip's root"
    shutil.copy(autograder / "source" / "run_autograder", autograder / "run_autograder")  # as Gradescope's build does
    results = run_platform(autograder, "/autograder", handed_in[case], "submission", "run_autograder", GRADESCOPE_SCHEMA)
    assert results["visibility"] == "after_due_date" and results["output_format"] == "md"
    assert results["extra_data"]["seed"] == SEED
    if case == "broken_zip":  # Gradescope has no "ungradable": 0, and the output says why
        assert results["score"] == 0 and results["tests"] == []
        assert "the .zip cannot be read" in results["output"], results["output"]
        return
    assert results["score"] == kit[case]["score"], (case, results["score"], kit[case]["score"])
    assert {t["name"]: t["score"] for t in results["tests"]} == kit_checks(kit[case])
    assert all(t["visibility"] == "after_due_date" and t["output_format"] == "md" for t in results["tests"])
    assert len({t["number"] for t in results["tests"]}) == len(results["tests"])
    if case == "half":
        restores = next(t for t in results["tests"] if t["name"] == "ex01_tracking.get_or_create_experiment: restores deleted")
        assert restores["status"] == "failed" and "Hint:" in restores["output"] and restores["output"].startswith("```")
        _no_raw_control(json.dumps(results, ensure_ascii=False))
    if case == "notebook":  # messages name the learner's cells, never the modules made from them
        assert "## Experiment tracking" in results["output"] and "ex01_tracking.py" not in results["output"]


PRAIRIELEARN_TEST = {
    "type": "object", "additionalProperties": False, "required": ["name"],
    "properties": {"name": {"type": "string"}, "description": {"type": "string"}, "points": {"type": "number"},
                   "max_points": {"type": "number"}, "message": {"type": "string"}, "output": {"type": "string"},
                   "images": {"type": "array"}}}
# https://prairielearn.readthedocs.io/en/latest/externalGrading/: the results file's fields.
PRAIRIELEARN_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["gradable"],
    "properties": {"gradable": {"type": "boolean"}, "score": {"type": "number", "minimum": 0, "maximum": 1},
                   "message": {"type": "string"}, "output": {"type": "string"}, "images": {"type": "array"},
                   "tests": {"type": "array", "items": PRAIRIELEARN_TEST}},
    "if": {"properties": {"gradable": {"const": True}}}, "then": {"required": ["score"]},
}


@pytest.fixture(scope="module")
def prairielearn_course(tmp_path_factory) -> Path:
    return packaged("prairielearn", tmp_path_factory.mktemp("prairielearn") / "course")


def test_a_prairielearn_question_grades_externally_with_the_kit(prairielearn_course):
    info = json.loads((prairielearn_course / "questions" / "mlflow_kit" / "info.json").read_text())
    options = info["externalGradingOptions"]
    assert info["gradingMethod"] == "External" and options["enabled"] is True
    assert options["serverFilesCourse"] == ["mlflow_kit/"] and options["timeout"] > 480
    entrypoint = prairielearn_course / options["entrypoint"].removeprefix("/grade/")
    assert entrypoint.is_file() and os.access(entrypoint, os.X_OK)
    assert "pl-file-upload" in (prairielearn_course / "questions" / "mlflow_kit" / "question.html").read_text()
    assert "requirements.txt" in (prairielearn_course / "grader-image" / "Dockerfile").read_text()


@needs_bwrap
@pytest.mark.parametrize("case", CASES)
def test_prairielearn_scores_as_the_kit(case, prairielearn_course, handed_in, kit, tmp_path):
    grade_folder = tmp_path / "grade"
    shutil.copytree(prairielearn_course / "serverFilesCourse", grade_folder / "serverFilesCourse")
    results = run_platform(grade_folder, "/grade", handed_in[case], "student", "serverFilesCourse/mlflow_kit/run_grader",
                           PRAIRIELEARN_SCHEMA)
    if case == "broken_zip":  # not a 0: ungradable, with the reason, and the learner keeps the attempt
        assert results["gradable"] is False and "score" not in results
        assert "the .zip cannot be read" in results["message"], results["message"]
        return
    assert results["gradable"] is True
    assert round(results["score"] * TOTAL) == kit[case]["score"], (case, results["score"], kit[case]["score"])
    assert {t["name"]: t["points"] for t in results["tests"]} == kit_checks(kit[case])
    assert sum(t["max_points"] for t in results["tests"]) == TOTAL
    if case == "half":
        restores = next(t for t in results["tests"] if t["name"] == "ex01_tracking.get_or_create_experiment: restores deleted")
        assert "Hint:" in restores["message"]
        _no_raw_control(json.dumps(results, ensure_ascii=False))


# --------------------------------------------------------------------------- GitHub Classroom
@pytest.fixture(scope="module")
def classroom_template(tmp_path_factory) -> Path:
    return packaged("github-classroom", tmp_path_factory.mktemp("classroom") / "template")


def _workflow(template: Path) -> dict:
    return yaml.safe_load((template / ".github" / "workflows" / "classroom.yml").read_text())


COMMAND_GRADER = "classroom-resources/autograding-command-grader@v1"
REPORTER = "classroom-resources/autograding-grading-reporter@v1"


def test_the_classroom_workflow_is_what_classroom_reads(classroom_template):
    workflow = _workflow(classroom_template)
    assert workflow["name"] == "Autograding Tests" and list(workflow["jobs"]) == ["run-autograding-tests"]
    steps = workflow["jobs"]["run-autograding-tests"]["steps"]
    graders = [s for s in steps if s.get("uses") == COMMAND_GRADER]
    for step in graders:
        assert set(step["with"]) == {"test-name", "command", "timeout", "max-score"} and step["with"]["test-name"] == step["name"]
        assert re.fullmatch(r"[a-z][a-z0-9-]*", step["id"]) and isinstance(step["with"]["max-score"], int)
    assert len({s["id"] for s in graders}) == len(graders) == len(kit_checks_of_catalogue())
    assert sum(s["with"]["max-score"] for s in graders) == TOTAL
    assert {s["name"]: s["with"]["max-score"] for s in graders} == kit_checks_of_catalogue()
    [reporter] = [s for s in steps if s.get("uses") == REPORTER]
    assert steps[-1] is reporter and reporter["with"]["runners"].split(",") == [s["id"] for s in graders]
    assert reporter["env"] == {f"{s['id'].upper()}_RESULTS": f"${{{{steps.{s['id']}.outputs.result}}}}" for s in graders}


def kit_checks_of_catalogue() -> dict[str, int]:
    from grader.core import catalogue
    from grader.core.results import test_name

    return {test_name(e, c.name): c.points for e in catalogue.load().exercises for c in e.checks}


def _learners_repository(template: Path, handed: Path, case: str, repository: Path) -> Path:
    """The template as the learner pushes it: their modules in exercises/, or in place of
    exercises/ their notebook or a .zip."""
    shutil.copytree(template, repository)
    if case == "solutions":
        for path in handed.glob("*.py"):
            shutil.copy(path, repository / "exercises" / path.name)
    elif case == "half":
        with zipfile.ZipFile(handed / "my-work.zip") as bundle:
            for name in bundle.namelist():
                (repository / "exercises" / Path(name).name).write_bytes(bundle.read(name))
    elif case in ("notebook", "broken_zip"):
        shutil.rmtree(repository / "exercises")
        for path in handed.iterdir():
            shutil.copy(path, repository / path.name)
    return repository


def _run(command: str, repository: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=repository, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("case", CASES)
def test_github_classroom_scores_as_the_kit(case, classroom_template, handed_in, kit, tmp_path):
    """The workflow's grading step, then each check's step, run as the runner would in the
    repository's checkout (the set-up steps aside: this Python has the packages)."""
    repository = _learners_repository(classroom_template, handed_in[case], case, tmp_path / "repository")
    steps = _workflow(classroom_template)["jobs"]["run-autograding-tests"]["steps"]
    # The command grader gives a command only PATH and HOME, as here.
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HOME": os.environ["HOME"]}
    [grading] = [s for s in steps if s.get("id") == "kit-grade"]
    graded = _run(grading["run"], repository, {**env, **grading["env"]})
    assert graded.returncode == 0, graded.stderr[-3000:]
    graders = [s for s in steps if s.get("uses") == COMMAND_GRADER]
    with ThreadPoolExecutor(8) as pool:  # some sixty small processes
        verdicts = list(pool.map(lambda s: _run(s["with"]["command"], repository, env), graders))
    earned = {s["name"]: s["with"]["max-score"] if v.returncode == 0 else 0 for s, v in zip(graders, verdicts)}
    if case == "broken_zip":
        assert sum(earned.values()) == 0 and "the .zip cannot be read" in graded.stdout
        assert all("could not be graded" in v.stdout for v in verdicts)
        return
    assert sum(earned.values()) == kit[case]["score"], (case, sum(earned.values()), kit[case]["score"])
    assert earned == kit_checks(kit[case])
    assert f"Score: **{kit[case]['score']}/{TOTAL}**" in graded.stdout, "the kit's feedback, in the run's log"
    if case == "half":
        failed = verdicts[[s["name"] for s in graders].index("ex01_tracking.get_or_create_experiment: restores deleted")]
        assert failed.returncode == 1 and "Hint:" in failed.stdout
        _no_raw_control(graded.stdout)
