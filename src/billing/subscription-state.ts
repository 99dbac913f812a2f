import type Stripe from 'stripe';
import type { Config } from '../config.js';
import type { Plan } from '../generated/prisma/client.js';
import type { PaidPlan } from './credit-packs.js';

/** Stripe subscription statuses under which the user keeps the plan they pay for. */
export const LIVE_SUBSCRIPTION_STATUSES: ReadonlySet<string> = new Set(['active', 'trialing', 'past_due']);
/** Statuses that give no plan (`paused`: a trial ended without a payment method). */
const ENDED_STATUSES: ReadonlySet<string> = new Set(['canceled', 'unpaid', 'incomplete_expired', 'paused']);
/** Statuses a subscription never leaves: they win over anything stamped the same second. */
const FINAL_STATUSES: ReadonlySet<string> = new Set(['canceled', 'incomplete_expired']);

/** What the user's row remembers of their subscription. */
export interface StoredSubscription {
  plan: Plan;
  stripeSubscriptionId: string | null;
  subscriptionStatus: string | null;
  subscriptionEventAt: Date | null;
}

/** A subscription's state as one event reports it. */
export interface ReportedSubscription {
  subscriptionId: string;
  status: string;
  /** When Stripe created the event (its `created`, whole seconds). */
  eventAt: Date;
}

/**
 * Whether an event's subscription state should replace the stored one. Stripe does not deliver in
 * order, so an event older than the state already applied is ignored; in the same second a final
 * status (canceled) wins, so `.deleted` can never be undone by an `.updated` sent alongside it.
 * Events of another subscription than the stored one are judged by what they would do: ending it
 * never ends the user's live subscription, and a live one replaces a subscription that has ended.
 */
export function supersedes(stored: StoredSubscription, reported: ReportedSubscription): boolean {
  if (!stored.stripeSubscriptionId) return true;
  if (stored.stripeSubscriptionId !== reported.subscriptionId) {
    const storedLive = LIVE_SUBSCRIPTION_STATUSES.has(stored.subscriptionStatus ?? '');
    const reportedLive = LIVE_SUBSCRIPTION_STATUSES.has(reported.status);
    if (storedLive && !reportedLive) return false;
    if (reportedLive && !storedLive) return true;
  }
  if (!stored.subscriptionEventAt) return true;
  const difference = reported.eventAt.getTime() - stored.subscriptionEventAt.getTime();
  if (difference !== 0) return difference > 0;
  return FINAL_STATUSES.has(reported.status) || !FINAL_STATUSES.has(stored.subscriptionStatus ?? '');
}

/**
 * The plan a subscription status gives: its own while live, FREE once ended; an `incomplete`
 * subscription (first payment pending) leaves the current plan as it is.
 */
export function planFor(status: string, subscribedPlan: PaidPlan | undefined, currentPlan: Plan): Plan {
  if (LIVE_SUBSCRIPTION_STATUSES.has(status)) return subscribedPlan ?? currentPlan;
  if (ENDED_STATUSES.has(status)) return 'FREE';
  return currentPlan;
}

/** Whether the user owes Stripe money on their subscription. */
export function isPastDue(status: string): boolean {
  return status === 'past_due' || status === 'unpaid';
}

/**
 * The plan a subscription is for: its price matched against STRIPE_PRICE_PRO / STRIPE_PRICE_TEAM
 * (so a plan changed in the portal counts), else `metadata.plan` as set at checkout (inline
 * prices have no fixed id). Undefined when neither says.
 */
export function subscribedPlan(subscription: Stripe.Subscription, plans: Config['billing']['plans']): PaidPlan | undefined {
  const priceIds = new Set((subscription.items?.data ?? []).map((item) => item.price?.id));
  const byPrice = (Object.keys(plans) as PaidPlan[]).find((plan) => {
    const priceId = plans[plan].stripePriceId;
    return priceId !== undefined && priceIds.has(priceId);
  });
  if (byPrice) return byPrice;
  const fromMetadata = subscription.metadata?.plan;
  return fromMetadata === 'PRO' || fromMetadata === 'TEAM' ? fromMetadata : undefined;
}
