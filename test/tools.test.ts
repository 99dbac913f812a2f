import { describe, expect, it } from 'vitest';
import { planPrompt } from '../src/chat/prompt.js';
import { priceAttempt } from '../src/generation/attempt-records.js';
import { createLogger } from '../src/logger.js';
import { estimateCompletionTokens, estimateToolTokens } from '../src/metering/tokens.js';
import { DeltaPublisher } from '../src/streams/delta-publisher.js';
import { ReplayWriter } from '../src/streams/replay-writer.js';
import { MergingQueue } from '../src/streams/stream-follower.js';
import type { ReplayStore, StreamEvent, ToolCallDelta } from '../src/streams/stream-hub.js';
import { graphql } from './generated/gql.js';
import { registerUser } from './helpers/accounts.js';
import { errorCodes, expectData, serveWithUpstreamForFile, testConfig, type TestApp } from './helpers/app.js';
import { CreateScopedApiKeyDocument } from './helpers/api-key-documents.js';
import { ConversationTranscriptDocument, SendWithToolsDocument, SubmitToolResultsDocument, ToolMessageDocument } from './helpers/tool-documents.js';
import { followToolStreamOverSse, followToolStreamOverWs, toolCallsFromDeltas, type ToolStreamEvent } from './helpers/tool-streams.js';
import type { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';

const WEATHER = {
  name: 'get_weather',
  description: 'The weather in a city, now',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const CLOCK = { name: 'get_time', description: 'The time in a city' };
const CALLS = [
  { id: 'call_paris', name: 'get_weather', arguments: '{"city":"Paris"}' },
  { id: 'call_time', name: 'get_time', arguments: '{}' },
];
const RegenerateAfterToolsDocument = graphql(`
  mutation RegenerateAfterTools($input: RegenerateMessageInput!) {
    regenerateMessage(input: $input) {
      userMessage {
        role
        toolCallId
      }
      assistantMessage {
        status
        content
      }
    }
  }
`);
const LIMITS = { MAX_TOOLS: '3', MAX_TOOL_SCHEMA_BYTES: '1024', MAX_TOOL_RESULT_LENGTH: '2000', MAX_TOOL_ARGUMENTS_BYTES: '200' };

/** What an OpenAI-compatible request carries, in the names of the wire. */
type WireRequest = {
  tools?: unknown;
  tool_choice?: unknown;
  messages: Array<{ role: string; content?: unknown; tool_calls?: unknown; tool_call_id?: string }>;
};

describe('tools on an OpenAI-compatible provider, through the API', () => {
  let t: TestApp;
  let url: URL;
  let upstream: MockUpstream;
  serveWithUpstreamForFile(
    (app, served, mock) => {
      t = app;
      url = served;
      upstream = mock;
    },
    { ...LIMITS, SIGNUP_CREDITS_MICROS: '10000000' },
  );

  /** A reply that asks for both calls (its arguments streamed in small pieces), then a text answer once results come. */
  function toolPrompt() {
    return upstream.promptWithToolResults({ toolCalls: CALLS }, { content: 'Sunny in Paris, 14:00.' }, { chunkSize: 4 });
  }

  async function askForTools(token: string, prompt: string, extra: Record<string, unknown> = {}) {
    const sent = expectData(
      await t.execute(SendWithToolsDocument, { input: { content: prompt, tools: [WEATHER, CLOCK], toolChoice: 'required', ...extra } }, { token }),
    );
    return sent.sendMessage;
  }

  async function finishedReply(token: string, prompt: string) {
    const sent = await askForTools(token, prompt, { stream: false });
    expect(sent.assistantMessage).toMatchObject({ status: 'COMPLETE', finishReason: 'tool_calls', toolCalls: CALLS });
    return sent.assistantMessage.id;
  }

  const RESULTS = [
    { toolCallId: 'call_paris', content: '{"sky":"sunny","celsius":21}' },
    { toolCallId: 'call_time', content: '14:00' },
  ];

  async function roundTrip(follow: (url: URL, token: string, messageId: string) => Promise<ToolStreamEvent[]>) {
    const user = await registerUser(t);
    const prompt = toolPrompt();
    const sent = await askForTools(user.accessToken, prompt);
    const first = await follow(url, user.accessToken, sent.assistantMessage.id);

    // The calls stream as deltas, and the final event carries the reply that asks for them.
    expect(first.filter((e) => e.toolCallDeltas.length > 0).length).toBeGreaterThan(1);
    expect(toolCallsFromDeltas(first)).toEqual(CALLS);
    expect(first.at(-1)?.message).toMatchObject({ status: 'COMPLETE', finishReason: 'tool_calls', content: '', toolCalls: CALLS });

    const submitted = expectData(
      await t.execute(SubmitToolResultsDocument, { input: { messageId: sent.assistantMessage.id, results: [...RESULTS].reverse() } }, { token: user.accessToken }),
    ).submitToolResults;
    // The last TOOL message stands as the payload's userMessage; results are stored in the order of the calls.
    expect(submitted.userMessage).toMatchObject({ role: 'TOOL', toolCallId: 'call_time', content: '14:00' });
    expect(submitted.assistantMessage.status).toBe('STREAMING');
    const second = await follow(url, user.accessToken, submitted.assistantMessage.id);
    expect(second.map((e) => e.delta).join('')).toBe('Sunny in Paris, 14:00.');
    expect(second.at(-1)?.message).toMatchObject({ status: 'COMPLETE', finishReason: 'stop', toolCalls: [] });

    const [asked, answered] = (await waitFor('both requests', () => {
      const requests = upstream.requestsFor(prompt);
      return requests.length === 2 ? requests : undefined;
    })) as unknown as WireRequest[];
    const wireTools = [
      { type: 'function', function: WEATHER },
      { type: 'function', function: { ...CLOCK, parameters: { type: 'object', properties: {} } } },
    ];
    expect(asked).toMatchObject({ tools: wireTools, tool_choice: 'required' });
    // After the results the model may answer in words: never "required" again.
    expect(answered).toMatchObject({ tools: wireTools, tool_choice: 'auto' });
    expect(answered!.messages.slice(-3)).toEqual([
      {
        role: 'assistant',
        content: null,
        tool_calls: CALLS.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })),
      },
      { role: 'tool', tool_call_id: 'call_paris', content: RESULTS[0]!.content },
      { role: 'tool', tool_call_id: 'call_time', content: '14:00' },
    ]);

    const transcript = expectData(await t.execute(ConversationTranscriptDocument, { id: sent.conversation.id }, { token: user.accessToken }));
    expect(transcript.conversation?.messages?.edges.map((e) => [e.node.role, e.node.toolCallId ?? e.node.toolCalls.length])).toEqual([
      ['USER', 0],
      ['ASSISTANT', 2],
      ['TOOL', 'call_paris'],
      ['TOOL', 'call_time'],
      ['ASSISTANT', 0],
    ]);
    return { user, prompt, submitted };
  }

  it('round-trips over graphql-ws: the calls stream, the reply asks for them, the results start the next reply', async () => {
    await roundTrip(followToolStreamOverWs);
  });

  it('round-trips over server-sent events the same way', async () => {
    await roundTrip(followToolStreamOverSse);
  });

  it('regenerates the reply to tool results with the calls and results again, and the same tools', async () => {
    const { user, prompt, submitted } = await roundTrip(followToolStreamOverWs);
    const regenerated = expectData(
      await t.execute(RegenerateAfterToolsDocument, { input: { messageId: submitted.assistantMessage.id, stream: false } }, { token: user.accessToken }),
    ).regenerateMessage;
    expect(regenerated.userMessage).toMatchObject({ role: 'TOOL', toolCallId: 'call_time' });
    expect(regenerated.assistantMessage).toMatchObject({ status: 'COMPLETE', content: 'Sunny in Paris, 14:00.' });
    const requests = upstream.requestsFor(prompt) as unknown as WireRequest[];
    expect(requests).toHaveLength(3);
    // The same conversation as the reply it replaces was sent: the question, the calls, both results.
    expect(requests[2]!.messages).toEqual(requests[1]!.messages);
    expect(requests[2]).toMatchObject({ tools: requests[1]!.tools, tool_choice: 'auto' });
  });

  it('refuses tools it cannot offer, before any call', async () => {
    const user = await registerUser(t);
    const refused: Array<[Record<string, unknown>, string]> = [
      [{ tools: [{ name: 'has spaces' }] }, 'tools.0.name'],
      [{ tools: [{ name: 'x'.repeat(65) }] }, 'tools.0.name'],
      [{ tools: [WEATHER, WEATHER] }, 'tools.1.name'],
      [{ tools: [{ name: 'a' }, { name: 'b' }, { name: 'c' }, { name: 'd' }] }, 'tools'],
      [{ tools: [{ name: 'big', description: 'x'.repeat(1100) }] }, 'tools.0'],
      [{ tools: [{ name: 'list', parameters: { type: 'array' } }] }, 'tools.0.parameters'],
      [{ tools: [{ name: 'bad', parameters: { type: 'object', properties: { n: { type: 'no-such-type' } } } }] }, 'tools.0.parameters'],
      [{ tools: [WEATHER], toolChoice: 'get_time' }, 'toolChoice'],
      [{ toolChoice: 'auto' }, 'toolChoice'],
    ];
    for (const [input, field] of refused) {
      const prompt = upstream.prompt({ content: 'never' });
      const result = await t.execute(SendWithToolsDocument, { input: { content: prompt, ...input } as never }, { token: user.accessToken });
      expect(errorCodes(result), JSON.stringify(input).slice(0, 80)).toEqual(['BAD_USER_INPUT']);
      expect(result.errors?.[0]?.extensions?.field).toBe(field);
      expect(upstream.requestsFor(prompt)).toHaveLength(0);
    }
  });

  it('names the tool the model must call, and passes toolChoice none on', async () => {
    const user = await registerUser(t);
    const named = upstream.prompt({ content: 'ok' });
    await askForTools(user.accessToken, named, { toolChoice: 'get_weather', stream: false });
    const none = upstream.prompt({ content: 'ok' });
    await askForTools(user.accessToken, none, { toolChoice: 'none', stream: false });
    expect(upstream.requestsFor(named)[0]).toMatchObject({ tool_choice: { type: 'function', function: { name: 'get_weather' } } });
    expect(upstream.requestsFor(none)[0]).toMatchObject({ tool_choice: 'none' });
  });

  it('ends a reply FAILED whose tool-call arguments outgrow MAX_TOOL_ARGUMENTS_BYTES', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ toolCalls: [{ name: 'get_weather', arguments: JSON.stringify({ city: 'x'.repeat(300) }) }] }, { chunkSize: 20 });
    const result = await t.execute(SendWithToolsDocument, { input: { content: prompt, tools: [WEATHER], stream: false } }, { token: user.accessToken });
    expect(errorCodes(result)).toEqual(['UPSTREAM_ERROR']);
    expect(result.errors?.[0]?.message).toMatch(/tool-call arguments longer than the limit of 200 bytes/);
  });

  it('takes results only for a finished reply that asked for tools, every call answered exactly once', async () => {
    const user = await registerUser(t);
    const messageId = await finishedReply(user.accessToken, toolPrompt());
    const submit = (results: Array<{ toolCallId: string; content: string }>, id = messageId) =>
      t.execute(SubmitToolResultsDocument, { input: { messageId: id, results } }, { token: user.accessToken });
    const refused: Array<[Array<{ toolCallId: string; content: string }>, string]> = [
      [[RESULTS[0]!], 'results'],
      [[...RESULTS, { toolCallId: 'call_unknown', content: 'x' }], 'results.2.toolCallId'],
      [[...RESULTS, RESULTS[0]!], 'results.2.toolCallId'],
      [[RESULTS[0]!, { toolCallId: 'call_time', content: 'x'.repeat(2001) }], 'results.1.content'],
    ];
    for (const [results, field] of refused) {
      const result = await submit(results);
      expect(errorCodes(result), JSON.stringify(results).slice(0, 120)).toEqual(['BAD_USER_INPUT']);
      expect(result.errors?.[0]?.extensions?.field).toBe(field);
    }
    // A reply that asked for nothing takes no results.
    const plain = upstream.prompt({ content: 'Just words.' });
    const words = expectData(await t.execute(SendWithToolsDocument, { input: { content: plain, stream: false } }, { token: user.accessToken }));
    expect(errorCodes(await submit(RESULTS, words.sendMessage.assistantMessage.id))).toEqual(['BAD_USER_INPUT']);

    expectData(await submit(RESULTS));
    // Answered: a second submission is refused.
    const again = await submit(RESULTS);
    expect(errorCodes(again)).toEqual(['BAD_USER_INPUT']);
  });

  it('of two submissions at once for one reply, takes exactly one', async () => {
    const user = await registerUser(t);
    const messageId = await finishedReply(user.accessToken, toolPrompt());
    const submit = () => t.execute(SubmitToolResultsDocument, { input: { messageId, results: RESULTS, stream: false } }, { token: user.accessToken });
    const outcomes = await Promise.all([submit(), submit(), submit()]);
    expect(outcomes.filter((r) => !r.errors).length).toBe(1);
    expect(outcomes.flatMap(errorCodes)).toEqual(['BAD_USER_INPUT', 'BAD_USER_INPUT']);
    const reply = await t.execute(ToolMessageDocument, { id: messageId }, { token: user.accessToken });
    expect(reply.data?.node).toMatchObject({ finishReason: 'tool_calls' });
  });

  it('lets a CHAT key submit results, refuses a READ-only key, and hides other users\' replies', async () => {
    const user = await registerUser(t);
    const messageId = await finishedReply(user.accessToken, toolPrompt());
    const key = async (scopes: Array<'CHAT' | 'READ'>) =>
      expectData(await t.execute(CreateScopedApiKeyDocument, { input: { name: 'tools', scopes } }, { token: user.accessToken })).createApiKey.secret;
    const submit = (token: string) => t.execute(SubmitToolResultsDocument, { input: { messageId, results: RESULTS, stream: false } }, { token });

    expect(errorCodes(await submit(await key(['READ'])))).toEqual(['FORBIDDEN']);
    const stranger = await registerUser(t);
    expect(errorCodes(await submit(stranger.accessToken))).toEqual(['NOT_FOUND']);
    const submitted = expectData(await submit(await key(['CHAT']))).submitToolResults;
    expect(submitted.assistantMessage.status).toBe('COMPLETE');
  });
});

