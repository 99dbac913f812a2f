import { z } from 'zod';
import type { PrismaClient, PrismaTx } from '../db/client.js';
import { AppError } from '../errors.js';
import type { Prisma, Reservation } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import type { UsageMetrics } from '../observability/metrics.js';
import { appendCreditEntry } from './credits.js';
import { costMicros, isFree, type MeteredUsage, type ModelPrice } from './prices.js';
import { chargeKeySpend, holdCredits, holdKeyBudget, lockSpendingUser, releaseCreditHold, tryHoldCredits } from './holds.js';
import { chargeQuotaTokens, holdQuotaTokens, quotaPeriodOf, remainingQuotaTokens, type PlanQuotas } from './quota.js';
import { addToDailyRollup, utcDay } from './rollups.js';

export interface ReserveRequest {
  userId: string;
  /** The assistant message the call writes, when there is one. */
  messageId?: string;
  /** The API key the call is made with: its monthly budget applies too, and its spend is kept. */
  apiKeyId?: string;
  /** CHAT for chat completions; REALTIME for a Realtime session, priced per session (`price.perCallMicros`). */
  kind?: 'CHAT' | 'REALTIME';
  model: { id: string; price: ModelPrice };
  /** Worst case of the call: its estimated prompt and the most it may generate. */
  promptEstimate: number;
  maxOutputTokens: number;
  leaseMs: number;
}

export type SettledBy = 'RUN' | 'RECOVERY' | 'SWEEP';

export interface Settlement {
  reservation: Reservation;
  costMicros: bigint;
}

