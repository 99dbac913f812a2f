import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CREDIT_PACKS } from '../src/billing/credit-packs.js';
import { expectData, type TestApp } from './helpers/app.js';
import {
  billingAppForFile,
  concurrentlyBehindUserRowLock,
  isRecorded,
  signUp,
  spendCredits,
  stripeLedger,
  userRow,
} from './helpers/billing.js';
import { MyBillingDocument } from './helpers/billing-documents.js';
import {
  charge,
  deliverStripeEvent,
  nowSeconds,
  paidPackSession,
  stripeEvent,
  stripeId,
  subscription,
  type TestStripeEvent,
} from './helpers/stripe-events.js';

const f = billingAppForFile();
const PACK = DEFAULT_CREDIT_PACKS[0]!; // 5_000_000 micros for 500 cents

async function deliver(...events: TestStripeEvent[]): Promise<void> {
  for (const event of events) {
    const { status, body } = await deliverStripeEvent(f.origin, event);
    expect(status, `${event.type}: ${JSON.stringify(body)}`).toBe(200);
  }
}

/** A user who bought PACK; returns the payment intent it was paid with. */
async function buyer() {
  const user = await signUp(f.t);
  const session = paidPackSession(user.userId, PACK.id);
  await deliver(stripeEvent('checkout.session.completed', session));
  return { ...user, paymentIntent: session.payment_intent };
}

async function billingOf(t: TestApp, token: string) {
  const { me } = expectData(await t.execute(MyBillingDocument, {}, { token }));
  return { plan: me!.plan, pastDue: me!.pastDue, subscriptionStatus: me!.subscriptionStatus };
}

