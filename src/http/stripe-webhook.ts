import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StripeWebhooks } from '../billing/webhooks.js';
import type { Logger } from '../logger.js';
import { isBodyTooLarge, sendJson } from './health.js';

export interface StripeWebhookEndpoint {
  /** Absent without Stripe configuration: the route answers 404. */
  webhooks?: StripeWebhooks;
  maxBytes: number;
  logger: Logger;
}

class BodyTooLarge extends Error {}

/**
 * POST /webhooks/stripe. The signature covers the exact bytes Stripe sent, so the body is read
 * raw (never parsed first) and capped. 2xx tells Stripe to stop delivering the event: it is
 * answered once the event is applied, seen before or not for us; 500 only when applying failed.
 */
export async function respondStripeWebhook(req: IncomingMessage, res: ServerResponse, endpoint: StripeWebhookEndpoint): Promise<void> {
  const { webhooks, logger } = endpoint;
  if (!webhooks) return sendJson(res, 404, { error: 'Not found' });
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    return sendJson(res, 405, { error: 'Method not allowed' });
  }
  let rawBody: Buffer;
  try {
    if (isBodyTooLarge(req, endpoint.maxBytes)) throw new BodyTooLarge();
    rawBody = await readRawBody(req, endpoint.maxBytes);
  } catch (error) {
    if (!(error instanceof BodyTooLarge)) return void req.destroy();
    res.setHeader('connection', 'close');
    return sendJson(res, 413, { error: `Body exceeds ${endpoint.maxBytes} bytes` });
  }

  const signature = req.headers['stripe-signature'];
  let event;
  try {
    event = webhooks.verifyStripeEvent(rawBody, typeof signature === 'string' ? signature : undefined);
  } catch {
    logger.warn({ hasSignature: signature !== undefined }, 'refused a Stripe webhook: bad, stale or missing signature');
    return sendJson(res, 400, { error: 'Invalid Stripe signature' });
  }
  try {
    const outcome = await webhooks.applyStripeEvent(event);
    sendJson(res, 200, { received: true, outcome });
  } catch (error) {
    logger.error({ err: error, stripeEventId: event.id, stripeEventType: event.type }, 'Stripe event failed; Stripe will deliver it again');
    sendJson(res, 500, { error: 'Event not processed' });
  }
}

function readRawBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.removeAllListeners('data');
        req.pause();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
