import type { AddressInfo } from 'node:net';
import { createAdmin } from './admin/admin.js';
import { createAuthenticator } from './auth/viewer.js';
import { ChatService } from './chat/chat-service.js';
import { createConversationTitles } from './chat/titles.js';
import { startDemoUpstream, type DemoUpstream } from './providers/demo.js';
import { StreamHub, type LiveChannel, type ReplayStore } from './streams/stream-hub.js';
import { Generations } from './generation/generations.js';
import { GenerationRecovery } from './generation/recovery.js';
import { GenerationRunner } from './generation/runner.js';
import { grantPendingSignupCredits } from './metering/credits.js';
import { Metering } from './metering/metering.js';
import { createPasswordHasher } from './auth/passwords.js';
import { createRevocationBus } from './auth/revocations.js';
import { createViewerCache } from './auth/viewer-cache.js';
import { createInProcessTransport, createRedisTransport } from './streams/stream-transports.js';
import { createUpstream, createUpstreamProbe } from './providers/openai-compatible.js';
import { createProviders, createRouter } from './providers/registry.js';
import { createCircuitBreaker, type CircuitBreaker } from './providers/circuit-breaker.js';
import { createProviderHealth } from './providers/provider-health.js';
import { createBilling } from './billing/checkout.js';
import { createStripeClient } from './billing/stripe-client.js';
import { createStripeWebhooks } from './billing/webhooks.js';
import type { Config } from './config.js';
import { databaseTargetOf, type Database, type DatabaseOptions, type DatabaseTarget } from './db/client.js';
import { openMigratedDatabase } from './db/open-migrated.js';
import { connectRedis } from './db/redis.js';
import type { Services } from './graphql/context.js';
import { createErrorMasker } from './graphql/errors.js';
import { createGraphQLServer } from './graphql/server.js';
import { loadTrustedDocuments } from './graphql/trusted-documents.js';
import { attachGraphQLWs } from './http/graphql-ws.js';
import type { ReadinessChecks } from './http/health.js';
import { ensurePortFree, listenError } from './http/port.js';
import { createHttpServer } from './http/server.js';
import { createLogger, type Logger } from './logger.js';
import { createErrorReporter } from './observability/error-reporter.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { createRateLimiter } from './rate-limit/limiter.js';
import { createRealtimeSessions } from './realtime/realtime-sessions.js';

export interface AppOptions {
  /** Overrides where the data lives (tests use in-memory PGlite). */
  database?: DatabaseTarget;
  logger?: Logger;
  onQuery?: DatabaseOptions['onQuery'];
}

export interface App {
  services: Services;
  db: Database;
  yoga: ReturnType<typeof createGraphQLServer>;
  runner: GenerationRunner;
  /** This instance's stream hub (tests look at what its subscribers have queued). */
  hub: StreamHub;
  recovery: GenerationRecovery;
  metering: Metering;
  /** This instance's Prometheus metrics (served on /metrics). */
  metrics: Metrics;
  /** The deployments' circuit breaker (shared through Redis when configured). */
  circuit: CircuitBreaker;
  /** Listens on config.port (0 picks a free port); returns the bound URL. */
  start(port?: number): Promise<URL>;
  /** Stops accepting work, lets in-flight requests finish, closes sockets and the database. */
  stop(): Promise<void>;
}

