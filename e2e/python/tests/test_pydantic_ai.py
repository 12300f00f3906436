"""pydantic-ai, the agent framework: an agent with a tool, and a structured extraction, on the
gateway's /v1 through its OpenAI chat model (default settings), over both stacks (LLMGW_BACKEND)."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from support import (
    API_KEY,
    API_URL,
    MODEL,
    backend_request,
    marker,
    sent_forced_tool,
    sent_tool_names,
    sent_tool_results,
)


def model() -> OpenAIChatModel:
    return OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=f"{API_URL}/v1", api_key=API_KEY))


async def test_agent_calls_its_tool_and_answers_from_the_result():
    calls: list[str] = []
    agent = Agent(model(), instructions="Answer with the weather.", model_settings={"max_tokens": 12})

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        calls.append(city)
        return f"21 °C and sunny in {city}"

    m = marker()
    result = await agent.run(f"What is the weather in Paris? {m}")
    assert len(calls) == 1
    assert result.output.strip()
    results = sent_tool_results(backend_request(m))
    assert [r["content"] for r in results] == [f"21 °C and sunny in {calls[0]}"]


class Person(BaseModel):
    name: str
    age: int


def test_structured_extraction():
    m = marker()
    agent = Agent(model(), output_type=Person, model_settings={"max_tokens": 200})
    result = agent.run_sync(f"Ada Lovelace was 36. {m}")
    assert isinstance(result.output, Person)
    assert 1 <= result.output.age <= 10  # the simulator's integers
    sent = backend_request(m)
    assert sent_tool_names(sent) == ["final_result"]
    assert sent_forced_tool(sent) in (None, "final_result")  # tool_choice "required", or named
