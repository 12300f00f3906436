import { pythonSuite } from './pytest.ts';

/**
 * The same Python clients with the worker driving the simulator's Anthropic Messages route: the
 * Anthropic clients over a backend of their own format, the OpenAI ones through the gateway's
 * translation (docs/api.md, Backends). The tests assert what reached the backend in its format.
 */
await pythonSuite('anthropic', ['tests']);
