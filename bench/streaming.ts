import { parse, print } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { graphql, percentile } from './harness.js';

/** How a reply is paced by the upstream: like a model, or as fast as the upstream can write. */
export interface Pace {
  name: 'paced' | 'unpaced';
  prompt: string;
  /** Nominal time between two chunks, ms (0 when unpaced). */
  chunkMs: number;
}

export interface StreamingScenario {
  pace: Pace;
  concurrency: number;
  generations: number;
}

/** What one client saw of one reply: when it asked, and when each delta arrived with how much text. */
interface Observed {
  startedAt: number;
  /** When sendMessage answered (Switchboard only). */
  sentAt?: number;
  deltas: { at: number; textLength: number }[];
}

export interface StreamingResult {
  path: 'direct' | 'switchboard';
  scenario: StreamingScenario;
  firstTokenP50Ms: number;
  firstTokenP99Ms: number;
  completeP50Ms: number;
  /** How much later than its nominal schedule each later delta arrived, relative to the first. */
  lagP50Ms: number;
  lagP99Ms: number;
  /** Gaps between consecutive deltas longer than twice the chunk interval. */
  stalls: number;
  /** How long sendMessage took to answer (Switchboard only). */
  sendP50Ms: number;
  wallMs: number;
}

const SEND = 'mutation($input: SendMessageInput!) { sendMessage(input: $input) { assistantMessage { id } } }';
const STREAM = print(parse('subscription($id: ID!) { messageStream(messageId: $id) { seq delta done } }'));

/**
 * Runs `generations` replies, `concurrency` at a time (each lane starts its next reply when its
 * last one ends), and summarizes what the clients saw against the upstream's nominal pacing.
 */
async function measure(
  path: StreamingResult['path'],
  scenario: StreamingScenario,
  chunkChars: number,
  generate: (lane: number) => Promise<Observed>,
): Promise<StreamingResult> {
  const observed: Observed[] = [];
  let remaining = scenario.generations;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: scenario.concurrency }, async (_, lane) => {
      while (remaining > 0) {
        remaining -= 1;
        observed.push(await generate(lane));
      }
    }),
  );
  const wallMs = performance.now() - started;
  const firstTokens = observed.map((o) => o.deltas[0]!.at - o.startedAt);
  const lags: number[] = [];
  let stalls = 0;
  const chunkOf = (textLength: number) => Math.ceil(textLength / chunkChars) - 1;
  for (const { deltas } of observed) {
    const first = deltas[0]!;
    for (let i = 1; i < deltas.length; i += 1) {
      const delta = deltas[i]!;
      const nominal = (chunkOf(delta.textLength) - chunkOf(first.textLength)) * scenario.pace.chunkMs;
      lags.push(delta.at - first.at - nominal);
      if (scenario.pace.chunkMs > 0 && delta.at - deltas[i - 1]!.at > 2 * scenario.pace.chunkMs) stalls += 1;
    }
  }
  return {
    path,
    scenario,
    firstTokenP50Ms: percentile(firstTokens, 50),
    firstTokenP99Ms: percentile(firstTokens, 99),
    completeP50Ms: percentile(
      observed.map((o) => o.deltas.at(-1)!.at - o.startedAt),
      50,
    ),
    lagP50Ms: percentile(lags, 50),
    lagP99Ms: percentile(lags, 99),
    stalls,
    sendP50Ms: percentile(
      observed.map((o) => (o.sentAt ?? NaN) - o.startedAt),
      50,
    ),
    wallMs,
  };
}

function checkReply(observed: Observed, text: string, expected: string): Observed {
  if (text !== expected) throw new Error(`a streamed reply arrived incomplete (${text.length} of ${expected.length} characters)`);
  return observed;
}

/** The same streamed completions read straight from the upstream with the openai SDK: the floor. */
export function benchDirect(upstreamBaseUrl: string, scenario: StreamingScenario, reply: string, chunkChars: number) {
  const openai = new OpenAI({ baseURL: upstreamBaseUrl, apiKey: 'sk-bench', maxRetries: 0 });
  return measure('direct', scenario, chunkChars, async () => {
    const observed: Observed = { startedAt: performance.now(), deltas: [] };
    let text = '';
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: scenario.pace.prompt }],
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta?.content;
      if (!delta) continue;
      text += delta;
      observed.deltas.push({ at: performance.now(), textLength: text.length });
    }
    return checkReply(observed, text, reply);
  });
}

/**
 * Through Switchboard as a chat app uses it: each lane (one of `tokens`' users, in turn) has its graphql-ws socket open already,
 * sends `sendMessage` over HTTP, then follows `messageStream` until `done`.
 */
export async function benchSwitchboard(url: URL, tokens: string[], scenario: StreamingScenario, reply: string, chunkChars: number) {
  const tokenOf = (lane: number) => tokens[lane % tokens.length]!;
  const clients = await Promise.all(Array.from({ length: scenario.concurrency }, (_, lane) => openSocket(url, tokenOf(lane))));
  try {
    return await measure('switchboard', scenario, chunkChars, async (lane) => {
      const observed: Observed = { startedAt: performance.now(), deltas: [] };
      const sent = await graphql<{ sendMessage: { assistantMessage: { id: string } } }>(
        url,
        SEND,
        { input: { content: scenario.pace.prompt, model: 'gpt-4o-mini' } },
        tokenOf(lane),
      );
      observed.sentAt = performance.now();
      let text = '';
      for await (const result of clients[lane]!.iterate({ query: STREAM, variables: { id: sent.sendMessage.assistantMessage.id } })) {
        const event = (result.data as { messageStream: { delta: string; done: boolean } } | undefined)?.messageStream;
        if (!event) throw new Error(`stream error: ${JSON.stringify(result.errors)}`);
        if (event.delta) {
          text += event.delta;
          observed.deltas.push({ at: performance.now(), textLength: text.length });
        }
        if (event.done) break;
      }
      return checkReply(observed, text, reply);
    });
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
  }
}

/** A graphql-ws client whose socket is open and acknowledged before the clock starts. */
async function openSocket(url: URL, token: string): Promise<Client> {
  let acknowledged!: () => void;
  const ready = new Promise<void>((resolve) => (acknowledged = resolve));
  const client = createClient({
    url: url.toString().replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    lazy: false,
    onNonLazyError: () => {},
    on: { connected: () => acknowledged() },
  });
  await ready;
  return client;
}
