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

import dns from "node:dns";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { pathToFileURL, fileURLToPath } from "node:url";
import tls from "node:tls";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

const CTRL_WORDS = 4; // [state, status, dataLen, jsonLen]
const DATA_BYTES = 1 << 20;

// errno values as MicroPython on ESP32 (lwIP) reports them.
const ERRNO = {
  EPERM: 1, ENOENT: 2, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13, EINVAL: 22, EPIPE: 32,
  ECONNABORTED: 113, ECONNRESET: 104, ENOTCONN: 128, ETIMEDOUT: 110, ECONNREFUSED: 111,
  EHOSTUNREACH: 113, ENETUNREACH: 113, EADDRINUSE: 112, EALREADY: 114, EINPROGRESS: 115,
};
const ERRNO_BY_CODE = {
  ECONNRESET: 104, ECONNREFUSED: 111, ETIMEDOUT: 110, EHOSTUNREACH: 113, ENETUNREACH: 113,
  EPIPE: 104, ECONNABORTED: 104, EADDRINUSE: 112, EADDRNOTAVAIL: 125, EACCES: 13, ENOTFOUND: -202,
  EAI_AGAIN: -202, ERR_STREAM_DESTROYED: 104, ERR_SOCKET_CLOSED: 9,
};
const DNS_FAIL = -202; // what ESP32 MicroPython's getaddrinfo raises for an unknown host
const TLS_VERIFY_FAILED = -9984; // MBEDTLS_ERR_X509_CERT_VERIFY_FAILED
const TLS_HANDSHAKE_FAILED = -30592; // MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE

if (isMainThread) {
  await mainThread();
} else {
  workerThread();
}

// ---------------------------------------------------------------------------------------
// Main thread: the VM and the synchronous side of the bridge.

