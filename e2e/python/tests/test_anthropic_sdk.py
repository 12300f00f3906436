"""anthropic-python against the gateway's /v1/messages (base_url = the api root), run over both
stacks: the worker driving an OpenAI-compatible backend, and an Anthropic one (LLMGW_BACKEND).

Default client settings throughout; the error-class tests that would otherwise wait out a retry
loop set max_retries=0 and say so.
"""

from __future__ import annotations

import json

import anthropic
import pytest

from support import (
    API_KEY,
    API_URL,
    BACKEND,
    GHOST_MODEL,
    MODEL,
    REASONING_MODEL,
    WEATHER_TOOL,
    backend_request,
    marker,
    new_key,
    sent_tool_results,
    sim_stats,
    until,
)

TOOL = {
    "name": WEATHER_TOOL["name"],
    "description": WEATHER_TOOL["description"],
    "input_schema": WEATHER_TOOL["parameters"],
}


def client(api_key: str = API_KEY, **kwargs) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=API_URL, api_key=api_key, **kwargs)


def ask(text: str = "What is the weather in Paris?") -> list[dict]:
    return [{"role": "user", "content": f"{text} ({marker()})"}]


def test_create_streamed_and_not_give_the_same_message():
    c = client()
    body = {"model": MODEL, "max_tokens": 8, "system": "Be brief.", "messages": ask("Name a queue.")}
    whole = c.messages.create(**body)
    assert whole.type == "message" and whole.role == "assistant"
    assert whole.stop_reason == "max_tokens"
    assert whole.usage.output_tokens == 8 and whole.usage.input_tokens > 0
    assert whole.content[0].type == "text" and whole.content[0].text.strip()

    events, text = [], ""
    for event in c.messages.create(**body, stream=True):
        events.append(event.type)
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            text += event.delta.text
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert "message_delta" in events
    assert text == whole.content[0].text


def test_stream_helper_get_final_message():
    c = client()
    body = {"model": MODEL, "max_tokens": 8, "messages": ask("Name a queue.")}
    with c.messages.stream(**body) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.content[0].text == text
    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 8
    whole = c.messages.create(**body)
    assert [(b.type, b.text) for b in whole.content] == [("text", text)]


async def test_async_stream_helper():
    c = anthropic.AsyncAnthropic(base_url=API_URL, api_key=API_KEY)
    async with c.messages.stream(model=MODEL, max_tokens=6, messages=ask()) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text.strip()
    await c.close()


def test_tool_use_then_tool_result_round_trip():
    c = client()
    messages = ask()
    with c.messages.stream(model=MODEL, max_tokens=200, messages=messages, tools=[TOOL]) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather"
    assert set(use.input) == {"city", "unit"} and use.input["unit"] == "celsius"

    m = marker()
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": f"21 °C {m}"}]},
    ]
    second = c.messages.create(model=MODEL, max_tokens=8, tools=[TOOL], messages=messages)
    assert second.stop_reason in ("end_turn", "max_tokens")
    assert second.content[0].type == "text"

    # The call and its result reached the backend, in the backend's own format.
    sent = backend_request(m)
    if BACKEND == "openai":
        assert sent["messages"][-2]["tool_calls"][0]["id"] == use.id
        assert json.loads(sent["messages"][-2]["tool_calls"][0]["function"]["arguments"]) == use.input
        assert sent["messages"][-1] == {"role": "tool", "tool_call_id": use.id, "content": f"21 °C {m}"}
    else:
        assert sent["messages"][-2]["content"][-1] == {
            "type": "tool_use",
            "id": use.id,
            "name": "get_weather",
            "input": use.input,
        }
        result = sent["messages"][-1]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == use.id
        assert f"21 °C {m}" in json.dumps(result["content"], ensure_ascii=False)


def test_thinking_blocks_streamed_and_not():
    c, m = client(), marker()
    body = {
        "model": REASONING_MODEL,
        # A small budget (the gateway asks only that it be positive; the simulator does not read it):
        # max_tokens bounds the answer, and the simulator's answers run to 400 tokens otherwise.
        "max_tokens": 30,
        "thinking": {"type": "enabled", "budget_tokens": 16},
        "messages": [{"role": "user", "content": f"Think first, then answer. {m}"}],
    }
    kinds = []
    with c.messages.stream(**body) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                kinds.append(event.delta.type)
        streamed = stream.get_final_message()
    assert [b.type for b in streamed.content] == ["thinking", "text"]
    assert streamed.content[0].thinking.strip()
    assert "thinking_delta" in kinds
    assert kinds.index("thinking_delta") < kinds.index("text_delta")
    whole = c.messages.create(**body)
    assert [b.type for b in whole.content] == ["thinking", "text"]
    assert whole.content[0].thinking == streamed.content[0].thinking
    if BACKEND == "anthropic":
        # The parameter reaches an Anthropic backend as sent.
        assert backend_request(m)["thinking"] == body["thinking"]


