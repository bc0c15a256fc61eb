// clawgen simulator host: runs a clawgen build on the official MicroPython WebAssembly VM.
//
// The VM runs on this (main) thread. Everything that must block -- TCP, TLS, stdin -- is
// done by a Worker thread: the VM calls a synchronous function of the `_simhost` JS module,
// which posts a request to the worker and sleeps in Atomics.wait on a SharedArrayBuffer
// until the worker has written the reply. So device code sees real blocking sockets with
// real timeouts over real host TCP, exactly as on the board.
//
// Interface with clawgen/sim/vm.py:
//   argv[2]  path of the npm install dir holding node_modules/@micropython/...
//   argv[3]  fd of the JSON config (read once, to EOF): files, heapsize, entry, secrets (base64),
//            registers, network behaviour. Secrets travel only through this pipe.
//   argv[4]  fd for JSON lines of events ({"event": "listening", ...}) and, last, the result.
//   stdin    the device UART input (claw_console.readline); stdout the UART output;
//            stderr logs and Python tracebacks.

import fs from "node:fs";
import path from "node:path";
import { pathToFileURL, fileURLToPath } from "node:url";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

// Loaded on first use: each thread's start is on the way to the device's first prompt.
const lazy = (name) => { let m = null; return () => (m ??= process.getBuiltinModule(name)); };
const crypto = lazy("node:crypto"), dns = lazy("node:dns"), net = lazy("node:net"), tls = lazy("node:tls");

const CTRL_WORDS = 4; // [state, status, dataLen, jsonLen]
const DATA_BYTES = 1 << 20;
const DEFAULT_LINE_MAX = 64 * 1024; // UART line bound when the run names none (no build)

// errno values as MicroPython on ESP32 reports them: the port uses the toolchain's newlib errno.h
// (MICROPY_USE_INTERNAL_ERRNO 0), so ETIMEDOUT is 116, EHOSTUNREACH 118, EINPROGRESS 119, ENOTCONN 128.
// The `errno` shim (shims/errno.py) has the same numbers, so device code comparing with
// errno.ETIMEDOUT behaves as on the board.
const ERRNO = {
  EPERM: 1, ENOENT: 2, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13, EINVAL: 22, EPIPE: 32,
  ECONNRESET: 104, ECONNREFUSED: 111, EADDRINUSE: 112, ECONNABORTED: 113, ENETUNREACH: 114,
  ETIMEDOUT: 116, EHOSTUNREACH: 118, EINPROGRESS: 119, EALREADY: 120, EADDRNOTAVAIL: 125, ENOTCONN: 128,
};
const ERRNO_BY_CODE = {
  ECONNRESET: 104, ECONNREFUSED: 111, ETIMEDOUT: 116, EHOSTUNREACH: 118, ENETUNREACH: 114,
  EPIPE: 104, ECONNABORTED: 113, EADDRINUSE: 112, EADDRNOTAVAIL: 125, EACCES: 13, ENOTFOUND: -202,
  EAI_AGAIN: -202, ERR_STREAM_DESTROYED: 104, ERR_SOCKET_CLOSED: 9,
};
// Poll event bits (MicroPython's MP_STREAM_POLL_*).
const POLLIN = 0x01, POLLOUT = 0x04, POLLERR = 0x08, POLLHUP = 0x10, POLLNVAL = 0x20;
// recv modes: what a read waits for (MicroPython stream semantics, see shims/socket.py).
const RECV_SOME = 0, RECV_FULL = 1, RECV_LINE = 2;
// mbedTLS's verification messages (mbedtls_x509_crt_verify_info with prefix "\n"), which
// MicroPython's ssl raises as ValueError(text) when the server's certificate is refused.
const TLS_VERIFY_TEXT = {
  CERT_HAS_EXPIRED: "The certificate validity has expired",
  CERT_NOT_YET_VALID: "The certificate validity starts in the future",
  ERR_TLS_CERT_ALTNAME_INVALID: "The certificate Common Name (CN) does not match with the expected CN",
};
const TLS_NOT_TRUSTED = "The certificate is not correctly signed by the trusted CA";
const DNS_FAIL = -202; // what ESP32 MicroPython's getaddrinfo raises for an unknown host
const TLS_HANDSHAKE_FAILED = -30592; // MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE

// DER (one or more certificates back to back) or PEM -> PEM text; "" if any part does not parse.
function pemOf(buf) {
  const certs = [];
  try {
    if (buf.subarray(0, 10).toString("latin1") === "-----BEGIN") {
      const text = buf.toString("latin1").replace(/\0+$/, "");
      for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)) {
        certs.push(new (crypto().X509Certificate)(m[0]));
      }
    } else {
      let off = 0;
      while (off < buf.length) {
        if (buf[off] !== 0x30 || off + 2 > buf.length) return "";
        let len = buf[off + 1], hdr = 2;
        if (len & 0x80) {
          const k = len & 0x7f;
          if (k < 1 || k > 3 || off + 2 + k > buf.length) return "";
          len = 0;
          for (let i = 0; i < k; i++) len = len * 256 + buf[off + 2 + i];
          hdr += k;
        }
        if (off + hdr + len > buf.length) return "";
        certs.push(new (crypto().X509Certificate)(buf.subarray(off, off + hdr + len)));
        off += hdr + len;
      }
    }
  } catch {
    return "";
  }
  return certs.map((c) => c.toString()).join("");
}

