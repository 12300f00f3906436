"""openai-python, sync and async, through the gateway's /v1 (api → queue → worker → simulator),
over both stacks: the worker driving an OpenAI-compatible backend, and an Anthropic one
(LLMGW_BACKEND), where the gateway translates (docs/api.md, Backends).

Clients run with their default settings: retries and timeouts as the SDK ships them. Only the
error-class tests that would otherwise sit in a retry loop for a minute set max_retries=0, and say
so where they do.
"""

from __future__ import annotations

import json
import urllib.request

import openai
import pytest
from pydantic import BaseModel

from support import (
    API_KEY,
    API_URL,
    BACKEND,
    GHOST_MODEL,
    MODEL,
    REASONING_MODEL,
    TIME_TOOL,
    WEATHER_TOOL,
    backend_request,
    marker,
    new_key,
    sent_forced_tool,
    sent_tool_calls,
    sent_tool_names,
    sent_tool_results,
    sim_stats,
    until,
)

TOOLS = [{"type": "function", "function": WEATHER_TOOL}]
TWO_TOOLS = [{"type": "function", "function": WEATHER_TOOL}, {"type": "function", "function": TIME_TOOL}]


def client(api_key: str = API_KEY, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{API_URL}/v1", api_key=api_key, **kwargs)


def aclient(api_key: str = API_KEY, **kwargs) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{API_URL}/v1", api_key=api_key, **kwargs)


def ask(text: str = "What is the weather in Paris?") -> list[dict]:
    return [{"role": "user", "content": f"{text} ({marker()})"}]


# --- text, streamed and not ---------------------------------------------------------------------


def test_sync_chat_streamed_with_usage_matches_the_whole_answer():
    c = client()
    body = {"model": MODEL, "messages": ask("Name a queue."), "max_tokens": 8, "seed": 3}
    whole = c.chat.completions.create(**body)
    assert whole.object == "chat.completion"
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage.completion_tokens == 8
    assert whole.usage.prompt_tokens > 0

    text, usage, finish = "", None, None
    stream = c.chat.completions.create(**body, stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
            assert chunk.choices == []  # the usage chunk comes alone, last
            continue
        text += chunk.choices[0].delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
    assert text == whole.choices[0].message.content
    assert finish == "length"
    assert usage is not None and usage.completion_tokens == 8
    assert usage.total_tokens == usage.prompt_tokens + 8


async def test_async_chat_streamed_with_usage_matches_the_whole_answer():
    c = aclient()
    body = {"model": MODEL, "messages": ask("Name a queue."), "max_tokens": 8, "seed": 4}
    whole = await c.chat.completions.create(**body)
    text, usage = "", None
    stream = await c.chat.completions.create(**body, stream=True, stream_options={"include_usage": True})
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        elif chunk.choices:
            text += chunk.choices[0].delta.content or ""
    assert text == whole.choices[0].message.content
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens == 8
    await c.close()


# --- tools --------------------------------------------------------------------------------------


def test_sync_two_turn_tool_round_trip_the_result_reaches_the_backend():
    c = client()
    messages = ask()
    first = c.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["unit"] == "celsius"

    m = marker()
    result = json.dumps({"temp_c": 21, "note": m})
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": result},
    ]
    second = c.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, max_tokens=8)
    assert second.choices[0].finish_reason in ("stop", "length")
    assert second.choices[0].message.content

    sent = backend_request(m)
    assert sent_tool_calls(sent) == [
        {"id": call.id, "name": "get_weather", "input": json.loads(call.function.arguments)}
    ]
    assert sent_tool_results(sent) == [{"id": call.id, "content": result}]
    if BACKEND == "openai":  # unchanged
        assert sent["messages"][1]["tool_calls"][0]["function"] == {
            "name": "get_weather",
            "arguments": call.function.arguments,
        }
        assert sent["messages"][2] == {"role": "tool", "tool_call_id": call.id, "content": result}


async def test_async_two_turn_tool_round_trip():
    c = aclient()
    messages = ask()
    first = await c.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    result = f"21 degrees {marker()}"
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": result},
    ]
    second = await c.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, max_tokens=6)
    assert second.choices[0].message.content
    assert sent_tool_results(backend_request(result)) == [{"id": call.id, "content": result}]
    await c.close()


