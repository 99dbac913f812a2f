import { LLMock } from '@copilotkit/aimock';
import { DEMO_MODEL } from '../model-catalog.js';

export interface DemoUpstream {
  baseUrl: string;
  stop(): Promise<void>;
}

type DemoRequest = {
  messages: Array<{ role: string; content?: unknown }>;
  tools?: Array<{ function: { name: string } }>;
  tool_choice?: string | { function?: { name?: string } };
};

function lastUserText(messages: DemoRequest['messages']): string {
  const last = [...messages].reverse().find((m) => m.role === 'user');
  return typeof last?.content === 'string' ? last.content : '';
}

/** The results of the tool calls that the request answers (the tool turns that end it). */
function toolResults(messages: DemoRequest['messages']): string[] {
  const results: string[] = [];
  for (let i = messages.length - 1; i >= 0 && messages[i]!.role === 'tool'; i -= 1) results.unshift(String(messages[i]!.content ?? ''));
  return results;
}

/**
 * The tool the demo calls: the one tool_choice names, else the first one offered, unless tools
 * may not be called or the request already brings results.
 */
function toolToCall(request: DemoRequest): string | undefined {
  if (!request.tools?.length || request.tool_choice === 'none' || toolResults(request.messages).length > 0) return undefined;
  const named = typeof request.tool_choice === 'object' ? request.tool_choice.function?.name : undefined;
  return named ?? request.tools[0]!.function.name;
}

/**
 * Without OPENAI_API_KEY the server talks to this local OpenAI-protocol server (the aimock
 * library) so that the real `openai` SDK path runs end to end. Its replies say what it is.
 * Offered tools, it calls one (with no arguments), and then answers with what the tools returned,
 * so that a function-calling client can be tried without a key.
 */
export async function startDemoUpstream(): Promise<DemoUpstream> {
  const mock = new LLMock({ host: '127.0.0.1', port: 0, logLevel: 'silent' });
  mock.addFixture({
    match: { predicate: () => true },
    response: (raw) => {
      const request = raw as unknown as DemoRequest;
      const tool = toolToCall(request);
      if (tool) return { model: DEMO_MODEL.id, toolCalls: [{ name: tool, arguments: '{}' }] };
      const said = lastUserText(request.messages).slice(0, 200);
      const results = toolResults(request.messages);
      return {
        model: DEMO_MODEL.id,
        content:
          `This is ${DEMO_MODEL.id}, Switchboard's built-in demo model: no OPENAI_API_KEY is configured, ` +
          `so no real LLM is answering. You said: "${said}".` +
          (results.length > 0 ? ` The tools answered: ${results.map((r) => JSON.stringify(r.slice(0, 200))).join(', ')}.` : '') +
          ' Set OPENAI_API_KEY (and optionally OPENAI_BASE_URL) to talk to a real model; everything else — streaming, usage, quotas — works the same.',
      };
    },
    // Small chunks at a steady pace, so a GraphiQL user sees the reply stream in.
    chunkSize: 6,
    latency: 25,
  });
  await mock.start();
  return { baseUrl: `${mock.url}/v1`, stop: () => mock.stop() };
}
