"""LiteLLM's SDK as a client of the gateway: `litellm.completion(model="openai/<model>", api_base=…)`
(its OpenAI-compatible provider), default settings, over both stacks (LLMGW_BACKEND)."""

from __future__ import annotations

import json

import litellm

from support import API_KEY, API_URL, MODEL, WEATHER_TOOL, backend_request, marker, sent_tool_calls, sent_tool_results

GATEWAY = {"api_base": f"{API_URL}/v1", "api_key": API_KEY}


def test_completion_streamed_and_not():
    messages = [{"role": "user", "content": f"Name a queue. {marker()}"}]
    whole = litellm.completion(model=f"openai/{MODEL}", messages=messages, max_tokens=8, seed=5, **GATEWAY)
    assert whole.choices[0].message.content.strip()
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage.completion_tokens == 8

    chunks = list(
        litellm.completion(
            model=f"openai/{MODEL}",
            messages=messages,
            max_tokens=8,
            seed=5,
            stream=True,
            stream_options={"include_usage": True},
            **GATEWAY,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len(chunks) > 2
    rebuilt = litellm.stream_chunk_builder(chunks, messages=messages)
    assert rebuilt.choices[0].message.content == text
    assert rebuilt.usage.completion_tokens == 8


async def test_acompletion_streamed():
    stream = await litellm.acompletion(
        model=f"openai/{MODEL}",
        messages=[{"role": "user", "content": f"Name a queue. {marker()}"}],
        max_tokens=6,
        stream=True,
        **GATEWAY,
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert text.strip()


def test_tools_round_trip_streamed_call():
    m = marker()
    tools = [{"type": "function", "function": WEATHER_TOOL}]
    messages = [{"role": "user", "content": f"What is the weather in Paris? {m}"}]
    chunks = list(
        litellm.completion(model=f"openai/{MODEL}", messages=messages, tools=tools, stream=True, **GATEWAY)
    )
    first = litellm.stream_chunk_builder(chunks, messages=messages)
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["unit"] == "celsius"

    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "21 °C"},
    ]
    second = litellm.completion(model=f"openai/{MODEL}", messages=messages, tools=tools, max_tokens=6, **GATEWAY)
    assert second.choices[0].message.content.strip()
    sent = backend_request(m)
    assert [c["id"] for c in sent_tool_calls(sent)] == [call.id]
    assert sent_tool_results(sent) == [{"id": call.id, "content": "21 °C"}]
