"""The simulator harness: MicroPython programs on the real VM, talking to real host sockets."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest

from clawgen.sim import vm
from tests.llm_server import LLMServer, Reply
from tests.sim.certs import make_certs

HTTP_GET = """
import socket
def http_get(host, port, path, timeout=2):
    addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0][-1]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(addr)
    s.write(b"GET " + path.encode() + b" HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
    buf = bytearray(64)
    out = bytearray()
    while True:
        n = s.readinto(buf)
        if not n:
            break
        out += buf[:n]
    s.close()
    return bytes(out)
"""


def test_http_get_through_the_socket_shim(sim_run, llm_server: LLMServer) -> None:
    llm_server.push(Reply.raw(b"hello from the host" * 20, content_type="text/plain"))
    prog = HTTP_GET + f"""
resp = http_get("localhost", {llm_server.port}, "/v1/ping")
head, body = resp.split(b"\\r\\n\\r\\n", 1)
print(head.split(b"\\r\\n")[0].decode())
print(len(body), body[:19].decode())
"""
    res = sim_run(modules={"prog": prog}, entry="import prog")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["HTTP/1.1 200 OK", "380 hello from the host"]
    assert [(r.method, r.path) for r in llm_server.requests] == [("GET", "/v1/ping")]


def test_socket_errors_match_micropython(sim_run, llm_server: LLMServer) -> None:
    # A port nobody listens on: take a free one and close it again.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead_port = probe.getsockname()[1]
    probe.close()
    llm_server.push(Reply.stall(5))
    # the reset from a server of its own: with one queue for both connections, a slow handler thread
    # for the first could let the second take the stall
    resetter = LLMServer()
    resetter.push(Reply.reset())
    prog = f"""
import socket
def err(fn):
    try:
        fn()
        return "no error"
    except OSError as e:
        return e.args[0]
def refused():
    s = socket.socket(); s.settimeout(1); s.connect(("127.0.0.1", {dead_port}))
print("refused", err(refused))
print("dns", err(lambda: socket.getaddrinfo("no-such-host.invalid", 80)))
s = socket.socket(); s.settimeout(0.3); s.connect(("127.0.0.1", {llm_server.port}))
s.write(b"POST /v1/chat/completions HTTP/1.1\\r\\nContent-Length: 0\\r\\n\\r\\n")
print("timeout", err(lambda: s.recv(10)))
s.setblocking(False)
print("nonblocking", err(lambda: s.recv(10)))
s.close()
s = socket.socket(); s.settimeout(2); s.connect(("127.0.0.1", {resetter.port}))
s.write(b"POST /v1/chat/completions HTTP/1.1\\r\\nContent-Length: 0\\r\\n\\r\\n")
print("reset", err(lambda: s.recv(10)))
"""
    try:
        res = sim_run(modules={"prog": prog}, entry="import prog")
    finally:
        resetter.close()
    assert res.returncode == 0, res.stderr
    # ESP32 numbers (newlib errno.h): ETIMEDOUT is 116 there, not Linux's 110.
    assert res.stdout.splitlines() == ["refused 111", "dns -202", "timeout 116", "nonblocking 11", "reset 104"]


def test_eof_reads_zero(sim_run, llm_server: LLMServer) -> None:
    llm_server.push(Reply.close())
    prog = f"""
import socket
s = socket.socket(); s.settimeout(2); s.connect(("127.0.0.1", {llm_server.port}))
s.write(b"GET / HTTP/1.1\\r\\n\\r\\n")
print(s.readinto(bytearray(8)), s.recv(8))
"""
    res = sim_run(modules={"prog": prog}, entry="import prog")
    assert res.stdout.strip() == "0 b''", res.stderr


def test_tls_verifies_against_the_device_ca(sim_run, tmp_path: Path) -> None:
    ca_pem, cert, key = make_certs(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    port = lsock.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True) as tconn:
                    tconn.recv(1024)
                    tconn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure")
            except (OSError, ssl.SSLError) as e:
                server_errors.append(repr(e))  # the device refused our certificate

    server_errors: list[str] = []
    server = threading.Thread(target=serve, daemon=True)
    server.start()
    prog = f"""
import socket, ssl
def fetch(name):
    # (a bound on a hang, not a budget: the WebAssembly handshake is slow on a loaded machine)
    s = socket.socket(); s.settimeout(20); s.connect(("127.0.0.1", {port}))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata={ca_pem!r}.encode())
    try:
        s = ctx.wrap_socket(s, server_hostname=name)
    except ValueError as e:  # MicroPython's mbedTLS binding: a refused certificate, with its reason
        return "refused: " + " ".join(str(e).split())
    s.write(b"GET / HTTP/1.1\\r\\n\\r\\n")
    return s.read().split(b"\\r\\n\\r\\n")[1].decode()
