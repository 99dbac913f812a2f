import type Stripe from 'stripe';
import type { Config } from '../config.js';
import type { PrismaClient } from '../db/client.js';
import { AppError, badInput, notFound } from '../errors.js';
import type { Plan } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import type { CreditPack, PaidPlan } from './credit-packs.js';
import { LIVE_SUBSCRIPTION_STATUSES } from './subscription-state.js';

export interface BillingDeps {
  prisma: PrismaClient;
  /** Absent when STRIPE_SECRET_KEY is not set: the packs can be listed, not bought. */
  stripe?: Stripe;
  billing: Config['billing'];
  logger: Logger;
}

/** A hosted Stripe Checkout page the client sends the user to. */
export interface CheckoutSession {
  id: string;
  url: string;
}

export type Billing = ReturnType<typeof createBilling>;

/** Buying credit packs and plans through Stripe Checkout, and the customer portal. */
export function createBilling(deps: BillingDeps) {
  const { prisma, billing, logger } = deps;

  const requireStripe = (): Stripe => {
    if (!deps.stripe) throw badInput('Billing is not configured on this server');
    return deps.stripe;
  };

  // Stripe's messages can quote request parameters; the user gets a fixed one, the log the error code.
  const callStripe = async <T>(action: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      logger.warn({ err: error, action }, 'Stripe API call failed');
      throw new AppError('UPSTREAM_ERROR', `The payment provider could not ${action}; try again later`);
    }
  };

  /**
   * The user's Stripe customer, created on first need. Two concurrent first calls may both create
   * one: only the first recorded is kept (conditional update), the other is deleted again.
   */
  const customerFor = async (stripe: Stripe, userId: string): Promise<string> => {
    const user = await prisma.user.findUnique({ where: { id: userId }, select: { email: true, name: true, stripeCustomerId: true } });
    if (!user) throw notFound('User');
    if (user.stripeCustomerId) return user.stripeCustomerId;
    const customer = await callStripe('create the customer', () =>
      stripe.customers.create({ email: user.email, name: user.name, metadata: { userId } }),
    );
    const { count } = await prisma.user.updateMany({
      where: { id: userId, stripeCustomerId: null },
      data: { stripeCustomerId: customer.id },
    });
    if (count === 1) return customer.id;
    await stripe.customers.del(customer.id).catch((error: unknown) => {
      logger.warn({ err: error, customer: customer.id }, 'could not delete a duplicate Stripe customer');
    });
    const winner = await prisma.user.findUniqueOrThrow({ where: { id: userId }, select: { stripeCustomerId: true } });
    return winner.stripeCustomerId!;
  };

  const returnUrl = (query: string) => `${billing.returnUrl}${billing.returnUrl.includes('?') ? '&' : '?'}${query}`;

  const toCheckoutSession = (session: Stripe.Checkout.Session): CheckoutSession => {
    if (!session.url) throw new AppError('UPSTREAM_ERROR', 'The payment provider returned no checkout page; try again later');
    return { id: session.id, url: session.url };
  };

  return {
    creditPacks: (): CreditPack[] => billing.creditPacks,

    /** A one-time payment for a credit pack; the credits arrive with the checkout webhook. */
    async createCheckoutSession(userId: string, packId: string): Promise<CheckoutSession> {
      const pack = billing.creditPacks.find((p) => p.id === packId);
      if (!pack) throw badInput(`Unknown credit pack "${packId.slice(0, 40)}"`, 'pack');
      const stripe = requireStripe();
      const customer = await customerFor(stripe, userId);
      // Both the session and its payment carry who bought what, so every later event finds them.
      const metadata = { userId, pack: pack.id, packName: pack.name, creditsMicros: String(pack.creditsMicros) };
      const session = await callStripe('start the checkout', () =>
        stripe.checkout.sessions.create({
          mode: 'payment',
          customer,
          client_reference_id: userId,
          metadata,
          payment_intent_data: { metadata },
          line_items: [
            {
              quantity: 1,
              price_data: { currency: pack.currency, unit_amount: pack.priceCents, product_data: { name: pack.name } },
            },
          ],
          success_url: returnUrl('checkout=success&session_id={CHECKOUT_SESSION_ID}'),
          cancel_url: returnUrl('checkout=canceled'),
        }),
      );
      return toCheckoutSession(session);
    },

    /** A monthly subscription to a paid plan; the plan changes with the subscription webhooks. */
    async subscribe(userId: string, plan: Plan): Promise<CheckoutSession> {
      if (plan === 'FREE') throw badInput('Choose PRO or TEAM; cancel a subscription in the billing portal', 'plan');
      const stripe = requireStripe();
      const user = await prisma.user.findUnique({ where: { id: userId }, select: { subscriptionStatus: true } });
      // A second subscription would bill the user twice; plan changes go through the portal.
      if (user?.subscriptionStatus && LIVE_SUBSCRIPTION_STATUSES.has(user.subscriptionStatus)) {
        throw badInput('You already have a subscription; change it in the billing portal', 'plan');
      }
      const customer = await customerFor(stripe, userId);
      const settings = billing.plans[plan as PaidPlan];
      const metadata = { userId, plan };
      const session = await callStripe('start the checkout', () =>
        stripe.checkout.sessions.create({
          mode: 'subscription',
          customer,
          client_reference_id: userId,
          metadata,
          subscription_data: { metadata },
          line_items: [
            settings.stripePriceId
              ? { quantity: 1, price: settings.stripePriceId }
              : {
                  quantity: 1,
                  price_data: {
                    currency: 'usd',
                    unit_amount: settings.monthlyPriceCents,
                    recurring: { interval: 'month' },
                    product_data: { name: `Switchboard ${plan}` },
                  },
                },
          ],
          success_url: returnUrl('subscription=success&session_id={CHECKOUT_SESSION_ID}'),
          cancel_url: returnUrl('subscription=canceled'),
        }),
      );
      return toCheckoutSession(session);
    },

    /** Stripe's customer portal: invoices, payment methods, plan changes and cancellation. */
    async billingPortal(userId: string): Promise<string> {
      const stripe = requireStripe();
      const customer = await customerFor(stripe, userId);
      const session = await callStripe('open the billing portal', () =>
        stripe.billingPortal.sessions.create({ customer, return_url: billing.returnUrl }),
      );
      return session.url;
    },
  };
}
