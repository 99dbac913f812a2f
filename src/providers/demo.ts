import { LLMock } from '@copilotkit/aimock';
import { DEMO_MODEL } from '../model-catalog.js';

export interface DemoUpstream {
  baseUrl: string;
  stop(): Promise<void>;
}

function lastUserText(messages: Array<{ role: string; content?: unknown }>): string {
  const last = [...messages].reverse().find((m) => m.role === 'user');
  return typeof last?.content === 'string' ? last.content : '';
}

/**
 * Without OPENAI_API_KEY the server talks to this local OpenAI-protocol server (the aimock
 * library) so that the real `openai` SDK path runs end to end. Its replies say what it is.
 */
export async function startDemoUpstream(): Promise<DemoUpstream> {
  const mock = new LLMock({ host: '127.0.0.1', port: 0, logLevel: 'silent' });
  mock.addFixture({
    match: { predicate: () => true },
    response: (request) => {
      const said = lastUserText(request.messages as Array<{ role: string; content?: unknown }>).slice(0, 200);
      return {
        model: DEMO_MODEL.id,
        content:
          `This is ${DEMO_MODEL.id}, Switchboard's built-in demo model: no OPENAI_API_KEY is configured, ` +
          `so no real LLM is answering. You said: "${said}". Set OPENAI_API_KEY (and optionally ` +
          'OPENAI_BASE_URL) to talk to a real model; everything else — streaming, usage, quotas — works the same.',
      };
    },
    // Small chunks at a steady pace, so a GraphiQL user sees the reply stream in.
    chunkSize: 6,
    latency: 25,
  });
  await mock.start();
  return { baseUrl: `${mock.url}/v1`, stop: () => mock.stop() };
}
