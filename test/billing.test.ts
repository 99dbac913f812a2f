import { describe, expect, it } from 'vitest';
import { DEFAULT_CREDIT_PACKS } from '../src/billing/credit-packs.js';
import { errorCodes, expectData, startTestApp } from './helpers/app.js';
import { billingAppForFile, concurrentlyBehindUserRowLock, isRecorded, signUp, stripeLedger, userRow } from './helpers/billing.js';
import {
  BillingPortalDocument,
  CreateCheckoutSessionDocument,
  CreditPacksDocument,
  SubscribeDocument,
} from './helpers/billing-documents.js';
import { CreateApiKeyDocument } from './helpers/documents.js';
import { TEST_STRIPE_SECRET_KEY } from './helpers/stripe-api.js';
import {
  deliverStripeEvent,
  nowSeconds,
  paidPackSession,
  signatureFor,
  stripeEvent,
  TEST_WEBHOOK_SECRET,
} from './helpers/stripe-events.js';

const f = billingAppForFile();
const FIVE_DOLLARS = DEFAULT_CREDIT_PACKS[0]!;

describe('buying through Stripe Checkout', () => {
  it('lists the credit packs for sale', async () => {
    const { creditPacks } = expectData(await f.t.execute(CreditPacksDocument, {}));
    expect(creditPacks).toEqual(DEFAULT_CREDIT_PACKS);
  });

  it('creates the Stripe customer once and tells Checkout who buys which pack', async () => {
    const { token, userId } = await signUp(f.t);
    const first = expectData(await f.t.execute(CreateCheckoutSessionDocument, { input: { pack: FIVE_DOLLARS.id } }, { token }));
    await f.t.execute(CreateCheckoutSessionDocument, { input: { pack: FIVE_DOLLARS.id } }, { token });

    expect(first.createCheckoutSession.url).toMatch(/^https:\/\/checkout\.stripe\.test\//);
    const { stripeCustomerId } = await userRow(f.t, userId);
    const mine = f.api.requestsFor(userId);
    expect(mine.filter((r) => r.path === '/v1/customers')).toHaveLength(1);
    const sessions = mine.filter((r) => r.path === '/v1/checkout/sessions');
    expect(sessions).toHaveLength(2);
    expect(sessions[0]!.params).toMatchObject({
      mode: 'payment',
      customer: stripeCustomerId,
      client_reference_id: userId,
      'metadata[pack]': FIVE_DOLLARS.id,
      'metadata[userId]': userId,
      'payment_intent_data[metadata][pack]': FIVE_DOLLARS.id,
      'line_items[0][quantity]': '1',
      'line_items[0][price_data][currency]': 'usd',
      'line_items[0][price_data][unit_amount]': String(FIVE_DOLLARS.priceCents),
      'line_items[0][price_data][product_data][name]': FIVE_DOLLARS.name,
    });
    expect(sessions[1]!.params.customer).toBe(stripeCustomerId);
  });

  it('keeps one Stripe customer when two first checkouts race', async () => {
    const { token, userId } = await signUp(f.t);
    const buy = () => f.t.execute(CreateCheckoutSessionDocument, { input: { pack: FIVE_DOLLARS.id } }, { token });
    f.api.holdCustomerCreations(2);
    await Promise.all([buy(), buy()]);

    const { stripeCustomerId } = await userRow(f.t, userId);
    const mine = f.api.requestsFor(userId);
    const sessions = mine.filter((r) => r.path === '/v1/checkout/sessions');
    expect(sessions.map((s) => s.params.customer)).toEqual([stripeCustomerId, stripeCustomerId]);
    // Both created one; the one not recorded is deleted again.
    expect(mine.filter((r) => r.path === '/v1/customers')).toHaveLength(2);
    const deleted = f.api.requests.filter((r) => r.method === 'DELETE' && r.path.startsWith('/v1/customers/'));
    expect(deleted.filter((r) => !r.path.endsWith(`/${stripeCustomerId}`))).toHaveLength(1);
  });

  it('refuses an unknown pack and a FREE subscription, writing nothing', async () => {
    const { token, userId } = await signUp(f.t);
    const pack = await f.t.execute(CreateCheckoutSessionDocument, { input: { pack: 'credits-1000000' } }, { token });
    const plan = await f.t.execute(SubscribeDocument, { input: { plan: 'FREE' } }, { token });

    expect(errorCodes(pack)).toEqual(['BAD_USER_INPUT']);
    expect(pack.errors?.[0]?.extensions?.field).toBe('pack');
    expect(errorCodes(plan)).toEqual(['BAD_USER_INPUT']);
    expect(f.api.requestsFor(userId)).toEqual([]);
    expect((await userRow(f.t, userId)).stripeCustomerId).toBeNull();
  });

  it('subscribes with the user and plan in the subscription metadata and an inline monthly price', async () => {
    const { token, userId } = await signUp(f.t);
    expectData(await f.t.execute(SubscribeDocument, { input: { plan: 'PRO' } }, { token }));

    const [session] = f.api.requestsFor(userId).filter((r) => r.path === '/v1/checkout/sessions');
    expect(session!.params).toMatchObject({
      mode: 'subscription',
      client_reference_id: userId,
      'subscription_data[metadata][userId]': userId,
      'subscription_data[metadata][plan]': 'PRO',
      'line_items[0][price_data][recurring][interval]': 'month',
      'line_items[0][price_data][unit_amount]': '2000',
    });
  });

  it('opens the billing portal for the user’s customer', async () => {
    const { token, userId } = await signUp(f.t);
    const { billingPortal } = expectData(await f.t.execute(BillingPortalDocument, {}, { token }));

    expect(billingPortal).toMatch(/^https:\/\/billing\.stripe\.test\//);
    const { stripeCustomerId } = await userRow(f.t, userId);
    const portal = f.api.requestsTo('POST', '/v1/billing_portal/sessions').find((r) => r.params.customer === stripeCustomerId);
    expect(portal?.params.return_url).toBe(f.t.config.billing.returnUrl);
  });

  it('lets neither anonymous callers nor API keys buy', async () => {
    const { token } = await signUp(f.t);
    const { createApiKey } = expectData(await f.t.execute(CreateApiKeyDocument, { input: { name: 'bot' } }, { token }));

    const anonymous = await f.t.execute(CreateCheckoutSessionDocument, { input: { pack: FIVE_DOLLARS.id } });
    const withKey = await f.t.execute(CreateCheckoutSessionDocument, { input: { pack: FIVE_DOLLARS.id } }, { token: createApiKey.secret });
    const portalWithKey = await f.t.execute(BillingPortalDocument, {}, { token: createApiKey.secret });
    expect(errorCodes(anonymous)).toEqual(['UNAUTHENTICATED']);
    expect(errorCodes(withKey)).toEqual(['FORBIDDEN']);
    expect(errorCodes(portalWithKey)).toEqual(['FORBIDDEN']);
  });

  it('reports a Stripe failure as UPSTREAM_ERROR without Stripe’s message or the key', async () => {
    const { token } = await signUp(f.t);
    f.api.failNext(400, `No such customer; key ${TEST_STRIPE_SECRET_KEY}`);
    const result = await f.t.execute(CreateCheckoutSessionDocument, { input: { pack: FIVE_DOLLARS.id } }, { token });

    expect(errorCodes(result)).toEqual(['UPSTREAM_ERROR']);
    expect(JSON.stringify(result.errors)).not.toMatch(/sk_test|No such customer/);
  });
});

describe('without Stripe configuration', () => {
  it('still lists packs, refuses to sell, and has no webhook route', async () => {
    const t = await startTestApp();
    const origin = (await t.app.start(0)).origin;
    const { token } = await signUp(t);

    expect(expectData(await t.execute(CreditPacksDocument, {})).creditPacks.length).toBeGreaterThan(0);
    const result = await t.execute(CreateCheckoutSessionDocument, { input: { pack: FIVE_DOLLARS.id } }, { token });
    expect(errorCodes(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors?.[0]?.message).toBe('Billing is not configured on this server');
    const event = stripeEvent('checkout.session.completed', paidPackSession('x', FIVE_DOLLARS.id));
    expect((await deliverStripeEvent(origin, event)).status).toBe(404);
  });
});

describe('credit purchases from the Stripe webhook', () => {
  it('credits a paid checkout once, however often the event is delivered', async () => {
    const { userId } = await signUp(f.t);
    const before = (await userRow(f.t, userId)).creditBalanceMicros;
    const event = stripeEvent('checkout.session.completed', paidPackSession(userId, FIVE_DOLLARS.id));

    expect(await deliverStripeEvent(f.origin, event)).toEqual({ status: 200, body: { received: true, outcome: 'applied' } });
    expect(await deliverStripeEvent(f.origin, event)).toEqual({ status: 200, body: { received: true, outcome: 'duplicate' } });

    expect(await stripeLedger(f.t, userId)).toEqual([{ kind: 'PURCHASE', amountMicros: FIVE_DOLLARS.creditsMicros, stripeEventId: event.id }]);
    const after = await userRow(f.t, userId);
    expect(after.creditBalanceMicros - before).toBe(BigInt(FIVE_DOLLARS.creditsMicros));
  });

  it('credits what the session sold, even when the pack was repriced or withdrawn after checkout', async () => {
    const { userId } = await signUp(f.t);
    const sold = { userId, pack: 'spring-sale', packName: 'Spring sale', creditsMicros: '7500000' };
    const event = stripeEvent('checkout.session.completed', paidPackSession(userId, 'spring-sale', { metadata: sold }));

    expect((await deliverStripeEvent(f.origin, event)).body.outcome).toBe('applied');
    expect(await stripeLedger(f.t, userId)).toEqual([{ kind: 'PURCHASE', amountMicros: 7_500_000, stripeEventId: event.id }]);
  });

  it('credits once when the same event arrives several times at once', async () => {
    const { userId } = await signUp(f.t);
    const event = stripeEvent('checkout.session.completed', paidPackSession(userId, FIVE_DOLLARS.id));
    const deliveries = await concurrentlyBehindUserRowLock(
      userId,
      Array.from({ length: 5 }, () => () => deliverStripeEvent(f.origin, event)),
    );

    expect(deliveries.map((d) => d.status)).toEqual([200, 200, 200, 200, 200]);
    expect(deliveries.filter((d) => d.body.outcome === 'applied')).toHaveLength(1);
    expect(await stripeLedger(f.t, userId)).toHaveLength(1);
  });

  it('credits a payment once when both the completed and the async-succeeded events say it is paid', async () => {
    const { userId } = await signUp(f.t);
    const session = paidPackSession(userId, FIVE_DOLLARS.id);
    const pending = stripeEvent('checkout.session.completed', { ...session, payment_status: 'unpaid' });
    expect((await deliverStripeEvent(f.origin, pending)).status).toBe(200);
    expect(await stripeLedger(f.t, userId)).toEqual([]);

    // Distinct events (each passes the event-id check) naming one payment, arriving together.
    const types = ['checkout.session.async_payment_succeeded', 'checkout.session.completed'];
    await concurrentlyBehindUserRowLock(
      userId,
      Array.from({ length: 6 }, (_, i) => () => deliverStripeEvent(f.origin, stripeEvent(types[i % 2]!, session))),
    );
    expect((await stripeLedger(f.t, userId)).map((e) => e.kind)).toEqual(['PURCHASE']);
  });

  it('refuses forged, tampered, stale and unsigned deliveries and writes nothing', async () => {
    const { userId } = await signUp(f.t);
    const before = await userRow(f.t, userId);
    const event = stripeEvent('checkout.session.completed', paidPackSession(userId, FIVE_DOLLARS.id));
    const tampered = { ...event, data: { object: paidPackSession(userId, 'credits-100') } };

    const attempts = await Promise.all([
      deliverStripeEvent(f.origin, event, { secret: 'whsec_not_the_right_secret' }),
      deliverStripeEvent(f.origin, tampered, { signature: signatureFor(event) }),
      deliverStripeEvent(f.origin, event, { timestamp: nowSeconds() - 301 }),
      deliverStripeEvent(f.origin, event, { signature: null }),
    ]);

    expect(attempts.map((a) => a.status)).toEqual([400, 400, 400, 400]);
    expect(await isRecorded(f.t, event.id)).toBe(false);
    expect(await stripeLedger(f.t, userId)).toEqual([]);
    expect((await userRow(f.t, userId)).creditBalanceMicros).toBe(before.creditBalanceMicros);
    // The same event, properly signed, still goes through.
    expect((await deliverStripeEvent(f.origin, event, { secret: TEST_WEBHOOK_SECRET })).body.outcome).toBe('applied');
  });

  it('takes only POST, and caps the body it reads', async () => {
    const url = new URL('/webhooks/stripe', f.origin);
    expect((await fetch(url)).status).toBe(405);
    const oversized = await fetch(url, { method: 'POST', body: 'x'.repeat(f.t.config.http.maxRequestBytes + 1) });
    expect(oversized.status).toBe(413);
    // Without a Content-Length the cap applies while reading.
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream({
      pull(controller) {
        if (sent > f.t.config.http.maxRequestBytes) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const chunked = await fetch(url, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);
  });

  it('acknowledges a purchase for an unknown user or pack, recording only the event', async () => {
    const { userId } = await signUp(f.t);
    const unknownPack = stripeEvent('checkout.session.completed', paidPackSession(userId, 'credits-gone'));
    const unknownUser = stripeEvent('checkout.session.completed', paidPackSession('0190f0f0-0000-7000-8000-000000000000', FIVE_DOLLARS.id));
    const notAUuid = stripeEvent('checkout.session.completed', paidPackSession('someone', FIVE_DOLLARS.id));

    for (const event of [unknownPack, unknownUser, notAUuid]) {
      expect(await deliverStripeEvent(f.origin, event)).toEqual({ status: 200, body: { received: true, outcome: 'applied' } });
      expect(await isRecorded(f.t, event.id)).toBe(true);
    }
    expect(await stripeLedger(f.t, userId)).toEqual([]);
    const stray = await f.t.app.db.prisma.creditLedgerEntry.count({ where: { stripeEventId: { in: [unknownUser.id, notAUuid.id] } } });
    expect(stray).toBe(0);
  });

  it('answers event types it does not handle with 200 and records nothing', async () => {
    const event = stripeEvent('customer.created', { id: 'cus_x', object: 'customer' });
    expect(await deliverStripeEvent(f.origin, event)).toEqual({ status: 200, body: { received: true, outcome: 'ignored' } });
    expect(await isRecorded(f.t, event.id)).toBe(false);
  });
});