async function mainThread() {
  const mpvmDir = process.argv[2];
  const cfgFd = Number(process.argv[3] ?? 3), eventFd = Number(process.argv[4] ?? 4);
  const cfg = JSON.parse(fs.readFileSync(cfgFd, "utf8"));
  try { fs.closeSync(cfgFd); } catch { /* already closed */ }
  const events = (obj) => { try { fs.writeSync(eventFd, JSON.stringify(obj) + "\n"); } catch { /* parent gone */ } };

  const sab = new SharedArrayBuffer(CTRL_WORDS * 4 + DATA_BYTES);
  const ctrl = new Int32Array(sab, 0, CTRL_WORDS);
  const data = new Uint8Array(sab, CTRL_WORDS * 4);
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { sab, cfg: { portMap: cfg.port_map || {}, eventFd } } });
  worker.unref();
  worker.on("error", (e) => { fs.writeSync(2, `clawsim: bridge worker failed: ${e}\n`); process.exit(70); });

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

  const { loadMicroPython } = await import(pathToFileURL(
    path.join(mpvmDir, "node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs")).href);
  const mp = await loadMicroPython({
    heapsize: cfg.heapsize, pystack: cfg.pystack || 2048, linebuffer: false,
    stdout: emit(1), stderr: emit(2),
  });
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
    // Copies at most n received bytes straight into the VM's buffer at addr.
    sock_recv_into: (id, addr, n, timeoutMs) => {
      const r = call("recv", { id, n: Math.min(n, DATA_BYTES), timeoutMs });
      if (r.status) return -r.status;
      heap().set(r.bytes, addr);
      return r.bytes.length;
    },
    sock_close: (id) => { call("close", { id }); },
    sock_bind: (id, host, port) => call("bind", { id, host: String(host), port }).status,
    sock_listen: (id, backlog) => call("listen", { id, backlog }).status,
    sock_accept: (id, timeoutMs) => {
      const r = call("accept", { id, timeoutMs });
      return r.status ? String(-r.status) : `${r.json.id} ${r.json.host} ${r.json.port}`;
    },
    tls_wrap: (id, serverHostname, cadata, verify) =>
      call("tls", { id, servername: decode(serverHostname), ca: decode(cadata), verify: !!verify }).status,
    // --- UART ---
    readline: (timeoutMs) => {
      const r = call("readline", { timeoutMs: timeoutMs ?? -1 });
      if (r.status === ERRNO.ETIMEDOUT) return -1;
      return r.json.eof ? null : r.json.line;
    },
    out: (text) => { emit(1)(Buffer.from(String(text), "utf8")); },
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
  };
  mp.registerJsModule("_simhost", sim);

  // Files: compiled modules, shims and any extra files, as the device's flash would hold them.
  const FS = mp.FS;
  const mkdirs = (p) => {
    let cur = "";
    for (const part of p.split("/").filter(Boolean)) {
      cur += "/" + part;
      try { FS.mkdir(cur); } catch { /* exists */ }
    }
  };
  for (const [vmPath, hostPath] of Object.entries(cfg.files || {})) {
    mkdirs(path.posix.dirname(vmPath));
    FS.writeFile(vmPath, fs.readFileSync(hostPath));
  }
  for (const [vmPath, b64] of Object.entries(cfg.inline_files || {})) {
    mkdirs(path.posix.dirname(vmPath));
    FS.writeFile(vmPath, Buffer.from(b64, "base64"));
  }

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
  const heapStart = heapNow();
  let outcome = runCode(cfg.entry);
  const stepResults = [];
  for (const step of cfg.steps || []) {
    if (outcome.code !== 0) break;
    outcome = runCode(step);
    stepResults.push({ returncode: outcome.code, reason: outcome.reason, heap: heapNow() });
  }
  const { reason, error } = outcome;
  const heapStats = { ...heapNow(), heap_at_start: heapStart.mem_alloc ?? null, gc_total_at_start: heapStart.gc_total ?? null };

  flushAll();
  const files = {};
  const walk = (dir) => {
    for (const name of FS.readdir(dir)) {
      if (name === "." || name === "..") continue;
      const p = dir === "/" ? `/${name}` : `${dir}/${name}`;
      if (["/dev", "/proc", "/tmp", "/home", "/lib"].includes(p)) continue;
      const st = FS.stat(p);
      if (FS.isDir(st.mode)) walk(p); else files[p] = Buffer.from(FS.readFile(p)).toString("base64");
    }
  };
  try { walk("/"); } catch { /* best effort */ }

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
  const { sab, cfg } = workerData;
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
    const trace = process.env.CLAWSIM_TRACE ? (msg) => fs.writeSync(2, `clawsim-trace: ${msg}\n`) : null;
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
      error: null, waiter: null, pending: [], host: "0.0.0.0", port: 0 });
    const wake = (entry) => { if (entry.waiter) { const w = entry.waiter; entry.waiter = null; w(); } };
    const waitFor = (entry, ready, timeoutMs, done) => {
      // Calls done(true) once ready() holds, done(false) after timeoutMs (-1 = forever).
      if (ready()) { done(true); return; }
      if (timeoutMs === 0) { done(false); return; }
      let timer = null;
      const check = () => {
        if (ready()) { if (timer) clearTimeout(timer); done(true); } else { entry.waiter = check; }
      };
      entry.waiter = check;
      if (timeoutMs > 0) timer = setTimeout(() => { entry.waiter = null; done(false); }, timeoutMs);
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

    // stdin, line by line
    const stdin = { lines: [], partial: "", eof: false, waiter: null };
    const stdinStream = fs.createReadStream(null, { fd: 0, autoClose: false, encoding: "utf8" });
    stdinStream.pause();
    let stdinStarted = false;
    stdinStream.on("data", (s) => {
      stdin.partial += s;
      let i;
      while ((i = stdin.partial.indexOf("\n")) >= 0) {
        stdin.lines.push(stdin.partial.slice(0, i).replace(/\r$/, ""));
        stdin.partial = stdin.partial.slice(i + 1);
      }
      wake(stdin);
    });
    const stdinEnd = () => {
      if (stdin.partial) { stdin.lines.push(stdin.partial); stdin.partial = ""; }
      stdin.eof = true; wake(stdin);
    };
    stdinStream.on("end", stdinEnd);
    stdinStream.on("error", stdinEnd);

    const ops = {
      dns({ host }) {
        if (net.isIP(host)) return reply(0, null, { address: host });
        dns.lookup(host, { family: 4 }, (err, address) => {
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
        // Half-open like lwIP: after the peer's FIN the device may still write (and sees EOF on read).
        const s = net.connect({ host, port, allowHalfOpen: true });
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
      recv({ id, n, timeoutMs }) {
        const entry = socks.get(id);
        if (!entry || !entry.stream) return reply(ERRNO.ENOTCONN);
        waitFor(entry, () => entry.buffered > 0 || entry.ended || entry.error || entry.closed, timeoutMs, (ok) => {
          if (entry.buffered > 0) return reply(0, take(entry, n));
          if (entry.ended) return reply(0, Buffer.alloc(0)); // EOF seen before any later reset
          if (entry.error) return reply(errnoOf(entry.error));
          if (entry.closed) return reply(0, Buffer.alloc(0));
          reply(timeoutMs === 0 ? ERRNO.EAGAIN : ERRNO.ETIMEDOUT);
        });
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
        const server = net.createServer({ allowHalfOpen: true }, (s) => { entry.pending.push(s); wake(entry); });
        entry.server = server;
        // Device ports may be remapped (0 = any free port) so parallel tests don't collide.
        const key = String(entry.port);
        const hostPort = key in cfg.portMap ? cfg.portMap[key] : entry.port;
        const host = entry.host === "0.0.0.0" ? "127.0.0.1" : entry.host;
        server.once("error", (e) => reply(errnoOf(e)));
        server.listen(hostPort, host, () => {
          const actual = server.address().port;
          try { fs.writeSync(cfg.eventFd, JSON.stringify({ event: "listening", device_port: entry.port, host, port: actual }) + "\n"); } catch { /* */ }
          reply(0);
        });
      },
      accept({ id, timeoutMs }) {
        const entry = socks.get(id);
        if (!entry || !entry.server) return reply(ERRNO.EINVAL);
        waitFor(entry, () => entry.pending.length > 0, timeoutMs, (ok) => {
          if (!entry.pending.length) return reply(timeoutMs === 0 ? ERRNO.EAGAIN : ERRNO.ETIMEDOUT);
          const s = entry.pending.shift();
          const cid = nextId++;
          const centry = newEntry();
          socks.set(cid, centry);
          attach(s, centry);
          reply(0, null, { id: cid, host: s.remoteAddress || "", port: s.remotePort || 0 });
        });
      },
      tls({ id, servername, ca, verify }) {
        const entry = socks.get(id);
        if (!entry || !entry.stream) return reply(ERRNO.ENOTCONN);
        const raw = entry.stream;
        raw.removeAllListeners("data"); raw.removeAllListeners("end");
        raw.removeAllListeners("error"); raw.removeAllListeners("close");
        const opts = { socket: raw, rejectUnauthorized: verify };
        if (servername && !net.isIP(servername)) opts.servername = servername;
        if (ca) opts.ca = ca;
        // Without a name to check the device can't verify the host; neither do we.
        if (!servername) opts.checkServerIdentity = () => undefined;
        const s = tls.connect(opts);
        const fresh = newEntry();
        let settled = false;
        s.once("secureConnect", () => {
          if (settled) return; settled = true;
          attach(s, fresh); socks.set(id, fresh); reply(0);
        });
        s.once("error", (e) => {
          if (settled) return; settled = true;
          s.destroy();
          fs.writeSync(2, `clawsim: TLS handshake with ${servername} failed: ${e.code || ""} ${e.message}\n`);
          const verifyErr = e && (String(e.code || "").includes("CERT") || String(e.code || "").includes("SELF_SIGNED")
            || String(e.code || "").includes("UNABLE_TO") || e.code === "ERR_TLS_CERT_ALTNAME_INVALID");
          reply(verifyErr ? TLS_VERIFY_FAILED : TLS_HANDSHAKE_FAILED);
        });
      },
      readline({ timeoutMs }) {
        if (!stdinStarted) { stdinStarted = true; stdinStream.resume(); }
        waitFor(stdin, () => stdin.lines.length > 0 || stdin.eof, timeoutMs, () => {
          if (stdin.lines.length) return reply(0, null, { line: stdin.lines.shift() });
          if (stdin.eof) return reply(0, null, { eof: true });
          reply(ERRNO.ETIMEDOUT);
        });
      },
    };

    parentPort.on("message", ({ op, args, payload }) => {
      if (trace) trace(`${op} ${JSON.stringify(args)}`);
      try {
        ops[op](args, payload);
      } catch (e) {
        reply(ERRNO.EIO, null, { error: String(e) });
      }
    });
  }
}