// CLAWSIM_TIMING=1: phases on stderr, in ms since this process started (both threads).
const timing = process.env.CLAWSIM_TIMING
  ? (what) => fs.writeSync(2, `clawsim-timing: ${(performance.timeOrigin + performance.now() - (process.env.CLAWSIM_T0 ? Number(process.env.CLAWSIM_T0) : performance.timeOrigin)).toFixed(1)} ms ${what}\n`)
  : () => {};

if (isMainThread) {
  if (process.env.CLAWSIM_TIMING && !process.env.CLAWSIM_T0) process.env.CLAWSIM_T0 = String(performance.timeOrigin);
  await mainThread();
} else {
  workerThread();
}

// ---------------------------------------------------------------------------------------
// Main thread: the VM and the synchronous side of the bridge.

async function mainThread() {
  timing("host start");
  const mpvmDir = process.argv[2];
  const cfgFd = Number(process.argv[3] ?? 3), eventFd = Number(process.argv[4] ?? 4);
  // argv[5]: the heapsize to start the VM with before the config arrives (0: wait for it). The
  // caller may start this process before it has built what the config describes, so node's own
  // start, the VM and the bridge worker get going while it works.
  const heapGuess = Number(process.argv[5] ?? 0);
  const events = (obj) => { try { fs.writeSync(eventFd, JSON.stringify(obj) + "\n"); } catch { /* parent gone */ } };

  const sab = new SharedArrayBuffer(CTRL_WORDS * 4 + DATA_BYTES);
  const ctrl = new Int32Array(sab, 0, CTRL_WORDS);
  const data = new Uint8Array(sab, CTRL_WORDS * 4);
  let worker = null; // started once the VM is loading (the device needs it only later in its boot)
  const startWorker = () => {
    worker = new Worker(fileURLToPath(import.meta.url), { workerData: { sab, eventFd } });
    worker.unref();
    worker.on("error", (e) => { fs.writeSync(2, `clawsim: bridge worker failed: ${e}\n`); process.exit(70); });
  };

  // Output is buffered here and flushed at newlines and before anything blocks, so a
  // prompt without a newline still shows up before the VM waits for input.
  const outBufs = { 1: [], 2: [] };
  let capture = null;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const writeAll = (fd, buf) => {
    // The fd may be non-blocking (a pipe node set up): retry EAGAIN instead of losing output.
    let off = 0;
    while (off < buf.length) {
      try {
        off += fs.writeSync(fd, buf, off);
      } catch (e) {
        if (e.code !== "EAGAIN") throw e;
        Atomics.wait(pause, 0, 0, 5);
      }
    }
  };
  const flush = (fd) => {
    if (outBufs[fd].length) { const b = Buffer.from(outBufs[fd]); outBufs[fd] = []; writeAll(fd, b); }
  };
  const flushAll = () => { flush(1); flush(2); };
  const emit = (fd) => (c) => {
    if (capture !== null && fd === 1) { capture.push(c); return; }
    const b = outBufs[fd];
    if (typeof c === "number") b.push(c); else for (const x of c) b.push(x);
    if (b.length > 4096 || (typeof c === "number" ? c === 10 : c.includes(10))) flush(fd);
  };

  // One blocking round trip to the worker.
  const call = (op, args, payload) => {
    flushAll();
    Atomics.store(ctrl, 0, 0);
    worker.postMessage({ op, args, payload });
    while (Atomics.wait(ctrl, 0, 0) === "ok" && Atomics.load(ctrl, 0) === 0) { /* spurious */ }
    const status = ctrl[1], dlen = ctrl[2], jlen = ctrl[3];
    const bytes = data.slice(0, dlen);
    const json = jlen ? JSON.parse(Buffer.from(data.slice(dlen, dlen + jlen)).toString("utf8")) : null;
    return { status, bytes, json };
  };

  const vmModule = import(pathToFileURL(
    path.join(mpvmDir, "node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs")).href);
  const loadVM = async (heapsize, pystack) => (await vmModule).loadMicroPython({
    heapsize, pystack, linebuffer: false, stdout: emit(1), stderr: emit(2),
  });
  let vmLoading = heapGuess > 0 ? loadVM(heapGuess, 2048) : null;
  startWorker();
  const cfg = JSON.parse(await new Promise((resolve, reject) => {
    const chunks = [];
    const s = fs.createReadStream(null, { fd: cfgFd, autoClose: true });
    s.on("data", (c) => chunks.push(c));
    s.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    s.on("error", reject);
  }));
  timing("config read");
  worker.postMessage({ op: "config", args: { portMap: cfg.port_map || {}, lineMax: cfg.line_max || 0,
    connectMap: cfg.connect_map || {} } });
  const pystack = cfg.pystack || 2048;
  if (!vmLoading || cfg.heapsize !== heapGuess || pystack !== 2048) vmLoading = loadVM(cfg.heapsize, pystack);
  let mp = await vmLoading; // replaced by a fresh VM when the device resets (cfg.reboot)
  const heap = () => mp._module.HEAPU8; // re-read: wasm memory may grow

  // Hardware state held on the host so it costs the VM's heap nothing.
  const secrets = new Map(Object.entries(cfg.secrets || {}).map(([k, v]) => [k, Buffer.from(v, "base64")]));
  delete cfg.secrets;
  const nvs = new Map(); // "ns\0key" -> Buffer, values the device sets at run time
  const regs = new Map(Object.entries(cfg.registers || {}).map(([a, v]) => [Number(a) >>> 0, Number(v) >>> 0]));
  const regWrites = [];
  const regReads = [];
  const netCfg = cfg.network || {};
  let resetRequested = false;
  let exitCode = null;

  const decode = (s) => (s === null || s === undefined ? null : String(s));
  const sim = {
    // --- sockets ---
    getaddrinfo: (host, port) => {
      const r = call("dns", { host: String(host) });
      return r.status ? r.status : r.json.address;
    },
    sock_new: () => call("new", {}).json.id,
    sock_connect: (id, host, port, timeoutMs) => call("connect", { id, host: String(host), port, timeoutMs }).status,
    sock_send: (id, addr, n) => {
      const payload = heap().slice(addr, addr + n);
      const r = call("send", { id }, payload);
      return r.status ? -r.status : n;
    },
    // Copies received bytes straight into the VM's buffer at addr: at most n, and per `mode`
    // (RECV_SOME: whatever has arrived; RECV_FULL: until n bytes or EOF; RECV_LINE: until a
    // newline, n bytes or EOF). Returns the count, or -errno; on an error after a partial read
    // the bytes taken so far are still copied (MicroPython leaves them in the caller's buffer).
    sock_recv_into: (id, addr, n, timeoutMs, mode) => {
      const r = call("recv", { id, n: Math.min(n, DATA_BYTES), timeoutMs, mode: mode || RECV_SOME });
      if (r.bytes.length) heap().set(r.bytes, addr);
      return r.status ? -r.status : r.bytes.length;
    },
    // "id:events,..." -> "revents,..." once any is ready or after timeoutMs (-1 = forever).
    sock_poll: (spec, timeoutMs) => {
      const items = String(spec).split(",").filter(Boolean).map((x) => x.split(":").map(Number));
      return call("poll", { items, timeoutMs }).json.revents.join(",");
    },
    sock_close: (id) => { call("close", { id }); },
    sock_bind: (id, host, port) => call("bind", { id, host: String(host), port }).status,
    sock_listen: (id, backlog) => call("listen", { id, backlog }).status,
    sock_accept: (id, timeoutMs) => {
      const r = call("accept", { id, timeoutMs });
      return r.status ? String(-r.status) : `${r.json.id} ${r.json.host} ${r.json.port}`;
    },
    // "" when the handshake succeeded, "V<text>" for a refused certificate (ValueError, as
    // MicroPython's mbedTLS binding raises it), "E<errno>" otherwise.
    tls_wrap: (id, serverHostname, cadata, verify, timeoutMs) => {
      const r = call("tls", { id, servername: decode(serverHostname), ca: decode(cadata), verify: !!verify,
        timeoutMs: timeoutMs ?? -1 });
      if (!r.status) return "";
      return r.json && r.json.verify ? `V${r.json.verify}` : `E${r.status}`;
    },
    // CA certificates as the device passes them to load_verify_locations (hex of DER, one or more
    // concatenated, or of PEM text) -> PEM text for node, or "" when they do not parse
    // (MicroPython raises ValueError("invalid cert")).
    tls_ca: (hex) => pemOf(Buffer.from(String(hex), "hex")),
    tls_cipher: (id) => {
      const r = call("cipher", { id });
      return r.json ? `${r.json.name}|${r.json.version}` : "";
    },
    // --- UART ---
    readline: (timeoutMs) => {
      const r = call("readline", { timeoutMs: timeoutMs ?? -1 });
      if (r.status === ERRNO.ETIMEDOUT) return -1;
      return r.json.eof ? null : r.json.line;
    },
    out: (text) => {
      const t = String(text);
      if (t.startsWith("ready:")) timing("ready line");
      emit(1)(Buffer.from(t, "utf8"));
    },
    flush: () => flush(1),
    // --- NVS ---
    nvs_get: (ns, key) => {
      const k = `${ns}\0${key}`;
      const v = nvs.has(k) ? nvs.get(k) : (ns === (cfg.nvs_namespace || "clawgen") ? secrets.get(String(key)) : undefined);
      return v === undefined ? null : v.toString("hex");
    },
    nvs_set: (ns, key, hex) => { nvs.set(`${ns}\0${key}`, Buffer.from(String(hex), "hex")); },
    nvs_erase: (ns, key) => nvs.delete(`${ns}\0${key}`) ? 0 : -1,
    // --- registers ---
    reg_read: (addr) => {
      const a = Number(addr) >>> 0;
      regReads.push(a);
      return regs.has(a) ? regs.get(a) : (cfg.register_default ?? 0);
    },
    reg_write: (addr, value) => {
      const a = Number(addr) >>> 0, v = Number(value) >>> 0;
      regs.set(a, v);
      regWrites.push([a, v]);
    },
    // --- network / machine ---
    wlan_connect: (ssid) => {
      const mode = netCfg.connect || "ok";
      events({ event: "wlan_connect", ssid_given: !!ssid, result: mode });
      return mode;
    },
    reset: () => { resetRequested = true; },
    exit: (code) => { exitCode = code; },
    now_ms: () => Date.now(),
    // os.urandom for the WebAssembly VM, whose os has none (ESP32's reads the hardware RNG): hex.
    urandom: (n) => crypto().randomBytes(Math.max(0, Number(n) | 0)).toString("hex"),
  };
  mp.registerJsModule("_simhost", sim);
  timing("VM loaded");

  // Files: compiled modules, shims and any extra files, as the device's flash would hold them.
  const mkdirs = (p) => {
    let cur = "";
    for (const part of p.split("/").filter(Boolean)) {
      cur += "/" + part;
      try { mp.FS.mkdir(cur); } catch { /* exists */ }
    }
  };
  const writeFile = (vmPath, bytes) => {
    mkdirs(path.posix.dirname(vmPath));
    mp.FS.writeFile(vmPath, bytes);
  };
  for (const [vmPath, hostPath] of Object.entries(cfg.files || {})) writeFile(vmPath, fs.readFileSync(hostPath));
  for (const [vmPath, b64] of Object.entries(cfg.inline_files || {})) writeFile(vmPath, Buffer.from(b64, "base64"));
  // Every file of the VM's filesystem below dir (path -> bytes), minus the VM's own directories
  // and the paths in skip.
  const SYSTEM_DIRS = ["/dev", "/proc", "/tmp", "/home"];
  const readTree = (dir, skip, out) => {
    for (const name of mp.FS.readdir(dir)) {
      if (name === "." || name === "..") continue;
      const p = dir === "/" ? `/${name}` : `${dir}/${name}`;
      if (SYSTEM_DIRS.includes(p) || skip.includes(p)) continue;
      const st = mp.FS.stat(p);
      if (mp.FS.isDir(st.mode)) readTree(p, skip, out); else out[p] = Buffer.from(mp.FS.readFile(p));
    }
    return out;
  };

  // Each piece of Python runs as its own top-level runPython call. This matters for memory:
  // this VM build (split heap) only collects garbage when control is back at the top level
  // (gc.collect() inside a running program merely schedules it), so heap figures are taken
  // between calls, and `steps` let a test run turns one by one with a real GC in between.
  const runCode = (code) => {
    exitCode = null;
    try {
      mp.runPython(`
import sys, _simhost
try:
    exec(${JSON.stringify(code)}, _simhost_ns)
    _simhost.exit(0)
except SystemExit as e:
    _simhost.exit(e.args[0] if e.args and isinstance(e.args[0], int) else (0 if not e.args or e.args[0] is None else 1))
except BaseException as e:
    sys.print_exception(e, sys.stderr)
    _simhost.exit(1)
`);
    } catch (e) {
      const error = String(e && e.message || e);
      fs.writeSync(2, `clawsim: VM error: ${error}\n`);
      return { code: 70, reason: "vm_error", error };
    }
    if (resetRequested) return { code: 3, reason: "reset", error: null };
    return { code: exitCode ?? 0, reason: "exit", error: null };
  };
  const heapNow = () => {
    try {
      mp.runPython("import gc\ngc.collect()"); // schedules the collection, done on return
      capture = [];
      mp.runPython("import gc, micropython\nmicropython.mem_info()\nprint('ALLOC', gc.mem_alloc())");
      const text = Buffer.from(capture).toString("utf8");
      const m = /GC: total: (\d+), used: (\d+), free: (\d+)/.exec(text);
      const a = /ALLOC (\d+)/.exec(text);
      const out = m ? { gc_total: +m[1], gc_used: +m[2], gc_free: +m[3] } : {};
      if (a) out.mem_alloc = +a[1];
      return out;
    } catch {
      return {}; // heap figures are best effort
    } finally {
      capture = null;
    }
  };

  mp.runPython("_simhost_ns = {'__name__': '__main__'}");
  const heapStart = cfg.heap_stats === false ? {} : heapNow();
  timing("files written, entry starts");
  let outcome = runCode(cfg.entry);
  const stepResults = [];
  for (const step of cfg.steps || []) {
    if (outcome.code !== 0) break;
    outcome = runCode(step);
    stepResults.push({ returncode: outcome.code, reason: outcome.reason, heap: heapNow() });
  }
  // cfg.reboot: machine.reset() restarts the device as a board does: the flash (this filesystem,
  // /lib included) and NVS stay, everything else starts over: a fresh VM and heap, every socket
  // and server closed, the register file back at its reset values; then cfg.reboot.entry runs
  // (main.py). The simulator's hardware layer (cfg.reboot.keep: the shims) is put back, as a
  // board's hardware is not part of what an OTA update replaces.
  const reboot = cfg.reboot || null;
  for (let boots = 1; reboot && outcome.reason === "reset"; boots++) {
    if (boots > (reboot.max || 50)) {
      fs.writeSync(2, `clawsim: the device reset ${boots - 1} times; stopping\n`);
      break;
    }
    const flash = readTree("/", [], {});
    for (const p of reboot.keep || []) if (cfg.files[p]) flash[p] = fs.readFileSync(cfg.files[p]);
    flushAll();
    call("reset", {});
    events({ event: "reset", boot: boots + 1 });
    mp = await loadVM(cfg.heapsize, pystack);
    mp.registerJsModule("_simhost", sim);
    resetRequested = false;
    regs.clear();
    for (const [a, v] of Object.entries(cfg.registers || {})) regs.set(Number(a) >>> 0, Number(v) >>> 0);
    for (const [p, bytes] of Object.entries(flash)) writeFile(p, bytes);
    mp.runPython("_simhost_ns = {'__name__': '__main__'}");
    outcome = runCode(reboot.entry || cfg.entry);
  }
  const { reason, error } = outcome;
  const heapStats = { ...heapNow(), heap_at_start: heapStart.mem_alloc ?? null, gc_total_at_start: heapStart.gc_total ?? null };

  flushAll();
  const files = {};
  try {
    for (const [p, b] of Object.entries(readTree("/", ["/lib"], {}))) files[p] = b.toString("base64");
  } catch { /* best effort */ }

  const code = outcome.code;
  events({
    event: "result", returncode: code, reason, error,
    heap: heapStats, steps: stepResults,
    register_writes: regWrites, register_reads: regReads.length,
    registers: Object.fromEntries([...regs.entries()].map(([a, v]) => [String(a), v])),
    files,
  });
  process.exit(code);
}

