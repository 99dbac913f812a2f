import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoUpstream, type DemoUpstream } from '../src/providers/demo.js';
import { createUpstream, openAICompatibleProvider } from '../src/providers/openai-compatible.js';
import type { ChatRequest, ChatProvider, ProviderEvent } from '../src/providers/provider.js';

let demo: DemoUpstream;
let provider: ChatProvider;
beforeAll(async () => {
  demo = await startDemoUpstream();
  provider = openAICompatibleProvider(createUpstream({ apiKey: 'demo', baseUrl: demo.baseUrl, timeoutMs: 5_000 }));
});
afterAll(async () => {
  await demo?.stop();
});

const request = (overrides: Partial<ChatRequest> = {}): ChatRequest => ({
  model: 'switchboard-demo',
  messages: [{ role: 'user', content: 'hi demo' }],
  maxTokens: 50,
  reasoning: false,
  ...overrides,
});

async function collect(events: AsyncIterable<ProviderEvent>): Promise<ProviderEvent[]> {
  const all: ProviderEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

const stream = (overrides: Partial<ChatRequest> = {}) => provider.stream(request(overrides), { signal: new AbortController().signal, timeoutMs: 5_000 });

describe('the demo upstream, through the OpenAI provider', () => {
  it('streams a labelled reply in small pieces, then its usage and a stop', async () => {
    const events = await collect(stream());
    const pieces = events.flatMap((e) => (e.type === 'text' ? [e.delta] : []));
    expect(pieces.length).toBeGreaterThan(10);
    expect(pieces.join('')).toMatch(/^This is switchboard-demo, Switchboard's built-in demo model: .* You said: "hi demo"\./);
    expect(events.filter((e) => e.type === 'finish')).toEqual([{ type: 'finish', reason: 'stop' }]);
    const [usage] = events.flatMap((e) => (e.type === 'usage' ? [e.usage] : []));
    expect(usage?.promptTokens).toBeGreaterThan(0);
    expect(usage?.completionTokens).toBeGreaterThan(0);
  });

  it('calls the tool it is offered, then answers with what the tool returned', async () => {
    const tools = [{ name: 'get_time', parameters: { type: 'object', properties: {} } }];
    const calling = await collect(stream({ tools }));
    const [call] = calling.filter((e) => e.type === 'tool_call' && e.id);
    expect(call).toMatchObject({ type: 'tool_call', index: 0, name: 'get_time' });
    expect(calling.filter((e) => e.type === 'finish')).toEqual([{ type: 'finish', reason: 'tool_calls' }]);

    const id = (call as { id: string }).id;
    const answering = await collect(
      stream({
        tools,
        messages: [
          { role: 'user', content: 'what time is it?' },
          { role: 'assistant', content: '', toolCalls: [{ id, name: 'get_time', arguments: '{}' }] },
          { role: 'tool', content: 'noon', toolCallId: id },
        ],
      }),
    );
    expect(answering.flatMap((e) => (e.type === 'text' ? [e.delta] : [])).join('')).toContain('The tools answered: "noon".');
  });
});
