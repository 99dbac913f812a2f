import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import type { PrismaClient, PrismaTx } from '../db/client.js';
import { AppError, invalidCredential } from '../errors.js';
import type { Reservation } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import type { UsageMetrics } from '../observability/metrics.js';
import { costMicros, isFree, type MeteredUsage, type ModelPrice } from './prices.js';
import { quotaPeriodOf, type PlanQuotas } from './quota.js';

export interface ReserveRequest {
  userId: string;
  /** The assistant message the call writes, when there is one. */
  messageId?: string;
  /** The API key the call is made with: its monthly budget applies too, and its spend is kept. */
  apiKeyId?: string;
  /**
   * CHAT for chat completions; REALTIME for a Realtime session, priced per session (`price.perCallMicros`);
   * TITLE for a conversation's title written by the title model.
   */
  kind?: 'CHAT' | 'REALTIME' | 'TITLE';
  model: { id: string; price: ModelPrice };
  /** Worst case of the call: its estimated prompt and the most it may generate. */
  promptEstimate: number;
  maxOutputTokens: number;
  leaseMs: number;
}

export type SettledBy = 'RUN' | 'RECOVERY' | 'SWEEP';

/** What settling a call needs to know. */
export interface SettleRequest {
  reservationId: string;
  usage: MeteredUsage;
  by: SettledBy;
  /**
   * The reservation's price when the caller knows it (the generation that reserved it), which
   * saves reading it first; a price that is not the reservation's is replaced by the stored one.
   */
  price?: ModelPrice;
  /**
   * The catalog model that served the call when it is not the one reserved (a fallback): the
   * day's roll-up and the ledger count the call under it.
   */
  model?: string;
  /**
   * The cost to charge as is, instead of the price times the usage: the sum of several upstream
   * calls, each priced at its own deployment's rate. The price is still checked against the
   * reservation's.
   */
  costMicros?: bigint;
}

export interface Settlement {
  /** The model the call is counted under: the one that served it when the request named one, else the one reserved. */
  model: string;
  costMicros: bigint;
  /** A correction of a call settled by estimate earlier, rather than its settlement. */
  corrected?: boolean;
}

/**
 * What metering_settle answers: settled now (a call counted under `model`), settled before, or priced wrong
 * (nothing written); generation_record_final may answer metering_correct's instead: corrected now
 * (a call for `model`), or nothing to correct.
 */
export type SettleAnswer =
  | { settled: true; model: string }
  | { settled: false }
  | { priceChanged: true }
  | { corrected: true; model: string }
  | { corrected: false };

export const ZERO_METERED_USAGE: MeteredUsage = { promptTokens: 0, cachedTokens: 0, cacheWriteTokens: 0, completionTokens: 0, reasoningTokens: 0 };
const SWEEP_BATCH = 100;

/**
 * Everything that makes a call cost something: the worst case is held before the call (monthly
 * quota tokens and credits, by plan), and what was really used is charged once after it.
 *
 * Billing model: FREE pays every priced call from credits, within its monthly quota. PRO and
 * TEAM include their quota; past it, calls continue on credits when the balance covers them.
 * Free models never need credits. The quota is a hard cap for what nobody pays for.
 */
export class Metering {
  constructor(private readonly deps: { prisma: PrismaClient; quotas: PlanQuotas; metrics: UsageMetrics; logger: Logger }) {}

  /**
   * Holds the worst case of a call, or refuses it (writing nothing), in one statement: the
   * database function metering_reserve decides and writes under the user's row lock, which
   * serializes the user's concurrent calls. `tx` may be a transaction that writes what the call is for.
   */
  async reserve(tx: PrismaTx, request: ReserveRequest): Promise<{ id: string }> {
    const { id, params } = this.reservationParams(request);
    const [row] = await tx.$queryRaw<[{ decision: ReserveDecision }]>`
      SELECT "metering_reserve"(${JSON.stringify(params)}::jsonb) AS "decision"`;
    const refusal = refusalError(row.decision);
    if (refusal) throw refusal;
    return { id };
  }

  /**
   * What the database's reservation functions need to know of a call (metering_decide and
   * metering_hold, used by metering_reserve and by chat_send_message); `id` is the reservation's.
   */
  reservationParams(request: ReserveRequest): { id: string; params: Record<string, unknown> } {
    const { model } = request;
    const id = uuidv7();
    return {
      id,
      params: {
        reservationId: id,
        userId: request.userId,
        apiKeyId: request.apiKeyId ?? null,
        messageId: request.messageId ?? null,
        kind: request.kind ?? 'CHAT',
        model: model.id,
        price: model.price,
        period: quotaPeriodOf().toISOString().slice(0, 10),
        quotas: this.deps.quotas,
        tokens: request.promptEstimate + request.maxOutputTokens,
        free: isFree(model.price),
        worstCostMicros: worstCaseCost(model.price, request.promptEstimate, request.maxOutputTokens).toString(),
        promptEstimate: request.promptEstimate,
        leaseExpiresAt: new Date(Date.now() + request.leaseMs).toISOString(),
      },
    };
  }