def test_streamed_tool_call_is_assembled_by_the_stream_helper():
    fragments = 0
    with client().chat.completions.stream(model=MODEL, messages=ask(), tools=TOOLS) as stream:
        for event in stream:
            if event.type == "tool_calls.function.arguments.delta":
                fragments += 1
        final = stream.get_final_completion()
    assert fragments >= 2  # the arguments arrived in pieces and the client joined them
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.id.startswith("chatcmpl-tool-" if BACKEND == "openai" else "toolu_")
    args = json.loads(call.function.arguments)
    assert set(args) == {"city", "unit"} and args["unit"] == "celsius"


async def test_async_streamed_tool_call_assembled_from_raw_chunks():
    c = aclient()
    calls: dict[int, dict] = {}
    stream = await c.chat.completions.create(model=MODEL, messages=ask(), tools=TOOLS, stream=True)
    async for chunk in stream:
        deltas = chunk.choices[0].delta.tool_calls if chunk.choices else None
        for tc in deltas or []:
            entry = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            entry["id"] = tc.id or entry["id"]
            if tc.function:
                entry["name"] = tc.function.name or entry["name"]
                entry["arguments"] += tc.function.arguments or ""
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"])["unit"] == "celsius"
    await c.close()


def test_tool_choice_forced_calls_the_named_tool():
    m = marker()
    res = client().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": f"Weather or time? {m}"}],
        tools=TWO_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    calls = res.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_time"]
    assert sent_forced_tool(backend_request(m)) == "get_time"


def test_parallel_tool_calls_streamed_and_not():
    c = client()
    # "required": an Anthropic backend gets tool_choice any, which is where the simulator's
    # Anthropic route calls two tools at once (with auto it calls one, a model's own choice).
    body = {
        "model": MODEL,
        "messages": ask("Weather and time in Oslo?"),
        "tools": TWO_TOOLS,
        "tool_choice": "required",
        "parallel_tool_calls": True,
    }
    whole = c.chat.completions.create(**body)
    assert [t.function.name for t in whole.choices[0].message.tool_calls] == ["get_weather", "get_time"]
    assert len({t.id for t in whole.choices[0].message.tool_calls}) == 2

    with c.chat.completions.stream(**body) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert [t.function.name for t in calls] == ["get_weather", "get_time"]
    assert [json.loads(t.function.arguments) for t in calls] == [
        json.loads(t.function.arguments) for t in whole.choices[0].message.tool_calls
    ]


# --- reasoning, logprobs, images ------------------------------------------------------------------


def test_reasoning_fields_through_model_extra_streamed_and_not():
    c = client()
    body = {"model": REASONING_MODEL, "messages": ask("Think first."), "max_tokens": 20, "seed": 7}
    whole = c.chat.completions.create(**body)
    message = whole.choices[0].message
    # Not in the SDK's types: pydantic keeps unknown fields in model_extra.
    reasoning = message.model_extra["reasoning_content"]
    assert reasoning.strip()
    assert message.model_extra.get("reasoning", reasoning) == reasoning
    assert message.content.strip()

    streamed_reasoning, alias, content, reasoning_after_content = "", "", "", False
    for chunk in c.chat.completions.create(**body, stream=True):
        delta = chunk.choices[0].delta
        extra = delta.model_extra or {}
        if extra.get("reasoning_content"):
            reasoning_after_content = reasoning_after_content or bool(content)
            streamed_reasoning += extra["reasoning_content"]
            alias += extra.get("reasoning", "")
        content += delta.content or ""
    assert streamed_reasoning == reasoning
    assert alias == reasoning
    assert content == message.content
    assert not reasoning_after_content


def test_vllm_extra_body_turns_thinking_off():
    # vLLM's own parameters go in extra_body, as its docs show for the openai client.
    m = marker()
    res = client().chat.completions.create(
        model=REASONING_MODEL,
        messages=[{"role": "user", "content": f"Answer at once. {m}"}],
        max_tokens=20,  # room for an answer after the reasoning an Anthropic backend still does
        extra_body={"chat_template_kwargs": {"enable_thinking": False}, "top_k": 20},
    )
    sent = backend_request(m)
    if BACKEND == "openai":
        assert sent["chat_template_kwargs"] == {"enable_thinking": False}
        assert sent["top_k"] == 20
        assert "reasoning_content" not in (res.choices[0].message.model_extra or {})
    else:  # no Anthropic equivalent: dropped (docs/api.md); top_k is Anthropic's too
        assert "chat_template_kwargs" not in sent
        assert sent["top_k"] == 20
    assert res.choices[0].message.content


