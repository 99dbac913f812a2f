import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEMO_MODEL } from '../model-catalog.js';

export interface DemoUpstream {
  baseUrl: string;
  stop(): Promise<void>;
}

type DemoRequest = {
  messages: Array<{ role: string; content?: unknown }>;
  tools?: Array<{ function: { name: string } }>;
  tool_choice?: string | { function?: { name?: string } };
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
};

/** What the demo answers: text, or a call of one tool (with no arguments). */
type DemoReply = { content: string } | { toolCall: { id: string; name: string; arguments: string } };

// Small chunks at a steady pace, so a GraphiQL user sees the reply stream in.
const CHUNK_SIZE = 6;
const CHUNK_INTERVAL_MS = 25;

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

function replyTo(request: DemoRequest): DemoReply {
  const tool = toolToCall(request);
  if (tool) return { toolCall: { id: `call_${randomId()}`, name: tool, arguments: '{}' } };
  const said = lastUserText(request.messages).slice(0, 200);
  const results = toolResults(request.messages);
  return {
    content:
      `This is ${DEMO_MODEL.id}, Switchboard's built-in demo model: no OPENAI_API_KEY is configured, ` +
      `so no real LLM is answering. You said: "${said}".` +
      (results.length > 0 ? ` The tools answered: ${results.map((r) => JSON.stringify(r.slice(0, 200))).join(', ')}.` : '') +
      ' Set OPENAI_API_KEY (and optionally OPENAI_BASE_URL) to talk to a real model; everything else — streaming, usage, quotas — works the same.',
  };
}

const randomId = () => randomBytes(12).toString('base64url');

/** A rough count (four characters a token), reported as the upstream's usage like a real model's. */
const roughTokens = (text: string) => Math.max(1, Math.ceil(text.length / 4));

function usageOf(request: DemoRequest, reply: DemoReply) {
  const prompt = roughTokens(request.messages.map((m) => (typeof m.content === 'string' ? m.content : '')).join(''));
  const completion = roughTokens('content' in reply ? reply.content : reply.toolCall.name + reply.toolCall.arguments);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** The reply as OpenAI's stream deltas: the role, the text in small pieces (or the call), the finish. */
function deltasOf(reply: DemoReply): Array<{ delta: object; finish_reason: string | null }> {
  if ('toolCall' in reply) {
    const { id, name, arguments: args } = reply.toolCall;
    return [
      { delta: { role: 'assistant', content: null }, finish_reason: null },
      { delta: { tool_calls: [{ index: 0, id, type: 'function', function: { name, arguments: '' } }] }, finish_reason: null },
      { delta: { tool_calls: [{ index: 0, function: { arguments: args } }] }, finish_reason: null },
      { delta: {}, finish_reason: 'tool_calls' },
    ];
  }
  const pieces: string[] = [];
  for (let i = 0; i < reply.content.length; i += CHUNK_SIZE) pieces.push(reply.content.slice(i, i + CHUNK_SIZE));
  return [
    { delta: { role: 'assistant', content: '' }, finish_reason: null },
    ...pieces.map((content) => ({ delta: { content }, finish_reason: null })),
    { delta: {}, finish_reason: 'stop' },
  ];
}

/** A client that leaves mid-reply needs no handling: what is written after it left is dropped. */
async function streamReply(request: DemoRequest, reply: DemoReply, res: ServerResponse): Promise<void> {
  const head = { id: `chatcmpl-${randomId()}`, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: DEMO_MODEL.id };
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const send = (chunk: object) => res.write(`data: ${JSON.stringify({ ...head, ...chunk })}\n\n`);
  for (const { delta, finish_reason } of deltasOf(reply)) {
    await sleep(CHUNK_INTERVAL_MS);
    send({ choices: [{ index: 0, delta, logprobs: null, finish_reason }] });
  }
  if (request.stream_options?.include_usage) send({ choices: [], usage: usageOf(request, reply) });
  res.end('data: [DONE]\n\n');
}

function sendJson(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const requestError = (message: string) => ({ error: { message, type: 'invalid_request_error', param: null, code: null } });

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method === 'GET' && req.url === '/v1/models') {
    return sendJson(res, 200, { object: 'list', data: [{ id: DEMO_MODEL.id, object: 'model', created: 0, owned_by: 'switchboard' }] });
  }
  if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return sendJson(res, 404, requestError(`Unknown request: ${req.method} ${req.url}`));
  const request = (await readJson(req).catch(() => undefined)) as DemoRequest | undefined;
  if (!Array.isArray(request?.messages)) return sendJson(res, 400, requestError("Missing required parameter: 'messages'"));
  // The server's provider always streams; so does the demo.
  if (request.stream !== true) return sendJson(res, 400, requestError('The demo model only streams: set stream to true'));
  return streamReply(request, replyTo(request), res);
}

/**
 * Without OPENAI_API_KEY the server talks to this local server speaking OpenAI's streamed Chat
 * Completions, so that the real `openai` SDK path runs end to end. Its replies say what it
 * is. Offered tools, it calls one (with no arguments), and then answers with what the tools
 * returned, so that a function-calling client can be tried without a key.
 */
export async function startDemoUpstream(): Promise<DemoUpstream> {
  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
