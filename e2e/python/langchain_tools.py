"""The LangChain tool both LangChain suites bind: the same weather tool the Node tests declare."""

from __future__ import annotations

import json

from langchain_core.tools import tool


@tool
def get_weather(city: str, unit: str) -> str:
    """Current weather in a city; unit is celsius or fahrenheit."""
    return json.dumps({"city": city, "temp": 21, "unit": unit})
