import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalId } from '../src/global-id.js';
import { registerUser } from './helpers/accounts.js';
import { expectData, startTestApp, type TestApp } from './helpers/app.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import { MessageAttemptsDocument } from './helpers/failover-documents.js';
import {
  CANONICAL_ANSWER,
  FAULT_SCENARIOS,
  HEALTHY_MODEL,
  NO_PREFILL_MODEL,
  startFaultProvider,
  type FaultProvider,
  type FaultScenario,
  type JournalEntry,
} from './helpers/fault-provider.js';
import { followStream, type MessageStreamEvent } from './helpers/ws.js';

/**
 * The failoverbench scenarios through the GraphQL API, on both wire shapes: a reply asked of a
 * misbehaving model must reach its subscriber whole (or, for a policy refusal, end with a clean
 * error), and the fault provider's journal shows how the server behaved on the way.
 */

const SHAPES = [
  // An OpenAI-compatible provider takes no prefill by default: a reply cut mid-way is restarted.
  { shape: 'openai', provider: 'wall', prefix: 'oa' },
  // Anthropic takes one: a reply cut mid-way is continued from its partial text.
  { shape: 'anthropic', provider: 'wall-claude', prefix: 'an' },
] as const;
type Shape = (typeof SHAPES)[number];

const PRICE = { promptMicrosPerMillion: 3_000_000, completionMicrosPerMillion: 15_000_000 };
const SMALL_CONTEXT = 16_000;
const LARGE_CONTEXT = 200_000;

const catalogId = (shape: Shape, model: string) => `${shape.prefix}-${model.replace('/', '-')}`;
/** The fault provider reads the fault from the part after the last slash. */
const upstreamName = (shape: Shape, model: string) => `${shape.prefix}/${model}`;
const fallbackOf = (scenario: FaultScenario) => `${scenario.id.toLowerCase()}/${scenario.fallbackModel}`;

function catalog(scenarios: readonly FaultScenario[]) {
  return SHAPES.flatMap((shape) => {
    const entry = (model: string, contextWindow: number, fallbacks: string[] = []) => ({
      id: catalogId(shape, model),
      contextWindow,
      maxOutputTokens: 1000,
      ...PRICE,
      deployments: [{ provider: shape.provider, model: upstreamName(shape, model) }],
      fallbacks,
    });
    // Each scenario has a fallback of its own, so that the journal tells their attempts apart.
    return scenarios.flatMap((s) => [
      entry(s.model, SMALL_CONTEXT, [catalogId(shape, fallbackOf(s))]),
      entry(fallbackOf(s), LARGE_CONTEXT),
    ]);
  });
}

function serverEnv(wall: FaultProvider, scenarios: readonly FaultScenario[], extra: Record<string, string> = {}) {
  return {
    PROVIDERS_JSON: JSON.stringify([
      { id: 'wall', kind: 'openai-compatible', baseUrl: wall.baseUrl, apiKey: 'sk-wall-secret-key' },
      { id: 'wall-claude', kind: 'anthropic', baseUrl: wall.anthropicBaseUrl, apiKey: 'sk-ant-wall-secret-key' },
    ]),
    MODELS_JSON: JSON.stringify(catalog(scenarios)),
    UPSTREAM_TIMEOUT_SECONDS: '5',
    UPSTREAM_FAILOVER_FIRST_TOKEN_SECONDS: '1',
    UPSTREAM_MAX_ATTEMPTS: '3',
    SIGNUP_CREDITS_MICROS: '10000000',
    ...extra,
  };
}

/** The text a subscriber ends with: deltas appended, a reset starting it anew. */
function receivedText(events: MessageStreamEvent[]): string {
  return events.reduce((text, e) => (e.reset ? e.delta : text + e.delta), '');
}

async function ask(t: TestApp, url: URL, token: string, model: string) {
  const sent = expectData(await t.execute(SendMessageDocument, { input: { content: 'Explain failover in sixty words.', model } }, { token }));
  const messageId = sent.sendMessage.assistantMessage.id;
  const events = await followStream(url, token, messageId);
  const read = expectData(await t.execute(MessageAttemptsDocument, { id: messageId }, { token }));
  const message = read.node as Extract<NonNullable<typeof read.node>, { attempts: unknown }>;
  return { messageId: decodeGlobalId(messageId).id, events, message };
}

