import type Stripe from 'stripe';
import type { PrismaTx } from '../db/client.js';
import { lockUser } from '../db/user-lock.js';
import type { Config } from '../config.js';
import type { User } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';

/** What every webhook effect is given besides its transaction and event. */
export interface EffectContext {
  billing: Config['billing'];
  logger: Logger;
}

export type StripeEventEffect = (tx: PrismaTx, event: Stripe.Event, context: EffectContext) => Promise<void>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The id of an object Stripe may send expanded or as its id. */
export function stripeIdOf(value: string | { id: string } | null | undefined): string | undefined {
  if (!value) return undefined;
  return typeof value === 'string' ? value : value.id;
}

/**
 * The user an event is about, locked for the rest of the transaction so that two events for the
 * same user (a retry racing the original, a refund racing the purchase) apply one after the other.
 * By the user id our checkout sessions carry, else by the Stripe customer recorded on the user.
 */
export async function lockEventUser(
  tx: PrismaTx,
  ids: { userId?: string | null; customerId?: string | null },
): Promise<User | undefined> {
  let id: string | undefined;
  if (ids.userId && UUID.test(ids.userId)) {
    id = (await tx.user.findUnique({ where: { id: ids.userId }, select: { id: true } }))?.id;
  }
  if (!id && ids.customerId) {
    id = (await tx.user.findUnique({ where: { stripeCustomerId: ids.customerId }, select: { id: true } }))?.id;
  }
  return id ? lockUser(tx, id) : undefined;
}


/** Logs an event that cannot be applied: acknowledged to Stripe all the same, so it is not retried forever. */
export function warnUnapplied(context: EffectContext, event: Stripe.Event, why: string, details: Record<string, unknown> = {}): void {
  context.logger.warn({ stripeEventId: event.id, stripeEventType: event.type, ...details }, `Stripe event not applied: ${why}`);
}
