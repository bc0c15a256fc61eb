"""The cooperative event loop (claw_loop, docs/runtime.md "The event loop") on the MicroPython
unix-port VM: the scheduler itself under a controllable clock (deadlines, wake-ups, failure
isolation with back-off), and the runtime on it: a command typed on Telnet is answered while a
model request is in flight (causal order: the answer says the turn is running and arrives before
the scripted model server releases its reply), and a turn that raises ends with `[error]` while
the loop keeps serving. The latency figure is printed by bench/loop_latency_unix.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clawgen.sim.llmserver import LLMServer, Reply, wait_for
from clawgen.sim.unixvm import UnixRun
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.telnet_client import TelnetClient, free_port

HOST = "127.0.0.1"

# The scheduler alone: five tasks under a fake clock (claw_loop.now / claw_loop.pause replaced).
LOOP_PROG = """
import json
import claw_loop as L

T = [0]
L.now = lambda: T[0]


def pause(ms):
    T[0] += ms


L.pause = pause
log = []
L.report = log.append
ev = []
starts = []


def ticker(name, period, n):
    for _ in range(n):
        yield from L.sleep(period)
        ev.append([T[0], name])


def flaky():
    starts.append(T[0])
    yield (None, 0, L.after(10))
    raise ValueError("sensor gone")


def waiter():
    r = yield (None, 0, None)
    ev.append([T[0], "woken %s" % r])
    r = yield from L.wait(None, 0, L.after(50))
    ev.append([T[0], "timeout %s" % r])


def boss(w):
    yield from L.sleep(300)
    L.wake(w)
    yield from L.sleep(7000)
    ev.append([T[0], "stop"])
    L.stop()


L.add("a", ticker, "a", 100, 3)
L.add("b", ticker, "b", 250, 2)
L.add("flaky", flaky)
w = L.add("waiter", waiter)
L.add("boss", boss, w)
L.run()
print("RESULT " + json.dumps({"ev": ev, "starts": starts, "log": log, "t": T[0]}))
"""


def _result(stdout: str) -> Any:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[7:])


def test_scheduler_order_wakeups_and_failure_backoff(tmp_path: Path, llm_server, unix_run) -> None:
    out = build(tmp_path, make_spec(llm_server.base_url))
    res = unix_run(out, modules={"loopprog": LOOP_PROG}, entry="import loopprog")
    assert res.returncode == 0, res.stdout + res.stderr
    r = _result(res.stdout)
    # Deadlines in time order, ties in task-table order; a woken task sees True, a deadline False.
    assert r["ev"] == [[100, "a"], [200, "a"], [250, "b"], [300, "a"], [300, "woken True"],
                       [350, "timeout False"], [500, "b"], [7300, "stop"]]
    # The failing task is restarted after 1 s, 2 s, 4 s (from each failure at start + 10 ms) and
    # reported once: the same error again is not repeated.
    assert r["starts"] == [0, 1010, 3020, 7030]
    assert r["log"] == ["[error] task flaky failed: ValueError: sensor gone; restarting in 1 s"]
    assert r["t"] == 7300


# A task that fails with MemoryError while the heap is still full (here a global holds it; on the
# device, what a failed turn or command left): the loop's report of the failure allocates, and
# before 2026-12-04 that second MemoryError escaped the loop and ended the device with a traceback.
OOM_PROG = """
import claw_loop as L

log = []
L.report = log.append
L.pause = lambda ms: None
E = MemoryError("the task's own")
hog = [None]


def failing():
    yield (None, 0, L.after(1))
    h = None
    try:
        while True:
            h = [h]
    except MemoryError:
        pass
    hog[0] = h  # the heap stays full while the loop handles the failure
    h = None
    raise E


def releaser():
    yield (None, 0, L.after(20))
    hog[0] = None
    L.stop()


