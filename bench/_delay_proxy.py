"""A loopback TCP proxy that delays one direction: `pete bench replicas -- --round-trips` puts it
between a gateway and PostgreSQL, so every round trip the gateway waits on costs a known delay."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["delay_proxy", "open_links"]

open_links: set[asyncio.Task[Any]] = set()  # the proxy's connections still forwarding


async def delay_proxy(target_port: int, delay: list[float]) -> tuple[asyncio.AbstractServer, int]:
    """A loopback TCP proxy to `target_port` that delivers each client→server chunk `delay[0]` s late, in order."""
    loop = asyncio.get_running_loop()

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delayed: bool) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                at, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, at - loop.time()))
                writer.write(data)
                await writer.drain()
            writer.close()

        task = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((loop.time() + (delay[0] if delayed else 0.0), data))
        except ConnectionError:
            pass
        queue.put_nowait((0.0, b""))
        await task

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if (task := asyncio.current_task()) is not None:
            open_links.add(task)
            task.add_done_callback(open_links.discard)
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pump(client_r, server_w, True), pump(server_r, client_w, False), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])