// ---------------------------------------------------------------------------------------
// Worker thread: the asynchronous side (node net/tls, stdin).

function workerThread() {
  const { sab, eventFd } = workerData;
  const cfg = { portMap: {}, lineMax: 0, connectMap: {}, eventFd }; // the rest comes with the "config" message
  const ctrl = new Int32Array(sab, 0, CTRL_WORDS);
  const data = new Uint8Array(sab, CTRL_WORDS * 4);

  const reply = (status, bytes, json) => {
    if (process.env.CLAWSIM_TRACE) fs.writeSync(2, `clawsim-trace:   -> ${status} ${bytes ? bytes.length : 0}B ${json ? JSON.stringify(json) : ""}\n`);
    if (Atomics.load(ctrl, 0) === 1) fs.writeSync(2, "clawsim: internal error: a second reply to one request\n");
    let dlen = 0, jlen = 0;
    if (bytes && bytes.length) { data.set(bytes, 0); dlen = bytes.length; }
    if (json !== undefined && json !== null) {
      const j = Buffer.from(JSON.stringify(json), "utf8");
      data.set(j, dlen); jlen = j.length;
    }
    ctrl[1] = status; ctrl[2] = dlen; ctrl[3] = jlen;
    Atomics.store(ctrl, 0, 1);
    Atomics.notify(ctrl, 0);
  };
  const errnoOf = (e) => {
    if (!e) return ERRNO.EIO;
    if (e.code && e.code in ERRNO_BY_CODE) return ERRNO_BY_CODE[e.code];
    return ERRNO.EIO;
  };

  {
    const trace = process.env.CLAWSIM_TRACE ? (msg) => fs.writeSync(2, `clawsim-trace: ${performance.now().toFixed(1)} ${msg}\n`) : null;
    const socks = new Map();
    let nextId = 1;

    // A stream endpoint: buffers incoming data so nothing is lost while the VM computes.
    const attach = (s, entry) => {
      entry.stream = s;
      s.on("data", (chunk) => { entry.chunks.push(chunk); entry.buffered += chunk.length; wake(entry); });
      s.on("end", () => { entry.ended = true; wake(entry); });
      s.on("error", (e) => { entry.error = e; wake(entry); });
      s.on("close", () => { entry.closed = true; wake(entry); });
    };
    const newEntry = () => ({ stream: null, server: null, chunks: [], buffered: 0, ended: false, closed: false,
      error: null, waiters: new Set(), pending: [], host: "0.0.0.0", port: 0, tls: false });
    const wake = (entry) => { for (const w of [...entry.waiters]) w(); };
    // Calls done(true) once ready() holds, done(false) after timeoutMs (-1 = forever) without it.
    // inactivity: the timeout restarts whenever one of the entries gets data, as MicroPython's
    // (per read call) socket timeout does: a slow but steady peer never times out a long read.
    const waitFor = (entries, ready, timeoutMs, done, inactivity = false) => {
      if (ready()) { done(true); return; }
      if (timeoutMs === 0) { done(false); return; }
      let timer = null;
      const finish = (ok) => {
        for (const e of entries) e.waiters.delete(check);
        if (timer) clearTimeout(timer);
        done(ok);
      };
      const arm = () => { if (timeoutMs > 0) { if (timer) clearTimeout(timer); timer = setTimeout(() => finish(false), timeoutMs); } };
      const sizes = () => entries.reduce((n, e) => n + e.buffered, 0);
      let seen = sizes();
      const check = () => {
        if (ready()) { finish(true); return; }
        const now = sizes();
        if (inactivity && now !== seen) { seen = now; arm(); }
      };
      for (const e of entries) e.waiters.add(check);
      arm();
    };
    const take = (entry, n) => {
      const out = [];
      let got = 0;
      while (got < n && entry.chunks.length) {
        const c = entry.chunks[0];
        const k = Math.min(c.length, n - got);
        out.push(c.subarray(0, k));
        got += k;
        if (k === c.length) entry.chunks.shift(); else entry.chunks[0] = c.subarray(k);
      }
      entry.buffered -= got;
      return Buffer.concat(out);
    };

    // stdin, line by line. A line longer than the device's line buffer (cfg.lineMax bytes,
    // limits.content_bytes) is cut as the device cuts one: the first lineMax - 48 bytes on a UTF-8
    // boundary plus " ...[truncated: kept K of N bytes]"; the rest is never held, so a pasted
    // megabyte costs neither the VM's heap nor the host's memory.
    const lineMax = () => (cfg.lineMax > 0 ? cfg.lineMax : DEFAULT_LINE_MAX);
    const stdin = { lines: [], cur: [], curLen: 0, total: 0, eof: false, waiters: new Set(), buffered: 0 };
    const stdinStream = fs.createReadStream(null, { fd: 0, autoClose: false });
    stdinStream.pause();
    let stdinStarted = false;
    const utf8Cut = (buf, n) => { // largest k <= n that does not split a UTF-8 sequence
      if (n >= buf.length) return buf.length;
      while (n > 0 && (buf[n] & 0xC0) === 0x80) n--;
      return n;
    };
    const endLine = () => {
      const line = Buffer.concat(stdin.cur, stdin.curLen);
      let text;
      if (stdin.total > lineMax()) {
        const keep = utf8Cut(line, Math.max(0, lineMax() - 48));
        text = `${line.subarray(0, keep).toString("utf8")} ...[truncated: kept ${keep} of ${stdin.total} bytes]`;
      } else {
        text = line.toString("utf8");
      }
      stdin.lines.push(text);
      stdin.cur = []; stdin.curLen = 0; stdin.total = 0;
    };
    const addPart = (part) => {
      stdin.total += part.length;
      const room = lineMax() - stdin.curLen;
      if (room > 0) { const k = Math.min(room, part.length); stdin.cur.push(part.subarray(0, k)); stdin.curLen += k; }
    };
    stdinStream.on("data", (chunk) => {
      let start = 0, i;
      while ((i = chunk.indexOf(10, start)) >= 0) {
        addPart(chunk.subarray(start, i > start && chunk[i - 1] === 13 ? i - 1 : i)); // CRLF too
        endLine();
        start = i + 1;
      }
      if (start < chunk.length) addPart(chunk.subarray(start));
      wake(stdin);
    });
    const stdinEnd = () => {
      if (stdin.total) endLine();
      stdin.eof = true; wake(stdin);
    };
    stdinStream.on("end", stdinEnd);
    stdinStream.on("error", stdinEnd);

    const ops = {
      dns({ host }) {
        if (net().isIP(host)) return reply(0, null, { address: host });
        dns().lookup(host, { family: 4 }, (err, address) => {
          if (err) reply(DNS_FAIL); else reply(0, null, { address });
        });
      },
      new() {
        const id = nextId++;
        socks.set(id, newEntry());
        reply(0, null, { id });
      },
      connect({ id, host, port, timeoutMs }) {
        const entry = socks.get(id);
        if (!entry) return reply(ERRNO.EBADF);
        // A device address the run redirects (the mock model's fixed URL -> where it listens).
        const to = cfg.connectMap[`${host}:${port}`];
        // Half-open like lwIP: after the peer's FIN the device may still write (and sees EOF on read).
        const s = net().connect({ host: to ? to[0] : host, port: to ? to[1] : port, allowHalfOpen: true });
        let settled = false;
        const settle = (st) => { if (!settled) { settled = true; if (timer) clearTimeout(timer); reply(st); } };
        const timer = timeoutMs > 0 ? setTimeout(() => { s.destroy(); settle(ERRNO.ETIMEDOUT); }, timeoutMs) : null;
        s.once("connect", () => { attach(s, entry); settle(0); });
        s.once("error", (e) => settle(errnoOf(e)));
      },
      send({ id }, payload) {
        const entry = socks.get(id);
        if (!entry || !entry.stream) return reply(ERRNO.ENOTCONN);
        if (entry.error) return reply(errnoOf(entry.error));
        if (entry.closed || entry.stream.destroyed) {
          return reply(ERRNO.ECONNRESET);
        }
        entry.stream.write(Buffer.from(payload));
        reply(0);
      },
      recv({ id, n, timeoutMs, mode }) {
        const entry = socks.get(id);
        if (!entry || !entry.stream) return reply(ERRNO.ENOTCONN);
        // How many buffered bytes this read may take now, or -1 if it must wait for more.
        const avail = () => {
          if (mode === RECV_LINE) {
            let seen = 0;
            for (const c of entry.chunks) {
              const i = c.indexOf(10);
              if (i >= 0 && seen + i + 1 <= n) return seen + i + 1;
              seen += c.length;
              if (seen >= n) return n;
            }
          } else if (mode === RECV_FULL) {
            if (entry.buffered >= n) return n;
          } else if (entry.buffered > 0) {
            return Math.min(n, entry.buffered);
          }
          return (entry.ended || entry.error || entry.closed) ? Math.min(n, entry.buffered) : -1;
        };
        const finish = () => {
          const k = avail();
          const failed = entry.error && !entry.ended; // a reset, not an orderly end of stream
          if (k >= 0) {
            const data = take(entry, k);
            const whole = mode === RECV_SOME || k === n || (mode === RECV_LINE && k > 0 && data[k - 1] === 10);
            // A read cut short by a reset fails with it, its bytes lost (like MicroPython's stream loop).
            if (failed && (k === 0 || !whole)) return reply(errnoOf(entry.error));
            return reply(0, data);
          }
          // Nothing complete in time: a non-blocking read takes what is there (EAGAIN if nothing,
          // for the shim to turn into None/OSError); a blocking one times out, and the bytes it
          // had read are consumed (MicroPython's stream read loses them the same way).
          const part = take(entry, Math.min(n, entry.buffered));
          if (timeoutMs === 0) return part.length ? reply(0, part) : reply(ERRNO.EAGAIN);
          return reply(ERRNO.ETIMEDOUT, part);
        };
        waitFor([entry], () => avail() >= 0, timeoutMs, finish, true);
      },
      poll({ items, timeoutMs }) {
        const entries = [];
        const revents = () => items.map(([id, ev]) => {
          const e = socks.get(id);
          if (!e) return POLLNVAL;
          let r = 0;
          if (e.server) {
            if (e.pending.length) r |= POLLIN;
          } else if (e.stream) {
            if (e.buffered > 0 || e.ended || e.closed || e.error) r |= POLLIN;
            if (!e.stream.destroyed && !e.closed) r |= POLLOUT;
            if (e.error) r |= POLLERR | POLLHUP;
          } else {
            r |= POLLOUT | POLLHUP; // a new, unconnected socket (as ESP32's modsocket reports it)
          }
          return r & (ev | POLLERR | POLLHUP | POLLNVAL);
        });
        for (const [id] of items) { const e = socks.get(id); if (e) entries.push(e); }
        const ready = () => revents().some((r) => r !== 0);
        waitFor(entries, ready, timeoutMs, () => reply(0, null, { revents: revents() }));
      },
      cipher({ id }) {
        const entry = socks.get(id);
        if (!entry || !entry.tls || !entry.stream) return reply(ERRNO.ENOTCONN);
        const c = entry.stream.getCipher();
        reply(0, null, { name: c.standardName || c.name, version: c.version });
      },
      close({ id }) {
        const entry = socks.get(id);
        if (entry) {
          if (entry.stream) entry.stream.destroy();
          if (entry.server) entry.server.close();
          socks.delete(id);
        }
        reply(0);
      },
      bind({ id, host, port }) {
        const entry = socks.get(id);
        if (!entry) return reply(ERRNO.EBADF);
        entry.host = host || "0.0.0.0";
        entry.port = port;
        reply(0);
      },
      listen({ id }) {
        const entry = socks.get(id);
        if (!entry) return reply(ERRNO.EBADF);
        const server = net().createServer({ allowHalfOpen: true }, (s) => { entry.pending.push(s); wake(entry); });
        entry.server = server;
        // Device ports may be remapped (0 = any free port) so parallel tests don't collide.
        const key = String(entry.port);
        const hostPort = key in cfg.portMap ? cfg.portMap[key] : entry.port;
        const host = entry.host === "0.0.0.0" ? "127.0.0.1" : entry.host;
        server.once("error", (e) => reply(errnoOf(e)));
        server.listen(hostPort, host, () => {
          const actual = server.address().port;
          cfg.portMap[key] = actual; // a reset device listens again on the same host port
          try { fs.writeSync(cfg.eventFd, JSON.stringify({ event: "listening", device_port: entry.port, host, port: actual }) + "\n"); } catch { /* */ }
          reply(0);
        });
      },
      // The device reset (cfg.reboot): every socket and server of the old VM goes, as on a board.
      reset() {
        const servers = [];
        for (const e of socks.values()) {
          if (e.stream) e.stream.destroy();
          for (const s of e.pending) s.destroy();
          if (e.server) servers.push(e.server);
        }
        socks.clear();
        let left = servers.length;
        if (!left) return reply(0);
        for (const srv of servers) srv.close(() => { if (--left === 0) reply(0); });
      },
      accept({ id, timeoutMs }) {
        const entry = socks.get(id);
        if (!entry || !entry.server) return reply(ERRNO.EINVAL);
        waitFor([entry], () => entry.pending.length > 0, timeoutMs, (ok) => {
          if (!entry.pending.length) return reply(timeoutMs === 0 ? ERRNO.EAGAIN : ERRNO.ETIMEDOUT);
          const s = entry.pending.shift();
          const cid = nextId++;
          const centry = newEntry();
          socks.set(cid, centry);
          attach(s, centry);
          reply(0, null, { id: cid, host: s.remoteAddress || "", port: s.remotePort || 0 });
        });
      },
      tls({ id, servername, ca, verify, timeoutMs }) {
        const entry = socks.get(id);
        if (!entry || !entry.stream) return reply(ERRNO.ENOTCONN);
        const raw = entry.stream;
        raw.removeAllListeners("data"); raw.removeAllListeners("end");
        raw.removeAllListeners("error"); raw.removeAllListeners("close");
        // Bytes the server sent before the handshake (none for a TLS server) are not replayed.
        // TLS 1.2 at most, as MicroPython's mbedTLS configuration negotiates.
        const opts = { socket: raw, rejectUnauthorized: verify, maxVersion: "TLSv1.2" };
        if (servername && !net().isIP(servername)) opts.servername = servername;
        if (ca) opts.ca = ca;
        // No CA loaded: node would fall back to its own root store, the device trusts nothing.
        const noCa = verify && !ca;
        if (noCa) opts.rejectUnauthorized = false;
        // Without a name to check the device can't verify the host; neither do we.
        if (!servername) opts.checkServerIdentity = () => undefined;
        const s = tls().connect(opts);
        const fresh = newEntry();
        fresh.tls = true;
        let settled = false;
        const timer = timeoutMs > 0 ? setTimeout(() => {
          if (settled) return; settled = true;
          s.destroy(); reply(ERRNO.ETIMEDOUT);
        }, timeoutMs) : null;
        s.once("secureConnect", () => {
          if (settled) return; settled = true;
          if (timer) clearTimeout(timer);
          if (noCa) { s.destroy(); return reply(TLS_HANDSHAKE_FAILED, null, { verify: `\n${TLS_NOT_TRUSTED}\n` }); }
          attach(s, fresh); socks.set(id, fresh); reply(0);
        });
        s.once("error", (e) => {
          if (settled) return; settled = true;
          if (timer) clearTimeout(timer);
          s.destroy();
          const code = String(e.code || "");
          const text = TLS_VERIFY_TEXT[code] || (code.includes("CERT") || code.includes("SELF_SIGNED")
            || code.includes("UNABLE_TO") ? TLS_NOT_TRUSTED : null);
          if (text) return reply(TLS_HANDSHAKE_FAILED, null, { verify: `\n${text}\n` });
          fs.writeSync(2, `clawsim: TLS handshake with ${servername} failed: ${code} ${e.message}\n`);
          reply(e.code in ERRNO_BY_CODE ? errnoOf(e) : TLS_HANDSHAKE_FAILED);
        });
      },
      readline({ timeoutMs }) {
        if (!stdinStarted) { stdinStarted = true; stdinStream.resume(); }
        waitFor([stdin], () => stdin.lines.length > 0 || stdin.eof, timeoutMs, () => {
          if (stdin.lines.length) return reply(0, null, { line: stdin.lines.shift() });
          if (stdin.eof) return reply(0, null, { eof: true });
          reply(ERRNO.ETIMEDOUT);
        });
      },
    };

    timing("bridge worker ready");
    parentPort.on("message", ({ op, args, payload }) => {
      if (op === "config") { Object.assign(cfg, args); return; } // no reply: the main thread is not waiting
      if (trace) trace(`${op} ${JSON.stringify(args)}`);
      try {
        ops[op](args, payload);
      } catch (e) {
        reply(ERRNO.EIO, null, { error: String(e) });
      }
    });
  }
}
