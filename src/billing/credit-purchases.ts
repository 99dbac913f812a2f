import type Stripe from 'stripe';
import type { PrismaTx } from '../db/client.js';
import type { CreditEntryKind } from '../generated/prisma/client.js';
import { lockUser } from '../db/user-lock.js';
import { appendCreditEntry } from '../metering/credits.js';
import { eventUserId, recordUnapplied, stripeIdOf, unappliedPurchaseOf, type EffectContext, type StripeEventEffect } from './webhook-users.js';

/**
 * A paid credit-pack checkout: the pack's credits, once per payment. A session paid at once
 * sends `checkout.session.completed` with payment_status `paid`; one paid later (bank debits)
 * sends it `unpaid`, then `async_payment_succeeded`. Both events name the same payment, and the
 * PURCHASE entry carries its id, so whichever comes second finds it and credits nothing.
 */
export const creditPurchase: StripeEventEffect = async (tx, event, context) => {
  const session = event.data.object as Stripe.Checkout.Session;
  if (session.mode !== 'payment' || session.payment_status !== 'paid') return;
  // A session without a payment (nothing to charge) still has an id of its own to key on.
  const paymentId = stripeIdOf(session.payment_intent) ?? session.id;
  const userId = await eventUserId(tx, { userId: session.client_reference_id ?? session.metadata?.userId });
  if (!userId) return recordUnapplied(tx, context, event, 'no such user', {}, paymentId);
  const user = await lockUser(tx, userId);
  // What was sold travels with the session: a pack repriced or withdrawn since still buys what was paid for.
  const pack = packSold(session.metadata) ?? context.billing.creditPacks.find((p) => p.id === session.metadata?.pack);
  if (!pack) return recordUnapplied(tx, context, event, 'unknown credit pack', { pack: session.metadata?.pack?.slice(0, 40) }, paymentId);
  const credited = await tx.creditLedgerEntry.findFirst({
    where: { stripePaymentIntentId: paymentId, kind: 'PURCHASE' },
    select: { id: true },
  });
  if (credited) return;
  await appendCreditEntry(tx, {
    userId: user.id,
    kind: 'PURCHASE',
    amountMicros: BigInt(pack.creditsMicros),
    reason: `Bought ${pack.name}`,
    stripeEventId: event.id,
    stripePaymentIntentId: paymentId,
    stripeAmountCents: session.amount_total ?? undefined,
  });
};

function packSold(metadata: Stripe.Metadata | null): { name: string; creditsMicros: number } | undefined {
  const creditsMicros = Number(metadata?.creditsMicros);
  if (!metadata?.packName || !Number.isSafeInteger(creditsMicros) || creditsMicros <= 0) return undefined;
  return { name: metadata.packName, creditsMicros };
}

/**
 * A refund takes back the credits of the refunded share of the payment. `amount_refunded` is the
 * running total, so each event brings the refunded credits up to that share of the purchase:
 * partial refunds add up, and a late event of an earlier partial refund changes nothing.
 */
export const reverseRefundedCredits: StripeEventEffect = async (tx, event, context) => {
  const charge = event.data.object as Stripe.Charge;
  const paymentId = stripeIdOf(charge.payment_intent);
  if (!paymentId || charge.amount <= 0) return recordUnapplied(tx, context, event, 'the charge names no payment');
  await reversePurchase(tx, event, context, {
    paymentId,
    kind: 'REFUND',
    share: { part: BigInt(charge.amount_refunded), whole: BigInt(charge.amount) },
    reason: 'Payment refunded',
    // A charge of a credit pack (our checkout's metadata) whose purchase is not applied yet: its
    // delivery failed and Stripe will retry it. Failing this one too makes Stripe retry it later,
    // unless the purchase was acknowledged without being applied: then there is nothing to reverse.
    boughtCredits: Boolean(charge.metadata?.pack),
  });
};

/**
 * A dispute takes back the disputed share of the purchase (all of it when the purchase did not
 * record what was paid), never more than refunds left.
 */
export const reverseDisputedCredits: StripeEventEffect = async (tx, event, context) => {
  const dispute = event.data.object as Stripe.Dispute;
  const paymentId = stripeIdOf(dispute.payment_intent);
  if (!paymentId) return recordUnapplied(tx, context, event, 'the dispute has no payment');
  await reversePurchase(tx, event, context, { paymentId, kind: 'DISPUTE', share: { part: BigInt(dispute.amount) }, reason: 'Payment disputed' });
};

interface Reversal {
  paymentId: string;
  kind: Extract<CreditEntryKind, 'REFUND' | 'DISPUTE'>;
  /** The share of the purchase this kind of reversal should have taken back in total: part of the
   * payment's whole (by default, the amount the purchase recorded as paid). */
  share: { part: bigint; whole?: bigint };
  reason: string;
  /** The payment is known to have bought credits, so a missing purchase is not applied yet. */
  boughtCredits?: boolean;
}

// The balance may go below zero: the credits bought were often spent already, and that debt is real.
async function reversePurchase(tx: PrismaTx, event: Stripe.Event, context: EffectContext, reversal: Reversal): Promise<void> {
  const purchase = await tx.creditLedgerEntry.findFirst({
    where: { stripePaymentIntentId: reversal.paymentId, kind: 'PURCHASE' },
    select: { userId: true, amountMicros: true, stripeAmountCents: true },
  });
  if (!purchase && reversal.boughtCredits) {
    if (await unappliedPurchaseOf(tx, reversal.paymentId)) {
      return recordUnapplied(tx, context, event, 'the purchase it reverses was never applied', {}, reversal.paymentId);
    }
    throw new Error('the purchase this reverses is not applied yet');
  }
  // Subscription invoices are refunded and disputed too; they bought no credits to take back.
  if (!purchase) {
    context.logger.info({ stripeEventId: event.id, stripeEventType: event.type }, 'Stripe refund or dispute of a payment that bought no credits');
    return;
  }
  // Locked before the earlier reversals are read, so concurrent refund events add up correctly.
  await lockUser(tx, purchase.userId);
  const earlier = await tx.creditLedgerEntry.findMany({
    where: { stripePaymentIntentId: reversal.paymentId, kind: { in: ['REFUND', 'DISPUTE'] } },
    select: { kind: true, amountMicros: true },
  });
  const reversedBy = (kinds: CreditEntryKind[]) =>
    earlier.filter((e) => kinds.includes(e.kind)).reduce((sum, e) => sum - e.amountMicros, 0n);
  const bought = purchase.amountMicros;
  const stillHeld = bought - reversedBy(['REFUND', 'DISPUTE']);
  const whole = reversal.share.whole ?? (purchase.stripeAmountCents ? BigInt(purchase.stripeAmountCents) : undefined);
  const due = whole && whole > 0n ? (bought * min(reversal.share.part, whole)) / whole - reversedBy([reversal.kind]) : stillHeld;
  const amount = min(due, stillHeld);
  if (amount <= 0n) return;
  await appendCreditEntry(tx, {
    userId: purchase.userId,
    kind: reversal.kind,
    amountMicros: -amount,
    reason: reversal.reason,
    stripeEventId: event.id,
    stripePaymentIntentId: reversal.paymentId,
  });
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);
