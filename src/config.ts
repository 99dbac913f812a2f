import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { catalogFromEnv, modelPricesFromJson, modelsFromJson, type ModelInfo } from './model-catalog.js';
import { creditPacksFromJson, DEFAULT_CREDIT_PACKS, type CreditPack, type PaidPlan } from './billing/credit-packs.js';
import type { PlanQuotas } from './metering/quota.js';
import { providersFromEnv, providersFromJson, type ProviderSettings } from './providers/provider-settings.js';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const seconds = z.coerce.number().int().positive();
const list = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));
const count = z.coerce.number().int().positive();
/** A rate: "<max>/<window>", the window in seconds, minutes or hours, e.g. "10/15m". */
const rate = z
  .string()
  .regex(/^\d+\/\d+[smh]$/, 'must look like 10/15m (max calls per window of s, m or h)')
  .transform((v): RateRule => {
    const [max, window] = v.split('/') as [string, string];
    const unit = { s: 1000, m: 60_000, h: 3_600_000 }[window.slice(-1) as 's' | 'm' | 'h'];
    return { max: Number(max), window, windowMs: Number(window.slice(0, -1)) * unit };
  });

export interface RateRule {
  max: number;
  /** As configured, e.g. "15m" (for messages). */
  window: string;
  windowMs: number;
}

const DEFAULT_REALTIME_MODELS = ['gpt-realtime', 'gpt-4o-realtime-preview'];

