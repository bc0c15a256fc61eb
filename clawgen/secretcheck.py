"""Validate stage, secret values: what the device can use, reported where the value is written.

The schema sees a secret only as "<secret>"; these checks look at the value itself (Wi-Fi
name and password lengths, keys the device can read back from NVS and send in a header) and
report each problem at the secret's own line in secrets.yaml, naming the secret and where the
spec uses it, never the value.
"""

from __future__ import annotations

import functools
import re

from clawgen.diagnostics import Diagnostic, Mark
from clawgen.loader import Document, PathT, Secret, format_path
from clawgen.records import record

# The largest secret the device reads back from NVS: claw_boot.secret() grows its read buffer
# to this many bytes (rendered into templates/app/claw_boot.py.j2 from here).
SECRET_MAX_BYTES = 4096
SSID_MAX_BYTES = 32  # IEEE 802.11
WPA_PASSPHRASE_MIN = 8  # WPA2-PSK passphrase: 8..63 characters, or the raw key as 64 hex digits
WPA_PASSPHRASE_MAX = 63
# The Telnet password: typed (or sent by `clawgen run`) as a connection's first line; the device
# keeps at most TELNET_PASSWORD_MAX + 32 bytes of that line (templates/app/claw_transport.py.j2).
TELNET_PASSWORD_MIN = 8
TELNET_PASSWORD_MAX = 128
OTA_KEY_MIN_BYTES = 16  # the HMAC-SHA256 key of OTA updates (clawgen.ota.KEY_MIN_BYTES)
# NVS layout (ESP-IDF, format version 2): 4096-byte pages of 126 entries of 32 bytes; one page
# stays free for garbage collection. A blob takes an index entry, a data header per chunk and its
# data in 32-byte entries.
NVS_PAGE_BYTES = 4096
NVS_PAGE_ENTRIES = 126
NVS_ENTRY_BYTES = 32
_PSK_HEX = re.compile(r"[0-9A-Fa-f]{64}")
# A Telegram bot token as @BotFather gives it: the bot's numeric id, a colon, then the secret part
# (35 characters of [A-Za-z0-9_-] today; a little leeway for the future).
TELEGRAM_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@record
class _Role:
    what: str  # "the Wi-Fi name", "an API key"
    kind: str  # ssid | password | key


def _role(path: PathT) -> _Role | None:
    if path == ("network", "ssid"):
        return _Role("the Wi-Fi name", "ssid")
    if path == ("network", "password"):
        return _Role("the Wi-Fi password", "password")
    if path in (("model", "api_key"), ("web", "brave_api_key")) or (
            len(path) == 4 and path[:2] == ("model", "fallbacks") and path[3] == "api_key") or \
            path == ("model", "light", "api_key"):
        return _Role("an API key", "key")
    if path == ("ota", "key"):
        return _Role("the OTA key", "ota_key")
    if path == ("mcp_server", "token"):
        return _Role("the MCP bearer token", "mcp_token")
    if path == ("transports", "telnet", "password"):
        return _Role("the Telnet password", "telnet_password")
    if path == ("transports", "telegram", "token"):
        return _Role("the Telegram bot token", "telegram_token")
    return None


def _control_problem(value: str) -> str | None:
    m = _CONTROL.search(value)
    if m is None:
        return None
    ch = m.group()
    name = {"\r": "a carriage return (CR)", "\n": "a line break (LF)", "\x00": "a NUL byte",
            "\t": "a tab"}.get(ch, f"the control character U+{ord(ch):04X}")
    return f"contains {name} at character {m.start() + 1}"


def _mcp_token_problems(value: str, size: int) -> list[str]:
    """The MCP bearer token: sent by clients as "Authorization: Bearer TOKEN" (RFC 6750 b64token)
    and compared by the device within its header line (clawgen.mcpserver)."""
    from clawgen import mcpserver as M

    out: list[str] = []
    if not M.TOKEN_MIN_BYTES <= size <= M.TOKEN_MAX_BYTES:
        out.append(f"is {size} bytes long; an MCP token is {M.TOKEN_MIN_BYTES} to {M.TOKEN_MAX_BYTES} characters "
                   "(e.g. the output of `python -c \"import secrets; print(secrets.token_urlsafe(24))\"`)")
    bad = next((i for i, ch in enumerate(value) if ch not in M.TOKEN_CHARS), None)
    if bad is not None:
        out.append(f"has a character that cannot be in a bearer token at character {bad + 1}; use letters, "
                   "digits and - . _ ~ + / only")
    return out


