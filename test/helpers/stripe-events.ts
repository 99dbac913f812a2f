import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';

export const TEST_WEBHOOK_SECRET = 'whsec_test_switchboard_webhook_secret';

// Only its webhook helpers are used: they sign like Stripe does, no request is made.
const stripe = new Stripe('sk_test_signing_only');

export const stripeId = (prefix: string) => `${prefix}_${randomBytes(10).toString('hex')}`;
export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** An event as Stripe sends it to a webhook endpoint. */
export function stripeEvent(type: string, object: Record<string, unknown>, options: { id?: string; created?: number } = {}) {
  return {
    id: options.id ?? stripeId('evt'),
    object: 'event',
    api_version: '2026-09-30.endive',
    created: options.created ?? nowSeconds(),
    type,
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    data: { object },
  };
}

export type TestStripeEvent = ReturnType<typeof stripeEvent>;

export interface DeliveryOptions {
  /** Signing time in seconds (default now); an old one makes a stale delivery. */
  timestamp?: number;
  /** Replaces the signature header; null sends none. */
  signature?: string | null;
  secret?: string;
}

/** The Stripe-Signature header Stripe would send with this event. */
export function signatureFor(event: TestStripeEvent, options: { secret?: string; timestamp?: number } = {}): string {
  const payload = JSON.stringify(event);
  return stripe.webhooks.generateTestHeaderString({ payload, secret: options.secret ?? TEST_WEBHOOK_SECRET, timestamp: options.timestamp });
}

/** Posts an event to the server's webhook route, signed like Stripe signs it. */
export async function deliverStripeEvent(origin: string, event: TestStripeEvent, options: DeliveryOptions = {}) {
  const payload = JSON.stringify(event);
  const signature = options.signature !== undefined ? options.signature : signatureFor(event, options);
  const response = await fetch(new URL('/webhooks/stripe', origin), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(signature !== null ? { 'stripe-signature': signature } : {}) },
    body: payload,
  });
  return { status: response.status, body: (await response.json()) as { outcome?: string; error?: string } };
}

/** A paid Checkout session for a credit pack, as our checkout creates it. */
export function paidPackSession(userId: string, pack: string, overrides: Record<string, unknown> = {}) {
  return {
    id: stripeId('cs_test'),
    object: 'checkout.session',
    mode: 'payment',
    payment_status: 'paid',
    status: 'complete',
    client_reference_id: userId,
    metadata: { userId, pack },
    customer: stripeId('cus'),
    payment_intent: stripeId('pi'),
    amount_total: 500,
    currency: 'usd',
    ...overrides,
  };
}

export function charge(paymentIntent: string, amount: number, amountRefunded: number) {
  return {
    id: stripeId('ch'),
    object: 'charge',
    amount,
    amount_refunded: amountRefunded,
    refunded: amountRefunded >= amount,
    currency: 'usd',
    payment_intent: paymentIntent,
  };
}

/** A subscription as our checkout creates it; `plan: null` leaves the plan out of its metadata. */
export function subscription(id: string, status: string, owner: { userId?: string; customer: string }, plan: string | null = 'PRO') {
  return {
    id,
    object: 'subscription',
    status,
    customer: owner.customer,
    metadata: { ...(owner.userId ? { userId: owner.userId } : {}), ...(plan ? { plan } : {}) },
    items: { object: 'list', data: [{ id: stripeId('si'), object: 'subscription_item', price: { id: stripeId('price'), object: 'price' } }] },
  };
}
