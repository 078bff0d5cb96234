"""A TCP proxy that delays every response by a fixed time: object-storage latency on loopback.

SeaweedFS on 127.0.0.1 answers a PUT in a millisecond or two; a real S3 region answers in
tens of milliseconds. ``benchmarks/pyramid.py --target s3 --latency-ms N`` puts this proxy
between the writers and the S3 gateway, so each request waits ``N`` ms longer, as it would
over a network, while the bytes still flow at loopback speed (the delay is applied to the
server's replies without holding back the client's uploads).

It runs on its own thread with its own event loop; ``stop()`` closes it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

_CHUNK = 256 * 1024


class LatencyProxy:
    """``127.0.0.1:<port>`` forwarding to ``target_host:target_port``, replies ``delay_s`` late."""

    def __init__(self, target_host: str, target_port: int, delay_s: float) -> None:
        self.target = (target_host, target_port)
        self.delay_s = delay_s
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: Any = None
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("latency proxy did not start")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer, 0.0),
            self._pipe(up_reader, writer, self.delay_s),
            return_exceptions=True,
        )

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float
    ) -> None:
        """Copy ``src`` to ``dst``; each chunk is written ``delay`` after it arrived."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                dst.write(data)
                await dst.drain()

        sender = asyncio.ensure_future(send())
        try:
            while data := await src.read(_CHUNK):
                queue.put_nowait((time.monotonic() + delay, data))
        finally:
            queue.put_nowait((0.0, b""))
            await sender
            dst.close()

    def stop(self) -> None:
        def close() -> None:
            self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(close)
        self._thread.join(5)
