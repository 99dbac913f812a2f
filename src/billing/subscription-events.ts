import type Stripe from 'stripe';
import type { PrismaTx } from '../db/client.js';
import { lockUser } from '../db/user-lock.js';
import type { User } from '../generated/prisma/client.js';
import { isPastDue, LIVE_SUBSCRIPTION_STATUSES, planFor, subscribedPlan, supersedes } from './subscription-state.js';
import { eventUserId, stripeIdOf, recordUnapplied, type StripeEventEffect } from './webhook-users.js';

/** `customer.subscription.created/.updated/.deleted`: the plan, status and past-due flag the subscription gives. */
export const applySubscriptionChange: StripeEventEffect = async (tx, event, context) => {
  const subscription = event.data.object as Stripe.Subscription;
  const customerId = stripeIdOf(subscription.customer);
  const userId = await eventUserId(tx, { userId: subscription.metadata?.userId, customerId });
  if (!userId) return recordUnapplied(tx, context, event, 'no user for this subscription');
  const user = await lockUser(tx, userId);
  // A deleted subscription is reported with its last status, which may still read active.
  const status = event.type === 'customer.subscription.deleted' ? 'canceled' : subscription.status;
  const plan = subscribedPlan(subscription, context.billing.plans);
  if (!plan && LIVE_SUBSCRIPTION_STATUSES.has(status)) {
    return recordUnapplied(tx, context, event, 'the subscription is for no known plan', { subscription: subscription.id });
  }
  const eventAt = new Date(event.created * 1000);
  if (!supersedes(user, { subscriptionId: subscription.id, status, eventAt })) {
    context.logger.info({ stripeEventId: event.id, stripeEventType: event.type }, 'ignored a Stripe subscription event older than the state applied');
    return;
  }
  await tx.user.update({
    where: { id: user.id },
    data: {
      plan: planFor(status, plan, user.plan),
      subscriptionStatus: status,
      stripeSubscriptionId: subscription.id,
      pastDue: isPastDue(status),
      subscriptionEventAt: latest(user.subscriptionEventAt, eventAt),
      ...(await customerToRecord(tx, user, customerId)),
    },
  });
};

/** `invoice.payment_failed`: the user is past due until a later subscription event says otherwise. */
export const markPastDue: StripeEventEffect = async (tx, event, context) => {
  const invoice = event.data.object as Stripe.Invoice;
  const details = invoice.parent?.subscription_details;
  const userId = await eventUserId(tx, { userId: details?.metadata?.userId, customerId: stripeIdOf(invoice.customer) });
  if (!userId) return recordUnapplied(tx, context, event, 'no user for this invoice');
  const user = await lockUser(tx, userId);
  const subscriptionId = stripeIdOf(details?.subscription);
  const eventAt = new Date(event.created * 1000);
  const otherSubscription = subscriptionId && user.stripeSubscriptionId && subscriptionId !== user.stripeSubscriptionId;
  // A failure from before the state applied (a payment that was retried and went through) is stale.
  if (otherSubscription || (user.subscriptionEventAt && eventAt < user.subscriptionEventAt)) return;
  await tx.user.update({
    where: { id: user.id },
    data: { pastDue: true, subscriptionEventAt: latest(user.subscriptionEventAt, eventAt) },
  });
};

/**
 * `checkout.session.completed` for a subscription: records the customer and the subscription, in
 * case the subscription's own events are late. The plan is theirs to set.
 */
export const recordSubscriptionCheckout: StripeEventEffect = async (tx, event, context) => {
  const session = event.data.object as Stripe.Checkout.Session;
  const userId = await eventUserId(tx, { userId: session.client_reference_id ?? session.metadata?.userId });
  if (!userId) return recordUnapplied(tx, context, event, 'no such user');
  const user = await lockUser(tx, userId);
  const subscriptionId = stripeIdOf(session.subscription);
  await tx.user.update({
    where: { id: user.id },
    data: {
      ...(!user.stripeSubscriptionId && subscriptionId ? { stripeSubscriptionId: subscriptionId } : {}),
      ...(await customerToRecord(tx, user, stripeIdOf(session.customer))),
    },
  });
};

// A customer id belongs to one user; one already recorded elsewhere is left where it is.
async function customerToRecord(tx: PrismaTx, user: User, customerId: string | undefined) {
  if (user.stripeCustomerId || !customerId) return {};
  const owner = await tx.user.findUnique({ where: { stripeCustomerId: customerId }, select: { id: true } });
  return owner ? {} : { stripeCustomerId: customerId };
}

const latest = (stored: Date | null, eventAt: Date) => (stored && stored > eventAt ? stored : eventAt);
