"""Module 5's servers, seen from outside the grader: while the solutions are graded, every
process below the grading that listens on a TCP port is found (by its pid, its network
namespace and what it listens on); afterwards each of them must be gone. Under
bubblewrap none of them may share this test's network namespace: nothing listened where
the machine's other programs could reach it."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, SEED, batch_command, grade, grader_args, linger, with_functions
from grader.core import catalogue
from grader.ground.processes import descendants, proc_stat
from grader.sandbox import isolation
from terminal import Terminal, assert_all_end

needs_bwrap = pytest.mark.skipif(not isolation.bwrap_available(), reason="bubblewrap cannot build a sandbox here")
MODULE_5 = [e for e in catalogue.load().exercises if e.module == "ex05_serving"]


def netns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def listening(pid: int) -> list[str]:
    """``address:port`` of each TCP socket process ``pid`` listens on, read in its own
    network namespace (/proc/<pid>/net) and matched to its open descriptors."""
    try:
        sockets = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        return []
    found = []
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as handle:
                rows = [line.split() for line in handle.readlines()[1:]]
        except OSError:
            continue
        for row in rows:
            if row[3] == "0A" and f"socket:[{row[9]}]" in sockets:  # 0A: LISTEN
                address, port = row[1].split(":")
                found.append(f"{address}:{int(port, 16)}")
    return found


class ServerWatch:
    """Polls the processes below ``root`` while it runs: every one seen (its command line and
    network namespace, ``processes``), and those that listen on a TCP port (``listening``)."""

    def __init__(self, root: int):
        self.root, self.listening, self.processes = root, {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        # A server may listen for a fraction of a second: look often, and keep a process only
        # once all of it was read (it may end between two reads: then look again).
        while not self._stop.is_set():
            for pid in descendants(self.root):
                if pid not in self.processes and (command := command_of(pid)) and (space := netns(pid)):
                    self.processes[pid] = {"command": command, "names": set(), "netns": space}
                if pid in self.processes:  # a fork of the grader's call takes the name of what it runs
                    self.processes[pid]["names"].add(name_of(pid))
                if pid in self.listening:
                    continue
                ports, space, command = listening(pid), netns(pid), command_of(pid)
                if ports and space and command:
                    self.listening[pid] = {"netns": space, "listening": ports, "command": command}
            time.sleep(0.01)

    def stop(self) -> "ServerWatch":
        self._stop.set()
        self._thread.join()
        return self

    def servers(self) -> dict[int, dict]:
        """The grader's servers seen listening, and MLflow's CLI servers (uvicorn) seen at all:
        the learner's listens only while it is scored, but runs for seconds."""
        return {**{pid: p for pid, p in self.processes.items() if is_uvicorn(p)}, **self.listening}

    def left(self) -> list[str]:
        """What of all it saw still runs."""
        return [f"{pid}: {self.processes.get(pid) or self.listening[pid]}" for pid in {*self.processes, *self.listening}
                if alive(pid)]


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return ""


def name_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def is_uvicorn(process: dict) -> bool:
    """uvicorn, as a program of its own, or, run in a fork of the grader's warm call, by the
    name it took (/proc/<pid>/comm)."""
    return "uvicorn" in process["command"] or "uvicorn" in process.get("names", ())


def alive(pid: int) -> bool:
    fields = proc_stat(pid)
    return fields is not None and fields[0] != b"Z"