describe('metering of tools', () => {
  const model = testConfig().chat.models[0]!;
  const plan = (extra: Partial<Parameters<typeof planPrompt>[0]>) =>
    planPrompt({ model, systemPrompt: null, history: [], content: 'What is the weather in Paris?', requestedMaxTokens: 100, ...extra });

  it('reserves for the tool definitions, the calls and the results sent with a prompt', () => {
    const bare = plan({}).promptEstimate;
    const offered = plan({ tools: [WEATHER as never] }).promptEstimate;
    expect(offered - bare).toBeGreaterThanOrEqual(estimateToolTokens([WEATHER]));
    const results = plan({
      newTurns: [
        { role: 'assistant', content: '', toolCalls: CALLS },
        { role: 'tool', content: 'x '.repeat(500), toolCallId: 'call_paris' },
      ],
    }).promptEstimate;
    expect(results).toBeGreaterThan(500);
  });

  it('leaves out results whose calls did not fit the history', () => {
    const history = [
      { role: 'TOOL' as const, content: 'orphan', toolCalls: null, toolCallId: 'call_old' },
      { role: 'USER' as const, content: 'hello', toolCalls: null, toolCallId: null },
    ];
    expect(plan({ history }).messages.map((m) => m.role)).toEqual(['user', 'user']);
  });

  it('sends a reply whose calls got no results as its text alone', () => {
    const history = [
      { role: 'USER' as const, content: 'weather?', toolCalls: null, toolCallId: null },
      { role: 'ASSISTANT' as const, content: 'Let me check.', toolCalls: CALLS as never, toolCallId: null },
      { role: 'USER' as const, content: 'never mind', toolCalls: null, toolCallId: null },
      { role: 'ASSISTANT' as const, content: '', toolCalls: CALLS as never, toolCallId: null },
    ];
    expect(plan({ history }).messages).toEqual([
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: 'Let me check.' },
      { role: 'user', content: 'never mind' },
      { role: 'user', content: 'What is the weather in Paris?' },
    ]);
  });

  it('estimates the tool calls a reply wrote when the provider reports no usage', () => {
    const attempt = { text: '', toolCallText: 'get_weather{"city":"Paris"}', outcome: 'OK', sent: true } as never;
    const priced = priceAttempt({ deployment: { price: model.price } } as never, attempt, 10, undefined);
    expect(priced).toMatchObject({ usageEstimated: true, usage: { completionTokens: estimateCompletionTokens('get_weather{"city":"Paris"}') } });
  });
});