L.add("failing", failing)
L.add("releaser", releaser)
L.run()
print("RESULT", log)
"""


def test_a_task_out_of_memory_with_the_heap_still_full_does_not_end_the_loop(tmp_path: Path, llm_server,
                                                                             unix_run) -> None:
    out = build(tmp_path, make_spec(llm_server.base_url))
    res = unix_run(out, modules={"oomprog": OOM_PROG}, entry="import oomprog", heapsize=64 * 1024)
    assert res.returncode == 0 and "Traceback" not in res.stdout + res.stderr, res.stdout + res.stderr
    # The loop went on to the next task, which freed the heap and stopped it; with no room for the
    # report, the failure went unsaid rather than fatal (out of memory is never fatal: issue 8).
    assert "RESULT [" in res.stdout, res.stdout


WIFI = {"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"}
SECRETS = {"wifi_ssid": "lab-net", "wifi_password": "hunter22"}
NVS = {"wifi_ssid": b"lab-net", "wifi_pw": b"hunter22"}


class Gate:
    """A scripted model server whose replies wait until the test releases them, one at a time."""

    def __init__(self, server: LLMServer, *replies: Reply) -> None:
        self.replies = list(replies)
        self.open = threading.Semaphore(0)
        server.responder = self

    def __call__(self, _req: Any) -> Reply:
        if not self.open.acquire(timeout=60):
            return Reply.error(500, "the test never released this reply")
        return self.replies.pop(0)

    def release(self) -> None:
        self.open.release()


def telnet_device(tmp_path: Path, server: LLMServer, unix_device: Any, **overrides: Any) -> tuple[UnixRun, int]:
    port = free_port()
    spec = make_spec(server.base_url, transports={"uart": True, "telnet": {"port": port}}, network=WIFI,
                     **overrides)
    spec["model"]["read_timeout"] = 60  # the held reply must not time out
    spec["model"]["connect_timeout"] = 30  # a connect or handshake that blocked would block this long
    dev = unix_device(build(tmp_path, spec, secrets=SECRETS), secrets=NVS)
    return dev.start(open_stdin=True), port


def connect(run: UnixRun, port: int) -> TelnetClient:
    try:
        c = TelnetClient(HOST, port, wait=20, alive=lambda: run.proc.poll() is None)
    except ConnectionRefusedError:
        res = run.wait(5)
        raise AssertionError(f"the device does not listen on port {port}:\n{res.stdout}{res.stderr}") from None
    c.read_until(b"\n> ")
    return c


@pytest.fixture
def held(tmp_path: Path, llm_server: LLMServer, unix_device: Any) -> Iterator[tuple[UnixRun, int, Gate]]:
    gate = Gate(llm_server, Reply.text("the slow answer"), Reply.text("the console's answer"))
    run, port = telnet_device(tmp_path, llm_server, unix_device)
    try:
        yield run, port, gate
    finally:
        for _ in range(3):
            gate.release()
        run.kill()


def test_status_during_the_same_channels_turn(held, llm_server: LLMServer) -> None:
    run, port, gate = held
    c = connect(run, port)
    c.send_line("tell me something, slowly")
    assert wait_for(lambda: len(llm_server.requests) == 1, 20), "the model request never arrived"
    c.send_line("/status")
    status = c.read_until(b"\n> ")  # the model's reply is still held by the server
    assert "session telnet: in a turn, 0 waiting" in status, status
    assert "the slow answer" not in status
    gate.release()
    assert "the slow answer" in c.read_until(b"\n> ")
    c.send_line("/quit")
    c.read_until(b"bye")
    run.end_input()
    res = run.wait(20)
    assert res.returncode == 0, res.stderr


def test_status_on_telnet_during_a_console_turn(held, llm_server: LLMServer) -> None:
    run, port, gate = held
    c = connect(run, port)
    run.send("what is the weather\n")
    assert wait_for(lambda: len(llm_server.requests) == 1, 20), "the console's model request never arrived"
    c.send_line("/status")
    status = c.read_until(b"\n> ")
    assert "session telnet: idle, 0 waiting; a turn of console is running" in status, status
    assert "history 0/" in status  # the Telnet conversation is its own: the console's turn is not in it
    gate.release()
    c.send_line("/quit")
    c.read_until(b"bye")
    run.end_input()
    res = run.wait(20)
    assert res.returncode == 0, res.stderr
    assert "the slow answer" in res.stdout  # the console's turn ended after the Telnet /status
    assert llm_server.requests[0].messages[-1]["content"] == "what is the weather"


# A turn that raises (the patched Agent.turn) ends that turn only; the next line is served.
BOOM = """
import claw_agent
import claw_main

_turn = claw_agent.Agent.turn


def turn(self, session, text, io):
    if text == "boom":
        raise RuntimeError("the turn broke")
    return (yield from _turn(self, session, text, io))


claw_agent.Agent.turn = turn
claw_main.main()
"""


def test_a_turn_that_raises_ends_with_an_error_and_the_loop_goes_on(tmp_path: Path, llm_server, unix_run) -> None:
    llm_server.push(Reply.text("still here"))
    out = build(tmp_path, make_spec(llm_server.base_url))
    res = unix_run(out, stdin=["boom", "hi", "/status", "/quit"], modules={"boomprog": BOOM},
                   entry="import boomprog")
    assert res.returncode == 0, res.stderr
    assert "[error] RuntimeError: the turn broke" in res.stdout
    assert res.stdout.index("the turn broke") < res.stdout.index("still here") < res.stdout.index("uptime")
    assert [m["content"] for m in llm_server.requests[0].messages[1:]] == ["hi"]  # the failed turn left no history


class Tarpit:
    """A TCP server that accepts and then says nothing: a TLS handshake with it never ends."""

    def __init__(self) -> None:
        import socket

        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.conns: list[Any] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self) -> None:
        import socket

        for c in self.conns:
            c.close()
        try:
            self.srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.srv.close()
        self.thread.join(timeout=5)


def test_status_while_the_tls_handshake_waits_for_the_server(tmp_path: Path, unix_device: Any) -> None:
    # The handshake runs in the first write of the request, a step per wait of the turn task:
    # a server that never answers the ClientHello does not hold up the other channels.
    pit = Tarpit()
    try:
        server = type("S", (), {"base_url": f"https://localhost:{pit.port}/v1"})()
        run, port = telnet_device(tmp_path, server, unix_device)  # type: ignore[arg-type]
        try:
            c = connect(run, port)
            run.send("hello over TLS\n")
            assert wait_for(lambda: len(pit.conns) == 1, 20), "the device never connected"
            c.send_line("/status")
            status = c.read_until(b"\n> ")
            assert "a turn of console is running" in status, status
            c.send_line("/quit")
            c.read_until(b"bye")
        finally:
            run.kill()
    finally:
        pit.close()