def watched(command: list[str], cwd: Path = REPO, env: dict | None = None
            ) -> tuple[subprocess.CompletedProcess, ServerWatch]:
    """Run ``command``, watching what runs below it: how it ended, and what was seen."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **(env or {})})
    watch = ServerWatch(process.pid)
    output, _ = process.communicate(timeout=600)
    return subprocess.CompletedProcess(command, process.returncode, output), watch.stop()


def assert_servers_gone(watch: ServerWatch, output: str) -> None:
    # The grader's model server (forked from the worker, seen listening) and the learner's
    # (MLflow's CLI running uvicorn): both, or this test proved nothing; then nothing of
    # all that ran below is left.
    assert watch.listening and any(is_uvicorn(p) for p in watch.processes.values()), (
        watch.listening, output[-3000:])
    assert not watch.left(), f"left running: {watch.left()}"


def unhurried(folder: Path) -> Path:
    """The learner scores with the grader's server for a second: it listens long enough to
    be seen from outside every time, even on a busy machine (it lives a fifth of a second
    otherwise, and a look at every process can take longer)."""
    return linger(folder, {"ex05_serving": ["score_with_server"]})


@pytest.mark.parametrize("mode", ["none", pytest.param("bwrap", marks=needs_bwrap)])
def test_a_self_check_leaves_no_server_and_bwrap_keeps_them_inside(tmp_path, mode):
    learner = unhurried(shutil.copytree(REPO / "solutions", tmp_path / "learner",
                                                ignore=shutil.ignore_patterns("__pycache__")))
    command = [sys.executable, "-m", "pytest",
               *grader_args(learner, "-k", "ex05", "--isolation", mode, seed=SEED, out=tmp_path / "r.json")]
    completed, watch = watched(command)
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert_servers_gone(watch, completed.stdout)
    # The solution's command is this environment's CLI: it ran in a fork of the warm call.
    assert any("uvicorn" in p["names"] and "uvicorn" not in p["command"] for p in watch.processes.values()), (
        watch.processes)
    if mode == "bwrap":
        ours = netns(os.getpid())
        assert all(s["netns"] != ours for s in watch.servers().values()), watch.servers()
    else:  # the learner's own machine: on its loopback only (7F000001, little-endian)
        assert all(port.startswith(("0100007F:", "00000000000000000000000001000000:"))
                   for s in watch.listening.values() for port in s["listening"]), watch.listening


@needs_bwrap
def test_a_batch_under_bwrap_serves_inside_the_sandbox_and_leaves_nothing(tmp_path):
    submissions = tmp_path / "submissions"
    unhurried(shutil.copytree(REPO / "solutions", submissions / "ada", ignore=shutil.ignore_patterns("__pycache__")))
    out = tmp_path / "out"
    command = batch_command(submissions, out, "--workers", "1", "--seed", str(SEED), "--isolation", "bwrap")
    completed, watch = watched(command)
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert "ada,graded,100," in (out / "gradebook.csv").read_text(), (out / "gradebook.csv").read_text()
    assert_servers_gone(watch, completed.stdout)
    ours = netns(os.getpid())
    assert all(s["netns"] != ours for s in watch.servers().values()), watch.servers()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_watch_serves_and_quits_leaving_no_server(tmp_path):
    """`watch` on a folder whose Module 5 is done, in a terminal: its verdicts, then q."""
    folder = unhurried(with_functions(tmp_path / "learner", {(e.module, e.function): None for e in MODULE_5}))
    command = [sys.executable, "-m", "grader", "watch", "--target", str(folder), "--seed", str(SEED)]
    terminal = Terminal(command, {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        watch = ServerWatch(terminal.pid)
        screen = terminal.wait_for(*(f"{e.function}" for e in MODULE_5), "checked ")
        screen = terminal.wait_for(f"{len(MODULE_5)}/{len(catalogue.load().exercises)} done")
        for exercise in MODULE_5:
            assert f"passed         {exercise.points}/{exercise.points}" in next(
                line for line in screen.splitlines() if f" {exercise.function} " in line), screen
        pids = terminal.processes()
        terminal.keys("q")
        terminal.wait_for("Stopped watching")
        assert_all_end(terminal, pids)
        assert_servers_gone(watch.stop(), screen)
    finally:
        terminal.close()


def test_the_cli_of_this_environment_runs_warm_any_other_program_as_it_is(tmp_path):
    """A command of this environment's MLflow CLI (its Python with ``-m mlflow``, or the
    ``mlflow`` script beside it) runs in a fork of the grader's warm call: MLflow's own CLI
    and uvicorn's, imported once. Any other program runs as it is, a new process: a link to
    this Python from another folder, as another environment's would, and it serves alike."""
    from grader.sandbox.warm import arguments_of

    elsewhere = tmp_path / "elsewhere" / "bin"
    elsewhere.mkdir(parents=True)
    (elsewhere / "python").symlink_to(sys.executable)
    serve = ["models", "serve", "-m", "models:/m@a", "--env-manager", "local"]
    assert arguments_of([sys.executable, "-m", "mlflow", *serve]) == ["-m", "mlflow", *serve]
    assert arguments_of(["mlflow", *serve], path=str(Path(sys.executable).parent)) == [
        str(Path(sys.executable).parent / "mlflow"), *serve]
    assert arguments_of([str(elsewhere / "python"), "-m", "mlflow", *serve]) is None

    code = (
        "def serve_command(model_uri, port):\n"
        f"    return [{str(elsewhere / 'python')!r}, \"-m\", \"mlflow\", \"models\", \"serve\", \"--model-uri\", model_uri,\n"
        "            \"--host\", \"127.0.0.1\", \"--port\", str(port), \"--env-manager\", \"local\"]\n"
    )
    learner = with_functions(tmp_path / "learner", {("ex05_serving", "serve_command"): code})
    command = [sys.executable, "-m", "pytest",
               *grader_args(learner, "-k", "serve_command", seed=SEED, out=tmp_path / "r.json")]
    completed, watch = watched(command)
    assert completed.returncode == 0, completed.stdout[-3000:]
    uvicorns = [p for p in watch.processes.values() if is_uvicorn(p)]
    assert uvicorns and all("uvicorn" in p["command"] for p in uvicorns), watch.processes  # a program of its own
    assert not watch.left(), f"left running: {watch.left()}"


