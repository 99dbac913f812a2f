import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { PGlite } from '@electric-sql/pglite';
import { PGLITE_EXTENSIONS } from '../src/db/client.js';
import { jwtVerify } from 'jose';
import pg from 'pg';

/**
 * The floor for the nested read: what a bare node:http handler costs for the same data. It
 * verifies the same access token as Switchboard (jose, HS256, issuer, audience, type) but looks
 * nothing else up, and answers with ONE SQL statement that builds the whole response body, in
 * the shape Switchboard's GraphQL response has, inside the database.
 *
 * Run by bench/reads.ts as its own process: DATABASE_URL (PostgreSQL) or PGLITE_DIR (a PGlite
 * data directory no other process has open), JWT_SECRET, optional JWT_ISSUER / JWT_AUDIENCE.
 * Prints "listening on <url>" once ready; any path answers.
 */

// Relay ids are base64("Type:uuid"), as Switchboard encodes them; both fit in one base64 line
// (PostgreSQL wraps its base64 at 76 characters).
const NESTED_SQL = `
SELECT json_build_object('data', json_build_object('me', json_build_object('conversations', json_build_object(
  'edges', coalesce(json_agg(json_build_object('node', json_build_object(
    'id', encode(convert_to('Conversation:' || c.id, 'UTF8'), 'base64'),
    'title', c.title,
    'messageCount', counted.n,
    'messages', json_build_object('edges', latest.edges)
  )) ORDER BY c.id DESC), '[]'::json)
))))::text AS body
FROM (SELECT id, title FROM "Conversation" WHERE "userId" = $1::uuid ORDER BY id DESC LIMIT 50) c
CROSS JOIN LATERAL (SELECT count(*)::int AS n FROM "Message" WHERE "conversationId" = c.id) counted
CROSS JOIN LATERAL (
  SELECT coalesce(json_agg(json_build_object('node', json_build_object(
    'id', encode(convert_to('Message:' || m.id, 'UTF8'), 'base64'),
    'role', m.role,
    'content', m.content
  )) ORDER BY m.id), '[]'::json) AS edges
  -- The latest 20, returned oldest first, as messages(last: 20) does.
  FROM (SELECT id, role, content FROM "Message" WHERE "conversationId" = c.id ORDER BY id DESC LIMIT 20) m
) latest`;

interface BodySource {
  nestedBody(userId: string): Promise<string>;
  close(): Promise<void>;
}

async function openSource(): Promise<BodySource> {
  const url = process.env.DATABASE_URL;
  if (url) {
    // The same pool size as Switchboard's (src/db/client.ts).
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    return {
      nestedBody: async (userId) => (await pool.query<{ body: string }>(NESTED_SQL, [userId])).rows[0]!.body,
      close: () => pool.end(),
    };
  }
  const pglite = await PGlite.create(process.env.PGLITE_DIR!, { extensions: PGLITE_EXTENSIONS });
  return {
    nestedBody: async (userId) => (await pglite.query<{ body: string }>(NESTED_SQL, [userId])).rows[0]!.body,
    close: () => pglite.close(),
  };
}

const secret = new TextEncoder().encode(process.env.JWT_SECRET);
const issuer = process.env.JWT_ISSUER ?? 'switchboard';
const audience = process.env.JWT_AUDIENCE ?? 'switchboard-api';

/** The user id of a valid access token, else undefined. */
async function userIdOf(authorization: string | undefined): Promise<string | undefined> {
  const token = authorization?.startsWith('Bearer ') ? authorization.slice('Bearer '.length) : undefined;
  if (!token) return undefined;
  try {
    const { payload } = await jwtVerify(token, secret, {
      algorithms: ['HS256'],
      issuer,
      audience,
      typ: 'at+jwt',
      requiredClaims: ['sub', 'exp', 'iat'],
    });
    return payload.sub;
  } catch {
    return undefined;
  }
}

async function handle(source: BodySource, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const userId = await userIdOf(request.headers.authorization);
  if (!userId) {
    response.writeHead(401).end();
    return;
  }
  const body = await source.nestedBody(userId);
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
}

const source = await openSource();
const server = createServer((request, response) => {
  handle(source, request, response).catch((error: unknown) => {
    console.error(error);
    if (!response.headersSent) response.writeHead(500);
    response.end();
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (typeof address === 'object' && address) console.log(`listening on http://127.0.0.1:${address.port}/`);
});
process.once('SIGTERM', () => {
  // Answers still in flight finish first: closing the database under them would fail them.
  server.close(() => void source.close().then(() => process.exit(0)));
  server.closeIdleConnections();
});
