import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startLocalServer } from './local-server.js';

/** The server's OpenAI key in these tests: recognisable wherever it might leak. */
export const TEST_OPENAI_KEY = 'sk-test-realtime-server-key-must-never-reach-a-client';

/** A request the server made to the client-secrets endpoint, and the secret it was given (if any). */
export interface ClientSecretRequest {
  authorization: string | undefined;
  body: unknown;
  /** The `value` answered; undefined when the request was answered with a failure. */
  secret?: string;
  expiresAt?: number;
}

type Failure = { status: number; body: unknown; headers?: Record<string, string> };

/**
 * OpenAI's `POST /v1/realtime/client_secrets`, shaped like its API reference, on a free loopback
 * port. aimock, the suite's upstream, has no handler for it.
 */
export class LocalRealtimeApi {
  readonly requests: ClientSecretRequest[] = [];
  /** Answers the next requests with these instead (each use consumes one). */
  private failures: Failure[] = [];

  private constructor(
    readonly url: string,
    readonly stop: () => Promise<void>,
  ) {}

  static async start(): Promise<LocalRealtimeApi> {
    let api: LocalRealtimeApi | undefined;
    const server = await startLocalServer((req, res) => void api!.handle(req, res));
    api = new LocalRealtimeApi(server.url, server.stop);
    return api;
  }

  /** Environment that points a Switchboard instance at this API with the test key. */
  get env(): Record<string, string> {
    return { OPENAI_API_KEY: TEST_OPENAI_KEY, OPENAI_BASE_URL: `${this.url}/v1` };
  }

  /** Answers the next request with an OpenAI error of this status. */
  failNext(status: number, message: string, headers?: Record<string, string>): void {
    this.failures.push({ status, headers, body: { error: { message, type: 'server_error', param: null, code: null } } });
  }

  /** Answers the next request with HTTP 200 and this body instead of a client secret. */
  answerNext(body: unknown): void {
    this.failures.push({ status: 200, body });
  }

  requestFor(secret: string): ClientSecretRequest | undefined {
    return this.requests.find((r) => r.secret === secret);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const request: ClientSecretRequest = { authorization: req.headers.authorization, body: text ? JSON.parse(text) : undefined };
    this.requests.push(request);

    if (req.method !== 'POST' || req.url !== '/v1/realtime/client_secrets') {
      return reply(res, 404, openAiError('invalid_request_error', `Invalid URL (${req.method} ${req.url})`));
    }
    if (req.headers.authorization !== `Bearer ${TEST_OPENAI_KEY}`) {
      return reply(res, 401, openAiError('invalid_request_error', 'Incorrect API key provided'));
    }
    const failure = this.failures.shift();
    if (failure) return reply(res, failure.status, failure.body, failure.headers);

    const body = request.body as {
      expires_after?: { anchor?: string; seconds?: number };
      session?: { type: string; model?: string; audio?: { output?: { voice?: string } } };
    };
    const createdAt = Math.floor(Date.now() / 1000);
    request.secret = `ek_${randomBytes(16).toString('hex')}`;
    request.expiresAt = createdAt + (body.expires_after?.seconds ?? 600);
    return reply(res, 200, {
      value: request.secret,
      expires_at: request.expiresAt,
      session: {
        type: 'realtime',
        object: 'realtime.session',
        id: `sess_${randomBytes(8).toString('hex')}`,
        model: body.session?.model ?? 'gpt-realtime',
        output_modalities: ['audio'],
        instructions: 'Your knowledge cutoff is 2023-10.',
        tools: [],
        tool_choice: 'auto',
        max_output_tokens: 'inf',
        tracing: null,
        truncation: 'auto',
        prompt: null,
        expires_at: 0,
        audio: {
          input: { format: { type: 'audio/pcm', rate: 24000 }, transcription: null, noise_reduction: null, turn_detection: null },
          output: { format: { type: 'audio/pcm', rate: 24000 }, voice: body.session?.audio?.output?.voice ?? 'alloy', speed: 1 },
        },
        include: null,
      },
    });
  }
}

function openAiError(type: string, message: string) {
  return { error: { message, type, param: null, code: null } };
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}