def test_a_port_is_held_here_only_by_a_process_of_this_session():
    """What tells the learner's server from another program that answers on its port."""
    import socket

    from grader.test_ex05_serving import _held_here

    with socket.socket() as mine:
        mine.bind(("127.0.0.1", 0))
        mine.listen()
        assert _held_here(mine.getsockname()[1])
    other = subprocess.Popen([sys.executable, "-c", "import socket, sys, time\ns = socket.socket()\n"
                              "s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        port = int(other.stdout.readline())
        assert not _held_here(port)
    finally:
        other.kill()
        other.wait()


IMPOSTOR = r"""
import http.server, sys
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("asked", self.path, flush=True)
        self.send_response(200); self.end_headers(); self.wfile.write(b"\n")
    def log_message(self, *args):
        pass
sys.stdin.readline()  # the learner's command has started
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Answer)
print("listening", flush=True)
server.serve_forever()
"""


def test_a_port_another_program_takes_is_not_taken_for_the_learners_server(tmp_path):
    """Gradings that share a loopback (no bubblewrap) and a seed ask for the same port first.
    Here another program takes it while the learner's command starts, and answers /ping
    there: the grader must not take it for the learner's server (score it, or fail the
    learner for it), but ask again on another port."""
    wrong = "def serve_command(model_uri, port):\n    return [\"mlflow\", \"models\", \"serve\"]\n"
    probe = with_functions(tmp_path / "probe", {("ex05_serving", "serve_command"): wrong})
    graded = grade(probe, "-k", "serve_command", out=tmp_path / "probe.json")
    port = int(re.search(r"serve_command\('models:/[^']+', (\d+)\)", graded.output).group(1))  # the seed's first
    impostor = subprocess.Popen([sys.executable, "-c", IMPOSTOR, str(port)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
    command = [sys.executable, "-m", "pytest", *grader_args(REPO / "solutions", "-k", "serve_command", seed=SEED,
                                                             out=tmp_path / "r.json")]
    grading = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not any(name_of(pid) == "mlflow" for pid in descendants(grading.pid)):  # the command, in its fork
            assert grading.poll() is None and time.monotonic() < deadline, "the learner's command was never seen starting"
            time.sleep(0.01)
        impostor.stdin.write("go\n")
        impostor.stdin.flush()
        # It listens there: the learner's server cannot have the port (it answers the
        # grader's /ping, or the learner's uvicorn ends with "address already in use" first).
        assert impostor.stdout.readline().strip() == "listening", "the other program did not get the port first"
        output = grading.communicate(timeout=600)[0]
    finally:
        impostor.kill()
        impostor.communicate()
        grading.kill()
    points = catalogue.load().exercise("ex05_serving", "serve_command").points
    scores = json.loads((tmp_path / "r.json").read_text())["extra_data"]["exercises"]
    assert scores["ex05_serving.serve_command"]["score"] == points, output[-3000:]