print(fetch("localhost"))
print(fetch("example.com"))
"""
    try:
        res = sim_run(modules={"prog": prog}, entry="import prog")
    finally:
        # shut down (not close) under the blocked accept; the serving thread's exit closes it
        lsock.shutdown(socket.SHUT_RDWR)
        server.join(timeout=5)
        lsock.close()
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "secure", "refused: The certificate Common Name (CN) does not match with the expected CN"], (
        res.stderr, server_errors)


def test_server_socket_with_remapped_port(mpvm) -> None:
    prog = """
import socket
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 23))
srv.listen(1)
srv.settimeout(10)
c, addr = srv.accept()
c.settimeout(5)
c.write(b"hello " + addr[0].encode() + b"\\n")
print("got", c.readline())
c.close()
srv.close()
"""
    with vm.Simulation(None, modules={"prog": prog}, entry="import prog", port_map={23: 0}) as sim:
        ev = sim.wait_event("listening")
        assert ev["device_port"] == 23 and ev["port"] != 23
        with socket.create_connection((ev["host"], ev["port"]), timeout=10) as client:
            assert client.recv(100) == b"hello 127.0.0.1\n"
            client.sendall(b"ping\n")
        res = sim.wait(timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "got b'ping\\n'"


def test_console_nvs_registers_and_exit(sim_run) -> None:
    prog = """
import claw_console, esp32, clawhw
buf = bytearray(16)
n = esp32.NVS("clawgen").get_blob("api_key", buf)
claw_console.write("key bytes %d\\n" % n)
try:
    esp32.NVS("clawgen").get_blob("missing", buf)
except OSError as e:
    claw_console.write("missing %d\\n" % e.args[0])
claw_console.write("reg %x\\n" % clawhw.read32(0x60004004))
clawhw.write32(0x60004008, 0xFFFFFFFF)
clawhw.write32(0x60004004, 0x1)
while True:
    claw_console.write("> ")
    line = claw_console.readline()
    if line is None:
        break
    claw_console.write("[" + line + "]\\n")
"""
    res = sim_run(modules={"prog": prog}, entry="import prog", stdin=["one", "two words", ""],
                  secrets={"api_key": b"sk-secret-value"}, registers={0x60004004: 0xABCD})
    assert res.returncode == 0, res.stderr
    assert res.stdout == "key bytes 15\nmissing -4354\nreg abcd\n> [one]\n> [two words]\n> []\n> "
    assert "sk-secret-value" not in res.stdout + res.stderr
    assert res.register_writes == [(0x60004008, 0xFFFFFFFF), (0x60004004, 0x1)]
    assert res.registers[0x60004004] == 1


def test_exception_reset_and_timeout_are_reported(sim_run) -> None:
    crash = sim_run(modules={"prog": "def f():\n    raise ValueError('boom')\nf()\n"}, entry="import prog")
    assert crash.returncode == vm.RC_EXCEPTION and crash.reason == "exit"
    assert "ValueError: boom" in crash.stderr and "prog.py" in crash.stderr
    reset = sim_run(modules={"prog": "import machine\nprint('before')\nmachine.reset()\nprint('after')\n"},
                    entry="import prog")
    assert (reset.returncode, reset.reason, reset.stdout) == (vm.RC_RESET, "reset", "before\n")
    hang = sim_run(modules={"prog": "import claw_console\nclaw_console.readline()\n"}, entry="import prog",
                   stdin=b"")
    assert hang.returncode == 0  # end of input ends a blocking readline
    stuck = sim_run(modules={"prog": "while True:\n    pass\n"}, entry="import prog", timeout=1.5)
    assert (stuck.returncode, stuck.reason) == (vm.RC_TIMEOUT, "timeout")


def test_files_round_trip_and_heap_stats(sim_run) -> None:
    prog = """
import os
with open("/data/log", "rb") as f:
    old = f.read()
with open("/data/log", "wb") as f:
    f.write(old + b"+more")
"""
    res = sim_run(modules={"prog": prog}, entry="import prog", extra_files={"/data/log": b"start"})
    assert res.returncode == 0, res.stderr
    assert res.files["/data/log"] == b"start+more"
    assert not any(p.startswith("/lib/") for p in res.files)
    assert res.heap["gc_total"] > res.heap["gc_used"] > 0


def test_wifi_failure_is_simulated(sim_run) -> None:
    prog = """
