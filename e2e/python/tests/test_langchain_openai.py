"""LangChain's ChatOpenAI (langchain-openai) pointed at the gateway's /v1, default settings, over
both stacks (LLMGW_BACKEND)."""

from __future__ import annotations


from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage
from langchain_deepseek import ChatDeepSeek
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from langchain_tools import get_weather
from support import (
    API_KEY,
    API_URL,
    BACKEND,
    MODEL,
    REASONING_MODEL,
    WEATHER_TOOL,
    backend_request,
    marker,
    sent_forced_tool,
    sent_tool_calls,
    sent_tool_names,
    sent_tool_results,
)


def chat(**kwargs) -> ChatOpenAI:
    return ChatOpenAI(
        **{"model": MODEL, "base_url": f"{API_URL}/v1", "api_key": API_KEY, "max_tokens": 10, **kwargs}
    )


def test_invoke_and_stream_give_the_same_text():
    prompt = [HumanMessage(f"Name a queue. {marker()}")]
    whole = chat().invoke(prompt)
    assert whole.content.strip()
    assert whole.response_metadata["finish_reason"] == "length"
    assert whole.usage_metadata["output_tokens"] == 10
    streamed = "".join(chunk.content for chunk in chat().stream(prompt))
    assert streamed == whole.content


async def test_ainvoke_and_astream():
    prompt = [HumanMessage(f"Name a queue. {marker()}")]
    whole = await chat().ainvoke(prompt)
    parts = [chunk.content async for chunk in chat().astream(prompt)]
    assert len(parts) > 2
    assert "".join(parts) == whole.content


def test_bind_tools_round_trip_with_a_tool_message():
    model = chat().bind_tools([get_weather])
    m = marker()
    history = [HumanMessage(f"What is the weather in Paris? {m}")]
    first = model.invoke(history)
    assert len(first.tool_calls) == 1
    call = first.tool_calls[0]
    assert call["name"] == "get_weather"
    assert set(call["args"]) == {"city", "unit"}

    result = get_weather.invoke(call)  # a ToolMessage with the call's id
    assert isinstance(result, ToolMessage)
    history += [first, result]
    second = model.invoke(history)
    assert second.content.strip()
    assert not second.tool_calls

    sent = backend_request(m)
    assert sent_tool_calls(sent) == [{"id": call["id"], "name": "get_weather", "input": call["args"]}]
    assert sent_tool_results(sent) == [{"id": call["id"], "content": result.content}]


def test_streamed_tool_call_chunks_are_merged():
    model = chat(streaming=True).bind_tools([{"type": "function", "function": WEATHER_TOOL}])
    merged: AIMessageChunk | None = None
    chunks = 0
    for chunk in model.stream([HumanMessage(f"Weather in Oslo? {marker()}")]):
        chunks += 1
        merged = chunk if merged is None else merged + chunk
    assert chunks > 2
    assert merged.tool_calls[0]["name"] == "get_weather"
    assert merged.tool_calls[0]["args"]["unit"] == "celsius"


def test_reasoning_model_chat_openai_answers_and_drops_the_reasoning():
    # ChatOpenAI reads only OpenAI's own fields: vLLM's reasoning_content is not kept (its docs
    # say so and point to provider packages). The answer itself is unaffected.
    res = chat(model=REASONING_MODEL, max_tokens=20).invoke([HumanMessage(f"Think first. {marker()}")])
    assert res.content.strip()
    assert "reasoning_content" not in res.additional_kwargs


def test_reasoning_through_chat_deepseek_streamed_and_not():
    # The workaround for reasoning with LangChain: langchain-deepseek's ChatDeepSeek (a ChatOpenAI
    # that reads reasoning_content) pointed at the gateway.
    model = ChatDeepSeek(model=REASONING_MODEL, api_base=f"{API_URL}/v1", api_key=API_KEY, max_tokens=20)
    prompt = [HumanMessage(f"Think first. {marker()}")]
    whole = model.invoke(prompt)
    reasoning = whole.additional_kwargs["reasoning_content"]
    assert reasoning.strip() and whole.content.strip()
    merged: AIMessageChunk | None = None
    for chunk in model.stream(prompt):
        merged = chunk if merged is None else merged + chunk
    assert merged.additional_kwargs["reasoning_content"] == reasoning
    assert merged.content == whole.content


class Weather(BaseModel):
    """The weather in a city."""

    city: str = Field(description="the city")
    unit: str = Field(description="celsius or fahrenheit")
    temp: float
    raining: bool


def test_with_structured_output_function_calling():
    m = marker()
    structured = chat(max_tokens=200).with_structured_output(Weather, method="function_calling")
    out = structured.invoke(f"Weather in Paris. {m}")
    assert isinstance(out, Weather)
    sent = backend_request(m)
    assert sent_tool_names(sent) == ["Weather"]
    assert sent_forced_tool(sent) == "Weather"


def test_with_structured_output_json_schema():
    m = marker()
    structured = chat(max_tokens=200).with_structured_output(Weather, method="json_schema", include_raw=True)
    out = structured.invoke(f"Weather in Paris. {m}")
    sent = backend_request(m)
    if BACKEND == "openai":
        fmt = sent["response_format"]
        assert fmt["type"] == "json_schema"
        assert fmt["json_schema"]["name"] == "Weather"
        assert fmt["json_schema"]["strict"] is True
    else:  # one forced tool whose input is the answer (docs/api.md, Backends)
        assert sent_forced_tool(sent) == "Weather"
    assert out["parsing_error"] is None, out["raw"].content
    assert isinstance(out["parsed"], Weather)
