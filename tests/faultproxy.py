"""A fault-injecting HTTP proxy on loopback: flaky object storage for the ``s3`` tests.

``FaultProxy`` sits between an S3 client and the SeaweedFS gateway of ``s3server.py`` and
forwards each request, except that it

- answers a fraction of PUTs with ``503 Slow Down`` and an S3 XML error body (throttling),
  without forwarding them;
- resets a fraction of connections (TCP RST) after forwarding the request, so the server has
  acted on it but the client never sees the reply (a dropped connection);
- delays a fraction of replies by ``delay_s`` (a stalled server: longer than the client's
  timeout, it is a timeout);
- during an outage fails every request (503 or reset), for a given time, started by
  :meth:`FaultProxy.outage` or automatically at the first PUT of a given kind of key.

Deterministic: whether a request is faulted is a function of the seed, the request line and
how many times that same request line was seen before (a retry gets a fresh draw), so the
outcome does not depend on the order in which concurrent requests arrive. Bounded: one request
per connection (replies carry ``Connection: close``), request heads and bodies are size-capped,
and the proxy stops by itself after ``lifetime_s``. It listens on 127.0.0.1 only and forwards
to a loopback address only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import socket
import struct
import threading
import time
from typing import Any

_MAX_HEAD = 64 * 1024
_MAX_BODY = 256 * 2**20
_LOOPBACK = ("127.0.0.1", "localhost", "::1")

_SLOW_DOWN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message>"
    "<Resource>{resource}</Resource><RequestId>faultproxy</RequestId></Error>"
)


@dataclasses.dataclass(frozen=True)
class Faults:
    """What the proxy breaks. Fractions are probabilities per request, in ``[0, 1]``."""

    put_503: float = 0.0
    """Fraction of PUTs answered ``503 SlowDown`` (not forwarded)."""
    reset: float = 0.0
    """Fraction of requests forwarded, then answered by a connection reset."""
    delay: float = 0.0
    """Fraction of replies held back ``delay_s`` seconds."""
    delay_s: float = 3.0
    outage_at: str | None = None
    """Start an outage of ``outage_s`` at the first PUT whose path contains this (e.g.
    ``"/c/"``: the first chunk or shard), once (``None``: never)."""
    outage_s: float = 0.0
    outage_reply: str = "503"
    """How an outage fails each request: ``"503"`` or ``"reset"``."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("put_503", "reset", "delay"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a fraction in [0, 1], got {value}")
        if self.outage_reply not in ("503", "reset"):
            raise ValueError(f"outage_reply must be '503' or 'reset', got {self.outage_reply!r}")