const gapsMs = (entries: JournalEntry[]) => entries.slice(1).map((e, i) => e.t - entries[i]!.t);

describe('the failoverbench scenarios, through the GraphQL API', () => {
  const scenarios = FAULT_SCENARIOS.filter((s) => s.id !== 'S15');
  let wall: FaultProvider;
  let t: TestApp;
  let url: URL;
  beforeAll(async () => {
    wall = await startFaultProvider({ timings: { tokenIntervalMs: 2, slowFirstTokenMs: 3_000, stallMs: 2_500, retryAfterSeconds: 1 } });
    t = await startTestApp(serverEnv(wall, scenarios));
    url = await t.app.start(0);
  });
  afterAll(async () => {
    await t.stop();
    await wall.close();
  });

  for (const shape of SHAPES) {
    for (const scenario of scenarios) {
      const primary = () => wall.attempts(upstreamName(shape, scenario.model));
      const fallback = () => wall.attempts(upstreamName(shape, fallbackOf(scenario)));

      it(`${scenario.id} (${scenario.fault}, ${shape.shape}): ${scenario.description}`, async () => {
        const user = await registerUser(t);
        const reply = await ask(t, url, user.accessToken, catalogId(shape, scenario.model));
        const { message, events } = reply;
        const attempts = message.attempts;
        expect(events.at(-1)?.done).toBe(true);

        if (scenario.fault === 'content_filter') {
          // The one refusal that ends the reply: not retried, not failed over, the provider's reason shown.
          expect(message).toMatchObject({ status: 'FAILED', error: { code: 'CONTENT_FILTERED' } });
          expect(message.error?.message).toMatch(/safety system|content filtering policy/i);
          expect(primary()).toHaveLength(1);
          expect(fallback()).toHaveLength(0);
          expect(attempts).toMatchObject([{ outcome: 'REFUSED', httpStatus: 400, billed: false }]);
          return;
        }

        // Whatever happened, the subscriber and the stored message hold the whole answer.
        expect(receivedText(events)).toBe(CANONICAL_ANSWER);
        expect(message).toMatchObject({ status: 'COMPLETE', content: CANONICAL_ANSWER, error: null });
        // The user pays for the attempts whose text is in the reply, each at its own rate.
        const billed = attempts.filter((a) => a.billed);
        expect(billed.length).toBeGreaterThan(0);
        expect(message.costMicros).toBe(billed.reduce((sum, a) => sum + a.costMicros, 0));
        expect(message.promptTokens).toBe(billed.reduce((sum, a) => sum + a.promptTokens, 0));
        const last = attempts.at(-1)!;
        expect(last).toMatchObject({ outcome: 'OK', billed: true });
        expect(message.model).toBe(last.model);
        expect(message.provider).toBe(shape.provider);
        const reset = events.some((e) => e.reset);

        switch (scenario.fault) {
          case 'rate_limited_once': {
            // Retried on the same deployment once the Retry-After had passed, never hammered.
            expect(primary()).toHaveLength(2);
            expect(gapsMs(primary())[0]).toBeGreaterThanOrEqual(900);
            expect(fallback()).toHaveLength(0);
            break;
          }
          case 'server_error_once':
          case 'reset_once': {
            expect(primary()).toHaveLength(2);
            expect(fallback()).toHaveLength(0);
            break;
          }
          case 'rate_limited':
          case 'overloaded': {
            // A bounded number of attempts with backoff, then the fallback, which names the reply.
            expect(primary()).toHaveLength(3);
            for (const gap of gapsMs(primary())) expect(gap).toBeGreaterThanOrEqual(200);
            expect(fallback()).toHaveLength(1);
            expect(message.model).toBe(catalogId(shape, fallbackOf(scenario)));
            // The failed attempts are recorded, and not billed.
            expect(attempts.slice(0, 3)).toMatchObject(Array(3).fill({ outcome: 'ERROR', billed: false, costMicros: 0 }));
            expect(message.usageEstimated).toBe(false);
            break;
          }
          case 'no_response':
          case 'slow_first_token': {
            // A silent or slow route is given up after the first-token limit and not called again.
            expect(primary()).toHaveLength(1);
            expect(fallback()).toHaveLength(1);
            expect(attempts[0]).toMatchObject({ outcome: 'TIMEOUT', billed: false });
            break;
          }
          case 'stream_cut':
          case 'stream_stall':
          case 'inband_error': {
            // Text had reached the subscriber: the reply carries on at the fallback.
            expect(primary()).toHaveLength(1);
            expect(attempts[0]!.outcome).toMatch(/CUT|TIMEOUT/);
            const continuedAt = fallback().find((e) => e.prefill !== null);
            if (shape.prefix === 'an' && scenario.fallbackModel === HEALTHY_MODEL) {
              // Continued from the partial text: no reset, and both legs are what the reply cost.
              expect(reset).toBe(false);
              expect(continuedAt?.prefill && CANONICAL_ANSWER.startsWith(continuedAt.prefill.trim())).toBe(true);
              expect(attempts.map((a) => a.billed)).toEqual([true, true]);
              expect(attempts[1]).toMatchObject({ continued: true });
            } else {
              // Restarted after a reset: only the final leg is billed.
              expect(reset).toBe(true);
              expect(attempts.at(-1)).toMatchObject({ continued: false });
              expect(attempts.slice(0, -1).every((a) => !a.billed)).toBe(true);
            }
            if (scenario.fallbackModel === NO_PREFILL_MODEL && shape.prefix === 'an') {
              // The fallback refused the prefill: the reply was restarted there, and that refusal is not the outcome.
              expect(fallback().map((e) => e.prefill !== null)).toEqual([true, false]);
              expect(attempts.map((a) => a.outcome)).toEqual(['CUT', 'REFUSED', 'OK']);
            }
            break;
          }
          case 'malformed_event':
          case 'no_done': {
            // Recovered in place: the bad event skipped, the missing end not waited for.
            expect(primary()).toHaveLength(1);
            expect(fallback()).toHaveLength(0);
            expect(reset).toBe(false);
            expect(message.usageEstimated).toBe(false);
            break;
          }
          case 'context_length': {
            // Never retried on the same model: straight to the fallback with the larger context.
            expect(primary()).toHaveLength(1);
            expect(fallback()).toHaveLength(1);
            expect(attempts[0]).toMatchObject({ outcome: 'REFUSED', httpStatus: 400, billed: false });
            break;
          }
          default:
            throw new Error(`no expectations for ${scenario.fault}`);
        }
      });
    }
  }
});

