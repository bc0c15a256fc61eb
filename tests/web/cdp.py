"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (no extra packages):
start headless Chromium, open a page, evaluate JavaScript in it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    env = os.environ.get("CLAWGEN_CHROMIUM")
    if env:
        return env
    for name in CHROMIUM_CANDIDATES:
        p = shutil.which(name)
        if p:
            return p
    return None


class Browser:
    """Headless Chromium driven through CDP messages (NUL-separated JSON on fds 3/4)."""

    def __init__(self, exe: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="clawgen-chromium-")
        to_r, self._to_w = os.pipe()  # we write commands; Chromium reads fd 3
        self._from_r, from_w = os.pipe()  # Chromium writes fd 4; we read
        args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={self.profile}",
                "--remote-debugging-pipe", "about:blank"]

        def fds() -> None:
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=fds, close_fds=False)
        os.close(to_r)
        os.close(from_w)
        self._buf = b""
        self._id = 0

    def _send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        return self._id

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        want = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buf:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no CDP reply to {method} within {timeout}s")
                chunk = os.read(self._from_r, 65536)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buf += chunk
            raw, _, self._buf = self._buf.partition(b"\0")
            msg = json.loads(raw)
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError(f"CDP {method}: {msg['error']}")
                return msg.get("result", {})

    def open(self, url: str) -> str:
        """Open url in a new tab; returns the CDP session id attached to it."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        deadline = time.monotonic() + 30
        while True:  # until the page (not about:blank) has loaded
            state = self.call("Runtime.evaluate", {"expression": "location.href + ' ' + document.readyState",
                                                   "returnByValue": True}, session=session)
            if state.get("result", {}).get("value") == f"{url} complete":
                return session
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load within 30 s")
            time.sleep(0.05)

    def evaluate(self, session: str, expression: str, timeout: float = 30.0) -> Any:
        r = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                           "returnByValue": True}, session=session, timeout=timeout)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def close(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            for fd in (self._to_w, self._from_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self.profile, ignore_errors=True)
