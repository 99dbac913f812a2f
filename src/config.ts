import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { catalogFromEnv, modelPricesFromJson, modelsFromJson, type ModelInfo } from './model-catalog.js';
import { creditPacksFromJson, DEFAULT_CREDIT_PACKS, type CreditPack, type PaidPlan } from './billing/credit-packs.js';
import type { PlanQuotas } from './metering/quota.js';
import { providersFromEnv, providersFromJson, type ProviderSettings } from './providers/provider-settings.js';

/** What a variable accepts and what leaving it unset means, where its schema alone does not say it plainly. */
declare module 'zod' {
  interface GlobalMeta {
    accepts?: string;
    unset?: string;
  }
}

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes')
  .meta({ accepts: '`true` or `false` (also `1`/`0`, `yes`/`no`)' });
const seconds = z.coerce.number().int().positive();
const list = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
  .meta({ accepts: 'a comma-separated list' });
const count = z.coerce.number().int().positive();
const json = (shape: string) => z.string().meta({ accepts: `JSON: ${shape}` });
/** A rate: "<max>/<window>", the window in seconds, minutes or hours, e.g. "10/15m". */
const rate = z
  .string()
  .regex(/^\d+\/\d+[smh]$/, 'must look like 10/15m (max calls per window of s, m or h)')
  .transform((v): RateRule => {
    const [max, window] = v.split('/') as [string, string];
    const unit = { s: 1000, m: 60_000, h: 3_600_000 }[window.slice(-1) as 's' | 'm' | 'h'];
    return { max: Number(max), window, windowMs: Number(window.slice(0, -1)) * unit };
  })
  .meta({ accepts: '`<max>/<window>`, the window in `s`, `m` or `h` (e.g. `10/15m`)' });

export interface RateRule {
  max: number;
  /** As configured, e.g. "15m" (for messages). */
  window: string;
  windowMs: number;
}

const DEFAULT_REALTIME_MODELS = ['gpt-realtime', 'gpt-4o-realtime-preview'];

// The variables in the groups the configuration reference and `--help` show them in. Each one's
// description is its documentation: docs/configuration.md is generated from it.
const server = {
  NODE_ENV: z
    .enum(['development', 'test', 'production'])
    .default('development')
    .describe('`production` requires `JWT_SECRET` and a model provider, and turns GraphiQL, introspection and an unprotected `/metrics` off'),
  HOST: z.string().default('0.0.0.0').meta({ accepts: 'a host name or IP address', description: 'the address to listen on' }),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000).describe('the port to listen on'),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('pino level; credentials and variables are redacted'),
  LOG_FORMAT: z
    .enum(['json', 'pretty'])
    .default('json')
    .describe('`pretty`: readable lines through pino-pretty, a dev dependency (`npm run dev` sets it unless the shell sets `LOG_FORMAT`)'),
  METRICS_TOKEN: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .meta({ description: 'bearer token Prometheus must present on `GET /metrics`', unset: 'open in development, off in production (404)' }),
  SENTRY_DSN: z
    .url()
    .optional()
    .describe('report unexpected errors to this Sentry project: error type, stack frames, request id and user id only (no request headers, body, variables or message text)'),
};

const storage = {
  DATA_DIR: z
    .string()
    .default('./data')
    .meta({
      accepts: 'a directory path',
      description:
        'embedded database files (`data/pglite`) and the generated development secret. One server at a time: a second one on the same directory exits with the holder\'s pid (a lock left by a crashed server is taken over)',
    }),
  DATABASE_URL: z
    .url({ protocol: /^postgres(ql)?$/, error: 'must be a PostgreSQL URL (postgres://… or postgresql://…)' })
    .optional()
    .meta({
      accepts: 'a `postgres://` or `postgresql://` URL',
      unset: 'the embedded PGlite database under `DATA_DIR`',
      description: 'PostgreSQL. Migrations are applied at start-up either way',
    }),
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: 'must be a Redis URL (redis://… or rediss://…)' })
    .optional()
    .meta({
      accepts: 'a `redis://` or `rediss://` URL',
      unset: 'in-process streams, rate limits and notices, for one instance only',
      description: 'Redis for token streams, replay buffers, stop requests, shared rate limits and circuits, and revocation notices across instances; needed for more than one instance',
    }),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1 to 64 letters, digits or _ . : -')
    .default('switchboard:')
    .meta({
      accepts: '1 to 64 letters, digits or `_ . : -`',
      description: 'starts every Redis key and pub/sub channel of this deployment (streams, replay buffers, rate limits, revocations, stop requests). Deployments sharing one Redis need different prefixes: a database number in `REDIS_URL` does not separate pub/sub channels',
    }),
};