describe('a primary that is down, then healthy (S15), with the circuit shared by two instances', () => {
  const flap = FAULT_SCENARIOS.find((s) => s.id === 'S15')!;
  const shape = SHAPES[0];
  let wall: FaultProvider;
  const instances: Array<{ t: TestApp; url: URL }> = [];
  beforeAll(async () => {
    wall = await startFaultProvider({ timings: { tokenIntervalMs: 2, flapDownMs: 2_500 } });
    // Two instances share the circuit through Redis; embedded, one instance keeps it in memory.
    const count = process.env.REDIS_URL ? 2 : 1;
    for (let i = 0; i < count; i += 1) {
      const t = await startTestApp(serverEnv(wall, [flap], { CIRCUIT_PROBE_SECONDS: '0.5', CIRCUIT_FAILURE_THRESHOLD: '3' }));
      instances.push({ t, url: await t.app.start(0) });
    }
  });
  afterAll(async () => {
    for (const { t } of instances) await t.stop();
    await wall.close();
  });

  it('serves from the fallback during the outage, probes the primary sparingly, and returns to it once it recovers', async () => {
    const users = await Promise.all(instances.map(({ t }) => registerUser(t)));
    const primaryModel = catalogId(shape, flap.model);
    const primary = () => wall.attempts(upstreamName(shape, flap.model));
    wall.reset();
    const replies: Array<Awaited<ReturnType<typeof ask>> & { instance: number }> = [];
    // One request after another, alternating instances, until the primary has answered twice after the outage.
    for (let i = 0; replies.filter((r) => r.message.model === primaryModel).length < 2; i += 1) {
      if (i >= 200) throw new Error('the primary never served again');
      const instance = i % instances.length;
      const { t, url } = instances[instance]!;
      replies.push({ ...(await ask(t, url, users[instance]!.accessToken, primaryModel)), instance });
    }

    // Every reply was whole: from the fallback while the primary was down, from the primary after.
    for (const reply of replies) expect(reply.message).toMatchObject({ status: 'COMPLETE', content: CANONICAL_ANSWER });
    expect(replies[0]!.message.model).not.toBe(primaryModel);
    const outage = primary().filter((e) => e.action.startsWith('5'));
    expect(outage.length).toBeGreaterThan(0);
    // The first request opened the circuit; after it, each request made at most one (probe) call to the primary.
    expect(replies[0]!.message.attempts.filter((a) => a.model === primaryModel)).toHaveLength(3);
    for (const reply of replies.slice(1)) expect(reply.message.attempts.filter((a) => a.model === primaryModel).length).toBeLessThanOrEqual(1);
    // Probes are spaced by the probe interval, across instances too.
    const probes = outage.slice(3);
    for (const gap of gapsMs(probes)) expect(gap).toBeGreaterThanOrEqual(400);
    // Once the primary answered, the circuit closed: the reply after it went to the primary at once.
    const firstBack = replies.findIndex((r) => r.message.model === primaryModel);
    expect(replies[firstBack + 1]!.message).toMatchObject({ model: primaryModel });
    expect(replies[firstBack + 1]!.message.attempts).toHaveLength(1);
    if (instances.length > 1) {
      // The second instance learnt of the outage from the first: it never spent three calls on the primary.
      for (const reply of replies.filter((r) => r.instance === 1)) {
        expect(reply.message.attempts.filter((a) => a.model === primaryModel).length).toBeLessThanOrEqual(1);
      }
    }
  });
});


