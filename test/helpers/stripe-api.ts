import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startLocalServer } from './local-server.js';

/** A request the server made to the Stripe API, its form-encoded body flattened (`metadata[pack]` → value). */
export interface StripeApiRequest {
  method: string;
  path: string;
  params: Record<string, string>;
}

export const TEST_STRIPE_SECRET_KEY = 'sk_test_switchboard_local_api';

/**
 * The few Stripe API endpoints the server calls (customers, Checkout sessions, billing portal
 * sessions), shaped like Stripe's API reference, on a free loopback port. No published mock
 * covers Checkout and the portal (stripe-stateful-mock has neither; stripe-mock is not on npm).
 */
export class LocalStripeApi {
  readonly requests: StripeApiRequest[] = [];
  /** Answers the next requests with this Stripe error instead (each use consumes one). */
  private failures: Array<{ status: number; message: string }> = [];
  private customerGate?: { waiting: number; open: () => void; opened: Promise<void> };

  private constructor(
    readonly url: string,
    readonly stop: () => Promise<void>,
  ) {}

  static async start(): Promise<LocalStripeApi> {
    let api: LocalStripeApi | undefined;
    const server = await startLocalServer((req, res) => void api!.handle(req, res));
    api = new LocalStripeApi(server.url, server.stop);
    return api;
  }

  /** Environment that points a Switchboard instance at this API. */
  env(webhookSecret: string): Record<string, string> {
    return { STRIPE_SECRET_KEY: TEST_STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET: webhookSecret, STRIPE_API_URL: this.url };
  }

  failNext(status: number, message: string): void {
    this.failures.push({ status, message });
  }

  /** Answers no customer creation until `count` of them have arrived, so that they race for sure. */
  holdCustomerCreations(count: number): void {
    let open = () => {};
    const opened = new Promise<void>((resolve) => (open = resolve));
    this.customerGate = { waiting: count, open, opened };
  }

  requestsTo(method: string, path: string): StripeApiRequest[] {
    return this.requests.filter((r) => r.method === method && r.path === path);
  }

  /** Requests made on behalf of one user (every one the server makes carries the user id somewhere). */
  requestsFor(userId: string): StripeApiRequest[] {
    return this.requests.filter((r) => Object.values(r.params).includes(userId));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    const path = (req.url ?? '/').split('?')[0]!;
    const method = req.method ?? 'GET';
    this.requests.push({ method, path, params });

    if (req.headers.authorization !== `Bearer ${TEST_STRIPE_SECRET_KEY}`) {
      return reply(res, 401, stripeError('invalid_request_error', 'Invalid API Key provided'));
    }
    const failure = this.failures.shift();
    if (failure) return reply(res, failure.status, stripeError('invalid_request_error', failure.message));

    if (method === 'POST' && path === '/v1/customers') {
      const gate = this.customerGate;
      if (gate) {
        if (--gate.waiting <= 0) {
          this.customerGate = undefined;
          gate.open();
        }
        await gate.opened;
      }
      return reply(res, 200, { id: newId('cus'), object: 'customer', email: params.email ?? null, name: params.name ?? null, metadata: metadataOf(params) });
    }
    const deleted = /^\/v1\/customers\/(cus_\w+)$/.exec(path);
    if (method === 'DELETE' && deleted) return reply(res, 200, { id: deleted[1], object: 'customer', deleted: true });
    if (method === 'POST' && path === '/v1/checkout/sessions') {
      const id = newId('cs_test');
      return reply(res, 200, {
        id,
        object: 'checkout.session',
        mode: params.mode,
        customer: params.customer ?? null,
        client_reference_id: params.client_reference_id ?? null,
        metadata: metadataOf(params),
        payment_status: 'unpaid',
        status: 'open',
        success_url: params.success_url,
        cancel_url: params.cancel_url,
        url: `https://checkout.stripe.test/c/pay/${id}`,
      });
    }
    if (method === 'POST' && path === '/v1/billing_portal/sessions') {
      const id = newId('bps');
      return reply(res, 200, {
        id,
        object: 'billing_portal.session',
        customer: params.customer,
        return_url: params.return_url ?? null,
        url: `https://billing.stripe.test/p/session/${id}`,
      });
    }
    reply(res, 404, stripeError('invalid_request_error', `Unrecognized request URL (${method}: ${path})`));
  }
}

function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}

function metadataOf(params: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(params)
      .filter(([key]) => key.startsWith('metadata['))
      .map(([key, value]) => [key.slice('metadata['.length, -1), value]),
  );
}

function stripeError(type: string, message: string) {
  return { error: { type, message } };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': newId('req') });
  res.end(JSON.stringify(body));
}
