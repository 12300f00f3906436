"""LangChain's ChatAnthropic (langchain-anthropic) pointed at the gateway's /v1/messages, default
settings, over both stacks (LLMGW_BACKEND)."""

from __future__ import annotations

import json

from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage
from pydantic import BaseModel

from langchain_tools import get_weather
from support import API_KEY, API_URL, BACKEND, MODEL, REASONING_MODEL, backend_request, marker


def chat(**kwargs) -> ChatAnthropic:
    return ChatAnthropic(**{"model": MODEL, "base_url": API_URL, "api_key": API_KEY, "max_tokens": 10, **kwargs})


def test_invoke_and_stream_give_the_same_text():
    prompt = [HumanMessage(f"Name a queue. {marker()}")]
    whole = chat().invoke(prompt)
    assert isinstance(whole.content, str) and whole.content.strip()
    assert whole.response_metadata["stop_reason"] == "max_tokens"
    assert whole.usage_metadata["output_tokens"] == 10
    chunks = list(chat().stream(prompt))
    assert len(chunks) > 2
    assert "".join(c.text for c in chunks) == whole.content


def test_bind_tools_round_trip_with_a_tool_message():
    model = chat(max_tokens=200).bind_tools([get_weather])
    m = marker()
    history = [HumanMessage(f"What is the weather in Paris? {m}")]
    first = model.invoke(history)
    assert first.response_metadata["stop_reason"] == "tool_use"
    call = first.tool_calls[0]
    assert call["name"] == "get_weather" and set(call["args"]) == {"city", "unit"}

    result = get_weather.invoke(call)
    assert isinstance(result, ToolMessage)
    second = model.invoke([*history, first, result])
    assert second.text.strip()
    assert not second.tool_calls

    sent = backend_request(m)["messages"]
    if BACKEND == "openai":
        assert sent[-1] == {"role": "tool", "tool_call_id": call["id"], "content": result.content}
    else:
        block = sent[-1]["content"][0]
        assert block["type"] == "tool_result" and block["tool_use_id"] == call["id"]
        content = block["content"]
        assert content == result.content or content == [{"type": "text", "text": result.content}]


def test_streamed_tool_call_chunks_are_merged():
    model = chat(max_tokens=200).bind_tools([get_weather])
    merged: AIMessageChunk | None = None
    for chunk in model.stream([HumanMessage(f"Weather in Oslo? {marker()}")]):
        merged = chunk if merged is None else merged + chunk
    assert merged.tool_calls[0]["name"] == "get_weather"
    assert set(merged.tool_calls[0]["args"]) == {"city", "unit"}


def test_thinking_blocks():
    # A small budget (the gateway asks only that it be positive; the simulator does not read it):
    # max_tokens bounds the answer, and the simulator's answers run to 400 tokens otherwise.
    res = chat(model=REASONING_MODEL, max_tokens=30, thinking={"type": "enabled", "budget_tokens": 16}).invoke(
        [HumanMessage(f"Think first, then answer. {marker()}")]
    )
    kinds = [b["type"] for b in res.content]
    assert kinds == ["thinking", "text"]
    assert res.content[0]["thinking"].strip()


class Weather(BaseModel):
    """The weather in a city."""

    city: str
    unit: str
    temp: float


def test_with_structured_output():
    m = marker()
    out = chat(max_tokens=200).with_structured_output(Weather).invoke(f"Weather in Paris. {m}")
    assert isinstance(out, Weather)
    assert "Weather" in json.dumps(backend_request(m).get("tools"))