const accounts = {
  JWT_SECRET: z
    .string()
    .min(32, 'must be at least 32 characters')
    .optional()
    .meta({
      unset: 'required in production; in development a random one is generated, with a warning, and kept in `DATA_DIR/jwt-secret`',
      description: 'HS256 key for access tokens. Keep it across restarts: a new one signs everyone out',
    }),
  JWT_ISSUER: z.string().min(1).default('switchboard').describe('`iss` of access tokens'),
  JWT_AUDIENCE: z.string().min(1).default('switchboard-api').describe('`aud` of access tokens'),
  ACCESS_TOKEN_TTL_SECONDS: seconds.default(15 * 60).describe('access token lifetime (15 minutes)'),
  REFRESH_TOKEN_TTL_SECONDS: seconds.default(30 * 24 * 3600).describe('refresh token lifetime (30 days)'),
  AUTH_CACHE_TTL_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(60_000)
    .default(1000)
    .describe('how long an authenticated viewer is reused without reading the database; `0` turns the cache off. It bounds how long a revocation whose notice was lost goes unnoticed; see [Cached viewers](security-and-operations.md#cached-viewers)'),
  AUTH_CACHE_MAX_ENTRIES: count.max(1_000_000).default(10_000).describe('viewers cached per instance; the least recently used one makes room'),
  PASSWORD_HASH_COST: z.coerce.number().int().min(10).max(20).default(17).describe('log2 of scrypt\'s cost parameter N (OWASP recommends 17)'),
  ADMIN_EMAILS: list
    .optional()
    .describe('accounts with these e-mails (any case) become `ADMIN` when they sign up or sign in; see [Administration](administration.md#the-first-admin)'),
  OIDC_ISSUER: z
    .url()
    .optional()
    .describe('accept JWTs from this issuer (e.g. `https://tenant.auth0.com/`); set together with `OIDC_AUDIENCE`. A user is created on first sight'),
  OIDC_AUDIENCE: z.string().min(1).optional().describe('the audience OIDC tokens must be issued for; set together with `OIDC_ISSUER`'),
  OIDC_JWKS_URL: z
    .url()
    .optional()
    .meta({ unset: '`<OIDC_ISSUER>/.well-known/jwks.json`', description: 'where the issuer\'s signing keys are' }),
};

const models = {
  OPENAI_API_KEY: z
    .string()
    .min(1)
    .optional()
    .meta({
      unset: 'the built-in demo model, `switchboard-demo`; a production server refuses to start unless `DEMO_MODEL=true`',
      description: 'key of the LLM upstream: OpenAI, or the OpenAI-compatible server at `OPENAI_BASE_URL` (the provider `openai` when `PROVIDERS_JSON` is unset)',
    }),
  OPENAI_BASE_URL: z
    .url()
    .optional()
    .meta({ unset: 'OpenAI', description: 'any OpenAI-compatible server (vLLM, Ollama, OpenRouter, LiteLLM…); in production it needs `OPENAI_API_KEY`' }),
  PROVIDERS_JSON: json('an array of providers')
    .optional()
    .meta({
      unset: 'one `openai` provider from `OPENAI_API_KEY` and `OPENAI_BASE_URL`',
      description: 'named providers: `[{"id", "kind": "openai" | "openai-compatible" | "anthropic", "baseUrl"?, "apiKey"? or "apiKeyEnv"?, "prefill"?, "timeoutSeconds"?}]`; see [Providers and failover](providers.md)',
    }),
  MODELS_JSON: json('an array of models')
    .optional()
    .meta({
      unset: 'OpenAI\'s models',
      description: 'the model catalog, replacing the built-in one; its format: [The model catalog](#the-model-catalog-models_json), with examples in [Providers and failover](providers.md)',
    }),
  MODEL_PRICES_JSON: json('an object keyed by model id')
    .optional()
    .describe('price overrides by model id: `{"<id>": {"inputMicrosPerMillion", "outputMicrosPerMillion", "cachedInputMicrosPerMillion"?, "cacheWriteMicrosPerMillion"?, "reasoningMicrosPerMillion"?} | "free"}`; see [Model prices](billing.md#model-prices)'),
  DEFAULT_MODEL: z
    .string()
    .min(1)
    .optional()
    .meta({ unset: 'the first model of the catalog', description: 'model of new conversations; an id not in the catalog stops the server at start-up' }),
  TITLE_MODEL: z
    .string()
    .min(1)
    .optional()
    .meta({
      unset: 'no title calls; a conversation keeps its first message\'s first line as its title',
      description: 'a catalog model (a cheap one) that titles each new conversation after its first reply, metered to the user like any call; see [Titles](chat.md#titles). An id not in the catalog stops the server at start-up',
    }),
  DEFAULT_MAX_TOKENS: z.coerce.number().int().positive().default(1024).describe('completion budget when `maxTokens` is not given (clamped to the model)'),
  MAX_IMAGE_BYTES: count.max(100 * 1024 * 1024).default(5 * 1024 * 1024).describe('the largest image (an upload or a `data:` URL) a message may carry, in bytes'),
  MAX_IMAGES_PER_MESSAGE: count.max(100).default(4).describe('images one message may carry'),
  MAX_IMAGES_PER_PROMPT: count
    .max(100)
    .default(8)
    .describe('images sent to the provider in one call: the new message\'s, then those of earlier turns, newest first; at least `MAX_IMAGES_PER_MESSAGE`'),
  MAX_IMAGE_URL_LENGTH: count.max(65_536).default(2048).describe('the longest `https` image URL'),
  IMAGE_TOKEN_ESTIMATE: count
    .max(1_000_000)
    .default(1600)
    .describe('tokens an image counts for in the context window, and in a reservation unless its model\'s `imageTokens` (in `MODELS_JSON`) says more'),
  UPSTREAM_TIMEOUT_SECONDS: seconds.default(60).describe('longest wait for the first token and between tokens (a provider\'s or model\'s `timeoutSeconds` overrides it)'),
  UPSTREAM_FAILOVER_FIRST_TOKEN_SECONDS: z.coerce
    .number()
    .positive()
    .max(3600)
    .default(10)
    .describe('while another deployment or fallback is left, the longest wait for a first token before moving on to it (reasoning models wait their whole timeout)'),
  GENERATION_MAX_SECONDS: seconds.default(600).describe('hard cap on one reply'),
  UPSTREAM_MAX_ATTEMPTS: z.coerce
    .number()
    .int()
    .min(1)
    .max(5)
    .default(3)
    .describe('calls per deployment on a 429, a 5xx or a connection error, while no token has reached a client; then the next deployment or fallback'),
  CIRCUIT_FAILURE_THRESHOLD: z.coerce
    .number()
    .int()
    .min(1)
    .max(100)
    .default(3)
    .describe('consecutive failures after which a deployment is skipped (its circuit opens)'),
  CIRCUIT_PROBE_SECONDS: z.coerce.number().positive().max(3600).default(10).describe('how long a deployment whose circuit opened is skipped before one call probes it again'),
  GENERATION_LEASE_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .max(3600)
    .default(30)
    .describe('a reply whose instance died (no lease renewal for this long) is closed `FAILED`, its usage recorded and its quota reservation settled'),
  DEMO_MODEL: bool
    .optional()
    .describe('`true` lets a production server without `OPENAI_API_KEY` serve the built-in demo model; otherwise it refuses to start'),
};

