"""Streamed HTTP bodies read line by line, as SSE and NDJSON define a line.

Both formats end a line with `\\n`, `\\r\\n` or `\\r`, and nothing else. httpx's `aiter_lines`
splits on everything `str.splitlines` does, U+2028, U+2029 and U+0085 included, and those may
stand unescaped inside a JSON string (a model's reply can hold them; Go's encoder leaves U+0085
as it is, orjson and llama.cpp leave all three), so one event came out as broken pieces. Reading
bytes also skips httpx's text and line layers, which a reply of many small chunks pays per chunk.

The gateway (`pete_mcp.core.sse`) and the worker (`gpu_handler`) both read streams with it, so
this module sits beside the job contract, below everything else.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

__all__ = ["iter_lines"]

_ENDINGS = (b"\n", b"\r")


async def iter_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Each line of a byte stream, without its ending; a last line with no ending is yielded too.

    A `\\r` that ends a chunk ends its line at once (no wait for the next chunk); a `\\n` that
    then opens the next chunk is the rest of that `\\r\\n`, not an empty line.
    """
    pending = b""  # the start of a line whose end has not arrived
    after_cr = False  # the last chunk ended with `\r`: a `\n` first in this one belongs to it
    async for chunk in chunks:
        if after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        after_cr = chunk[-1:] == b"\r"
        if not chunk:
            continue
        lines = (pending + chunk if pending else chunk).splitlines(keepends=True)  # bytes: \n, \r, \r\n only
        pending = b"" if lines[-1].endswith(_ENDINGS) else lines.pop()
        for line in lines:
            yield line.rstrip(b"\r\n")
    if pending:
        yield pending