  /** Pushes a running call's lease forward; false once it was settled elsewhere. */
  async renewLease(reservationId: string, leaseMs: number): Promise<boolean> {
    const renewed = await this.deps.prisma.reservation.updateMany({
      where: { id: reservationId, settledAt: null },
      data: { leaseExpiresAt: new Date(Date.now() + leaseMs) },
    });
    return renewed.count === 1;
  }

  /**
   * Charges what a call used, exactly once, whatever was held: the quota is charged the tokens
   * billed and the credits the real cost (metering_settle, one statement). Returns null when the
   * reservation was already settled.
   */
  settle(tx: PrismaTx, request: SettleRequest): Promise<Settlement | null> {
    return this.settleThrough(tx, request, async (params) => {
      const [row] = await tx.$queryRaw<[{ answer: SettleAnswer }]>`SELECT "metering_settle"(${JSON.stringify(params)}::jsonb) AS "answer"`;
      return row.answer;
    });
  }

  /**
   * Settles through `statement`: metering_settle, or a database function that calls it with its
   * parameters and does more in the same statement (generation_record_final). The cost is
   * computed here, at the reservation's price (unless the request brings its own), which the
   * statement checks. Null when there was nothing to settle (or correct).
   */
  async settleThrough(
    tx: PrismaTx,
    request: SettleRequest,
    statement: (params: Record<string, unknown>) => Promise<SettleAnswer>,
  ): Promise<Settlement | null> {
    let price: { stored: unknown; parsed: ModelPrice } | null | undefined = request.price && {
      stored: request.price,
      parsed: request.price,
    };
    // Twice at most: a price that is not the reservation's is replaced by the stored one.
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      price ??= await storedPriceOf(tx, request.reservationId);
      if (!price) return null;
      const cost = request.costMicros ?? costMicros(price.parsed, request.usage);
      const answer = await statement({
        reservationId: request.reservationId,
        price: price.stored,
        usage: { ...request.usage },
        costMicros: cost.toString(),
        by: request.by,
        ...(request.model === undefined ? {} : { model: request.model }),
        ledgerEntryId: uuidv7(),
      });
      if ('priceChanged' in answer) {
        price = undefined;
        continue;
      }
      if ('corrected' in answer) return answer.corrected ? { model: answer.model, costMicros: cost, corrected: true } : null;
      return answer.settled ? { model: answer.model, costMicros: cost } : null;
    }
    throw new Error(`reservation ${request.reservationId}: its price changed while it was being settled`);
  }

  /**
   * Releases the holds of a call that never happened (the upstream refused it before doing any
   * work): nothing is charged and no request is counted (metering_settle, released). False when
   * it was already settled.
   */
  async release(tx: PrismaTx, reservationId: string): Promise<boolean> {
    const params = { reservationId, released: true, by: 'RUN', usage: { ...ZERO_METERED_USAGE }, costMicros: '0' };
    const [row] = await tx.$queryRaw<[{ answer: SettleAnswer }]>`SELECT "metering_settle"(${JSON.stringify(params)}::jsonb) AS "answer"`;
    return 'settled' in row.answer && row.answer.settled;
  }

  /**
   * Settles, at their estimate, reservations whose lease lapsed and whose message is gone or no
   * longer running (a running one is closed by generation recovery, with its text). Safe on
   * every instance at once: settling is exactly-once. Returns how many it settled.
   */
  async sweep(lapsedBefore = new Date()): Promise<number> {
    const { prisma } = this.deps;
    let settled = 0;
    for (;;) {
      const lapsed = await prisma.$queryRaw<Array<{ id: string; promptEstimate: number }>>`
        SELECT r."id", r."promptEstimate" FROM "Reservation" r
        WHERE r."settledAt" IS NULL AND r."leaseExpiresAt" < ${lapsedBefore}
          AND NOT EXISTS (SELECT 1 FROM "Message" m WHERE m."id" = r."messageId" AND m."status" IN ('PENDING', 'STREAMING'))
        ORDER BY r."leaseExpiresAt" LIMIT ${SWEEP_BATCH}`;
      let failed = 0;
      for (const { id, promptEstimate } of lapsed) {
        const usage = { ...ZERO_METERED_USAGE, promptTokens: promptEstimate };
        try {
          if (await this.settle(prisma, { reservationId: id, usage, by: 'SWEEP' })) settled += 1;
        } catch (error) {
          // One bad row must not stop the others (nor an instance's start-up): it stays for a person to look at.
          failed += 1;
          this.deps.logger.error({ err: error, reservationId: id }, 'could not settle a lapsed reservation');
        }
      }
      if (lapsed.length < SWEEP_BATCH || failed > 0) return settled;
    }
  }

  /** Counts what was charged in Prometheus, after the commit, so it is counted once. */
  countCharged(model: string, usage: MeteredUsage, cost: bigint): void {
    const { metrics } = this.deps;
    metrics.tokens.inc({ model, kind: 'prompt' }, usage.promptTokens);
    metrics.tokens.inc({ model, kind: 'cached' }, usage.cachedTokens);
    metrics.tokens.inc({ model, kind: 'cache_write' }, usage.cacheWriteTokens);
    metrics.tokens.inc({ model, kind: 'completion' }, usage.completionTokens);
    metrics.tokens.inc({ model, kind: 'reasoning' }, usage.reasoningTokens);
    metrics.costMicros.inc({ model }, Number(cost));
  }
}