const realtime = {
  REALTIME_MODELS: list
    .prefault(DEFAULT_REALTIME_MODELS.join(','))
    .describe('Realtime models a client may ask a session for; see [Realtime sessions](realtime.md)'),
  REALTIME_DEFAULT_MODEL: z
    .string()
    .min(1)
    .optional()
    .meta({ unset: 'the first of `REALTIME_MODELS`', description: 'the model when the client names none; must be one of `REALTIME_MODELS`' }),
  REALTIME_SESSION_PRICE_MICROS: z.coerce
    .number()
    .int()
    .nonnegative()
    .max(1e12)
    .default(100_000)
    .describe('charged per minted session, in micro-dollars ($0.10 by default); `0` makes sessions free'),
  REALTIME_SECRET_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(10)
    .max(7200)
    .default(60)
    .describe('how long a minted client secret can open a session (OpenAI accepts 10 to 7200 s)'),
};

const billing = {
  QUOTA_FREE_TOKENS: z.coerce.number().int().nonnegative().default(200_000).describe('monthly token quota of the `FREE` plan'),
  QUOTA_PRO_TOKENS: z.coerce.number().int().nonnegative().default(5_000_000).describe('monthly token quota of the `PRO` plan'),
  QUOTA_TEAM_TOKENS: z.coerce.number().int().nonnegative().default(50_000_000).describe('monthly token quota of the `TEAM` plan'),
  SIGNUP_CREDITS_MICROS: z.coerce
    .number()
    .int()
    .nonnegative()
    .max(1e12)
    .default(500_000)
    .describe('credits every new account starts with, in micro-dollars ($0.50 by default)'),
  CREDIT_PACKS_JSON: json('an array of packs')
    .optional()
    .meta({
      unset: '$5, $20 and $100 packs',
      description: 'the packs `createCheckoutSession` sells: `[{"id", "name", "creditsMicros", "priceCents", "currency"}]`; see [Credit packs](billing.md#buying-credits-and-plans-with-stripe)',
    }),
  STRIPE_SECRET_KEY: z
    .string()
    .startsWith('sk_')
    .optional()
    .meta({ unset: 'billing is off', description: 'Stripe secret key; set together with `STRIPE_WEBHOOK_SECRET`. See [Credits and billing](billing.md)' }),
  STRIPE_WEBHOOK_SECRET: z.string().startsWith('whsec_').optional().describe('signing secret of the Stripe webhook endpoint; set together with `STRIPE_SECRET_KEY`'),
  STRIPE_API_URL: z.url({ protocol: /^https?$/ }).optional().describe('points the Stripe client at another server (tests use a local one)'),
  STRIPE_PRICE_PRO: z
    .string()
    .startsWith('price_')
    .optional()
    .meta({ unset: 'Checkout carries an inline monthly price of `PLAN_PRO_MONTHLY_CENTS`', description: 'Stripe price id of the `PRO` plan' }),
  STRIPE_PRICE_TEAM: z
    .string()
    .startsWith('price_')
    .optional()
    .meta({ unset: 'Checkout carries an inline monthly price of `PLAN_TEAM_MONTHLY_CENTS`', description: 'Stripe price id of the `TEAM` plan' }),
  PLAN_PRO_MONTHLY_CENTS: z.coerce.number().int().positive().default(2000).describe('monthly price of `PRO` in US cents, when `STRIPE_PRICE_PRO` is unset'),
  PLAN_TEAM_MONTHLY_CENTS: z.coerce.number().int().positive().default(10000).describe('monthly price of `TEAM` in US cents, when `STRIPE_PRICE_TEAM` is unset'),
  BILLING_RETURN_URL: z
    .url({ protocol: /^https?$/ })
    .default('http://localhost:4000/')
    .describe('where Stripe sends the user back after Checkout or the customer portal'),
};

