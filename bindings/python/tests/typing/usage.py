# pyright: strict
"""Checked with ``mypy --strict`` and strict pyright by tests/test_surface.py: the package's types make the
documented usage resolve, stream overloads included."""

from __future__ import annotations

import gatewise


def sync_usage() -> None:
    gw = gatewise.Gateway({"provider": "openai", "api_key": "k"}, trace_id="t", request_timeout=1000)
    r: gatewise.GatewayObject = gw.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    content: object = r.choices[0].message.content
    stream: gatewise.Stream = gw.chat.completions.create(model="m", messages=[], stream=True)
    for chunk in stream:
        print(chunk.choices[0].delta.content, content)
    speech: gatewise.BinaryResponse = gw.audio.speech.create(model="tts-1", input="hi", voice="alloy")
    print(speech.content, gw.models.list().data, gw.with_options(metadata={"plan": "pro"}).embeddings.create(model="e", input="x"))
    gw.audio.transcriptions.create(file=b"RIFF", model="whisper-1")
    gw.images.create_variation(image=("a.png", b"PNG"))


async def async_usage() -> None:
    gw = gatewise.AsyncGateway(provider="openai", api_key="k")
    r: gatewise.GatewayObject = await gw.chat.completions.create(model="m", messages=[])
    stream: gatewise.AsyncStream = await gw.chat.completions.create(model="m", messages=[], stream=True)
    async for chunk in stream:
        print(chunk, r)
    await stream.aclose()
