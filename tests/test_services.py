"""A sandbox step may leave a process running for later calls (a server the grader starts
in the learner's sandbox, as Module 5's model server will be): later calls reach it on
the sandbox's own loopback, and stopping it, or the end of the grading, ends it."""
from __future__ import annotations

import pytest

from grader.ground.processes import proc_stat
from grader.core.session import GradingSession
from grader.core.store import template_db
from grader.sandbox import isolation
from grader.sandbox.client import Sandbox
from grader.sandbox.protocol import DEFAULT_CALL_TIMEOUT, sandbox_step

SERVER = """
import socket
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
print(server.getsockname()[1], flush=True)
while True:
    connection, _ = server.accept()
    connection.sendall(b"hello")
    connection.close()
"""


@sandbox_step
def serve_hello():
    """Start a server on the sandbox's loopback and return once it listens."""
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    return {"port": int(server.stdout.readline()), "pid": server.pid}


@sandbox_step
def ask(port):
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        return connection.recv(100).decode()


def gone(pid: int) -> bool:
    fields = proc_stat(pid)
    return fields is None or fields[0] == b"Z"


@pytest.mark.parametrize("mode", ["none", "bwrap"])
def test_a_kept_step_serves_later_calls_until_stopped(tmp_path, mode):
    if mode == "bwrap" and not isolation.bwrap_available():
        pytest.skip("bubblewrap cannot build a sandbox here")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    template = template_db(tmp_path)
    wrap, limits = isolation.settings(mode, scratch, template, DEFAULT_CALL_TIMEOUT)
    session = GradingSession(scratch / "src", scratch, 1, Sandbox(scratch, wrap=wrap, limits=limits, template=template))
    learner = session.learner("ex01_tracking", "log_run")
    store = learner.store()
    try:
        served = learner.start_service(store, serve_hello)
        port = served.value["port"]
        # Each call is a process of its own, and the worker sweeps strays after each: the server stays.
        assert [learner.prepare(store, ask, port) for _ in range(2)] == ["hello", "hello"]
        served.stop()
        with pytest.raises(RuntimeError, match="ConnectionRefusedError"):
            learner.prepare(store, ask, port)
        if mode == "none":  # the same pid namespace as this test's
            assert gone(served.value["pid"]), f"the stopped server {served.value['pid']} still runs"
        left = learner.start_service(store, serve_hello)  # never stopped by a check
        assert learner.prepare(store, ask, left.value["port"]) == "hello"
    finally:
        session.close()
    if mode == "none":
        assert gone(left.value["pid"]), "a service outlived its grading session"