const http = {
  CORS_ORIGINS: list.optional().meta({ unset: 'no CORS headers (same-origin only)', description: 'origins allowed by CORS' }),
  GRAPHIQL: bool.optional().meta({ unset: 'on, off in production', description: 'serve GraphiQL on `GET /graphql` to browsers' }),
  INTROSPECTION: bool.optional().meta({ unset: 'on, off in production', description: 'answer introspection queries' }),
  MAX_REQUEST_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024)
    .describe('the largest request body, in bytes: a larger one gets 413, checked from `Content-Length` before the body is read; a POST without one (a chunked body) gets 411'),
  MAX_UPLOAD_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(24 * 1024 * 1024)
    .describe('the body limit of a multipart request (image uploads), instead of `MAX_REQUEST_BYTES`'),
  SHUTDOWN_TIMEOUT_SECONDS: seconds
    .default(10)
    .describe('how long in-flight requests and subscribers get on SIGTERM; see [Shutdown](deployment.md#shutdown)'),
  TRUST_PROXY_HOPS: z.coerce
    .number()
    .int()
    .min(0)
    .max(10)
    .default(0)
    .describe('proxies in front of the server that append to `X-Forwarded-For`; the client address (for limits) is the entry that many hops from the end, and a header with fewer entries is not trusted (the socket\'s address is used). `0`: the socket\'s address'),
  PERSISTED_OPERATIONS_FILE: z
    .string()
    .min(1)
    .optional()
    .meta({
      accepts: 'a file path',
      unset: 'any document runs',
      description: 'trusted documents only: a JSON manifest `{ "sha256:<hash>": "<document>" }` (what graphql-codegen\'s client preset writes with `persistedDocuments: true`); see [Trusted documents](security-and-operations.md#trusted-documents)',
    }),
};

const queryLimits = {
  MAX_DOCUMENT_BYTES: count.default(32 * 1024).describe('the document\'s size in bytes, whitespace included'),
  MAX_DOCUMENT_TOKENS: count.default(3000).describe('lexer tokens (parsing stops there)'),
  MAX_QUERY_DEPTH: count.default(12).describe('depth of an operation (graphql-armor)'),
  MAX_ALIASES: count.default(15).describe('aliases in an operation (graphql-armor)'),
  MAX_DIRECTIVES: count.default(10).describe('directives in an operation (graphql-armor)'),
  MAX_QUERY_COST: count
    .default(20_000)
    .describe('cost: each field 1, its selection counted once per item it can return (a connection\'s `first`/`last`, 20 when neither is given; the number of `ids`), with the request\'s variables: `first: $n` costs what `$n` asks for'),
  MAX_VARIABLE_VALUES: count.default(500).describe('values in the variables object, checked before it is coerced'),
  MAX_VARIABLE_DEPTH: count.default(8).describe('nesting of the variables object, checked before it is coerced'),
};