THINKING_TOOLS = {
    "model": REASONING_MODEL,
    "max_tokens": 200,
    "thinking": {"type": "enabled", "budget_tokens": 16},
    "tools": [TOOL],
}


def thinking_tool_round_trip(m: str):
    """Tool use with extended thinking, as Anthropic's docs ask: the assistant turn goes back whole,
    its thinking block (with its signature) first. Returns the first answer and the second."""
    c = client()
    messages = [{"role": "user", "content": f"Weather in Paris? {m}"}]
    first = c.messages.create(**THINKING_TOOLS, messages=messages)
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    use = first.content[1]
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "21 °C"}]},
    ]
    return first, c.messages.create(**{**THINKING_TOOLS, "max_tokens": 30}, messages=messages)


def test_thinking_with_a_tool_round_trip():
    m = marker()
    first, second = thinking_tool_round_trip(m)
    assert [b.type for b in second.content] == ["thinking", "text"]
    assert [r["id"] for r in sent_tool_results(backend_request(m))] == [first.content[1].id]


@pytest.mark.skipif(BACKEND != "anthropic", reason="signatures are Anthropic's; an OpenAI backend has none")
def test_thinking_signature_goes_to_the_client_and_back_to_an_anthropic_backend():
    """The simulator refuses the second turn without it, as Anthropic's API does (400)."""
    m = marker()
    first, _ = thinking_tool_round_trip(m)
    assert first.content[0].signature  # what the backend signed the thinking with
    sent = backend_request(m)["messages"]
    assert sent[1]["role"] == "assistant"
    assert sent[1]["content"][0] == {
        "type": "thinking",
        "thinking": first.content[0].thinking,
        "signature": first.content[0].signature,
    }


def test_closing_a_stream_early_aborts_at_the_backend():
    before = sim_stats()["aborted"]
    with client().messages.stream(model=MODEL, max_tokens=2000, messages=ask("Tell me a long story.")) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break
    # Not a test-only grace: the job is cancelled when the client goes; 3 s is ample for that.
    assert until(lambda: sim_stats()["aborted"] > before, timeout=3.0), sim_stats()


# --- error classes ---------------------------------------------------------------------------------


def fail(c: anthropic.Anthropic, model: str = MODEL, **body) -> anthropic.APIStatusError:
    with pytest.raises(anthropic.APIStatusError) as info:
        c.messages.create(
            **{"model": model, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}], **body}
        )
    return info.value


def counting_client(api_key: str, **kwargs) -> tuple[anthropic.Anthropic, list[str]]:
    sent: list[str] = []
    http = anthropic.DefaultHttpxClient(event_hooks={"request": [lambda req: sent.append(str(req.url))]})
    return client(api_key, http_client=http, **kwargs), sent


def test_401_404_400():
    c, sent = counting_client("sk-wrong")
    unauthorized = fail(c)
    assert isinstance(unauthorized, anthropic.AuthenticationError)
    assert unauthorized.type == "authentication_error"
    assert len(sent) == 1
    assert isinstance(fail(client(), "no-such-model"), anthropic.NotFoundError)
    bad = fail(client(), messages=[{"role": "user", "content": [{"type": "video"}]}])
    assert isinstance(bad, anthropic.BadRequestError)
    assert "video" in bad.message


def test_429_rate_limit_is_retryable():
    # max_retries=0: the default retries would wait out Retry-After (up to a minute here).
    c = client(new_key("one_rpm"), max_retries=0)
    c.messages.create(model=MODEL, max_tokens=2, messages=[{"role": "user", "content": "hi"}])
    err = fail(c)
    assert isinstance(err, anthropic.RateLimitError)
    assert err.type == "rate_limit_error"
    assert 0 < float(err.response.headers["retry-after"]) <= 60
    assert err.response.headers.get("x-should-retry") != "false"


def test_429_quota_is_not_retried():
    c, sent = counting_client(new_key("broke"))  # default max_retries (2)
    err = fail(c)
    assert isinstance(err, anthropic.RateLimitError)
    assert err.response.headers.get("x-should-retry") == "false"
    assert len(sent) == 1


def test_503_model_unavailable():
    # max_retries=0: the SDK retries 5xx by default, with backoff.
    err = fail(client(max_retries=0), GHOST_MODEL)
    assert isinstance(err, anthropic.ServiceUnavailableError)
    assert isinstance(err, anthropic.InternalServerError)
    assert err.type == "overloaded_error"
