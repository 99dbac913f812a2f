import { print, parse } from 'graphql';
import { createClient } from 'graphql-ws';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { graphql, percentile } from './harness.js';

export interface StreamingResult {
  name: string;
  generations: number;
  firstTokenP50Ms: number;
  firstTokenP99Ms: number;
  completeP50Ms: number;
  completeP99Ms: number;
  wallMs: number;
}

interface Timing {
  firstTokenMs: number;
  completeMs: number;
}

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 20);
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const SEND = 'mutation($input: SendMessageInput!) { sendMessage(input: $input) { assistantMessage { id } } }';
const STREAM = print(parse('subscription($id: ID!) { messageStream(messageId: $id) { seq delta done } }'));

async function measure(name: string, generate: () => Promise<Timing>): Promise<StreamingResult> {
  const timings: Timing[] = [];
  const started = performance.now();
  for (let round = 0; round < ROUNDS; round += 1) {
    timings.push(...(await Promise.all(Array.from({ length: CONCURRENCY }, generate))));
  }
  return {
    name,
    generations: timings.length,
    firstTokenP50Ms: percentile(timings.map((t) => t.firstTokenMs), 50),
    firstTokenP99Ms: percentile(timings.map((t) => t.firstTokenMs), 99),
    completeP50Ms: percentile(timings.map((t) => t.completeMs), 50),
    completeP99Ms: percentile(timings.map((t) => t.completeMs), 99),
    wallMs: performance.now() - started,
  };
}

/** The same streamed completions straight from the upstream with the openai SDK: the floor. */
export function benchDirect(upstreamBaseUrl: string, prompt: string, expectedReply: string): Promise<StreamingResult> {
  const openai = new OpenAI({ baseURL: upstreamBaseUrl, apiKey: 'sk-bench', maxRetries: 0 });
  return measure(`openai SDK straight to the upstream (${prompt})`, async () => {
    const start = performance.now();
    let firstTokenMs = NaN;
    let text = '';
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: prompt }],
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta?.content;
      if (delta && Number.isNaN(firstTokenMs)) firstTokenMs = performance.now() - start;
      text += delta ?? '';
    }
    if (text !== expectedReply) throw new Error('the upstream reply arrived incomplete');
    return { firstTokenMs, completeMs: performance.now() - start };
  });
}

/**
 * Through Switchboard as a chat app uses it: sendMessage over HTTP, then messageStream over
 * graphql-ws (one socket per lane), until `done`; the reply is checked whole.
 */
export async function benchSwitchboard(url: URL, token: string, prompt: string, expectedReply: string): Promise<StreamingResult> {
  const clients = Array.from({ length: CONCURRENCY }, () =>
    createClient({
      url: url.toString().replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      lazy: false,
      onNonLazyError: () => {},
    }),
  );
  let lane = 0;
  try {
    return await measure(`Switchboard: sendMessage + messageStream over graphql-ws (${prompt})`, async () => {
      const client = clients[lane++ % CONCURRENCY]!;
      const start = performance.now();
      const sent = await graphql<{ sendMessage: { assistantMessage: { id: string } } }>(
        url,
        SEND,
        { input: { content: prompt, model: 'gpt-4o-mini' } },
        token,
      );
      let firstTokenMs = NaN;
      let text = '';
      for await (const result of client.iterate({ query: STREAM, variables: { id: sent.sendMessage.assistantMessage.id } })) {
        const event = (result.data as { messageStream: { delta: string; done: boolean } } | undefined)?.messageStream;
        if (!event) throw new Error(`stream error: ${JSON.stringify(result.errors)}`);
        if (event.delta && Number.isNaN(firstTokenMs)) firstTokenMs = performance.now() - start;
        text += event.delta;
        if (event.done) break;
      }
      if (text !== expectedReply) throw new Error('the streamed reply arrived incomplete');
      return { firstTokenMs, completeMs: performance.now() - start };
    });
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
  }
}
