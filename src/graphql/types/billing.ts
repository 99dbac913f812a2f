import type { CreditPack } from '../../billing/credit-packs.js';
import type { CheckoutSession } from '../../billing/checkout.js';
import { assertNotApiKey } from '../../auth/viewer.js';
import { builder } from '../builder.js';
import { requireViewer, type GraphQLContext } from '../context.js';
import { isSelfOrAdmin } from '../ownership.js';
import { PlanEnum, UserRef } from './user.js';

const CreditPackRef = builder.objectRef<CreditPack>('CreditPack').implement({
  description: 'Prepaid credits sold through Stripe Checkout.',
  fields: (t) => ({
    id: t.exposeString('id'),
    name: t.exposeString('name'),
    creditsMicros: t.expose('creditsMicros', { type: 'SafeInt', description: 'Credits bought, in micro-dollars.' }),
    priceCents: t.exposeInt('priceCents', { description: "Price in the currency's minor unit." }),
    currency: t.exposeString('currency', { description: 'Lower-case ISO currency code.' }),
  }),
});

const CheckoutSessionRef = builder.objectRef<CheckoutSession>('CheckoutSession').implement({
  description: 'A Stripe Checkout page; send the user to `url`. What it buys arrives with Stripe\'s webhook.',
  fields: (t) => ({
    id: t.exposeString('id'),
    url: t.exposeString('url'),
  }),
});

const CreateCheckoutSessionInput = builder.inputType('CreateCheckoutSessionInput', {
  fields: (t) => ({ pack: t.string({ required: true, description: 'A credit pack id from `creditPacks`.' }) }),
});

const SubscribeInput = builder.inputType('SubscribeInput', {
  fields: (t) => ({ plan: t.field({ type: PlanEnum, required: true, description: 'PRO or TEAM.' }) }),
});

// Buying is for the account holder: a leaked API key must not run up charges.
const buyer = (ctx: GraphQLContext, action: string) => {
  const viewer = requireViewer(ctx);
  assertNotApiKey(viewer, action);
  return viewer;
};

builder.queryField('creditPacks', (t) =>
  t.field({
    type: [CreditPackRef],
    description: 'The credit packs on sale.',
    resolve: (_root, _args, ctx) => ctx.services.billing.creditPacks(),
  }),
);

builder.mutationFields((t) => ({
  createCheckoutSession: t.field({
    type: CheckoutSessionRef,
    description: 'Starts buying a credit pack.',
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: CreateCheckoutSessionInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.billing.createCheckoutSession(buyer(ctx, 'buy credits').id, input.pack),
  }),
  subscribe: t.field({
    type: CheckoutSessionRef,
    description: 'Starts a monthly subscription to a paid plan.',
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: SubscribeInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.billing.subscribe(buyer(ctx, 'subscribe').id, input.plan),
  }),
  billingPortal: t.string({
    description: "A link to Stripe's customer portal: invoices, payment methods, plan changes, cancellation.",
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.services.billing.billingPortal(buyer(ctx, 'manage billing').id),
  }),
}));


builder.prismaObjectFields(UserRef, (t) => ({
  subscriptionStatus: t.exposeString('subscriptionStatus', {
    nullable: true,
    description: "Stripe's status of the plan subscription (active, past_due, canceled…); null without one.",
    authScopes: (user, _args, ctx) => isSelfOrAdmin(user.id, ctx),
  }),
  pastDue: t.exposeBoolean('pastDue', {
    description: 'A subscription payment failed and has not been made good yet.',
    authScopes: (user, _args, ctx) => isSelfOrAdmin(user.id, ctx),
  }),
}));