/** metering_decide's answer: what the call holds, or why it is refused (then nothing was written). */
export type ReserveDecision = { refused?: string } & Record<string, unknown>;

/** The error a refused reservation answers with; undefined when the decision is not a metering refusal. */
export function refusalError(decision: ReserveDecision): AppError | undefined {
  const number = (key: string) => Number(decision[key]);
  switch (decision.refused) {
    case 'NO_USER':
      return new AppError('NOT_FOUND', 'User not found');
    case 'DEACTIVATED':
      return invalidCredential('Account is deactivated');
    case 'INSUFFICIENT_CREDITS':
      return new AppError('INSUFFICIENT_CREDITS', 'Not enough credits for this call; buy credits or lower maxTokens', {
        requiredMicros: number('requiredMicros'),
        availableMicros: number('availableMicros'),
      });
    case 'QUOTA_EXCEEDED':
      return new AppError('QUOTA_EXCEEDED', 'Monthly token quota exceeded', {
        quota: number('quota'),
        remaining: number('remaining'),
        requested: number('requested'),
      });
    case 'KEY_BUDGET_EXCEEDED':
      return new AppError('QUOTA_EXCEEDED', "This API key's monthly budget does not cover this call", {
        scope: 'apiKey',
        budgetMicros: number('budgetMicros'),
        remainingMicros: number('remainingMicros'),
        requiredMicros: number('requiredMicros'),
      });
    default:
      return undefined;
  }
}

const rateSchema = z.number().int().nonnegative();
const storedPriceSchema = z
  .object({
    inputMicrosPerMillion: rateSchema,
    cachedInputMicrosPerMillion: rateSchema,
    // Absent from the prices of reservations made before cache writes were priced apart: they
    // were billed at the input rate then.
    cacheWriteMicrosPerMillion: rateSchema.optional(),
    outputMicrosPerMillion: rateSchema,
    reasoningMicrosPerMillion: rateSchema,
    perCallMicros: rateSchema.optional(),
    source: z.enum(['genai-prices', 'configuration', 'free', 'demo']),
  })
  .transform(({ cacheWriteMicrosPerMillion, ...price }): ModelPrice => ({
    ...price,
    cacheWriteMicrosPerMillion: cacheWriteMicrosPerMillion ?? price.inputMicrosPerMillion,
  }));

/** The price a reservation was made at; a row that holds no valid price is an error, never a free call. */
function storedPrice(reservation: Pick<Reservation, 'id' | 'price'>): ModelPrice {
  const parsed = storedPriceSchema.safeParse(reservation.price);
  if (!parsed.success) throw new Error(`reservation ${reservation.id} holds no valid price`);
  return parsed.data;
}

/** A reservation's price, as stored (for the statement to compare) and parsed; null when there is no such reservation. */
async function storedPriceOf(tx: PrismaTx, reservationId: string): Promise<{ stored: unknown; parsed: ModelPrice } | null> {
  const [row] = await tx.$queryRaw<Array<Pick<Reservation, 'id' | 'price'>>>`
    SELECT "id", "price" FROM "Reservation" WHERE "id" = ${reservationId}::uuid`;
  return row ? { stored: row.price, parsed: storedPrice(row) } : null;
}

/** The most a call may cost: every prompt token at the dearest of its rates, every completion token at the dearer of its two. */
function worstCaseCost(price: ModelPrice, promptTokens: number, completionTokens: number): bigint {
  const dearest: ModelPrice = {
    ...price,
    inputMicrosPerMillion: Math.max(price.inputMicrosPerMillion, price.cachedInputMicrosPerMillion, price.cacheWriteMicrosPerMillion),
    outputMicrosPerMillion: Math.max(price.outputMicrosPerMillion, price.reasoningMicrosPerMillion),
  };
  return costMicros(dearest, { ...ZERO_METERED_USAGE, promptTokens, completionTokens });
}