describe('refunds and disputes', () => {
  it('takes back refunded credits in proportion, adding up partial refunds and never more than bought', async () => {
    const { userId, paymentIntent } = await buyer();
    const partial = stripeEvent('charge.refunded', charge(paymentIntent, 500, 200));
    await deliver(partial);
    // The same cumulative refund reported again by another event, then the rest, then a late copy.
    await deliver(stripeEvent('charge.refunded', charge(paymentIntent, 500, 200)));
    await deliver(stripeEvent('charge.refunded', charge(paymentIntent, 500, 500)));
    await deliver(stripeEvent('charge.refunded', charge(paymentIntent, 500, 200)));

    const ledger = await stripeLedger(f.t, userId);
    expect(ledger.map((e) => [e.kind, e.amountMicros])).toEqual([
      ['PURCHASE', 5_000_000],
      ['REFUND', -2_000_000],
      ['REFUND', -3_000_000],
    ]);
    expect(ledger[1]!.stripeEventId).toBe(partial.id);
  });

  it('takes back each refunded credit once when refund events arrive together', async () => {
    const { userId, paymentIntent } = await buyer();
    const refunds = [100, 300, 500, 300, 500].map((refunded) => stripeEvent('charge.refunded', charge(paymentIntent, 500, refunded)));
    await concurrentlyBehindUserRowLock(userId, refunds.map((event) => () => deliver(event)));

    const refunded = (await stripeLedger(f.t, userId)).filter((e) => e.kind === 'REFUND').reduce((sum, e) => sum + e.amountMicros, 0);
    expect(refunded).toBe(-PACK.creditsMicros);
  });

  it('takes back on a dispute what refunds left, even below a zero balance', async () => {
    const { userId, paymentIntent } = await buyer();
    await spendCredits(f.t, userId, Number((await userRow(f.t, userId)).creditBalanceMicros));
    await deliver(stripeEvent('charge.refunded', charge(paymentIntent, 500, 100)));
    const dispute = { id: stripeId('dp'), object: 'dispute', amount: 500, currency: 'usd', charge: stripeId('ch'), payment_intent: paymentIntent, status: 'needs_response' };
    await deliver(stripeEvent('charge.dispute.created', dispute), stripeEvent('charge.dispute.created', dispute));

    const reversals = (await stripeLedger(f.t, userId)).filter((e) => e.kind === 'REFUND' || e.kind === 'DISPUTE');
    expect(reversals.map((e) => [e.kind, e.amountMicros])).toEqual([
      ['REFUND', -1_000_000],
      ['DISPUTE', -4_000_000],
    ]);
    expect((await userRow(f.t, userId)).creditBalanceMicros).toBe(-5_000_000n);
  });

  it('takes back the disputed share of a purchase, once', async () => {
    const { userId, paymentIntent } = await buyer();
    // $2 of the $5 payment is disputed.
    const dispute = { id: stripeId('dp'), object: 'dispute', amount: 200, currency: 'usd', charge: stripeId('ch'), payment_intent: paymentIntent, status: 'needs_response' };
    await deliver(stripeEvent('charge.dispute.created', dispute), stripeEvent('charge.dispute.created', dispute));

    const disputes = (await stripeLedger(f.t, userId)).filter((e) => e.kind === 'DISPUTE');
    expect(disputes.map((e) => e.amountMicros)).toEqual([-(PACK.creditsMicros * 2) / 5]);
  });

  it('has Stripe retry a refund that arrives before its purchase was applied, so the purchase is reversed after all', async () => {
    const { userId } = await signUp(f.t);
    const session = paidPackSession(userId, PACK.id);
    const refund = stripeEvent('charge.refunded', { ...charge(session.payment_intent, 500, 500), metadata: { userId, pack: PACK.id } });
    // The purchase's delivery failed; the refund comes first and is refused, to be retried.
    expect((await deliverStripeEvent(f.origin, refund)).status).toBe(500);
    expect(await isRecorded(f.t, refund.id)).toBe(false);

    await deliver(stripeEvent('checkout.session.completed', session), refund);
    expect((await stripeLedger(f.t, userId)).map((e) => [e.kind, e.amountMicros])).toEqual([
      ['PURCHASE', PACK.creditsMicros],
      ['REFUND', -PACK.creditsMicros],
    ]);
  });

  it('acknowledges, and records as unapplied, the refund of a purchase acknowledged without being applied', async () => {
    const { userId } = await signUp(f.t);
    const purchases = [
      paidPackSession(randomUUID(), PACK.id), // no such user
      paidPackSession(userId, 'withdrawn-pack'), // no such pack
    ];
    for (const session of purchases) {
      const purchase = stripeEvent('checkout.session.completed', session);
      const refund = stripeEvent('charge.refunded', { ...charge(session.payment_intent, 500, 500), metadata: session.metadata });
      await deliver(purchase, refund);
      const recorded = await f.t.app.db.prisma.processedStripeEvent.findMany({ where: { id: { in: [purchase.id, refund.id] } }, orderBy: { type: 'asc' } });
      expect(recorded.map((e) => [e.type, e.unappliedReason, e.stripePaymentIntentId])).toEqual([
        ['charge.refunded', 'the purchase it reverses was never applied', session.payment_intent],
        ['checkout.session.completed', expect.any(String), session.payment_intent],
      ]);
    }
    expect(await stripeLedger(f.t, userId)).toEqual([]);
  });

  it('acknowledges a refund of a payment that bought no credits', async () => {
    const event = stripeEvent('charge.refunded', charge(stripeId('pi'), 500, 500));
    await deliver(event);
    expect(await isRecorded(f.t, event.id)).toBe(true);
    expect(await f.t.app.db.prisma.creditLedgerEntry.count({ where: { stripeEventId: event.id } })).toBe(0);
  });
});

