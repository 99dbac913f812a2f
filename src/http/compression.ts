import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';

export type ContentEncoding = 'br' | 'gzip';

/** Bodies smaller than this are sent as they are: compressing them saves less than it costs. */
const MIN_COMPRESSED_BYTES = 1024;
const COMPRESSIBLE_TYPE = /^text\/html\b/i;

const brotliAsync = promisify(brotliCompress);
const gzipAsync = promisify(gzip);
const compressors: Record<ContentEncoding, (body: Buffer) => Promise<Buffer>> = {
  br: (body) =>
    brotliAsync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 6, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } }),
  gzip: (body) => gzipAsync(body, { level: 6 }),
};

/** br or gzip when the request's Accept-Encoding allows it (br preferred), else undefined. */
export function acceptedEncoding(req: IncomingMessage): ContentEncoding | undefined {
  const header = req.headers['accept-encoding'];
  if (typeof header !== 'string') return undefined;
  const accepted = new Set(
    header
      .split(',')
      .map((part) => part.trim().toLowerCase().split(/\s*;\s*/))
      .filter(([, quality]) => !/^q=0(\.0*)?$/.test(quality ?? ''))
      .map(([name]) => name),
  );
  if (accepted.has('br')) return 'br';
  if (accepted.has('gzip')) return 'gzip';
  return undefined;
}

/**
 * Writes Fetch Responses to Node responses, compressing HTML bodies. GraphiQL's page is ~9 MB and
 * the same on every load: the last compressed copy of each encoding is kept, so it is compressed
 * once rather than on every request.
 */
export function createResponseCompressor() {
  const lastCompressed = new Map<ContentEncoding, { body: Buffer; compressed: Buffer }>();

  async function compress(body: Buffer, encoding: ContentEncoding): Promise<Buffer> {
    const cached = lastCompressed.get(encoding);
    if (cached?.body.equals(body)) return cached.compressed;
    const compressed = await compressors[encoding](body);
    lastCompressed.set(encoding, { body, compressed });
    return compressed;
  }

  return async function sendCompressed(response: Response, res: ServerResponse, encoding: ContentEncoding): Promise<void> {
    res.statusCode = response.status;
    response.headers.forEach((value, name) => res.setHeader(name, value));
    if (!response.body) return void res.end();
    if (!COMPRESSIBLE_TYPE.test(response.headers.get('content-type') ?? '')) {
      return void Readable.fromWeb(response.body as NodeReadableStream).pipe(res);
    }
    res.setHeader('vary', 'accept-encoding');
    const body = Buffer.from(await response.arrayBuffer());
    if (body.length < MIN_COMPRESSED_BYTES) return void res.end(body);
    const compressed = await compress(body, encoding);
    res.setHeader('content-encoding', encoding);
    res.setHeader('content-length', compressed.length);
    res.end(compressed);
  };
}
