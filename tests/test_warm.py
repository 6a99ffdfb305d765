"""grader/sandbox/warm.py: a program of this environment runs in a fork, as a new Python
would run it (its arguments, environment, folder, exit status, MLflow's state), and
nothing else is taken for one."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import mlflow
import pytest

from grader.sandbox import warm

HERE = Path(sys.executable).parent


def ended(process: warm.Forked, output: Path) -> tuple[int, str]:
    return process.wait(), output.read_text()


def started(tmp_path: Path, script: str, *arguments: str, env: dict | None = None) -> tuple[int, str]:
    (tmp_path / "script.py").write_text(script)
    output = tmp_path / "output.txt"
    with open(output, "w") as log:
        process = warm.start([str(tmp_path / "script.py"), *arguments], env=env, cwd=str(tmp_path), output=log.fileno())
    return ended(process, output)


def test_only_this_environments_python_and_its_scripts_run_warm(tmp_path):
    elsewhere = tmp_path / "bin"
    elsewhere.mkdir()
    (elsewhere / "python").symlink_to(sys.executable)  # this interpreter, but not beside it
    (elsewhere / "fake").write_text(f"#!{sys.executable}\n")
    assert warm.arguments_of([sys.executable, "train.py", "1"]) == ["train.py", "1"]
    assert warm.arguments_of([sys.executable, "-m", "mlflow", "models", "serve"]) == ["-m", "mlflow", "models", "serve"]
    assert warm.arguments_of([sys.executable, "-c", "print(1)"]) is None  # only scripts and modules
    assert warm.arguments_of([sys.executable]) is None
    assert warm.arguments_of(["uvicorn", "--port", "1"], path=str(HERE)) == [str(HERE / "uvicorn"), "--port", "1"]
    assert warm.arguments_of([str(elsewhere / "python"), "train.py"]) is None
    assert warm.arguments_of(["python", "train.py"], path=str(elsewhere)) is None
    assert warm.arguments_of(["fake"], path=str(elsewhere)) is None
    assert warm.arguments_of([str(tmp_path / "nowhere")]) is None
    assert warm.shell_words("python train.py 2.5 9 'a b'") == ["python", "train.py", "2.5", "9", "a b"]
    for shell in ("python a.py; rm -rf x", "python a.py $HOME", "python a.py > out", "python `x`.py", 'python "a.py'):
        assert warm.shell_words(shell) is None, shell


@pytest.mark.parametrize("ending, status, said", [
    ("", 0, ""),
    ("sys.exit(3)", 3, ""),
    ("sys.exit('the training data is missing')", 1, "the training data is missing"),
    ("raise ValueError('no rows')", 1, "ValueError: no rows"),
])
def test_a_script_ends_as_in_a_new_python(tmp_path, ending, status, said):
    code, output = started(tmp_path, f"import sys\nprint('ran', sys.argv[1:])\n{ending}\n", "a", "b c")
    assert code == status, output
    assert "ran ['a', 'b c']" in output and said in output


def test_the_script_gets_its_environment_folder_and_a_new_processs_mlflow(tmp_path):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/not-this.db")  # set in code: a new process would not know it
    try:
        script = (
            "import os, sys\nimport mlflow\n"
            "print('cwd', os.getcwd())\nprint('path0', sys.path[0])\nprint('kind', os.environ.get('KIND'))\n"
            "print('uri', mlflow.get_tracking_uri())\nprint('active', mlflow.active_run())\n"
            "print('name', open('/proc/self/comm').read().strip())  # as ps shows it\n"
            "mlflow.start_run()  # left active: ended as MLflow's exit hook would\n"
            "print('run', mlflow.active_run().info.run_id)\n"
        )
        code, output = started(tmp_path, script, env={**os.environ, "KIND": "project", "MLFLOW_TRACKING_URI": store})
    finally:
        mlflow.set_tracking_uri(None)
    assert code == 0, output
    lines = dict(line.split(" ", 1) for line in output.splitlines())
    assert lines["cwd"] == str(tmp_path) and lines["path0"] == str(tmp_path) and lines["kind"] == "project", output
    assert lines["uri"] == store and lines["active"] == "None" and lines["name"] == "script.py", output
    run = mlflow.MlflowClient(store).get_run(lines["run"])
    assert run.info.status == "FINISHED"


def test_exec_of_a_program_of_this_environment_replaces_the_fork(tmp_path):
    """``bash -c "exec PROGRAM ..."`` (how MLflow starts uvicorn) runs PROGRAM in the same
    process, as exec would; another command still starts a process of its own."""
    (tmp_path / "other.py").write_text("import os, sys\nprint('other', os.getpid(), sys.argv[1:])\nsys.exit(5)\n")
    script = (
        "import os, subprocess, sys\n"
        "print('first', os.getpid())\n"
        "print('echo', subprocess.run(['bash', '-c', 'echo $$'], capture_output=True, text=True).stdout.strip())\n"
        f"subprocess.Popen(['bash', '-c', 'exec {sys.executable} other.py x']).wait()\n"
        "print('not reached')\n"
    )
    code, output = started(tmp_path, script)
    lines = dict(line.split(" ", 1) for line in output.splitlines())
    assert code == 5, output
    assert lines["other"] == f"{lines['first']} ['x']", output
    assert lines["echo"] != lines["first"] and "not reached" not in output, output