describe('an Anthropic reply that reads and writes the prompt cache', () => {
  let wall: FaultProvider;
  let t: TestApp;
  let url: URL;
  const price = { inputMicrosPerMillion: 3_000_000, cachedInputMicrosPerMillion: 300_000, cacheWriteMicrosPerMillion: 3_750_000, outputMicrosPerMillion: 15_000_000 };
  beforeAll(async () => {
    wall = await startFaultProvider({ timings: { tokenIntervalMs: 1 }, cache: { readTokens: 1_200, writeTokens: 800 } });
    t = await startTestApp({
      PROVIDERS_JSON: JSON.stringify([{ id: 'claude', kind: 'anthropic', baseUrl: wall.anthropicBaseUrl, apiKey: 'sk-ant-cache' }]),
      MODELS_JSON: JSON.stringify([
        {
          id: 'sonnet',
          contextWindow: 200_000,
          maxOutputTokens: 1000,
          promptMicrosPerMillion: price.inputMicrosPerMillion,
          cachedInputMicrosPerMillion: price.cachedInputMicrosPerMillion,
          cacheWriteMicrosPerMillion: price.cacheWriteMicrosPerMillion,
          completionMicrosPerMillion: price.outputMicrosPerMillion,
          deployments: [{ provider: 'claude', model: HEALTHY_MODEL }],
        },
      ]),
    });
    url = await t.app.start(0);
  });
  afterAll(async () => {
    await t.stop();
    await wall.close();
  });

  it('counts the whole input as prompt tokens and prices reads, writes and the rest each at its own rate', async () => {
    const user = await registerUser(t);
    const { message } = await ask(t, url, user.accessToken, 'sonnet');
    const [call] = wall.attempts(HEALTHY_MODEL);
    // Anthropic's input_tokens leaves the cache out: the prompt is it plus the reads and writes.
    const uncached = call!.promptTokens;
    expect(message).toMatchObject({ status: 'COMPLETE', promptTokens: uncached + 2_000, cachedTokens: 1_200, cacheWriteTokens: 800, usageEstimated: false });
    const completion = message.completionTokens;
    expect(completion).toBe(call!.completionTokensSent);
    const micros = uncached * price.inputMicrosPerMillion + 1_200 * price.cachedInputMicrosPerMillion + 800 * price.cacheWriteMicrosPerMillion + completion * price.outputMicrosPerMillion;
    expect(message.costMicros).toBe(Math.ceil(micros / 1_000_000));
    expect(message.attempts).toMatchObject([{ cachedTokens: 1_200, cacheWriteTokens: 800, billed: true, costMicros: message.costMicros }]);
  });
});