def test_logprobs_streamed_and_not_line_up_with_the_text():
    c = client()
    body = {"model": MODEL, "messages": ask(), "max_tokens": 6, "logprobs": True, "top_logprobs": 2}
    whole = c.chat.completions.create(**body)
    if BACKEND == "anthropic":
        # Anthropic has no logprobs: the gateway drops the parameter (docs/api.md) and answers null.
        assert whole.choices[0].logprobs is None
        assert whole.choices[0].message.content
        return
    entries = whole.choices[0].logprobs.content
    assert "".join(e.token for e in entries) == whole.choices[0].message.content
    assert all(len(e.top_logprobs) == 2 and e.logprob <= 0 for e in entries)

    text, tokens = "", []
    for chunk in c.chat.completions.create(**body, stream=True):
        text += chunk.choices[0].delta.content or ""
        if chunk.choices[0].logprobs and chunk.choices[0].logprobs.content:
            tokens += [e.token for e in chunk.choices[0].logprobs.content]
    assert "".join(tokens) == text


def test_image_parts_reach_the_backend_unchanged():
    m = marker()
    content = [
        {"type": "text", "text": f"Describe both. {m}"},
        {"type": "image_url", "image_url": {"url": "https://images.invalid/cat.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    res = client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}], max_tokens=4
    )
    assert res.choices[0].message.content
    assert res.usage.prompt_tokens > 2 * 256  # the simulator counts 256 per image
    sent = backend_request(m)["messages"]
    if BACKEND == "openai":
        assert sent == [{"role": "user", "content": content}]
    else:  # as Anthropic image blocks, URL and base64 kept
        assert sent == [
            {
                "role": "user",
                "content": [
                    content[0],
                    {"type": "image", "source": {"type": "url", "url": "https://images.invalid/cat.png"}},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                ],
            }
        ]


# --- models, legacy completions, raw responses -----------------------------------------------------


def test_models_list_and_retrieve():
    c = client()
    ids = [m.id for m in c.models.list()]
    assert MODEL in ids and REASONING_MODEL in ids
    assert GHOST_MODEL not in ids  # no live worker
    model = c.models.retrieve(MODEL)
    assert model.id == MODEL and model.object == "model"
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("no-such-model")


def test_legacy_completions_streamed_and_not():
    c = client()
    body = {"model": MODEL, "prompt": f"Once upon a time {marker()}", "max_tokens": 5, "seed": 1}
    whole = c.completions.create(**body)
    assert whole.object == "text_completion"
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage.completion_tokens == 5
    text, usage = "", None
    for chunk in c.completions.create(**body, stream=True, stream_options={"include_usage": True}):
        if chunk.choices:
            text += chunk.choices[0].text
        if chunk.usage:
            usage = chunk.usage
    assert text == whole.choices[0].text
    assert usage is not None and usage.completion_tokens == 5


def test_with_raw_response_reads_the_job_id_header():
    c = client()
    raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=ask(), max_tokens=3)
    job = raw.headers.get("x-job-id")
    assert job
    completion = raw.parse()
    assert completion.choices[0].message.content
    # The job outlives the request: GET /v1/jobs/{id} answers with its result.
    req = urllib.request.Request(f"{API_URL}/v1/jobs/{job}", headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(req, timeout=10) as res:  # noqa: S310 (loopback)
        assert json.load(res)["id"] == job

    with c.chat.completions.with_streaming_response.create(
        model=MODEL, messages=ask(), max_tokens=3, stream=True
    ) as streamed:
        assert streamed.headers.get("x-job-id") not in (None, job)
        assert "text/event-stream" in streamed.headers["content-type"]
        assert any(line.startswith("data: ") for line in streamed.iter_lines())


# --- structured output ----------------------------------------------------------------------------


class Weather(BaseModel):
    city: str
    unit: str
    temp_c: float
    raining: bool


def test_parse_with_a_pydantic_model_sends_a_strict_json_schema():
    m = marker()
    res = client().chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": f"Weather in Paris as JSON. {m}"}],
        response_format=Weather,
        max_tokens=200,
    )
    sent = backend_request(m)
    if BACKEND == "openai":
        fmt = sent["response_format"]
        assert fmt["type"] == "json_schema"
        assert fmt["json_schema"]["name"] == "Weather"
        assert fmt["json_schema"]["strict"] is True
        assert fmt["json_schema"]["schema"]["required"] == ["city", "unit", "temp_c", "raining"]
    else:  # one forced tool whose input is the answer (docs/api.md, Backends)
        assert sent_tool_names(sent) == ["Weather"]
        assert sent_forced_tool(sent) == "Weather"
    parsed = res.choices[0].message.parsed
    assert isinstance(parsed, Weather), res.choices[0].message.content


# --- closing a stream early -------------------------------------------------------------------------


def _aborted_after(before: int) -> bool:
    # Not a test-only grace: the job is cancelled when the client goes; 3 s is ample for that.
    return until(lambda: sim_stats()["aborted"] > before, timeout=3.0)


LONG = {"model": MODEL, "max_tokens": 2000, "stream": True}


def test_sync_stream_close_aborts_at_the_backend():
    before = sim_stats()["aborted"]
    stream = client().chat.completions.create(**LONG, messages=ask("Tell me a long story."))
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()
    assert _aborted_after(before), sim_stats()


def test_sync_break_out_of_a_with_block_aborts_at_the_backend():
    before = sim_stats()["aborted"]
    with client().chat.completions.create(**LONG, messages=ask("Tell me a long story.")) as stream:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
    assert _aborted_after(before), sim_stats()


async def test_async_stream_aclose_aborts_at_the_backend():
    c = aclient()
    before = sim_stats()["aborted"]
    stream = await c.chat.completions.create(**LONG, messages=ask("Tell me a long story."))
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    await stream.aclose()
    assert _aborted_after(before), sim_stats()
    await c.close()


# --- error classes ------------------------------------------------------------------------------------


def fail(c: openai.OpenAI, **body) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as info:
        c.chat.completions.create(
            **{"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **body}
        )
    return info.value


def counting_client(api_key: str) -> tuple[openai.OpenAI, list[str]]:
    """A client with the default retries whose HTTP requests are counted (an httpx event hook)."""
    sent: list[str] = []
    http = openai.DefaultHttpxClient(event_hooks={"request": [lambda req: sent.append(str(req.url))]})
    return client(api_key, http_client=http), sent


def test_401_authentication_error():
    c, sent = counting_client("sk-wrong")
    err = fail(c)
    assert isinstance(err, openai.AuthenticationError)
    assert err.status_code == 401
    assert len(sent) == 1  # not retried


def test_404_not_found_error_names_the_model():
    err = fail(client(), model="no-such-model")
    assert isinstance(err, openai.NotFoundError)
    assert err.code == "model_not_found"


def test_400_bad_request_error():
    c, sent = counting_client(API_KEY)
    err = fail(c, n=2)
    assert isinstance(err, openai.BadRequestError)
    assert err.param == "n"
    assert len(sent) == 1


def test_429_rate_limit_is_retryable():
    # max_retries=0: with the default 2 retries the SDK would honour Retry-After (up to a minute
    # for a one-request-a-minute tier) before raising. Its retry decision is checked on the headers.
    c = client(new_key("one_rpm"), max_retries=0)
    c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    err = fail(c)
    assert isinstance(err, openai.RateLimitError)
    assert err.code == "rate_limit_exceeded"
    assert 0 < float(err.response.headers["retry-after"]) <= 60
    assert err.response.headers.get("x-should-retry") != "false"


def test_429_quota_is_final_and_the_sdk_does_not_retry_it():
    c, sent = counting_client(new_key("broke"))  # default max_retries (2)
    err = fail(c)
    assert isinstance(err, openai.RateLimitError)
    assert err.code == "insufficient_quota"
    assert err.type == "insufficient_quota"
    assert err.response.headers.get("x-should-retry") == "false"
    assert len(sent) == 1


def test_503_model_unavailable():
    # max_retries=0: the SDK retries 5xx by default (with backoff); the header says whether to.
    err = fail(client(max_retries=0), model=GHOST_MODEL)
    assert isinstance(err, openai.InternalServerError)
    assert err.status_code == 503
    assert err.code == "model_unavailable"