export const ZERO_METERED_USAGE: MeteredUsage = { promptTokens: 0, cachedTokens: 0, completionTokens: 0, reasoningTokens: 0 };
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
   * Holds the worst case of a call, in the transaction that writes what it is for, so that a
   * refused call writes nothing. The user's row lock serializes the user's concurrent calls, so
   * checks made after this in the same transaction (how many generations run) see every earlier one.
   */
  async reserve(tx: PrismaTx, request: ReserveRequest): Promise<Reservation> {
    const { userId, model } = request;
    const user = await lockSpendingUser(tx, userId);
    const period = quotaPeriodOf();
    const quota = this.deps.quotas[user.plan];
    const tokens = request.promptEstimate + request.maxOutputTokens;
    const free = isFree(model.price);
    const worstCost = worstCaseCost(model.price, request.promptEstimate, request.maxOutputTokens);

    let quotaTokens = 0;
    let creditMicros = 0n;
    if (await holdQuotaTokens(tx, userId, period, tokens, quota)) {
      quotaTokens = tokens;
      // Within the quota, paid plans include the call; FREE still pays for priced models.
      if (user.plan === 'FREE' && !free) creditMicros = await holdCredits(tx, userId, worstCost);
    } else if (user.plan !== 'FREE' && !free && (await tryHoldCredits(tx, userId, worstCost))) {
      creditMicros = worstCost;
    } else {
      const remaining = await remainingQuotaTokens(tx, userId, period, quota);
      throw new AppError('QUOTA_EXCEEDED', 'Monthly token quota exceeded', { quota, remaining, requested: tokens });
    }
    const keyMicros = request.apiKeyId ? await holdKeyBudget(tx, request.apiKeyId, period, worstCost) : 0n;
    return tx.reservation.create({
      data: {
        userId,
        messageId: request.messageId,
        apiKeyId: request.apiKeyId,
        keyMicros,
        kind: request.kind ?? 'CHAT',
        model: model.id,
        period,
        quotaTokens,
        creditMicros,
        paysWithCredits: creditMicros > 0n,
        promptEstimate: request.promptEstimate,
        price: model.price as unknown as Prisma.InputJsonValue,
        leaseExpiresAt: new Date(Date.now() + request.leaseMs),
      },
    });
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
   * billed and the credits the real cost. Returns null when the reservation was already settled.
   */
  async settle(tx: PrismaTx, reservationId: string, usage: MeteredUsage, by: SettledBy): Promise<Settlement | null> {
    const [reservation] = await tx.$queryRaw<Reservation[]>`
      SELECT * FROM "Reservation" WHERE "id" = ${reservationId}::uuid AND "settledAt" IS NULL FOR UPDATE`;
    if (!reservation) return null;
    await lockSpendingUser(tx, reservation.userId);
    const cost = costMicros(storedPrice(reservation), usage);
    const now = new Date();
    const settled = await tx.reservation.update({
      where: { id: reservationId },
      data: { settledAt: now, settledBy: by, chargedUsage: { ...usage }, chargedMicros: cost },
    });
    const tokens = usage.promptTokens + usage.completionTokens;
    if (reservation.quotaTokens > 0) {
      await chargeQuotaTokens(tx, reservation.userId, reservation.period, reservation.quotaTokens, tokens);
    }
    await releaseCreditHold(tx, reservation.userId, reservation.creditMicros);
    if (reservation.apiKeyId) await chargeKeySpend(tx, reservation.apiKeyId, reservation.period, reservation.keyMicros, cost);
    if (reservation.paysWithCredits && cost > 0n) {
      await appendCreditEntry(tx, {
        userId: reservation.userId,
        kind: 'USAGE',
        amountMicros: -cost,
        reason: `${reservation.model}: ${tokens} tokens`,
        messageId: reservation.messageId ?? undefined,
      });
    }
    await addToDailyRollup(tx, { userId: reservation.userId, day: utcDay(now), model: reservation.model, usage, costMicros: cost, requests: 1 });
    return { reservation: settled, costMicros: cost };
  }

  /**
   * Releases the holds of a call that never happened (the upstream refused it before doing any
   * work): nothing is charged and no request is counted. Null when it was already settled.
   */
  async release(tx: PrismaTx, reservationId: string): Promise<Reservation | null> {
    const [reservation] = await tx.$queryRaw<Reservation[]>`
      SELECT * FROM "Reservation" WHERE "id" = ${reservationId}::uuid AND "settledAt" IS NULL FOR UPDATE`;
    if (!reservation) return null;
    await lockSpendingUser(tx, reservation.userId);
    const released = await tx.reservation.update({
      where: { id: reservationId },
      data: { settledAt: new Date(), settledBy: 'RUN', chargedUsage: { ...ZERO_METERED_USAGE }, chargedMicros: 0n },
    });
    if (reservation.quotaTokens > 0) await chargeQuotaTokens(tx, reservation.userId, reservation.period, reservation.quotaTokens, 0);
    await releaseCreditHold(tx, reservation.userId, reservation.creditMicros);
    if (reservation.apiKeyId) await chargeKeySpend(tx, reservation.apiKeyId, reservation.period, reservation.keyMicros, 0n);
    return released;
  }

  /**
   * A call settled without its usage (its instance was presumed dead) that later reports what
   * it really used: the difference is charged, once. Returns null when there is nothing to correct.
   */
  async correct(tx: PrismaTx, reservationId: string, usage: MeteredUsage): Promise<Settlement | null> {
    const [reservation] = await tx.$queryRaw<Reservation[]>`
      SELECT * FROM "Reservation"
      WHERE "id" = ${reservationId}::uuid AND "settledAt" IS NOT NULL AND "settledBy" <> 'RUN' AND "correctedAt" IS NULL
      FOR UPDATE`;
    if (!reservation) return null;
    await lockSpendingUser(tx, reservation.userId);
    const charged = (reservation.chargedUsage as unknown as MeteredUsage | null) ?? ZERO_METERED_USAGE;
    const cost = costMicros(storedPrice(reservation), usage);
    const corrected = await tx.reservation.update({
      where: { id: reservationId },
      data: { correctedAt: new Date(), chargedUsage: { ...usage }, chargedMicros: cost },
    });
    const delta: MeteredUsage = {
      promptTokens: usage.promptTokens - charged.promptTokens,
      cachedTokens: usage.cachedTokens - charged.cachedTokens,
      completionTokens: usage.completionTokens - charged.completionTokens,
      reasoningTokens: usage.reasoningTokens - charged.reasoningTokens,
    };
    const deltaCost = cost - reservation.chargedMicros;
    const deltaTokens = delta.promptTokens + delta.completionTokens;
    if (reservation.quotaTokens > 0) await chargeQuotaTokens(tx, reservation.userId, reservation.period, 0, deltaTokens);
    if (reservation.apiKeyId) await chargeKeySpend(tx, reservation.apiKeyId, reservation.period, 0n, deltaCost);
    if (reservation.paysWithCredits && deltaCost !== 0n) {
      await appendCreditEntry(tx, {
        userId: reservation.userId,
        kind: deltaCost > 0n ? 'USAGE' : 'ADJUSTMENT',
        amountMicros: -deltaCost,
        reason: `${reservation.model}: correction to the usage the provider reported`,
        messageId: reservation.messageId ?? undefined,
      });
    }
    await addToDailyRollup(tx, {
      userId: reservation.userId,
      day: utcDay(reservation.settledAt ?? new Date()),
      model: reservation.model,
      usage: delta,
      costMicros: deltaCost,
      requests: 0,
    });
    return { reservation: corrected, costMicros: cost };
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
          if (await prisma.$transaction((tx) => this.settle(tx, id, usage, 'SWEEP'))) settled += 1;
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
    metrics.tokens.inc({ model, kind: 'completion' }, usage.completionTokens);
    metrics.tokens.inc({ model, kind: 'reasoning' }, usage.reasoningTokens);
    metrics.costMicros.inc({ model }, Number(cost));
  }
}

const storedPriceSchema = z.object({
  inputMicrosPerMillion: z.number().int().nonnegative(),
  cachedInputMicrosPerMillion: z.number().int().nonnegative(),
  outputMicrosPerMillion: z.number().int().nonnegative(),
  reasoningMicrosPerMillion: z.number().int().nonnegative(),
  perCallMicros: z.number().int().nonnegative().optional(),
  source: z.enum(['genai-prices', 'configuration', 'free', 'demo']),
});

/** The price a reservation was made at; a row that holds no valid price is an error, never a free call. */
function storedPrice(reservation: Reservation): ModelPrice {
  const parsed = storedPriceSchema.safeParse(reservation.price);
  if (!parsed.success) throw new Error(`reservation ${reservation.id} holds no valid price`);
  return parsed.data;
}

/** The most a call may cost: every prompt token at the dearer of its two rates, likewise every completion token. */
function worstCaseCost(price: ModelPrice, promptTokens: number, completionTokens: number): bigint {
  const dearest: ModelPrice = {
    ...price,
    inputMicrosPerMillion: Math.max(price.inputMicrosPerMillion, price.cachedInputMicrosPerMillion),
    outputMicrosPerMillion: Math.max(price.outputMicrosPerMillion, price.reasoningMicrosPerMillion),
  };
  return costMicros(dearest, { ...ZERO_METERED_USAGE, promptTokens, completionTokens });
}
