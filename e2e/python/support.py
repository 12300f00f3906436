"""What every test gets from the runner (e2e/src/python/pytest.ts): the stack's addresses and keys,
and the simulator's view of what reached the backend."""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from typing import Any, Callable

API_URL = os.environ.get("LLMGW_API_URL", "")
"""The api's root: the OpenAI clients append /v1, the Anthropic ones /v1/messages."""
API_KEY = os.environ.get("LLMGW_API_KEY", "")
"""An enterprise key: limits are never reached with it."""
SIM_URL = os.environ.get("LLMGW_SIM_URL", "")
KEYS_URL = os.environ.get("LLMGW_KEYS_URL", "")
BACKEND = os.environ.get("LLMGW_BACKEND", "openai")
"""The wire format the worker drives the simulator in: openai or anthropic."""
MODEL = os.environ.get("LLMGW_MODEL", "sim-llama-3-8b")
REASONING_MODEL = os.environ.get("LLMGW_REASONING_MODEL", "sim-reasoning")
GHOST_MODEL = os.environ.get("LLMGW_GHOST_MODEL", "sim-ghost")
"""Known to the gateway with no live worker: 503 model_unavailable."""

WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
}
TIME_TOOL: dict[str, Any] = {
    "name": "get_time",
    "description": "Current local time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as res:  # noqa: S310 (loopback)
        return res.read()


def new_key(tier: str) -> str:
    """A fresh key (and user) of `tier`: one_rpm, broke or enterprise."""
    return _get(f"{KEYS_URL}/key/{tier}").decode()


def sim_stats() -> dict[str, int]:
    """The simulator's counters: running, waiting, peak_running, requests, completed, aborted, faults."""
    return json.loads(_get(f"{SIM_URL}/sim/stats"))


def backend_requests() -> list[dict[str, Any]]:
    """The generation requests the simulator received, oldest first: [{path, body}]."""
    return json.loads(_get(f"{SIM_URL}/sim/requests"))["requests"]


def backend_request(marker: str) -> dict[str, Any]:
    """The body of the last request the backend received whose JSON contains `marker`."""
    for req in reversed(backend_requests()):
        if marker in json.dumps(req["body"], ensure_ascii=False):
            return req["body"]
    raise AssertionError(f"no backend request contains {marker!r}")


def until(pred: Callable[[], bool], timeout: float = 3.0, every: float = 0.02) -> bool:
    """Polls `pred` until it holds or `timeout` seconds pass; returns its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(every)
    return pred()


def marker() -> str:
    """A word no other test sends: finds this test's request in the backend's log."""
    return f"m{uuid.uuid4().hex[:12]}"


# --- what reached the backend, in either wire format (LLMGW_BACKEND) ----------------------------------


def _text(content: Any) -> str:
    """A message's or tool result's content as text: a string, or its text blocks joined."""
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict))


def sent_tool_calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool calls of the last assistant turn a backend received: [{id, name, input}]."""
    for msg in reversed(body["messages"]):
        if msg["role"] != "assistant":
            continue
        if "tool_calls" in msg:  # OpenAI: arguments as a JSON string
            return [
                {"id": c["id"], "name": c["function"]["name"], "input": json.loads(c["function"]["arguments"])}
                for c in msg["tool_calls"]
            ]
        if isinstance(msg["content"], list):  # Anthropic: tool_use blocks
            return [
                {"id": b["id"], "name": b["name"], "input": b["input"]}
                for b in msg["content"]
                if b.get("type") == "tool_use"
            ]
    return []


def sent_tool_results(body: dict[str, Any]) -> list[dict[str, str]]:
    """The tool results that end the conversation a backend received: [{id, content}]."""
    out: list[dict[str, str]] = []
    for msg in reversed(body["messages"]):
        if msg["role"] == "tool":  # OpenAI: one message per result
            out.insert(0, {"id": msg["tool_call_id"], "content": _text(msg["content"])})
            continue
        if msg["role"] == "user" and isinstance(msg["content"], list):  # Anthropic: blocks of one turn
            out = [
                {"id": b["tool_use_id"], "content": _text(b.get("content"))}
                for b in msg["content"]
                if b.get("type") == "tool_result"
            ] + out
        break
    return out


def sent_tool_names(body: dict[str, Any]) -> list[str]:
    """The names of the tools a backend was offered."""
    return [t["function"]["name"] if "function" in t else t["name"] for t in body.get("tools", [])]


def sent_forced_tool(body: dict[str, Any]) -> str | None:
    """The tool a backend's tool_choice names, if it names one."""
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return None
    return choice.get("function", {}).get("name") or choice.get("name")
