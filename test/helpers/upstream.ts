import { randomUUID } from 'node:crypto';
import { isChatCompletionBody, LLMock } from '@copilotkit/aimock';
import { registerLeftover } from './leftovers.js';
import { waitFor } from './wait.js';

type FixtureResponse = Parameters<LLMock['on']>[1];
type FixtureOptions = Parameters<LLMock['on']>[2];

/**
 * The test upstream: aimock, a third-party OpenAI-compatible mock server, on a free loopback port.
 * Each test keys its fixtures by a unique prompt, so tests sharing one mock never collide.
 */
export class MockUpstream {
  /** Stops the mock; done at the end of the test (or file) that started it, unless done first. */
  readonly stop: () => Promise<void>;

  private constructor(readonly mock: LLMock) {
    this.stop = registerLeftover(() => mock.stop());
  }

  static async start(): Promise<MockUpstream> {
    const mock = new LLMock({ host: '127.0.0.1', port: 0, logLevel: 'silent' });
    await mock.start();
    return new MockUpstream(mock);
  }

  /** Environment that points a Switchboard instance at this upstream. */
  get env(): Record<string, string> {
    return { OPENAI_API_KEY: 'sk-test-upstream-key', OPENAI_BASE_URL: `${this.mock.url}/v1` };
  }

  /**
   * The same mock speaking as OpenRouter (an OpenAI-compatible provider), whose usage carries
   * the cached and reasoning token details that aimock's plain OpenAI route leaves out.
   */
  get openRouterEnv(): Record<string, string> {
    return { OPENAI_API_KEY: 'sk-test-upstream-key', OPENAI_BASE_URL: `${this.mock.url}/api/v1` };
  }

  /** A fresh prompt and a fixture answering exactly that prompt. */
  prompt(response: FixtureResponse, options?: FixtureOptions, label = 'prompt'): string {
    const prompt = `${label} ${randomUUID()}`;
    this.mock.on({ predicate: (req) => lastUserText(req.messages) === prompt }, response, options);
    return prompt;
  }

  /** Answers for one prompt in turn: the first request gets responses[0], the next responses[1]… */
  promptSequence(responses: Array<{ response: FixtureResponse; options?: FixtureOptions }>, label = 'prompt'): string {
    const prompt = `${label} ${randomUUID()}`;
    responses.forEach(({ response, options }, index) =>
      // aimock counts sequenceIndex per match, so these share one (unique, substring-matched) userMessage.
      this.mock.on({ userMessage: prompt, sequenceIndex: index }, response, options),
    );
    return prompt;
  }

  /**
   * A fresh prompt answered with `beforeResults` while the request carries no tool result, and
   * with `afterResults` once it does (the request after submitToolResults).
   */
  promptWithToolResults(beforeResults: FixtureResponse, afterResults: FixtureResponse, options?: FixtureOptions, label = 'tools'): string {
    const prompt = `${label} ${randomUUID()}`;
    const answered = (messages: ReadonlyArray<{ role: string }>) => messages.some((m) => m.role === 'tool');
    this.mock.on({ predicate: (req) => lastUserText(req.messages) === prompt && !answered(req.messages) }, beforeResults, options);
    this.mock.on({ predicate: (req) => lastUserText(req.messages) === prompt && answered(req.messages) }, afterResults);
    return prompt;
  }

  /** The chat requests the upstream received for a prompt. */
  requestsFor(prompt: string) {
    return this.mock
      .getRequests()
      .map((entry) => entry.body)
      .filter(isChatCompletionBody)
      .filter((body) => lastUserText(body.messages) === prompt);
  }

  /**
   * Resolves once the upstream has received a request for the prompt: the generation is then in
   * flight (aimock journals a request before it starts answering).
   */
  async waitForRequest(prompt: string): Promise<void> {
    await waitFor(`the upstream to receive "${prompt}"`, () => this.requestsFor(prompt).length > 0);
  }
}

/** The text of the last user turn: its content, or its text part when it has images. */
function lastUserText(messages: ReadonlyArray<{ role: string; content?: unknown }>): string | undefined {
  const last = [...messages].reverse().find((m) => m.role === 'user');
  if (typeof last?.content === 'string') return last.content;
  const parts = Array.isArray(last?.content) ? (last.content as Array<{ type?: string; text?: unknown }>) : [];
  const text = parts.find((part) => part.type === 'text')?.text;
  return typeof text === 'string' ? text : undefined;
}
