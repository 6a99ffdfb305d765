"""A page in real headless Chromium (Debian's `chromium`), seen as a person sees it.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
commands on fd 3, replies on fd 4, each a JSON message ending in NUL), so no driver
package and no port: ``with Chromium(tmp) as browser: page = browser.open(path)`` (a file,
or a URL), then ``page.value("JS expression")``, ``page.problems`` (console errors and
warnings, uncaught exceptions, failed loads and blocked content, in the browser's words).
"""
from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
CHROMIUM = shutil.which("chromium")


class Chromium:
    def __init__(self, tmp: Path):
        self.profile = tmp / "chromium-profile"
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict] = []

    def __enter__(self) -> "Chromium":
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def onto_3_and_4() -> None:
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=onto_3_and_4, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        os.close(to_browser_read)
        os.close(from_browser_write)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (OSError, TimeoutError, RuntimeError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def _receive(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium ended")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, path: Path | str, timeout: float = 60) -> "Page":
        """A new tab showing ``path`` (a file, or a URL), once it has settled: loaded, and then
        nothing more fetched for a while (Chromium's `networkIdle`), so that the scripts and
        image errors that would come after the load have come."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable", session=session)
        self.call("Page.setLifecycleEventsEnabled", {"enabled": True}, session=session)
        url = path if isinstance(path, str) else path.resolve().as_uri()
        loader = self.call("Page.navigate", {"url": url}, session=session)["loaderId"]
        page = Page(self, session)
        # This page's, not about:blank's (whose lifecycle events come again when they are enabled).
        page.wait_for("Page.lifecycleEvent", timeout, name="networkIdle", loaderId=loader)
        page.value("1")  # collects what happened meanwhile
        return page


class Page:
    def __init__(self, browser: Chromium, session: str):
        self.browser, self.session = browser, session

    def _mine(self) -> list[dict]:
        return [e for e in self.browser._events if e.get("sessionId") == self.session]

    def wait_for(self, event: str, timeout: float = 30, **params) -> None:
        """Until the page has had ``event`` with these ``params`` (and maybe others)."""
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event and params.items() <= e.get("params", {}).items() for e in self._mine()):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the page never had {event} {params}")
            self.browser._events.append(self.browser._receive(left))

    def wait_for_text(self, *texts: str, timeout: float = 60) -> str:
        """The page's text once it shows all of ``texts`` (a page its scripts draw)."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.value("document.body ? document.body.innerText : ''")
            if all(text in shown for text in texts) or time.monotonic() > deadline:
                assert all(text in shown for text in texts), f"the page never showed {texts}:\n{shown[:3000]}"
                return shown
            time.sleep(0.1)

    def value(self, expression: str):
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        result = self.browser.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                        "awaitPromise": True}, session=self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def resize(self, width: int, height: int = 900) -> None:
        """Show the page in a window ``width`` CSS pixels wide, as a screen of that size would."""
        self.browser.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                                 "deviceScaleFactor": 1, "mobile": False}, session=self.session)
        self.value("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """A PNG of the page as it is shown (all of it, by default), to look at."""
        import base64

        params = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            width, height = self.value("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        path.write_bytes(base64.b64decode(self.browser.call("Page.captureScreenshot", params, session=self.session)["data"]))
        return path

    @property
    def problems(self) -> list[str]:
        found = []
        for event in self._mine():
            params = event.get("params", {})
            if event.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif event.get("method") == "Runtime.exceptionThrown":
                found.append("exception: " + json.dumps(params.get("exceptionDetails", {}))[:500])
            elif event.get("method") == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
                found.append(f"log ({params['entry'].get('source')}): {params['entry'].get('text')}")
        return found

    @property
    def console(self) -> list[str]:
        """Everything written to the console, whatever its level."""
        return [" ".join(str(a.get("value", "")) for a in e["params"].get("args", []))
                for e in self._mine() if e.get("method") == "Runtime.consoleAPICalled"]
