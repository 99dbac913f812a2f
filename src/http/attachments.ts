import type { IncomingMessage, ServerResponse } from 'node:http';
import { keyAllows } from '../auth/api-key-scopes.js';
import type { Authenticate, Viewer } from '../auth/viewer.js';
import { ATTACHMENT_PATH_PREFIX, findOwnUpload } from '../chat/attachments.js';
import type { PrismaClient } from '../db/client.js';
import { AppError } from '../errors.js';
import { decodeGlobalId } from '../global-id.js';
import type { Logger } from '../logger.js';
import { clientIp } from '../rate-limit/client-ip.js';
import type { RateLimiter } from '../rate-limit/limiter.js';
import { rateChecksFor } from '../rate-limit/rules.js';
import { sendJson } from './health.js';

export interface AttachmentEndpoint {
  prisma: PrismaClient;
  authenticate: Authenticate;
  rateLimiter: RateLimiter;
  trustProxyHops: number;
  logger: Logger;
}

/**
 * GET /attachments/<global id>: an uploaded image, for its owner, with the API's bearer
 * credential (an API key needs READ); counted like any read. Anyone else, and any id that is not
 * an upload, gets 404. The bytes were checked to be an image when they were stored; they are sent
 * with that type, never to be sniffed, rendered as a page or run.
 */
export async function respondAttachment(req: IncomingMessage, res: ServerResponse, endpoint: AttachmentEndpoint): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return sendJson(res, 405, { error: 'Method not allowed' });
  }
  try {
    const viewer = await endpoint.authenticate(req.headers.authorization);
    if (!viewer) {
      res.setHeader('www-authenticate', 'Bearer');
      return sendJson(res, 401, { error: 'Sign in to read attachments' });
    }
    if (!keyAllows(viewer, ['READ'])) return sendJson(res, 403, { error: 'This API key lacks the READ scope' });
    await endpoint.rateLimiter.check(rateChecksFor('Query', 'attachment', {}, { viewer, ip: clientIp(req, endpoint.trustProxyHops) }));
    const upload = await findUpload(endpoint.prisma, viewer, req.url ?? '');
    if (!upload) return sendJson(res, 404, { error: 'Not found' });
    res.writeHead(200, {
      'content-type': upload.mimeType,
      'content-length': upload.data.length,
      'content-disposition': `attachment; filename="image.${upload.mimeType.slice('image/'.length)}"`,
      'content-security-policy': "default-src 'none'; sandbox",
      'cache-control': 'private, no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : upload.data);
  } catch (error) {
    if (!(error instanceof AppError)) {
      endpoint.logger.error({ err: error }, 'could not serve an attachment');
      return sendJson(res, 500, { error: 'Internal error' });
    }
    if (error.code === 'RATE_LIMITED') res.setHeader('retry-after', String(error.details.retryAfter ?? 1));
    const status = error.code === 'RATE_LIMITED' ? 429 : (error.httpStatus ?? 400);
    sendJson(res, status, { error: error.message, code: error.code });
  }
}

async function findUpload(prisma: PrismaClient, viewer: Viewer, url: string) {
  const encoded = url.split('?')[0]!.slice(ATTACHMENT_PATH_PREFIX.length);
  let id: string;
  try {
    const decoded = decodeGlobalId(decodeURIComponent(encoded));
    if (decoded.typename !== 'Attachment') return undefined;
    id = decoded.id;
  } catch {
    return undefined;
  }
  return findOwnUpload(prisma, viewer.id, id);
}
