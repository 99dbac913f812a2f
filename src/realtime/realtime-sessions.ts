import type { Config } from '../config.js';
import type { PrismaClient } from '../db/client.js';
import { AppError, badInput } from '../errors.js';
import type { Logger } from '../logger.js';
import { ZERO_METERED_USAGE, type Metering } from '../metering/metering.js';
import { zeroPrice, type ModelPrice } from '../metering/prices.js';
import { describeUpstreamFailure, type Upstream } from '../providers/openai-compatible.js';

/** OpenAI's built-in Realtime voices. */
export const REALTIME_VOICES = ['alloy', 'ash', 'ballad', 'coral', 'echo', 'sage', 'shimmer', 'verse', 'marin', 'cedar'] as const;
export const DEFAULT_REALTIME_VOICE = 'alloy';

/**
 * A session holds one token of the monthly quota while its secret is minted, so that a user whose
 * quota is used up is refused; it is charged none (its price is per session).
 */
const QUOTA_CHECK_TOKENS = 1;

/** What the browser needs to open a Realtime session itself; never the server's API key. */
export interface RealtimeSession {
  clientSecret: string;
  expiresAt: Date;
  model: string;
}

export interface RealtimeSessionRequest {
  model?: string | null;
  voice?: string | null;
}

/** Who asks: the user, and the API key they call with (whose monthly budget applies too). */
export interface RealtimeCaller {
  id: string;
  apiKeyId?: string;
}

export interface RealtimeSessions {
  /** Mints a short-lived client secret for the caller, charging the per-session price once it exists. */
  create(caller: RealtimeCaller, request: RealtimeSessionRequest): Promise<RealtimeSession>;
}

/** The usage line a model's sessions are rolled up and billed under. */
export const realtimeUsageModel = (model: string) => `realtime:${model}`;

export function createRealtimeSessions(deps: {
  prisma: PrismaClient;
  metering: Metering;
  upstream: Upstream;
  config: Pick<Config, 'realtime' | 'chat'>;
  logger: Logger;
}): RealtimeSessions {
  const { prisma, metering, upstream, config, logger } = deps;
  const { realtime } = config;
  // The server never sees the audio a browser exchanges with OpenAI: the session price is the charge.
  const price: ModelPrice = {
    ...zeroPrice('free'),
    perCallMicros: realtime.sessionPriceMicros,
    source: realtime.sessionPriceMicros > 0 ? 'configuration' : 'free',
  };
  // Past the upstream's own timeout the mint call is surely over: only then may the sweep settle it.
  const leaseMs = config.chat.upstreamTimeoutMs + config.chat.generationLeaseMs;

  const resolveRequest = (request: RealtimeSessionRequest) => {
    const model = request.model ?? realtime.defaultModel;
    if (!realtime.models.includes(model)) {
      throw badInput(`Unknown Realtime model ${JSON.stringify(model)}; one of: ${realtime.models.join(', ')}`, 'model');
    }
    const voice = request.voice ?? DEFAULT_REALTIME_VOICE;
    if (!(REALTIME_VOICES as readonly string[]).includes(voice)) {
      throw badInput(`Unknown voice ${JSON.stringify(voice)}; one of: ${REALTIME_VOICES.join(', ')}`, 'voice');
    }
    return { model, voice };
  };

  const mint = async (model: string, voice: string) => {
    const minted = await upstream.realtime.clientSecrets.create({
      expires_after: { anchor: 'created_at', seconds: realtime.secretTtlSeconds },
      session: { type: 'realtime', model, audio: { output: { voice } } },
    });
    if (typeof minted?.value !== 'string' || minted.value === '' || !Number.isFinite(minted.expires_at)) {
      throw new MalformedClientSecret();
    }
    return { clientSecret: minted.value, expiresAt: new Date(minted.expires_at * 1000), model };
  };

  return {
    async create(caller, request) {
      const { model, voice } = resolveRequest(request);
      if (config.chat.demo) {
        throw new AppError('LLM_NOT_CONFIGURED', 'Realtime sessions need OPENAI_API_KEY', { feature: 'realtime' });
      }
      const usageModel = realtimeUsageModel(model);
      // One statement each: reserving and settling need no transaction of their own.
      const reservation = await metering.reserve(prisma, {
        userId: caller.id,
        apiKeyId: caller.apiKeyId,
        kind: 'REALTIME',
        model: { id: usageModel, price },
        promptEstimate: 0,
        maxOutputTokens: QUOTA_CHECK_TOKENS,
        leaseMs,
      });

      let session: RealtimeSession;
      try {
        session = await mint(model, voice);
      } catch (error) {
        // No secret exists, so nothing is charged. Should the release fail, the sweep settles the
        // reservation once its lease lapses, at the session price: the server cannot tell then.
        await prisma.$transaction((tx) => metering.release(tx, reservation.id));
        const failure =
          error instanceof MalformedClientSecret
            ? { message: 'The model provider returned no client secret', status: undefined, retryAfterSeconds: undefined }
            : describeUpstreamFailure(error);
        logger.warn({ status: failure.status, model }, `could not mint a Realtime client secret: ${failure.message}`);
        throw new AppError('UPSTREAM_ERROR', failure.message, {
          ...(failure.retryAfterSeconds !== undefined ? { retryAfter: failure.retryAfterSeconds } : {}),
        });
      }

      try {
        const settled = await metering.settle(prisma, { reservationId: reservation.id, usage: ZERO_METERED_USAGE, by: 'RUN' });
        if (settled) metering.countCharged(usageModel, ZERO_METERED_USAGE, settled.costMicros);
      } catch (error) {
        // The secret exists and is the user's: the sweep charges it once the lease lapses.
        logger.error({ err: error, reservationId: reservation.id }, 'could not settle a Realtime session; the sweep will');
      }
      return session;
    },
  };
}

class MalformedClientSecret extends Error {}
