"""How reply text is framed for VAPI (`pete_vapi/chunks.py`, `vapi_text_frames`).

`chunk-plan` (the default) sends the first words at once and then text only up to a place where
VAPI's `voice.chunkPlan` could cut it for the voice, so the caller hears the same thing at the same
moment in a few frames; `every-delta` keeps a frame per model delta.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pete_vapi.chunks import CHUNK_BOUNDARIES, ChunkStream, TextFrames
from tests.support.scripted import ScriptedProvider
from tests.support.vapi_stack import assert_vapi_stream, chat_body, read_frames, vapi_stack

pytestmark = pytest.mark.anyio

# What VAPI's API accepts in chunkPlan.punctuationBoundaries (vapi.md §1.5; "||" is two "|").
VAPI_BOUNDARIES = ["。", "，", ".", "!", "?", ";", ")", "،", "۔", "।", "॥", "|", ",", ":"]


class Wire:
    """An ASGI `send` that keeps each body write, so a test sees what went out and when."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            self.writes.append(message["body"])

    @property
    def text(self) -> str:
        return b"".join(self.writes).decode()

    def contents(self) -> list[str]:
        """The content of each content frame written so far, in order."""
        frames = [f for f in read_frames(self.text) if f != "[DONE]"]
        return [c for f in frames if (c := f["choices"][0]["delta"].get("content"))]


async def stream_of(text_frames: TextFrames = "chunk-plan") -> tuple[Wire, ChunkStream]:
    wire = Wire()
    stream = ChunkStream(wire, model="jamie", text_frames=text_frames)
    await stream.start()
    return wire, stream


def test_every_boundary_vapi_accepts_ends_a_wait() -> None:
    assert set(VAPI_BOUNDARIES) <= CHUNK_BOUNDARIES
    assert {"\n", ">"} <= CHUNK_BOUNDARIES  # a line break, and the end of a <flush /> tag


async def test_the_first_words_go_at_once_and_the_rest_waits_for_a_boundary() -> None:
    wire, stream = await stream_of()
    await stream.content("Sorry")
    assert wire.contents() == ["Sorry"]  # VAPI's first-token timer sees it at once
    await stream.content(" about")
    await stream.content(" the leak")
    assert wire.contents() == ["Sorry"] and stream.unsent == " about the leak"
    await stream.content(". Which")  # the boundary goes out with what came before it
    assert wire.contents() == ["Sorry", " about the leak. Which"] and stream.unsent == ""
    await stream.content(" unit?")
    await stream.content(" I")
    await stream.finish("stop")
    assert wire.contents() == ["Sorry", " about the leak. Which", " unit?", " I"]
    said = assert_vapi_stream(wire.text)
    assert (said.content, said.finish_reason) == ("Sorry about the leak. Which unit? I", "stop")
    assert stream.spoken == said.content


async def test_white_space_alone_does_not_count_as_the_first_words() -> None:
    """A model that opens with a line break still gets its first word out at once."""
    wire, stream = await stream_of()
    await stream.content("\n")
    await stream.content(" ")
    await stream.content("Hello")
    await stream.content(" there")
    assert wire.contents() == ["\n", " ", "Hello"] and stream.unsent == " there"


async def test_waiting_text_goes_out_before_a_tool_call_in_the_same_write() -> None:
    wire, stream = await stream_of()
    await stream.content("Putting you through")
    await stream.content(" now")
    writes_before = len(wire.writes)
    await stream.tool_call("transferCall", {"destination": "+15550100999"})
    assert len(wire.writes) == writes_before + 1
    frames = [f for f in read_frames(wire.text) if f != "[DONE]"]
    assert frames[-2]["choices"][0]["delta"] == {"content": " now"}
    assert frames[-1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "transferCall"


async def test_every_delta_keeps_a_frame_per_delta() -> None:
    wire, stream = await stream_of("every-delta")
    for delta in ["Sorry", " about", " the", " leak"]:
        await stream.content(delta)
    assert wire.contents() == ["Sorry", " about", " the", " leak"] and stream.unsent == ""


pieces = st.sampled_from([*"ab \u00e9\u4e2d", *VAPI_BOUNDARIES, "\n", "<flush />"])
deltas = st.lists(st.lists(pieces, min_size=1, max_size=6).map("".join), max_size=25)


@given(deltas)
async def test_no_text_ever_waits_past_a_boundary_and_nothing_is_lost(parts: list[str]) -> None:
    wire, stream = await stream_of()
    for n, part in enumerate(parts, 1):
        await stream.content(part)
        # Whatever waits holds no boundary: VAPI could not have cut (so spoken) any of it yet.
        assert CHUNK_BOUNDARIES.isdisjoint(stream.unsent)
        assert "".join(wire.contents()) + stream.unsent == "".join(parts[:n])
    await stream.finish("stop")
    said = assert_vapi_stream(wire.text)
    assert said.content == "".join(parts) == stream.spoken
    assert len(wire.contents()) <= len(parts)


async def test_the_setting_reaches_the_route(tmp_path: Path) -> None:
    words = ("Hello", " there", " and", " welcome", ".", " How", " can", " I", " help")
    counts = {}
    for text_frames in ("chunk-plan", "every-delta"):
        provider = ScriptedProvider("p", words=words)
        async with vapi_stack(tmp_path / text_frames, {"p": provider}, vapi_text_frames=text_frames) as stack:
            response = await stack.chat(chat_body(("user", "Hi")))
        said = assert_vapi_stream(response.text)
        assert said.content == "".join(words)
        counts[text_frames] = sum(1 for f in read_frames(response.text)[:-1] if f["choices"][0]["delta"].get("content"))
    assert counts == {"chunk-plan": 3, "every-delta": len(words)}  # "Hello", " there and welcome.", the rest