def value_problems(value: str, kind: str) -> list[str]:
    """What is wrong with a secret value used as ``kind`` (ssid, password, key); [] when fine."""
    size = len(value.encode("utf-8"))
    out: list[str] = []
    if kind == "ssid":
        if size == 0:
            out.append("is empty; a Wi-Fi name is 1 to 32 bytes")
        elif size > SSID_MAX_BYTES:
            out.append(f"is {size} bytes long; a Wi-Fi name is at most {SSID_MAX_BYTES} bytes (UTF-8)")
        if "\x00" in value:
            out.append("contains a NUL byte, which no Wi-Fi name can hold")
        return out
    if kind == "password":
        if size == 0:
            return ["is empty: for an open network leave network.password out of the spec"]
        if not _PSK_HEX.fullmatch(value) and not WPA_PASSPHRASE_MIN <= size <= WPA_PASSPHRASE_MAX:
            out.append(f"is {size} bytes long; a WPA2 password is {WPA_PASSPHRASE_MIN} to "
                       f"{WPA_PASSPHRASE_MAX} characters (or the key itself as 64 hex digits)")
        bad = _control_problem(value)
        if bad:
            out.append(f"{bad}; a Wi-Fi password is printable text")
        return out
    if kind == "telegram_token":
        if size == 0:
            return ["is empty; give the bot token @BotFather sent you"]
        if not TELEGRAM_TOKEN.fullmatch(value):
            bad = _control_problem(value)
            out.append(f"is not a Telegram bot token ({bad}); a token looks like 123456789:AA... (the bot's id, "
                       "a colon, then letters, digits, '_' and '-'), exactly as @BotFather sent it" if bad else
                       f"is not a Telegram bot token ({size} bytes, not of the form 123456789:AA...: the bot's "
                       "id, a colon, then 20 or more letters, digits, '_' and '-'); copy it exactly as "
                       "@BotFather sent it")
        return out
    if kind == "mcp_token":
        return _mcp_token_problems(value, size)
    if kind == "telnet_password":
        if not TELNET_PASSWORD_MIN <= size <= TELNET_PASSWORD_MAX:
            out.append(f"is {size} bytes long; a Telnet password is {TELNET_PASSWORD_MIN} to {TELNET_PASSWORD_MAX} "
                       "characters (e.g. the output of `python -c \"import secrets; print(secrets.token_urlsafe(12))\"`)")
        bad = next((i for i, ch in enumerate(value) if not " " <= ch <= "~"), None)
        if bad is not None:
            out.append(f"has a character that is not printable ASCII at character {bad + 1}; a Telnet password is "
                       "typed on a terminal: use letters, digits, punctuation and spaces")
        elif value != value.strip():
            out.append("starts or ends with a space; remove it (a terminal line would not show it)")
        return out
    if kind == "ota_key":
        if size < OTA_KEY_MIN_BYTES:
            out.append(f"is {size} bytes long; an OTA key is at least {OTA_KEY_MIN_BYTES} bytes (e.g. the "
                       "output of `python -c \"import secrets; print(secrets.token_hex(16))\"`)")
        elif size > SECRET_MAX_BYTES:
            out.append(f"is {size} bytes long; the device reads secrets of at most {SECRET_MAX_BYTES} bytes")
        return out
    if size == 0:
        return ["is empty; give the key, or leave api_key out for a server that needs none"]
    if size > SECRET_MAX_BYTES:
        out.append(f"is {size} bytes long; the device reads secrets of at most {SECRET_MAX_BYTES} bytes "
                   "back from NVS")
    bad = _control_problem(value)
    if bad:
        out.append(f"{bad}; a key is sent in an HTTP header and must be one line of printable text")
    elif value != value.strip():
        out.append("starts or ends with a space; remove it (the key is sent as it is)")
    return out