const rateLimits = {
  RATE_LIMIT_OPERATIONS: rate.prefault('600/1m').describe('every operation, per user (and per API key), or per address when anonymous'),
  RATE_LIMIT_MUTATIONS: rate.prefault('120/1m').describe('mutations, per user (and per API key), or per address when anonymous'),
  RATE_LIMIT_AUTH_PER_IP: rate.prefault('30/10m').describe('`register`, `login` and `refreshToken` per client address'),
  RATE_LIMIT_LOGIN_PER_ACCOUNT: rate.prefault('10/15m').describe('`login` attempts per account (e-mail), from any address'),
  RATE_LIMIT_SEND_MESSAGE: rate
    .prefault('30/1m')
    .describe('`sendMessage` and `submitToolResults` together (each starts a reply), per user (and per API key); `regenerateMessage` and `editMessage` count against it too'),
  RATE_LIMIT_REALTIME_SESSIONS: rate.prefault('10/1m').describe('Realtime sessions one user (and one API key) may mint per window'),
  MAX_CONCURRENT_GENERATIONS: count.default(4).describe('replies one user generates at once (counted in the database, so across instances)'),
  MAX_TOOLS: count.default(32).describe('tools one `sendMessage` may offer'),
  MAX_TOOL_SCHEMA_BYTES: count.default(16 * 1024).describe('one tool\'s definition (name, description and parameters) as JSON, in bytes'),
  MAX_TOOL_RESULT_LENGTH: count.default(100_000).describe('characters of one tool result given to `submitToolResults`'),
  MAX_TOOL_ARGUMENTS_BYTES: count
    .default(32 * 1024)
    .describe('bytes of tool-call arguments one reply may write, all calls together; past it the reply ends `FAILED` (`UPSTREAM_ERROR`)'),
  PASSWORD_HASH_CONCURRENCY: count.default(2).describe('password hashes computed at once'),
  PASSWORD_HASH_QUEUE: count
    .default(8)
    .describe('password hashes waiting; beyond that a sign-in is refused at once (`RATE_LIMITED`, `retryAfter: 1`) rather than queued behind a flood'),
};

const websocket = {
  WS_MAX_PAYLOAD_BYTES: count.default(64 * 1024).describe('one graphql-ws message (larger: close 1009)'),
  WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: count.default(20).describe('operations running at once on one socket'),
  WS_MAX_CONNECTIONS_PER_IP: count.default(100).describe('open sockets per client address, per instance (close 4429)'),
  WS_MAX_CONNECTIONS_PER_USER: count.default(50).describe('open sockets per user, per instance (close 4429)'),
  WS_INIT_TIMEOUT_SECONDS: seconds.default(10).describe('time a new socket has to send `connection_init`'),
};

/** The variables, grouped as their documentation shows them. */
export const CONFIG_GROUPS = [
  { title: 'Server', shape: server },
  { title: 'Storage', shape: storage },
  { title: 'Accounts and tokens', shape: accounts },
  { title: 'Models and providers', shape: models },
  { title: 'Realtime', shape: realtime },
  { title: 'Quotas, credits and billing', shape: billing },
  { title: 'HTTP', shape: http },
  { title: 'Query limits', shape: queryLimits },
  { title: 'Rate limits and other bounds', shape: rateLimits },
  { title: 'WebSocket', shape: websocket },
] as const;

/** The whole environment, read once. Every problem is reported at once by `loadConfig`. */
const envSchema = z.object({
  ...server,
  ...storage,
  ...accounts,
  ...models,
  ...realtime,
  ...billing,
  ...http,
  ...queryLimits,
  ...rateLimits,
  ...websocket,
});

/** Every variable the server reads (`.env.example` documents each one). */
export const ENVIRONMENT_VARIABLES = Object.keys(envSchema.shape);

type RawEnv = Record<string, string | undefined>;

/**
 * Rules that involve several variables. They read the raw strings so that they are reported
 * together with the per-variable problems, not only after those are fixed.
 */
function crossFieldProblems(env: RawEnv): string[] {
  const problems: string[] = [];
  const production = env.NODE_ENV === 'production';
  if (production && !env.JWT_SECRET) problems.push('JWT_SECRET: is required in production');
  if (Boolean(env.OIDC_ISSUER) !== Boolean(env.OIDC_AUDIENCE)) {
    problems.push('OIDC_AUDIENCE: OIDC_ISSUER and OIDC_AUDIENCE must be set together');
  }
  if (env.OIDC_JWKS_URL && !env.OIDC_ISSUER) problems.push('OIDC_JWKS_URL: needs OIDC_ISSUER');
  if (Number(env.MAX_IMAGES_PER_PROMPT ?? 8) < Number(env.MAX_IMAGES_PER_MESSAGE ?? 4)) {
    problems.push('MAX_IMAGES_PER_PROMPT: must be at least MAX_IMAGES_PER_MESSAGE');
  }
  const realtimeModels = list.parse(env.REALTIME_MODELS ?? DEFAULT_REALTIME_MODELS.join(','));
  if (realtimeModels.length === 0) problems.push('REALTIME_MODELS: must name at least one model');
  if (env.REALTIME_DEFAULT_MODEL && !realtimeModels.includes(env.REALTIME_DEFAULT_MODEL)) {
    problems.push(`REALTIME_DEFAULT_MODEL: ${env.REALTIME_DEFAULT_MODEL} is not in REALTIME_MODELS`);
  }
  if (env.STRIPE_SECRET_KEY && !env.STRIPE_WEBHOOK_SECRET) {
    problems.push('STRIPE_WEBHOOK_SECRET: is required when STRIPE_SECRET_KEY is set');
  } else if (env.STRIPE_WEBHOOK_SECRET && !env.STRIPE_SECRET_KEY) {
    problems.push('STRIPE_SECRET_KEY: is required when STRIPE_WEBHOOK_SECRET is set');
  }
  const jsonProblems = [
    jsonSettingProblem('CREDIT_PACKS_JSON', env.CREDIT_PACKS_JSON, creditPacksFromJson),
    jsonSettingProblem('PROVIDERS_JSON', env.PROVIDERS_JSON, (json) => providersFromJson(json, env)),
    jsonSettingProblem('MODELS_JSON', env.MODELS_JSON, modelsFromJson),
    jsonSettingProblem('MODEL_PRICES_JSON', env.MODEL_PRICES_JSON, modelPricesFromJson),
  ].filter((problem) => problem !== undefined);
  problems.push(...jsonProblems);
  const catalogReadable = !jsonProblems.some((p) => p.startsWith('MODEL') || p.startsWith('PROVIDERS'));
  // Every model must have a known price (or be marked free): nothing is billed $0 by accident.
  if (catalogReadable) problems.push(...catalogFromEnv(env).problems);
  if (env.PROVIDERS_JSON) {
    // The providers carry their own keys.
  } else if (production && env.OPENAI_BASE_URL && !env.OPENAI_API_KEY) {
    problems.push('OPENAI_API_KEY: is required in production when OPENAI_BASE_URL is set');
  } else if (production && !env.OPENAI_API_KEY && bool.safeParse(env.DEMO_MODEL).data !== true) {
    problems.push('OPENAI_API_KEY: is required in production (or set DEMO_MODEL=true to serve the built-in demo model)');
  }
  return problems;
}