class FaultProxy:
    """``http://127.0.0.1:<port>`` forwarding to ``target_host:target_port``, with faults.

    Use as a context manager, or call :meth:`stop`. ``stats`` counts requests and the faults
    injected (``requests``, ``puts``, ``503``, ``reset``, ``delay``, ``outage``).
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        faults: Faults,
        *,
        lifetime_s: float = 300.0,
    ) -> None:
        if target_host not in _LOOPBACK:
            raise ValueError(f"the fault proxy forwards to loopback only, not {target_host!r}")
        self.target = (target_host, target_port)
        self.faults = faults
        self.port = 0
        self.stats: collections.Counter[str] = collections.Counter()
        self._seen: collections.Counter[bytes] = collections.Counter()
        self._outage_until = 0.0
        # Cleared once the outage has started: it starts at most once.
        self._outage_at = faults.outage_at.encode() if faults.outage_at is not None else None
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: Any = None
        self._thread = threading.Thread(target=self._run, args=(lifetime_s,), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def outage(self, seconds: float) -> None:
        """Fail every request from now on for ``seconds``."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds

    def in_outage(self) -> bool:
        with self._lock:
            return time.monotonic() < self._outage_until

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._close)
        self._thread.join(10)

    # ------------------------------------------------------------------------- event loop

    def _run(self, lifetime_s: float) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._loop.call_later(lifetime_s, self._close)  # never outlives a forgotten test
        self._ready.set()
        self._loop.run_forever()
        # Stopped: cancel the connections still open and let them finish closing.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def _close(self) -> None:
        self._server.close()
        self._loop.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            if request is not None:
                await self._serve(request, writer)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass  # the client went away, or sent something this proxy does not speak
        except asyncio.CancelledError:
            pass  # the proxy is stopping: end quietly (asyncio logs a cancelled handler)
        finally:
            writer.close()

    async def _serve(self, request: bytes, writer: asyncio.StreamWriter) -> None:
        line = request.split(b"\r\n", 1)[0]
        method = line.split(b" ", 1)[0]
        action = self._decide(line, method)
        self.stats[action] += 1
        if action in ("503", "outage-503"):
            writer.write(_slow_down(line, outage=action != "503"))
            await writer.drain()
            return
        if action == "outage-reset":
            _reset(writer)
            return
        reply = await self._forward(request)
        if action == "reset":
            _reset(writer)
            return
        if action == "delay":
            await asyncio.sleep(self.faults.delay_s)
        writer.write(reply)
        await writer.drain()

    def _decide(self, line: bytes, method: bytes) -> str:
        """The fate of one request: forward, 503, reset, delay or an outage failure."""
        f = self.faults
        with self._lock:
            self.stats["requests"] += 1
            if method == b"PUT":
                self.stats["puts"] += 1
                if self._outage_at is not None and self._outage_at in line:
                    self._outage_at = None
                    self._outage_until = time.monotonic() + f.outage_s
            if time.monotonic() < self._outage_until:
                self.stats["outage"] += 1
                return f"outage-{f.outage_reply}"
            attempt = self._seen[line]
            self._seen[line] += 1
        u_503, u_reset, u_delay = _draws(f.seed, line, attempt)
        if method == b"PUT" and u_503 < f.put_503:
            return "503"
        if u_reset < f.reset:
            return "reset"
        if u_delay < f.delay:
            return "delay"
        return "forward"

    async def _forward(self, request: bytes) -> bytes:
        """Send the request upstream on a fresh connection and read the whole reply."""
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        try:
            up_writer.write(_with_connection_close(request))
            await up_writer.drain()
            reply = await up_reader.read(-1)
        finally:
            up_writer.close()
        return _with_connection_close(reply)


# ----------------------------------------------------------------------------- HTTP bits


def _draws(seed: int, line: bytes, attempt: int) -> tuple[float, float, float]:
    """Three uniform numbers in [0, 1) from the seed, the request line and the attempt."""
    digest = hashlib.blake2b(b"%d|%d|" % (seed, attempt) + line, digest_size=24).digest()
    return tuple(n / 2**64 for n in struct.unpack("<3Q", digest))  # type: ignore[return-value]


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 request, head and body (Content-Length or chunked), as raw bytes."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # connection closed before a request
    except asyncio.LimitOverrunError as exc:
        raise ValueError("request head too long") from exc
    if len(head) > _MAX_HEAD:
        raise ValueError("request head too long")
    headers = _headers(head)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return head + await _read_chunked(reader)
    length = int(headers.get("content-length", "0"))
    if not 0 <= length <= _MAX_BODY:
        raise ValueError(f"request body of {length} bytes")
    return head + await reader.readexactly(length)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        out += size_line
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                out += trailer
            return bytes(out + b"\r\n")
        if len(out) + size > _MAX_BODY:
            raise ValueError("chunked request body too large")
        out += await reader.readexactly(size + 2)


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    return {k.strip().lower(): v.strip() for k, v in pairs}


def _with_connection_close(message: bytes) -> bytes:
    """``message`` with its Connection / Keep-Alive headers replaced by ``Connection: close``.

    The proxy serves one request per connection on each side, so every reply's framing is
    simply "until the connection closes", whatever the upstream's was.
    """
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:
        return message
    lines = [
        line
        for line in head.split(b"\r\n")
        if line.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")
    ]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


def _slow_down(line: bytes, *, outage: bool) -> bytes:
    resource = line.split(b" ")[1].decode("latin-1").split("?", 1)[0]
    code, message = (
        ("ServiceUnavailable", "Service is unavailable.")
        if outage
        else ("SlowDown", "Please reduce your request rate.")
    )
    body = _SLOW_DOWN.format(code=code, message=message, resource=resource).encode()
    head = (
        f"HTTP/1.1 503 {'Service Unavailable' if outage else 'Slow Down'}\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close the client's connection with a TCP RST (SO_LINGER 0), not a clean FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