def nvs_entries_at_least(size: int) -> int:
    """A lower bound of the NVS entries a blob of ``size`` bytes takes (index, data header, data)."""
    return 2 + -(-size // NVS_ENTRY_BYTES)


@functools.cache
def nvs_entries_available() -> int:
    """Entries in the largest nvs partition of any board, less the page kept free."""
    from clawgen.boards import all_boards

    return max((int(b.partitions["nvs"]["size"]) // NVS_PAGE_BYTES - 1) * NVS_PAGE_ENTRIES
               for b in all_boards())


def _stored_values(doc: Document) -> list[tuple[PathT, Secret | str]]:
    """Every value the build writes to NVS, one per use (a fallback without its own api_key
    stores the primary's key again)."""
    out: list[tuple[PathT, Secret | str]] = [(p, s) for p, s in doc.secrets.items()
                                              if _role(p) is not None and not s.placeholder]
    data = doc.data if isinstance(doc.data, dict) else {}
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    primary = doc.secrets.get(("model", "api_key"))
    fallbacks = model.get("fallbacks") if isinstance(model.get("fallbacks"), list) else []
    if primary is not None and not primary.placeholder:
        out += [(("model", "api_key"), primary) for fb in fallbacks if isinstance(fb, dict) and "api_key" not in fb]
        light = model.get("light")
        if isinstance(light, dict) and "api_key" not in light and light.get("base_url", model.get("base_url")) == \
                model.get("base_url"):
            out.append((("model", "api_key"), primary))  # model.light on the primary's server takes its key
    net = data.get("network") if isinstance(data.get("network"), dict) else {}
    if isinstance(net.get("ssid"), str):
        out.append((("network", "ssid"), net["ssid"]))
    return out


def _nvs_total(doc: Document) -> list[Diagnostic]:
    """The secrets together must fit the nvs partition: else an error at the largest one's line
    (rather than "nvs overflows" at the top of the spec when the image is built)."""
    stored = _stored_values(doc)
    sizes = [(len((v.value if isinstance(v, Secret) else v).encode("utf-8")), p, v) for p, v in stored]
    need = 1 + sum(nvs_entries_at_least(n) for n, _p, _v in sizes)  # + the namespace entry
    if need <= NVS_PAGE_ENTRIES or need <= nvs_entries_available():
        return []
    size, path, value = max(sizes, key=lambda t: t[0])
    have = nvs_entries_available() * NVS_ENTRY_BYTES
    what = f"secret '{value.name}' ({format_path(path)})" if isinstance(value, Secret) else format_path(path)
    where = value.mark if isinstance(value, Secret) and value.mark else doc.mark(path)
    return [Diagnostic.at(where, value.name if isinstance(value, Secret) else format_path(path),
                          f"the {len(sizes)} secret values stored in NVS need at least {need * NVS_ENTRY_BYTES} "
                          f"bytes of it (with its entry headers), more than the {have} bytes the nvs partition "
                          f"holds; the largest is {what}, {size} bytes: shorten it")]


def check_secret_values(doc: Document) -> list[Diagnostic]:
    """One diagnostic per problem of each secret value, at the secret's own line in secrets.yaml.

    A plain (non-secret) Wi-Fi name is checked too, at its place in the spec.
    """
    out: list[Diagnostic] = []
    seen: set[tuple[str, str]] = set()
    for path, secret in doc.secrets.items():
        role = _role(path)
        if role is None or secret.placeholder:
            continue  # not allowed there (the schema says so), or the simulator's stand-in
        for problem in value_problems(secret.value, role.kind):
            if (secret.name, problem) in seen:
                continue  # the same secret used twice in the same way
            seen.add((secret.name, problem))
            where: Mark = secret.mark or doc.mark(path)
            out.append(Diagnostic.at(where, secret.name, f"secret '{secret.name}', used as {role.what} "
                                     f"({format_path(path)}), {problem}"))
    net = doc.data.get("network") if isinstance(doc.data, dict) else None
    ssid = net.get("ssid") if isinstance(net, dict) else None
    if isinstance(ssid, str) and not isinstance(ssid, Secret):
        size = len(ssid.encode("utf-8"))
        if size > SSID_MAX_BYTES >= len(ssid):  # the schema counts characters; the radio counts bytes
            out.append(Diagnostic.at(doc.mark(("network", "ssid")), "network.ssid",
                                     f"the Wi-Fi name is {size} bytes long in UTF-8; at most "
                                     f"{SSID_MAX_BYTES} bytes are allowed"))
    if not out:
        out += _nvs_total(doc)
    return out
