import { pythonSuite } from './pytest.ts';

/**
 * The real Python clients (e2e/python/tests: openai, anthropic, LangChain, LiteLLM, pydantic-ai)
 * through api → queue → worker → simulator, the worker driving the simulator's OpenAI route.
 */
await pythonSuite('openai', ['tests']);