/** What is wrong with a JSON variable, as a report line; undefined when it is unset or fine. */
function jsonSettingProblem(name: string, json: string | undefined, parse: (json: string) => unknown): string | undefined {
  if (!json) return undefined;
  try {
    parse(json);
    return undefined;
  } catch (error) {
    return `${name}: ${(error as Error).message}`;
  }
}

export type Env = z.infer<typeof envSchema>;

export interface Config {
  env: Env['NODE_ENV'];
  host: string;
  port: number;
  logLevel: Env['LOG_LEVEL'];
  logFormat: Env['LOG_FORMAT'];
  metrics: { enabled: boolean; token?: string };
  /** Unexpected errors are reported to this Sentry project. */
  sentryDsn?: string;
  dataDir: string;
  databaseUrl?: string;
  redisUrl?: string;
  redisKeyPrefix: string;
  auth: {
    jwtSecret: Uint8Array;
    issuer: string;
    audience: string;
    accessTokenTtlSeconds: number;
    refreshTokenTtlSeconds: number;
    passwordHashCost: number;
    /** The viewer cache: `ttlMs` 0 turns it off. */
    cache: { ttlMs: number; maxEntries: number };
  };
  oidc?: { issuer: string; audience: string; jwksUrl: string };
  /** Lower-cased e-mails of the accounts that become ADMIN when they sign up or sign in. */
  admin: { emails: string[] };
  openai: { apiKey?: string; baseUrl?: string };
  /** PROVIDERS_JSON, or the one provider OPENAI_API_KEY and OPENAI_BASE_URL describe. Holds keys: never log it. */
  providers: ProviderSettings[];
  chat: {
    models: ModelInfo[];
    defaultModel: string;
    /** The catalog model that titles new conversations; unset, no title calls are made. */
    titleModel?: string;
    defaultMaxTokens: number;
    upstreamTimeoutMs: number;
    failoverFirstTokenMs: number;
    generationMaxMs: number;
    upstreamMaxAttempts: number;
    circuit: { failureThreshold: number; probeAfterMs: number };
    generationLeaseMs: number;
    /** Without OPENAI_API_KEY (or PROVIDERS_JSON) the server runs a local demo upstream. */
    demo: boolean;
    images: ImageLimits;
  };
  quotas: PlanQuotas;
  realtime: {
    models: string[];
    defaultModel: string;
    /** Charged once per minted session: the server never sees the session's audio or tokens. */
    sessionPriceMicros: number;
    secretTtlSeconds: number;
  };
  billing: {
    signupCreditsMicros: number;
    creditPacks: CreditPack[];
    plans: Record<PaidPlan, { stripePriceId?: string; monthlyPriceCents: number }>;
    returnUrl: string;
  };
  stripe?: { secretKey: string; webhookSecret: string; apiUrl?: string };
  http: {
    corsOrigins: string[];
    graphiql: boolean;
    introspection: boolean;
    maxRequestBytes: number;
    maxUploadBytes: number;
    shutdownTimeoutMs: number;
    trustProxyHops: number;
    persistedOperationsFile?: string;
  };
  limits: Limits;
  /** Things worth a warning line at start-up (generated secrets, embedded database in production…). */
  warnings: string[];
}

export interface ImageLimits {
  maxBytes: number;
  maxPerMessage: number;
  maxPerPrompt: number;
  maxUrlLength: number;
  /** Tokens an image counts for in the context window, and by default in a reservation. */
  tokenEstimate: number;
}