describe('subscriptions', () => {
  const subscriber = async () => {
    const user = await signUp(f.t);
    return { ...user, owner: { userId: user.userId, customer: stripeId('cus') }, subscriptionId: stripeId('sub') };
  };
  const T = nowSeconds() - 3600;

  it('follows the order Stripe created the events in, not the order they arrive in', async () => {
    const { token, owner, subscriptionId } = await subscriber();
    const event = (type: string, status: string, created: number) =>
      stripeEvent(`customer.subscription.${type}`, subscription(subscriptionId, status, owner), { created });

    await deliver(event('updated', 'past_due', T + 10));
    expect(await billingOf(f.t, token)).toEqual({ plan: 'PRO', pastDue: true, subscriptionStatus: 'past_due' });
    await deliver(event('created', 'active', T));
    expect(await billingOf(f.t, token)).toEqual({ plan: 'PRO', pastDue: true, subscriptionStatus: 'past_due' });
    await deliver(event('deleted', 'active', T + 20), event('updated', 'active', T + 15), event('created', 'active', T));
    expect(await billingOf(f.t, token)).toEqual({ plan: 'FREE', pastDue: false, subscriptionStatus: 'canceled' });
  });

  it('lets a cancellation win over an update stamped the same second', async () => {
    const { token, owner, subscriptionId } = await subscriber();
    const deleted = stripeEvent('customer.subscription.deleted', subscription(subscriptionId, 'canceled', owner), { created: T });
    const updated = stripeEvent('customer.subscription.updated', subscription(subscriptionId, 'active', owner), { created: T });

    await deliver(deleted, updated);
    expect(await billingOf(f.t, token)).toMatchObject({ plan: 'FREE', subscriptionStatus: 'canceled' });
  });

  it('keeps a live subscription when an older one ends, and lets a new one replace an ended one', async () => {
    const { token, userId, owner } = await subscriber();
    const [oldOne, newOne] = [stripeId('sub'), stripeId('sub')];

    await deliver(stripeEvent('customer.subscription.deleted', subscription(oldOne, 'canceled', owner), { created: T + 20 }));
    await deliver(stripeEvent('customer.subscription.created', subscription(newOne, 'active', owner, 'TEAM'), { created: T + 10 }));
    expect(await billingOf(f.t, token)).toEqual({ plan: 'TEAM', pastDue: false, subscriptionStatus: 'active' });

    await deliver(stripeEvent('customer.subscription.deleted', subscription(oldOne, 'canceled', owner), { created: T + 30 }));
    expect(await billingOf(f.t, token)).toMatchObject({ plan: 'TEAM', subscriptionStatus: 'active' });
    expect((await userRow(f.t, userId)).stripeSubscriptionId).toBe(newOne);
  });

  it('shows a failed invoice payment as pastDue until the subscription is active again', async () => {
    const { token, owner, subscriptionId } = await subscriber();
    const invoiceFailed = (created: number) =>
      stripeEvent(
        'invoice.payment_failed',
        {
          id: stripeId('in'),
          object: 'invoice',
          customer: owner.customer,
          parent: { type: 'subscription_details', subscription_details: { subscription: subscriptionId, metadata: { userId: owner.userId } } },
        },
        { created },
      );

    await deliver(stripeEvent('customer.subscription.created', subscription(subscriptionId, 'active', owner), { created: T }));
    await deliver(invoiceFailed(T + 5));
    expect(await billingOf(f.t, token)).toEqual({ plan: 'PRO', pastDue: true, subscriptionStatus: 'active' });
    await deliver(stripeEvent('customer.subscription.updated', subscription(subscriptionId, 'active', owner), { created: T + 10 }));
    await deliver(invoiceFailed(T + 6));
    expect(await billingOf(f.t, token)).toEqual({ plan: 'PRO', pastDue: false, subscriptionStatus: 'active' });
  });

  it('records the customer and subscription of a subscription checkout, leaving the plan to the subscription events', async () => {
    const { userId, owner, subscriptionId } = await subscriber();
    const session = { ...paidPackSession(userId, ''), mode: 'subscription', metadata: { userId, plan: 'PRO' }, customer: owner.customer, subscription: subscriptionId, payment_intent: null };
    await deliver(stripeEvent('checkout.session.completed', session));

    const user = await userRow(f.t, userId);
    expect(user).toMatchObject({ plan: 'FREE', stripeCustomerId: owner.customer, stripeSubscriptionId: subscriptionId });
    expect(await stripeLedger(f.t, userId)).toEqual([]);
    // Later events find the user by the recorded customer alone.
    await deliver(stripeEvent('customer.subscription.created', subscription(subscriptionId, 'active', { customer: owner.customer })));
    expect(await userRow(f.t, userId)).toMatchObject({ plan: 'PRO', subscriptionStatus: 'active' });
  });

  it('leaves the plan alone for a subscription to no known plan', async () => {
    const { userId, owner, subscriptionId } = await subscriber();
    const event = stripeEvent('customer.subscription.created', subscription(subscriptionId, 'active', owner, null));
    await deliver(event);
    expect(await isRecorded(f.t, event.id)).toBe(true);
    expect(await userRow(f.t, userId)).toMatchObject({ plan: 'FREE', subscriptionStatus: null });
  });

  it('acknowledges a subscription of an unknown customer, recording only the event', async () => {
    const event = stripeEvent('customer.subscription.updated', subscription(stripeId('sub'), 'active', { customer: stripeId('cus') }));
    await deliver(event);
    expect(await isRecorded(f.t, event.id)).toBe(true);
    expect(await f.t.app.db.prisma.user.count({ where: { stripeSubscriptionId: event.data.object.id as string } })).toBe(0);
  });
});
