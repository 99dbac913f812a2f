import Stripe from 'stripe';
import type { Config } from '../config.js';

export type StripeSettings = NonNullable<Config['stripe']>;

/**
 * The Stripe API client. STRIPE_API_URL points it at another server (tests run a local one).
 * Retries are safe: the SDK sends an idempotency key with every retried POST.
 */
export function createStripeClient(settings: StripeSettings): Stripe {
  const target = settings.apiUrl ? new URL(settings.apiUrl) : undefined;
  return new Stripe(settings.secretKey, {
    maxNetworkRetries: 2,
    // A resolver waits for these calls; a user would rather see an error than a minute of spinner.
    timeout: 20_000,
    appInfo: { name: 'switchboard' },
    ...(target && {
      protocol: target.protocol === 'http:' ? 'http' : 'https',
      host: target.hostname,
      port: target.port || (target.protocol === 'http:' ? 80 : 443),
    }),
  });
}
