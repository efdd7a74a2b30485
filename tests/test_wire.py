"""Streamed bodies split into lines as SSE and NDJSON define them (`pete_mcp.wire`), and SSE events on top."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import anyio
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pete_mcp.core.sse import iter_sse_data
from pete_mcp.wire import iter_lines

# What a model's reply may hold unescaped inside a JSON string, and that `str.splitlines` (so
# httpx's `aiter_lines`) would take for line breaks.
NOT_LINE_BREAKS = "\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e"
# Of those, what JSON encoders leave unescaped (they escape the C0 controls).
UNESCAPED_IN_JSON = "\u2028\u2029\x85"


async def chunked(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def cut(raw: bytes, cuts: list[int]) -> list[bytes]:
    """`raw` in pieces, cut at the given offsets (any of them, empty pieces included)."""
    marks = sorted({0, len(raw), *(c % (len(raw) + 1) for c in cuts)})
    return [raw[a:b] for a, b in itertools.pairwise(marks)] + [b""]


def lines_of(raw: bytes, cuts: list[int]) -> list[bytes]:
    async def read() -> list[bytes]:
        return [line async for line in iter_lines(chunked(cut(raw, cuts)))]

    return anyio.run(read)


line_text = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)) | st.sampled_from(NOT_LINE_BREAKS)
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.tuples(line_text, st.sampled_from(["\n", "\r\n", "\r"])), max_size=8),
    last=line_text,
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_any_split_of_a_stream_reads_as_the_whole_split_at_cr_lf_and_crlf_only(
    lines: list[tuple[str, str]], last: str, cuts: list[int]
) -> None:
    raw = ("".join(text + end for text, end in lines) + last).encode()
    # bytes.splitlines splits at \n, \r\n and \r only: the SSE and NDJSON definition of a line.
    assert lines_of(raw, cuts) == raw.splitlines()


def test_a_reply_holding_unicode_line_separators_stays_one_line() -> None:
    frame = orjson.dumps({"choices": [{"delta": {"content": f"a{UNESCAPED_IN_JSON}b"}}]})  # as llama.cpp sends it
    assert UNESCAPED_IN_JSON.encode() in frame  # unescaped on the wire
    raw = b"data: " + frame + b"\r\n\r\ndata: [DONE]\r\n\r\n"
    for size in (1, 2, 3, 7, len(raw)):
        pieces = [raw[i : i + size] for i in range(0, len(raw), size)]
        assert lines_of(b"".join(pieces), [sum(map(len, pieces[:i])) for i in range(len(pieces))]) == [
            b"data: " + frame,
            b"",
            b"data: [DONE]",
            b"",
        ]


def test_a_cr_at_the_end_of_a_chunk_ends_its_line_without_waiting_for_the_next() -> None:
    seen: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        yield b"data: one\r"
        assert seen == [b"data: one"]  # out before the next chunk was asked for
        yield b"\ndata: two\n"  # the `\n` completes that `\r\n`: no empty line

    async def read() -> None:
        async for line in iter_lines(body()):
            seen.append(line)

    anyio.run(read)
    assert seen == [b"data: one", b"data: two"]


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(st.lists(line_text, min_size=1, max_size=3), min_size=1, max_size=5),
    end=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_sse_events_come_out_whole_however_the_body_is_cut(events: list[list[str]], end: str, cuts: list[int]) -> None:
    # Each event: its data lines, a comment and an `id:` field (both skipped), then a blank line.
    raw = "".join(
        "".join(f"data: {line}{end}" for line in data) + f": keep-alive{end}id: 7{end}{end}" for data in events
    ).encode()

    async def read() -> list[str]:
        return [data async for data in iter_sse_data(chunked(cut(raw, cuts)))]

    assert anyio.run(read) == ["\n".join(data) for data in events]