describe('tool-call deltas on the stream', () => {
  const event = (seq: number, toolCallDeltas?: ToolCallDelta[], reset?: boolean): StreamEvent => ({
    messageId: 'm',
    seq,
    delta: '',
    done: false,
    ...(toolCallDeltas ? { toolCallDeltas } : {}),
    ...(reset ? { reset } : {}),
  });

  it("joins a slow subscriber's pending tool-call pieces in order, and a reset drops those before it", async () => {
    const queue = new MergingQueue();
    for (let seq = 1; seq <= 16; seq += 1) queue.push(event(seq));
    queue.push(event(17, [{ index: 0, id: 'call_a', name: 'get_weather', argumentsDelta: '{"ci' }]));
    queue.push(event(18, [{ index: 0, argumentsDelta: 'ty":"Paris"}' }, { index: 1, id: 'call_b', name: 'get_time', argumentsDelta: '' }]));
    queue.push(event(19, [{ index: 1, argumentsDelta: '{}' }]));
    queue.end();
    const events: StreamEvent[] = [];
    for await (const e of queue) events.push(e);
    expect(events).toHaveLength(16);
    expect(events.at(-1)).toMatchObject({ seq: 19, firstSeq: 16 });
    expect(events.at(-1)?.toolCallDeltas).toEqual([
      { index: 0, id: 'call_a', name: 'get_weather', argumentsDelta: '{"city":"Paris"}' },
      { index: 1, id: 'call_b', name: 'get_time', argumentsDelta: '{}' },
    ]);

    const restarted = new MergingQueue();
    for (let seq = 1; seq <= 16; seq += 1) restarted.push(event(seq, [{ index: 0, argumentsDelta: 'x' }]));
    restarted.push(event(17, [{ index: 0, id: 'call_new', name: 'get_time', argumentsDelta: '' }], true));
    restarted.end();
    const after: StreamEvent[] = [];
    for await (const e of restarted) after.push(e);
    expect(after.at(-1)).toMatchObject({ reset: true, toolCallDeltas: [{ index: 0, id: 'call_new', name: 'get_time', argumentsDelta: '' }] });
  });

  it('writes the pieces that arrive while the replay store refuses writes as one event', async () => {
    const stored: StreamEvent[] = [];
    let calls = 0;
    const store: ReplayStore = {
      append: async (events) => {
        calls += 1;
        if (calls === 1) throw new Error('redis down');
        stored.push(...events);
      },
      read: async () => [],
      discard: async () => {},
      close: async () => {},
    };
    const writer = new ReplayWriter(store, { retryForMs: 1000, logger: createLogger('silent') });
    const publisher = new DeltaPublisher('m', (event) => writer.append(event, () => {}));
    publisher.push('Checking.');
    await waitFor('the first write refused', () => calls === 1 && writer.backlog === 1);
    publisher.pushToolCall({ index: 0, id: 'call_a', name: 'get_weather', argumentsDelta: '' });
    publisher.pushToolCall({ index: 0, argumentsDelta: '{"city":' });
    publisher.pushToolCall({ index: 0, argumentsDelta: '"Paris"}' });
    await writer.written('m');
    expect(stored.map((e) => [e.delta, e.toolCallDeltas])).toEqual([
      ['Checking.', undefined],
      ['', [{ index: 0, id: 'call_a', name: 'get_weather', argumentsDelta: '{"city":"Paris"}' }]],
    ]);
  });
});