/** The one place that wires every dependency. */
export async function buildApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const metrics = createMetrics();
  const errorReporter = await createErrorReporter({ dsn: config.sentryDsn, environment: config.env });
  // Redis first: an unreachable one is refused before a new embedded database is created.
  const redis = config.redisUrl ? await connectRedis(config.redisUrl) : undefined;
  const db = await openMigratedDatabase(options.database ?? databaseTargetOf(config), logger, { onQuery: options.onQuery }).catch(async (error: unknown) => {
    await redis?.close();
    throw error;
  });

  const readinessChecks: ReadinessChecks = { required: { database: () => db.ping() }, advisory: {} };
  let transport: { store: ReplayStore; channel: LiveChannel };
  if (redis) {
    readinessChecks.required.redis = async () => {
      await redis.commands.ping();
    };
    transport = createRedisTransport(redis, config.redisKeyPrefix);
  } else {
    transport = createInProcessTransport();
  }
  // A subscriber that hears nothing looks for a lost `done` three times per lease; events Redis
  // refuses are sent again for a lease, after which the reply may be taken over elsewhere.
  const hub = new StreamHub(transport.store, transport.channel, {
    idleCheckMs: config.chat.generationLeaseMs / 3,
    retryWritesForMs: config.chat.generationLeaseMs,
    logger,
  });
  const viewerCache = createViewerCache(config.auth.cache);
  const revocations = createRevocationBus(transport.channel, logger, viewerCache.evict);
  // Every instance's own notices and the others': a revoked viewer is forgotten everywhere at once.
  const stopViewerEvictions = await revocations.onRevoked(viewerCache.evict);
  // Notices published while the channel was away are lost: what they were about is forgotten too.
  const stopViewerClears = transport.channel.onReconnected(viewerCache.clear);

  let demo: DemoUpstream | undefined;
  if (config.chat.demo) {
    demo = await startDemoUpstream();
    logger.warn({ upstream: demo.baseUrl }, 'using the built-in demo upstream (switchboard-demo): set OPENAI_API_KEY for a real LLM');
  }
  const upstream = createUpstream({
    apiKey: config.openai.apiKey ?? 'demo',
    baseUrl: demo?.baseUrl ?? config.openai.baseUrl,
    timeoutMs: config.chat.upstreamTimeoutMs,
  });
  // OpenAI's (or the demo's) models endpoint; named providers report their circuits instead.
  if (config.openai.apiKey || config.chat.demo) readinessChecks.advisory.upstream = createUpstreamProbe(upstream);
  // Shared by every instance through Redis when there is one, so that an outage is learnt once.
  const circuit = createCircuitBreaker({
    redis: redis?.commands,
    keyPrefix: config.redisKeyPrefix,
    ...config.chat.circuit,
    probeTimeoutMs: config.chat.upstreamTimeoutMs,
    logger,
  });
  const providers = createProviders(config.providers, { upstreamTimeoutMs: config.chat.upstreamTimeoutMs, demoBaseUrl: demo?.baseUrl });
  // Reports see each provider's id and kind, never its key or address.
  const readProviderHealth = createProviderHealth({
    circuit,
    providers: config.providers.map(({ id, kind }) => ({ id, kind })),
    models: config.chat.models,
  });
  readinessChecks.providers = readProviderHealth;
  metrics.trackCircuits(readProviderHealth);
  const metering = new Metering({ prisma: db.prisma, quotas: config.quotas, metrics: metrics.usage, logger });
  const route = createRouter(config.chat.models, providers, config.chat.upstreamTimeoutMs);
  const runner = new GenerationRunner({
    prisma: db.prisma,
    hub,
    route,
    circuit,
    metering,
    logger,
    metrics,
    settings: {
      upstreamTimeoutMs: config.chat.upstreamTimeoutMs,
      failoverFirstTokenMs: config.chat.failoverFirstTokenMs,
      generationMaxMs: config.chat.generationMaxMs,
      maxAttempts: config.chat.upstreamMaxAttempts,
      leaseMs: config.chat.generationLeaseMs,
      maxToolArgumentsBytes: config.limits.tools.maxArgumentsBytes,
    },
  });
  const recovery = new GenerationRecovery({ prisma: db.prisma, hub, metering, logger });
  const generations = new Generations({ prisma: db.prisma, hub, runner, recovery, logger, leaseMs: config.chat.generationLeaseMs });
  await generations.startBackgroundWork({ soleDatabaseUser: db.kind === 'pglite' });
  const granted = await grantPendingSignupCredits(db.prisma, config.billing.signupCreditsMicros);
  if (granted) logger.info({ accounts: granted }, 'gave the sign-up credits to accounts created before credits existed');

  const stripe = config.stripe ? createStripeClient(config.stripe) : undefined;
  const billingDeps = { prisma: db.prisma, billing: config.billing, logger };
  const stripeWebhooks =
    stripe && config.stripe ? createStripeWebhooks({ ...billingDeps, stripe, webhookSecret: config.stripe.webhookSecret }) : undefined;

  const titleModel = config.chat.models.find((m) => m.id === config.chat.titleModel);
  const titles = titleModel
    ? createConversationTitles({
        prisma: db.prisma,
        metering,
        calls: { route, circuit, logger, metrics: metrics.upstream },
        model: titleModel,
        timeoutMs: config.chat.upstreamTimeoutMs,
        leaseMs: config.chat.generationLeaseMs,
        logger,
      })
    : undefined;
  const chat = new ChatService({ prisma: db.prisma, config, metering, generations, logger, titles });
  const services: Services = {
    config,
    prisma: db.prisma,
    authenticate: createAuthenticator({ prisma: db.prisma, config, cache: viewerCache }),
    passwords: createPasswordHasher(config.limits.passwordHashing),
    logger,
    metering,
    billing: createBilling({ ...billingDeps, stripe }),
    chat,
    realtime: createRealtimeSessions({ prisma: db.prisma, metering, upstream, config, logger }),
    rateLimiter: createRateLimiter({
      rules: config.limits.rates,
      logger,
      redis: redis ? { client: redis.rateLimits, keyPrefix: config.redisKeyPrefix } : undefined,
      onRefused: (check) => metrics.rateLimited.inc({ rule: check.rule }),
    }),
    revocations,
    admin: createAdmin({ prisma: db.prisma, revocations, chat, logger, readProviderHealth }),
  };
  const maskError = createErrorMasker(logger, errorReporter.report);
  // Production can be limited to the documents its clients were built with (codegen's manifest).
  const trustedDocuments = config.http.persistedOperationsFile ? loadTrustedDocuments(config.http.persistedOperationsFile) : undefined;
  const yoga = createGraphQLServer(services, maskError, metrics.graphql, trustedDocuments);
  const state = { shuttingDown: false };
  const httpServer = createHttpServer({
    yoga,
    logger,
    maxRequestBytes: config.http.maxRequestBytes,
    maxUploadBytes: config.http.maxUploadBytes,
    readinessChecks,
    state,
    metrics: { registry: metrics.registry, ...config.metrics },
    stripeWebhooks,
    attachments: {
      prisma: db.prisma,
      authenticate: services.authenticate,
      rateLimiter: services.rateLimiter,
      trustProxyHops: config.http.trustProxyHops,
      logger,
    },
  });
  const graphqlWs = await attachGraphQLWs({
    httpServer,
    yoga,
    authenticate: services.authenticate,
    logger,
    maskError,
    metrics,
    limits: config.limits.ws,
    trustProxyHops: config.http.trustProxyHops,
    revocations,
    state,
    trustedDocuments,
  });

  let stopping: Promise<void> | undefined;
  const stop = async () => {
    // From here new operations, sends, subscriptions and sockets are refused (SHUTTING_DOWN, 503);
    // the listener stays open meanwhile, so that they are told so instead of finding no server.
    state.shuttingDown = true;
    // Running generations end STOPPED with their text and usage persisted; subscribers get `done`.
    await generations.stopAll();
    // Title calls in flight are stopped and their reservations settled; none starts from now on.
    await titles?.stopAll();
    await graphqlWs.drain(config.http.shutdownTimeoutMs);
    const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
    await graphqlWs.dispose();
    httpServer.closeIdleConnections();
    // In-flight requests get until the deadline; then their connections are cut.
    const deadline = setTimeout(() => httpServer.closeAllConnections(), config.http.shutdownTimeoutMs);
    await closed;
    clearTimeout(deadline);
    // A send accepted before shutdown may have started its reply since: it was stopped at once; wait for its record.
    await generations.stopAll();
    await yoga.dispose();
    stopViewerClears();
    await stopViewerEvictions();
    await hub.close();
    await redis?.close();
    await demo?.stop();
    await db.close();
    await errorReporter.close(config.http.shutdownTimeoutMs);
  };

  return {
    services,
    runner,
    hub,
    recovery,
    metering,
    db,
    yoga,
    metrics,
    circuit,
    start: async (port = config.port) => {
      await ensurePortFree(port, config.host);
      return new Promise<URL>((resolve, reject) => {
        httpServer.once('error', (error) => reject(listenError(error, port)));
        httpServer.listen(port, config.host, () => {
          const { port: bound } = httpServer.address() as AddressInfo;
          const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
          resolve(new URL(`http://${host}:${bound}/graphql`));
        });
      });
    },
    stop: () => (stopping ??= stop()),
  };
}

