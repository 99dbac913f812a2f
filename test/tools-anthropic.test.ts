import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messagesRequest } from '../src/providers/anthropic-request.js';
import { registerUser } from './helpers/accounts.js';
import { expectData, startTestApp, type TestApp } from './helpers/app.js';
import { startLocalServer } from './helpers/local-server.js';
import { SendWithToolsDocument, SubmitToolResultsDocument } from './helpers/tool-documents.js';
import { followToolStreamOverWs, toolCallsFromDeltas } from './helpers/tool-streams.js';

const WEATHER = {
  name: 'get_weather',
  description: 'The weather in a city, now',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const CLOCK = { name: 'get_time' };
const CALLS = [
  { id: 'toolu_01Paris', name: 'get_weather', arguments: '{"city": "Paris"}' },
  { id: 'toolu_02Time', name: 'get_time', arguments: '{}' },
];

const sse = (event: string, data: object) => `event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`;
const MESSAGE_START = sse('message_start', {
  message: { id: 'msg_01', type: 'message', role: 'assistant', content: [], model: 'claude-sonnet-4-5', stop_reason: null, usage: { input_tokens: 40, output_tokens: 1 } },
});
const textBlock = (index: number, text: string) =>
  sse('content_block_start', { index, content_block: { type: 'text', text: '' } }) +
  sse('content_block_delta', { index, delta: { type: 'text_delta', text } }) +
  sse('content_block_stop', { index });
/** A tool_use block as Anthropic streams it: opened with its id and name, its input in JSON pieces. */
const toolUseBlock = (index: number, call: (typeof CALLS)[number], pieces: string[]) =>
  sse('content_block_start', { index, content_block: { type: 'tool_use', id: call.id, name: call.name, input: {} } }) +
  pieces.map((partial_json) => sse('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json } })).join('') +
  sse('content_block_stop', { index });
const messageEnd = (stopReason: string) =>
  sse('message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: 30 } }) + sse('message_stop', {});

// Text first, then two calls, the second without input (no input_json_delta at all).
const ASKS_FOR_TOOLS = MESSAGE_START + textBlock(0, 'Let me check.') + toolUseBlock(1, CALLS[0]!, ['{"city"', ': "Par', 'is"}']) + toolUseBlock(2, CALLS[1]!, []) + messageEnd('tool_use');
const ANSWERS = MESSAGE_START + textBlock(0, 'Sunny in Paris, 14:00.') + messageEnd('end_turn');

type AnthropicBody = { tools?: unknown; tool_choice?: unknown; messages: Array<{ role: string; content: unknown }> };

describe('tools on Anthropic, through the API', () => {
  const received: AnthropicBody[] = [];
  let t: TestApp;
  let url: URL;
  beforeAll(async () => {
    // A stand-in for Anthropic's Messages API that keeps each request as it came over the wire.
    const anthropic = await startLocalServer((req, res: ServerResponse) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (raw += chunk));
      req.on('end', () => {
        const body = JSON.parse(raw) as AnthropicBody;
        received.push(body);
        const answered = JSON.stringify(body.messages).includes('"tool_result"');
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(answered ? ANSWERS : ASKS_FOR_TOOLS);
      });
    });
    t = await startTestApp({
      PROVIDERS_JSON: JSON.stringify([{ id: 'claude', kind: 'anthropic', baseUrl: anthropic.url, apiKey: 'sk-ant-test' }]),
      MODELS_JSON: JSON.stringify([
        {
          id: 'claude-tools',
          contextWindow: 200_000,
          maxOutputTokens: 1000,
          promptMicrosPerMillion: 3_000_000,
          completionMicrosPerMillion: 15_000_000,
          deployments: [{ provider: 'claude', model: 'claude-sonnet-4-5' }],
        },
      ]),
      SIGNUP_CREDITS_MICROS: '10000000',
    });
    url = await t.app.start(0);
  });
  afterAll(() => t.stop());

  it('sends tools and tool_choice, streams tool_use blocks as tool calls, and sends the results as tool_result blocks', async () => {
    const user = await registerUser(t);
    const sent = expectData(
      await t.execute(SendWithToolsDocument, { input: { content: 'Weather and time in Paris?', tools: [WEATHER, CLOCK], toolChoice: 'required' } }, { token: user.accessToken }),
    ).sendMessage;
    const first = await followToolStreamOverWs(url, user.accessToken, sent.assistantMessage.id);
    expect(toolCallsFromDeltas(first)).toEqual(CALLS.map((c) => (c.arguments === '{}' ? { ...c, arguments: '' } : c)));
    expect(first.at(-1)?.message).toMatchObject({ status: 'COMPLETE', finishReason: 'tool_calls', content: 'Let me check.', toolCalls: CALLS });

    const results = [
      { toolCallId: 'toolu_01Paris', content: 'sunny, 21 °C' },
      { toolCallId: 'toolu_02Time', content: '14:00' },
    ];
    const submitted = expectData(
      await t.execute(SubmitToolResultsDocument, { input: { messageId: sent.assistantMessage.id, results, stream: false } }, { token: user.accessToken }),
    ).submitToolResults;
    expect(submitted.assistantMessage).toMatchObject({ status: 'COMPLETE', content: 'Sunny in Paris, 14:00.' });

    const [asked, answered] = received.slice(-2);
    const tools = [
      { name: 'get_weather', description: WEATHER.description, input_schema: WEATHER.parameters },
      { name: 'get_time', input_schema: { type: 'object', properties: {} } },
    ];
    expect(asked).toMatchObject({ tools, tool_choice: { type: 'any' } });
    // Anthropic wants the definitions whenever tool_use blocks are in the history; after the results, "auto".
    expect(answered).toMatchObject({ tools, tool_choice: { type: 'auto' } });
    expect(answered!.messages).toEqual([
      { role: 'user', content: 'Weather and time in Paris?' },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Let me check.' },
          { type: 'tool_use', id: 'toolu_01Paris', name: 'get_weather', input: { city: 'Paris' } },
          { type: 'tool_use', id: 'toolu_02Time', name: 'get_time', input: {} },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_01Paris', content: 'sunny, 21 °C' },
          { type: 'tool_result', tool_use_id: 'toolu_02Time', content: '14:00' },
        ],
      },
    ]);
  });
});

describe("Anthropic's tool names", () => {
  const request = (toolChoice: Parameters<typeof messagesRequest>[0]['toolChoice']) =>
    messagesRequest({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'hi' }], maxTokens: 100, reasoning: false, tools: [WEATHER], toolChoice }).params;

  it('asks for any tool for "required", for the one named, or for none', () => {
    expect(request('required').tool_choice).toEqual({ type: 'any' });
    expect(request({ name: 'get_weather' }).tool_choice).toEqual({ type: 'tool', name: 'get_weather' });
    expect(request('none').tool_choice).toEqual({ type: 'none' });
    expect(request('auto').tool_choice).toEqual({ type: 'auto' });
  });

  it('sends no tools when none are offered', () => {
    const params = messagesRequest({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'hi' }], maxTokens: 100, reasoning: false }).params;
    expect(params).not.toHaveProperty('tools');
    expect(params).not.toHaveProperty('tool_choice');
  });
});
