import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CREDIT_PACKS } from '../src/billing/credit-packs.js';
import { errorCodes, expectData } from './helpers/app.js';
import { billingAppForFile, signUp } from './helpers/billing.js';
import { CreateCheckoutSessionDocument } from './helpers/billing-documents.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import { AccountBalanceDocument } from './helpers/metering-documents.js';
import { charge, deliverStripeEvent, stripeEvent, stripeId } from './helpers/stripe-events.js';
import { MockUpstream } from './helpers/upstream.js';

const PACK = DEFAULT_CREDIT_PACKS[0]!;
let upstream: MockUpstream;
beforeAll(async () => {
  upstream = await MockUpstream.start();
});
afterAll(async () => {
  await upstream.stop();
});
// New accounts start without credits here, so the first priced call must be paid for.
const f = billingAppForFile(() => ({ ...upstream.env, SIGNUP_CREDITS_MICROS: '0' }));

describe('paying for chat with credits bought through Stripe', () => {
  it('refuses without credits, credits a paid Checkout once, debits each reply its cost, and reverses a refund', async () => {
    const { token, userId } = await signUp(f.t);
    const balance = async () => expectData(await f.t.execute(AccountBalanceDocument, {}, { token })).me!.credits!;
    const prompt = upstream.prompt({ content: 'paid for', usage: { prompt_tokens: 1200, completion_tokens: 300 } }, undefined, 'walk');
    const chat = () => f.t.execute(SendMessageDocument, { input: { content: prompt, stream: false } }, { token });

    // 1. No credits: the priced model is refused, and nothing is written.
    expect(errorCodes(await chat())).toEqual(['INSUFFICIENT_CREDITS']);
    expect((await balance()).ledger!.totalCount).toBe(0);

    // 2. Checkout through the Stripe API; once Stripe reports the session paid, the pack's credits arrive.
    const session = expectData(await f.t.execute(CreateCheckoutSessionDocument, { input: { pack: PACK.id } }, { token }));
    const sent = f.api.requestsFor(userId).find((r) => r.path === '/v1/checkout/sessions')!.params;
    const paymentIntent = stripeId('pi');
    const completed = stripeEvent('checkout.session.completed', {
      id: session.createCheckoutSession.id,
      object: 'checkout.session',
      mode: 'payment',
      payment_status: 'paid',
      status: 'complete',
      client_reference_id: sent.client_reference_id,
      // Stripe sends back the metadata the session was created with.
      metadata: Object.fromEntries(
        Object.entries(sent).flatMap(([key, value]) => (/^metadata\[(\w+)\]$/.exec(key) ? [[key.slice(9, -1), value]] : [])),
      ),
      customer: sent.customer,
      payment_intent: paymentIntent,
      amount_total: PACK.priceCents,
      currency: PACK.currency,
    });
    expect((await deliverStripeEvent(f.origin, completed)).status).toBe(200);
    expect(await balance()).toMatchObject({ balanceMicros: PACK.creditsMicros, heldMicros: 0 });

    // 3. A reply costs exactly its costMicros.
    const reply = expectData(await chat()).sendMessage.assistantMessage;
    expect(reply.costMicros).toBeGreaterThan(0);
    const afterChat = await balance();
    expect(afterChat.balanceMicros).toBe(PACK.creditsMicros - reply.costMicros);
    expect(afterChat.ledger!.edges.map((e) => [e.node.kind, e.node.amountMicros])).toEqual([
      ['USAGE', -reply.costMicros],
      ['PURCHASE', PACK.creditsMicros],
    ]);

    // 4. Stripe delivers the same event again: nothing changes.
    expect((await deliverStripeEvent(f.origin, completed)).status).toBe(200);
    expect(await balance()).toEqual(afterChat);

    // 5. The payment is refunded in full: the pack's credits are taken back.
    const refunded = stripeEvent('charge.refunded', charge(paymentIntent, PACK.priceCents, PACK.priceCents));
    expect((await deliverStripeEvent(f.origin, refunded)).status).toBe(200);
    const afterRefund = await balance();
    expect(afterRefund.ledger!.edges[0]!.node).toMatchObject({ kind: 'REFUND', amountMicros: -PACK.creditsMicros });
    expect(afterRefund.balanceMicros).toBe(-reply.costMicros);
    // What was spent stays spent: with a negative balance the next priced call is refused.
    expect(errorCodes(await chat())).toEqual(['INSUFFICIENT_CREDITS']);
  });
});