export interface Limits {
  document: { maxBytes: number; maxTokens: number; maxDepth: number; maxAliases: number; maxDirectives: number; maxCost: number };
  variables: { maxValues: number; maxDepth: number };
  rates: {
    operations: RateRule;
    mutations: RateRule;
    authPerIp: RateRule;
    loginPerAccount: RateRule;
    sendMessage: RateRule;
    realtimeSessions: RateRule;
  };
  maxConcurrentGenerations: number;
  tools: ToolLimits;
  passwordHashing: { concurrency: number; queue: number };
  ws: { maxPayloadBytes: number; maxSubscriptionsPerConnection: number; maxConnectionsPerIp: number; maxConnectionsPerUser: number; initTimeoutMs: number };
}

/** Bounds on function calling: what a client offers and submits, and what a model may write. */
export interface ToolLimits {
  maxTools: number;
  maxSchemaBytes: number;
  maxResultLength: number;
  maxArgumentsBytes: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    // One problem is one line, like the other start-up refusals; several are listed.
    super(problems.length === 1 ? problems[0]! : `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Reads the environment into a typed config. Throws ConfigError listing every problem.
 * In development a missing JWT secret is generated once and kept under DATA_DIR.
 */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const input = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(input);
  const problems = [
    ...(parsed.error?.issues ?? []).map((i) => `${i.path.join('.') || 'environment'}: ${i.message}`),
    ...crossFieldProblems(input),
  ];
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const env = parsed.data;
  const warnings: string[] = [];
  const dataDir = resolve(env.DATA_DIR);
  const production = env.NODE_ENV === 'production';

  let jwtSecret = env.JWT_SECRET;
  if (!jwtSecret) {
    jwtSecret = readOrCreateDevSecret(dataDir);
    warnings.push(`JWT_SECRET is not set: using a generated development secret kept in ${join(dataDir, 'jwt-secret')}`);
  }
  const providers = providersFromEnv(input);
  if (providers.some((p) => p.demo)) {
    warnings.push('OPENAI_API_KEY is not set: replies come from the built-in demo model (switchboard-demo), not a real LLM');
  }
  const models = catalogFromEnv(input).models;
  const unknownModels = (['DEFAULT_MODEL', 'TITLE_MODEL'] as const)
    .filter((name) => env[name] !== undefined && !models.some((m) => m.id === env[name]))
    .map((name) => `${name}: ${env[name]} is not in the model catalog`);
  if (unknownModels.length > 0) throw new ConfigError(unknownModels);
  if (production && !env.DATABASE_URL) {
    warnings.push('DATABASE_URL is not set: using the embedded PGlite database, which serves one instance only');
  }
  const oidc =
    env.OIDC_ISSUER && env.OIDC_AUDIENCE
      ? {
          issuer: env.OIDC_ISSUER,
          audience: env.OIDC_AUDIENCE,
          jwksUrl: env.OIDC_JWKS_URL ?? new URL('.well-known/jwks.json', withSlash(env.OIDC_ISSUER)).toString(),
        }
      : undefined;

  return {
    env: env.NODE_ENV,
    host: env.HOST,
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    logFormat: env.LOG_FORMAT,
    // Open without a token in development and tests; production must not expose it unprotected.
    metrics: { enabled: !production || env.METRICS_TOKEN !== undefined, token: env.METRICS_TOKEN },
    sentryDsn: env.SENTRY_DSN,
    dataDir,
    databaseUrl: env.DATABASE_URL,
    redisUrl: env.REDIS_URL,
    redisKeyPrefix: env.REDIS_KEY_PREFIX,
    auth: {
      jwtSecret: new TextEncoder().encode(jwtSecret),
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenTtlSeconds: env.REFRESH_TOKEN_TTL_SECONDS,
      passwordHashCost: env.PASSWORD_HASH_COST,
      cache: { ttlMs: env.AUTH_CACHE_TTL_MS, maxEntries: env.AUTH_CACHE_MAX_ENTRIES },
    },
    oidc,
    admin: { emails: (env.ADMIN_EMAILS ?? []).map((email) => email.toLowerCase()) },
    openai: { apiKey: env.OPENAI_API_KEY, baseUrl: env.OPENAI_BASE_URL },
    providers,
    chat: {
      models,
      defaultModel: env.DEFAULT_MODEL ?? models[0]!.id,
      titleModel: env.TITLE_MODEL,
      defaultMaxTokens: env.DEFAULT_MAX_TOKENS,
      upstreamTimeoutMs: env.UPSTREAM_TIMEOUT_SECONDS * 1000,
      failoverFirstTokenMs: Math.round(env.UPSTREAM_FAILOVER_FIRST_TOKEN_SECONDS * 1000),
      generationMaxMs: env.GENERATION_MAX_SECONDS * 1000,
      upstreamMaxAttempts: env.UPSTREAM_MAX_ATTEMPTS,
      circuit: { failureThreshold: env.CIRCUIT_FAILURE_THRESHOLD, probeAfterMs: Math.round(env.CIRCUIT_PROBE_SECONDS * 1000) },
      generationLeaseMs: env.GENERATION_LEASE_SECONDS * 1000,
      demo: providers.some((p) => p.demo),
      images: {
        maxBytes: env.MAX_IMAGE_BYTES,
        maxPerMessage: env.MAX_IMAGES_PER_MESSAGE,
        maxPerPrompt: env.MAX_IMAGES_PER_PROMPT,
        maxUrlLength: env.MAX_IMAGE_URL_LENGTH,
        tokenEstimate: env.IMAGE_TOKEN_ESTIMATE,
      },
    },
    quotas: { FREE: env.QUOTA_FREE_TOKENS, PRO: env.QUOTA_PRO_TOKENS, TEAM: env.QUOTA_TEAM_TOKENS },
    realtime: {
      models: env.REALTIME_MODELS,
      defaultModel: env.REALTIME_DEFAULT_MODEL ?? env.REALTIME_MODELS[0]!,
      sessionPriceMicros: env.REALTIME_SESSION_PRICE_MICROS,
      secretTtlSeconds: env.REALTIME_SECRET_TTL_SECONDS,
    },
    billing: {
      signupCreditsMicros: env.SIGNUP_CREDITS_MICROS,
      creditPacks: creditPacksFromJson(env.CREDIT_PACKS_JSON) ?? DEFAULT_CREDIT_PACKS,
      plans: {
        PRO: { stripePriceId: env.STRIPE_PRICE_PRO, monthlyPriceCents: env.PLAN_PRO_MONTHLY_CENTS },
        TEAM: { stripePriceId: env.STRIPE_PRICE_TEAM, monthlyPriceCents: env.PLAN_TEAM_MONTHLY_CENTS },
      },
      returnUrl: env.BILLING_RETURN_URL,
    },
    stripe:
      env.STRIPE_SECRET_KEY && env.STRIPE_WEBHOOK_SECRET
        ? { secretKey: env.STRIPE_SECRET_KEY, webhookSecret: env.STRIPE_WEBHOOK_SECRET, apiUrl: env.STRIPE_API_URL }
        : undefined,
    http: {
      corsOrigins: env.CORS_ORIGINS ?? [],
      graphiql: env.GRAPHIQL ?? !production,
      introspection: env.INTROSPECTION ?? !production,
      maxRequestBytes: env.MAX_REQUEST_BYTES,
      maxUploadBytes: env.MAX_UPLOAD_BYTES,
      shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_SECONDS * 1000,
      trustProxyHops: env.TRUST_PROXY_HOPS,
      persistedOperationsFile: env.PERSISTED_OPERATIONS_FILE,
    },
    limits: {
      document: {
        maxBytes: env.MAX_DOCUMENT_BYTES,
        maxTokens: env.MAX_DOCUMENT_TOKENS,
        maxDepth: env.MAX_QUERY_DEPTH,
        maxAliases: env.MAX_ALIASES,
        maxDirectives: env.MAX_DIRECTIVES,
        maxCost: env.MAX_QUERY_COST,
      },
      variables: { maxValues: env.MAX_VARIABLE_VALUES, maxDepth: env.MAX_VARIABLE_DEPTH },
      rates: {
        operations: env.RATE_LIMIT_OPERATIONS,
        mutations: env.RATE_LIMIT_MUTATIONS,
        authPerIp: env.RATE_LIMIT_AUTH_PER_IP,
        loginPerAccount: env.RATE_LIMIT_LOGIN_PER_ACCOUNT,
        sendMessage: env.RATE_LIMIT_SEND_MESSAGE,
        realtimeSessions: env.RATE_LIMIT_REALTIME_SESSIONS,
      },
      maxConcurrentGenerations: env.MAX_CONCURRENT_GENERATIONS,
      tools: {
        maxTools: env.MAX_TOOLS,
        maxSchemaBytes: env.MAX_TOOL_SCHEMA_BYTES,
        maxResultLength: env.MAX_TOOL_RESULT_LENGTH,
        maxArgumentsBytes: env.MAX_TOOL_ARGUMENTS_BYTES,
      },
      passwordHashing: { concurrency: env.PASSWORD_HASH_CONCURRENCY, queue: env.PASSWORD_HASH_QUEUE },
      ws: {
        maxPayloadBytes: env.WS_MAX_PAYLOAD_BYTES,
        maxSubscriptionsPerConnection: env.WS_MAX_SUBSCRIPTIONS_PER_CONNECTION,
        maxConnectionsPerIp: env.WS_MAX_CONNECTIONS_PER_IP,
        maxConnectionsPerUser: env.WS_MAX_CONNECTIONS_PER_USER,
        initTimeoutMs: env.WS_INIT_TIMEOUT_SECONDS * 1000,
      },
    },
    warnings,
  };
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

function readOrCreateDevSecret(dataDir: string): string {
  const file = join(dataDir, 'jwt-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}
