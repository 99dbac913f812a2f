import type Stripe from 'stripe';
import type { PrismaTx } from '../db/client.js';
import type { Config } from '../config.js';
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
 * The user an event is about: by the user id our checkout sessions carry, else by the Stripe
 * customer recorded on the user; undefined when neither names a user. Effects then lock the user
 * (lockUser) for the rest of the transaction, so that two events for the same user (a retry
 * racing the original, a refund racing the purchase) apply one after the other.
 */
export async function eventUserId(tx: PrismaTx, ids: { userId?: string | null; customerId?: string | null }): Promise<string | undefined> {
  if (ids.userId && UUID.test(ids.userId)) {
    const user = await tx.user.findUnique({ where: { id: ids.userId }, select: { id: true } });
    if (user) return user.id;
  }
  if (!ids.customerId) return undefined;
  return (await tx.user.findUnique({ where: { stripeCustomerId: ids.customerId }, select: { id: true } }))?.id;
}


/**
 * Records and logs an event that cannot be applied: acknowledged to Stripe all the same, so it is
 * not retried forever. `paymentId`: the payment an unapplied purchase was for, which its refund
 * or dispute finds (unappliedPurchaseOf).
 */
export async function recordUnapplied(
  tx: PrismaTx,
  context: EffectContext,
  event: Stripe.Event,
  why: string,
  details: Record<string, unknown> = {},
  paymentId?: string,
): Promise<void> {
  await tx.processedStripeEvent.update({ where: { id: event.id }, data: { unappliedReason: why, stripePaymentIntentId: paymentId } });
  context.logger.warn({ stripeEventId: event.id, stripeEventType: event.type, ...details }, `Stripe event not applied: ${why}`);
}

/** Whether a purchase paid with this payment was acknowledged without being applied. */
export async function unappliedPurchaseOf(tx: PrismaTx, paymentId: string): Promise<boolean> {
  const found = await tx.processedStripeEvent.findFirst({
    where: { stripePaymentIntentId: paymentId, unappliedReason: { not: null }, type: { startsWith: 'checkout.session.' } },
    select: { id: true },
  });
  return found !== null;
}