/** The whole environment, read once. Every problem is reported at once by `loadConfig`. */
const envSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    HOST: z.string().default('0.0.0.0'),
    PORT: z.coerce.number().int().min(0).max(65535).default(4000),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** `pretty`: readable lines through pino-pretty (a dev dependency; `npm run dev` sets it). */
    LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
    /** Bearer token Prometheus must present on /metrics; without it /metrics is off in production. */
    METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    SENTRY_DSN: z.url().optional(),
    DATA_DIR: z.string().default('./data'),
    DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
    REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
    /** Starts every Redis key and pub/sub channel of this deployment, so deployments can share one Redis. */
    REDIS_KEY_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1 to 64 letters, digits or _ . : -')
      .default('switchboard:'),

    JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    JWT_ISSUER: z.string().min(1).default('switchboard'),
    JWT_AUDIENCE: z.string().min(1).default('switchboard-api'),
    ACCESS_TOKEN_TTL_SECONDS: seconds.default(15 * 60),
    REFRESH_TOKEN_TTL_SECONDS: seconds.default(30 * 24 * 3600),
    /** How long an authenticated viewer is reused without reading the database; 0: never. */
    AUTH_CACHE_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(1000),
    AUTH_CACHE_MAX_ENTRIES: count.max(1_000_000).default(10_000),
    /** log2 of the scrypt cost parameter N; 17 is OWASP's recommendation. */
    PASSWORD_HASH_COST: z.coerce.number().int().min(10).max(20).default(17),

    /** Accounts with these e-mails (comma-separated, any case) become ADMIN when they sign up or sign in. */
    ADMIN_EMAILS: list.optional(),

    OIDC_ISSUER: z.url().optional(),
    OIDC_AUDIENCE: z.string().min(1).optional(),
    OIDC_JWKS_URL: z.url().optional(),

    OPENAI_API_KEY: z.string().min(1).optional(),
    OPENAI_BASE_URL: z.url().optional(),
    /** JSON array of named providers: [{ id, kind, baseUrl?, apiKey? | apiKeyEnv?, prefill?, timeoutSeconds? }]. */
    PROVIDERS_JSON: z.string().optional(),
    /** JSON array replacing the built-in model catalog (for OpenAI-compatible upstreams). */
    MODELS_JSON: z.string().optional(),
    /** JSON object of prices overriding genai-prices': { "<model id>": "free" | { inputMicrosPerMillion, … } }. */
    MODEL_PRICES_JSON: z.string().optional(),
    DEFAULT_MODEL: z.string().min(1).optional(),
    /** A catalog model that titles each new conversation after its first reply; unset, the title is the first message's first line. */
    TITLE_MODEL: z.string().min(1).optional(),
    DEFAULT_MAX_TOKENS: z.coerce.number().int().positive().default(1024),
    /** The largest image a message may carry (an upload or a data: URL), in bytes. */
    MAX_IMAGE_BYTES: count.max(100 * 1024 * 1024).default(5 * 1024 * 1024),
    MAX_IMAGES_PER_MESSAGE: count.max(100).default(4),
    /** Images sent to the provider in one call: the new message's, then the newest of earlier turns. */
    MAX_IMAGES_PER_PROMPT: count.max(100).default(8),
    MAX_IMAGE_URL_LENGTH: count.max(65_536).default(2048),
    /** Tokens an image counts for in the context window, and in a reservation unless its model says more (MODELS_JSON imageTokens). */
    IMAGE_TOKEN_ESTIMATE: count.max(1_000_000).default(1600),
    UPSTREAM_TIMEOUT_SECONDS: seconds.default(60),
    /** While another deployment or fallback is left, the longest wait for a first token before moving on to it (reasoning models excepted). */
    UPSTREAM_FAILOVER_FIRST_TOKEN_SECONDS: z.coerce.number().positive().max(3600).default(10),
    GENERATION_MAX_SECONDS: seconds.default(600),
    /** Attempts per deployment while no token has reached a client yet; then the next deployment or fallback. */
    UPSTREAM_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(5).default(3),
    /** Consecutive failures after which a deployment is skipped (its circuit opens). */
    CIRCUIT_FAILURE_THRESHOLD: z.coerce.number().int().min(1).max(100).default(3),
    /** How long a deployment whose circuit opened is skipped before one call probes it again. */
    CIRCUIT_PROBE_SECONDS: z.coerce.number().positive().max(3600).default(10),
    /** A running generation whose instance has not renewed its lease for this long is closed as FAILED. */
    GENERATION_LEASE_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
    QUOTA_FREE_TOKENS: z.coerce.number().int().nonnegative().default(200_000),
    QUOTA_PRO_TOKENS: z.coerce.number().int().nonnegative().default(5_000_000),
    QUOTA_TEAM_TOKENS: z.coerce.number().int().nonnegative().default(50_000_000),

    /** Realtime models a client may ask a session for; the first is the default. */
    REALTIME_MODELS: list.prefault(DEFAULT_REALTIME_MODELS.join(',')),
    REALTIME_DEFAULT_MODEL: z.string().min(1).optional(),
    /** What one Realtime session costs (micro-dollars); 0 makes sessions free. */
    REALTIME_SESSION_PRICE_MICROS: z.coerce.number().int().nonnegative().max(1e12).default(100_000),
    /** How long a minted client secret can be used to open a session (OpenAI accepts 10 to 7200 s). */
    REALTIME_SECRET_TTL_SECONDS: z.coerce.number().int().min(10).max(7200).default(60),

    STRIPE_SECRET_KEY: z.string().startsWith('sk_').optional(),
    STRIPE_WEBHOOK_SECRET: z.string().startsWith('whsec_').optional(),
    /** Points the Stripe client at another server (a local one in tests). */
    STRIPE_API_URL: z.url({ protocol: /^https?$/ }).optional(),
    /** Stripe price ids of the plans; unset, Checkout carries inline prices from PLAN_*_MONTHLY_CENTS. */
    STRIPE_PRICE_PRO: z.string().startsWith('price_').optional(),
    STRIPE_PRICE_TEAM: z.string().startsWith('price_').optional(),
    PLAN_PRO_MONTHLY_CENTS: z.coerce.number().int().positive().default(2000),
    PLAN_TEAM_MONTHLY_CENTS: z.coerce.number().int().positive().default(10000),
    /** Where Stripe sends the user back after Checkout or the customer portal. */
    BILLING_RETURN_URL: z.url({ protocol: /^https?$/ }).default('http://localhost:4000/'),
    /** Credits every new account starts with (micro-dollars). */
    SIGNUP_CREDITS_MICROS: z.coerce.number().int().nonnegative().max(1e12).default(500_000),
    /** JSON array of credit packs: [{ id, name, creditsMicros, priceCents, currency }]. */
    CREDIT_PACKS_JSON: z.string().optional(),

    CORS_ORIGINS: list.optional(),
    GRAPHIQL: bool.optional(),
    INTROSPECTION: bool.optional(),
    MAX_REQUEST_BYTES: z.coerce.number().int().positive().default(1024 * 1024),
    /** The body limit of a multipart request (a GraphQL upload), instead of MAX_REQUEST_BYTES. */
    MAX_UPLOAD_BYTES: z.coerce.number().int().positive().default(24 * 1024 * 1024),
    SHUTDOWN_TIMEOUT_SECONDS: seconds.default(10),
    /** How many proxies in front of the server append to X-Forwarded-For (0: use the socket address). */
    TRUST_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(0),
    /** JSON file of trusted documents ({ "<sha256>": "<document>" }); when set, only those run. */
    PERSISTED_OPERATIONS_FILE: z.string().min(1).optional(),
    DEMO_MODEL: bool.optional(),

    MAX_DOCUMENT_BYTES: count.default(32 * 1024),
    MAX_DOCUMENT_TOKENS: count.default(3000),
    MAX_QUERY_DEPTH: count.default(12),
    MAX_ALIASES: count.default(15),
    MAX_DIRECTIVES: count.default(10),
    MAX_QUERY_COST: count.default(20_000),
    MAX_VARIABLE_VALUES: count.default(500),
    MAX_VARIABLE_DEPTH: count.default(8),

    RATE_LIMIT_OPERATIONS: rate.prefault('600/1m'),
    RATE_LIMIT_MUTATIONS: rate.prefault('120/1m'),
    RATE_LIMIT_AUTH_PER_IP: rate.prefault('30/10m'),
    RATE_LIMIT_LOGIN_PER_ACCOUNT: rate.prefault('10/15m'),
    RATE_LIMIT_SEND_MESSAGE: rate.prefault('30/1m'),
    RATE_LIMIT_REALTIME_SESSIONS: rate.prefault('10/1m'),
    MAX_CONCURRENT_GENERATIONS: count.default(4),
    /** Tools one sendMessage may offer; each one's name, description and parameters together at most MAX_TOOL_SCHEMA_BYTES as JSON. */
    MAX_TOOLS: count.default(32),
    MAX_TOOL_SCHEMA_BYTES: count.default(16 * 1024),
    /** Characters of one tool result given to submitToolResults. */
    MAX_TOOL_RESULT_LENGTH: count.default(100_000),
    /** Bytes of tool-call arguments one reply may write, all calls together; past it the reply ends FAILED. */
    MAX_TOOL_ARGUMENTS_BYTES: count.default(32 * 1024),
    PASSWORD_HASH_CONCURRENCY: count.default(2),
    PASSWORD_HASH_QUEUE: count.default(8),

    WS_MAX_PAYLOAD_BYTES: count.default(64 * 1024),
    WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: count.default(20),
    WS_MAX_CONNECTIONS_PER_IP: count.default(100),
    WS_MAX_CONNECTIONS_PER_USER: count.default(50),
    WS_INIT_TIMEOUT_SECONDS: seconds.default(10),
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
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
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