import network
w = network.WLAN(network.STA_IF)
w.active(True)
w.connect("ssid", "pw")
print(w.isconnected(), w.status())
"""
    ok = sim_run(modules={"prog": prog}, entry="import prog")
    bad = sim_run(modules={"prog": prog}, entry="import prog", network={"connect": "wrong_password"})
    assert ok.stdout.strip() == "True 1010"
    assert bad.stdout.strip() == "False 202"


def test_build_files_skip_modules_the_simulator_swaps(tmp_path: Path) -> None:
    (tmp_path / "mpy").mkdir()
    for name in ("claw_main", "claw_console", "clawhw", "claw_http"):
        (tmp_path / "mpy" / f"{name}.mpy").write_bytes(b"M\x06")
    files = vm.build_files(tmp_path)
    assert sorted(files) == ["/lib/claw_http.mpy", "/lib/claw_main.mpy"]
    with pytest.raises(vm.UsageError):
        vm.build_files(tmp_path / "nothing")


def test_heap_follows_the_builds_board(tmp_path, mpvm) -> None:
    """The VM starts with the GC heap the build says its board starts with (build.json), not a fixed
    size; the VM's own tables take ~3% of it and there is no other base."""
    import json

    build = tmp_path / "build"
    (build / "mpy").mkdir(parents=True)
    for board_heap in (65536, 111168):
        (build / "build.json").write_text(json.dumps({"heap": {"board_heap_bytes": board_heap}}))
        res = vm.run(build, entry="pass", timeout=30)
        assert res.returncode == 0, res.stderr
        assert 0.95 * board_heap <= res.heap["gc_total_at_start"] <= board_heap
    res = vm.run(build, entry="pass", heapsize=256 * 1024, timeout=30)  # an explicit heapsize wins
    assert res.heap["gc_total_at_start"] > 111168


def test_uart_lines_are_bounded_like_the_device_bounds_them(mpvm) -> None:
    """A line longer than the device's line buffer reaches the VM cut, with the device's marker (on a
    UTF-8 boundary); without a build the bound is 64 KiB, so no line can exhaust the VM."""
    entry = ("import claw_console\n"
             "while True:\n"
             "    line = claw_console.readline()\n"
             "    if line is None:\n"
             "        break\n"
             "    print(len(line.encode()), line[-50:])\n")
    res = vm.run(None, entry=entry, stdin=["é" * 100, "short", "x" * 300_000], line_max=101, timeout=30)
    assert res.returncode == 0, res.stderr

    def shown(line: str) -> str:
        return f"{len(line.encode())} {line[-50:]}"

    # 101 - 48 = 53 bytes: 52 kept for 26 two-byte characters (never half of one)
    assert res.stdout.splitlines() == [shown("é" * 26 + " ...[truncated: kept 52 of 200 bytes]"), "5 short",
                                       shown("x" * 53 + " ...[truncated: kept 53 of 300000 bytes]")]
    res = vm.run(None, entry=entry, stdin=["y" * 300_000], timeout=30)
    assert res.stdout.splitlines() == [shown("y" * 65488 + " ...[truncated: kept 65488 of 300000 bytes]")]


def test_prestarted_vm_reloads_when_its_heap_guess_was_wrong(mpvm) -> None:
    """`clawgen sim` starts node before the build with the last build's heap; a different heapsize in
    the run's configuration gets a VM of that size, and an unused prestarted process can be stopped."""
    pre = vm.Prestarted(stdin=None, capture=True, heapsize=65536)
    res = vm.Simulation(None, entry="print(7)", heapsize=131072, prestarted=pre).wait(30)
    assert res.returncode == 0 and res.stdout == "7\n", res.stderr
    assert 0.95 * 131072 <= res.heap["gc_total_at_start"] <= 131072
    unused = vm.Prestarted(stdin=None, capture=True, heapsize=65536)
    unused.kill()
    assert unused.proc.returncode is not None
    with pytest.raises(RuntimeError):
        unused.take()


def test_select_poll_takes_other_stream_objects_too(sim_run) -> None:
    """select.poll in the simulator waits on shim sockets through the bridge; any other stream object
    (here an io.IOBase with ioctl, as MicroPython polls it) still works, also mixed with a socket."""
    prog = """
import io, select, socket
class Later(io.IOBase):
    def __init__(self, after):
        self.calls = 0
        self.after = after
    def ioctl(self, req, arg):
        if req != 3:  # MP_STREAM_POLL
            return 0
        self.calls += 1
        return arg & select.POLLIN if self.calls > self.after else 0
p = select.poll()
obj = Later(3)
p.register(obj, select.POLLIN)
print("ready later", [(o is obj, ev) for o, ev in p.poll(2000)])
never = Later(10 ** 9)
p2 = select.poll()
p2.register(never, select.POLLIN)
s = socket.socket()
p2.register(s, select.POLLIN)  # a new, unconnected socket: POLLHUP
print("mixed", [(o is s, ev) for o, ev in p2.poll(100)])
p2.unregister(s)
print("nothing", p2.poll(50))
"""
    res = sim_run(modules={"prog": prog}, entry="import prog")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["ready later [(True, 1)]", "mixed [(True, 16)]", "nothing []"]
