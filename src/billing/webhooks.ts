import type Stripe from 'stripe';
import type { Config } from '../config.js';
import type { PrismaClient } from '../db/client.js';
import type { Logger } from '../logger.js';
import { creditPurchase, reverseDisputedCredits, reverseRefundedCredits } from './credit-purchases.js';
import { applySubscriptionChange, markPastDue, recordSubscriptionCheckout } from './subscription-events.js';
import type { StripeEventEffect } from './webhook-users.js';

/** Stripe signs each delivery with its time; older ones are refused so a captured request cannot be replayed later. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

export interface StripeWebhookDeps {
  prisma: PrismaClient;
  stripe: Stripe;
  webhookSecret: string;
  billing: Config['billing'];
  logger: Logger;
}

/** What became of a verified event: applied now, seen before, or of a type this server ignores. */
export type StripeEventOutcome = 'applied' | 'duplicate' | 'ignored';

export class InvalidStripeSignature extends Error {
  constructor() {
    super('Stripe signature is missing, invalid or too old');
    this.name = 'InvalidStripeSignature';
  }
}

export type StripeWebhooks = ReturnType<typeof createStripeWebhooks>;

const EFFECTS: Partial<Record<Stripe.Event['type'], StripeEventEffect>> = {
  'checkout.session.completed': (tx, event, context) =>
    (event.data.object as Stripe.Checkout.Session).mode === 'subscription'
      ? recordSubscriptionCheckout(tx, event, context)
      : creditPurchase(tx, event, context),
  'checkout.session.async_payment_succeeded': creditPurchase,
  'customer.subscription.created': applySubscriptionChange,
  'customer.subscription.updated': applySubscriptionChange,
  'customer.subscription.deleted': applySubscriptionChange,
  'invoice.payment_failed': markPastDue,
  'charge.refunded': reverseRefundedCredits,
  'charge.dispute.created': reverseDisputedCredits,
};

/** The handling of POST /webhooks/stripe: verify the delivery, then apply its event once. */
export function createStripeWebhooks(deps: StripeWebhookDeps) {
  const { prisma, stripe, webhookSecret, billing, logger } = deps;

  return {
    /** The event in a delivery whose signature checks out against the raw body; throws InvalidStripeSignature otherwise. */
    verifyStripeEvent(rawBody: Buffer, signature: string | undefined): Stripe.Event {
      if (!signature) throw new InvalidStripeSignature();
      try {
        return stripe.webhooks.constructEvent(rawBody, signature, webhookSecret, SIGNATURE_TOLERANCE_SECONDS);
      } catch {
        throw new InvalidStripeSignature();
      }
    },

    /**
     * Applies an event at most once. Its id is recorded in the same transaction as its effect: a
     * retry, or a second delivery racing the first (it waits on the first's row, then finds it),
     * inserts nothing and changes nothing; a failed effect records nothing, so Stripe retries it.
     */
    async applyStripeEvent(event: Stripe.Event): Promise<StripeEventOutcome> {
      const effect = EFFECTS[event.type];
      if (!effect) return 'ignored';
      return prisma.$transaction(async (tx) => {
        const { count } = await tx.processedStripeEvent.createMany({
          data: [{ id: event.id, type: event.type }],
          skipDuplicates: true,
        });
        if (count === 0) return 'duplicate';
        await effect(tx, event, { billing, logger });
        return 'applied';
      });
    },
  };
}
