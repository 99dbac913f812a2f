import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENVIRONMENT_VARIABLES, loadConfig } from '../src/config.js';
import { configReference, withGeneratedReference } from '../src/config-docs.js';
import { testConfig } from './helpers/app.js';
import { problemsOf } from './helpers/config.js';
import { tempDir } from './helpers/leftovers.js';
import { ROOT, run } from './helpers/processes.js';
import { SERVER_PROCESS_TIMEOUT_MS } from './helpers/server-process.js';


describe('configuration', () => {
  it('reports every invalid variable at once', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      DATABASE_URL: 'mysql://nope',
      JWT_SECRET: 'short',
      OIDC_ISSUER: 'https://issuer.example',
      STRIPE_SECRET_KEY: 'sk_test_x',
      NODE_ENV: 'development',
      DATA_DIR: tempDir('sb-config'),
    });
    const joined = problems.join('\n');
    for (const name of ['PORT', 'DATABASE_URL', 'JWT_SECRET', 'OIDC_AUDIENCE', 'STRIPE_WEBHOOK_SECRET']) {
      expect(joined).toContain(name);
    }
  });

  it('refuses to run in production without a token secret', () => {
    expect(problemsOf({ NODE_ENV: 'production' }).join()).toMatch(/JWT_SECRET: is required in production/);
  });

  it('in development generates a token secret once, keeps it under the data dir and warns', () => {
    const dataDir = tempDir('sb-config');
    const first = loadConfig({ NODE_ENV: 'development', DATA_DIR: dataDir });
    const second = loadConfig({ NODE_ENV: 'development', DATA_DIR: dataDir });
    expect(Buffer.from(first.auth.jwtSecret).toString()).toBe(Buffer.from(second.auth.jwtSecret).toString());
    expect(readFileSync(join(dataDir, 'jwt-secret'), 'utf8').trim().length).toBeGreaterThanOrEqual(32);
    expect(statSync(join(dataDir, 'jwt-secret')).mode & 0o077).toBe(0);
    expect(first.warnings.join()).toMatch(/JWT_SECRET is not set/);
  });

  it('turns GraphiQL and introspection off in production unless enabled', () => {
    const secret = 'p'.repeat(40);
    const production = loadConfig({ NODE_ENV: 'production', JWT_SECRET: secret, OPENAI_API_KEY: 'sk-x' });
    expect(production.http).toMatchObject({ graphiql: false, introspection: false });
    const enabled = loadConfig({ NODE_ENV: 'production', JWT_SECRET: secret, OPENAI_API_KEY: 'sk-x', GRAPHIQL: 'true', INTROSPECTION: '1' });
    expect(enabled.http).toMatchObject({ graphiql: true, introspection: true });
  });

  it('refuses to start in production without a model provider unless the demo model is asked for', () => {
    const production = { NODE_ENV: 'production', JWT_SECRET: 'p'.repeat(40) };
    expect(problemsOf(production).join()).toMatch(/OPENAI_API_KEY: is required in production \(or set DEMO_MODEL=true/);
    expect(problemsOf({ ...production, DEMO_MODEL: 'true' })).toEqual([]);
    expect(loadConfig({ ...production, DEMO_MODEL: 'true' }).chat.demo).toBe(true);
    expect(problemsOf({ ...production, OPENAI_API_KEY: 'sk-live' })).toEqual([]);
  });

  it('reads limits from the environment, with defaults', () => {
    const config = loadConfig({ JWT_SECRET: 'p'.repeat(40), MAX_QUERY_COST: '500', RATE_LIMIT_LOGIN_PER_ACCOUNT: '3/2h' });
    expect(config.limits.document.maxCost).toBe(500);
    expect(config.limits.rates.loginPerAccount).toEqual({ max: 3, window: '2h', windowMs: 7_200_000 });
    expect(config.limits.rates.sendMessage.max).toBeGreaterThan(0);
    expect(problemsOf({ JWT_SECRET: 'p'.repeat(40), RATE_LIMIT_SEND_MESSAGE: 'lots' }).join()).toMatch(/RATE_LIMIT_SEND_MESSAGE/);
  });

  it('refuses a DEFAULT_MODEL or TITLE_MODEL that is not in the model catalog, naming both at once', () => {
    const base = { JWT_SECRET: 'p'.repeat(40) };
    expect(problemsOf({ ...base, DEFAULT_MODEL: 'no-such-chat', TITLE_MODEL: 'no-such-titler' })).toEqual([
      'DEFAULT_MODEL: no-such-chat is not in the model catalog',
      'TITLE_MODEL: no-such-titler is not in the model catalog',
    ]);
    const withoutTitles = loadConfig(base);
    expect(withoutTitles.chat.titleModel).toBeUndefined();
    const model = withoutTitles.chat.defaultModel;
    expect(loadConfig({ ...base, TITLE_MODEL: model }).chat.titleModel).toBe(model);
  });

  it('reads the viewer cache settings: 1 s by default, 0 turns it off, a negative or huge TTL is refused', () => {
    const base = { JWT_SECRET: 'p'.repeat(40) };
    expect(loadConfig(base).auth.cache).toEqual({ ttlMs: 1000, maxEntries: 10_000 });
    expect(loadConfig({ ...base, AUTH_CACHE_TTL_MS: '0' }).auth.cache.ttlMs).toBe(0);
    expect(problemsOf({ ...base, AUTH_CACHE_TTL_MS: '-1' }).join()).toMatch(/AUTH_CACHE_TTL_MS/);
    expect(problemsOf({ ...base, AUTH_CACHE_TTL_MS: '3600000' }).join()).toMatch(/AUTH_CACHE_TTL_MS/);
    expect(problemsOf({ ...base, AUTH_CACHE_MAX_ENTRIES: '0' }).join()).toMatch(/AUTH_CACHE_MAX_ENTRIES/);
  });

  it('derives the JWKS URL from the OIDC issuer', () => {
    const config = loadConfig({ JWT_SECRET: 'p'.repeat(40), OIDC_ISSUER: 'https://tenant.auth0.com/', OIDC_AUDIENCE: 'api' });
    expect(config.oidc?.jwksUrl).toBe('https://tenant.auth0.com/.well-known/jwks.json');
  });

  it('lists every variable in .env.example, each with its default', () => {
    const lines = readFileSync(join(import.meta.dirname, '..', '.env.example'), 'utf8')
      .split('\n')
      .map((line) => /^# ([A-Z][A-Z0-9_]*)=(.*)$/.exec(line))
      .filter((match) => match !== null);
    const documented = lines.map(([, name]) => name);
    expect([...documented].sort()).toEqual([...ENVIRONMENT_VARIABLES].sort());
    // Uncommented as they stand, the example's values make the same configuration as no variables at all.
    const base = { JWT_SECRET: 'p'.repeat(40), DATA_DIR: tempDir('sb-config') };
    const fromExample = Object.fromEntries(lines.map(([, name, value]) => [name, value]));
    const { warnings: _w1, ...withExample } = loadConfig({ ...fromExample, ...base });
    const { warnings: _w2, ...withDefaults } = loadConfig(base);
    expect(withExample).toEqual(withDefaults);
  });

  it('makes the server exit non-zero, printing every problem, when the configuration is invalid', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const result = await run(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env.PATH, NODE_ENV: 'production', PORT: '-1', REDIS_URL: 'http://wrong' },
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('Invalid configuration');
    for (const name of ['PORT', 'REDIS_URL', 'JWT_SECRET']) expect(result.stderr).toContain(name);
  });
});

describe('the configuration reference', () => {
  it('docs/configuration.md shows every variable as the schema describes it', () => {
    const file = readFileSync(join(import.meta.dirname, '..', 'docs', 'configuration.md'), 'utf8');
    expect(file, 'docs/configuration.md is stale: run `npm run docs:config`').toBe(withGeneratedReference(file));
    const documented = configReference().flatMap((group) => group.variables.map((variable) => variable.name));
    expect([...documented].sort()).toEqual([...ENVIRONMENT_VARIABLES].sort());
  });

  it('`npm start -- --help` prints usage and every variable with its default, exits 0 and starts nothing', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    // An invalid configuration and a data directory that does not exist yet: help reads neither.
    const dataDir = join(tempDir('sb-help'), 'data');
    const env = { PATH: process.env.PATH, PORT: '-1', DATA_DIR: dataDir };
    const help = await run('npm', ['start', '--silent', '--', '--help'], { env });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npm start/);
    for (const name of ENVIRONMENT_VARIABLES) expect(help.stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    for (const line of ['  PORT=4000', '  REDIS_KEY_PREFIX=switchboard:', '  RATE_LIMIT_SEND_MESSAGE=30/1m', '  REALTIME_MODELS=gpt-realtime,gpt-4o-realtime-preview']) {
      expect(help.stdout.split('\n')).toContain(line);
    }
    expect(help.stdout).not.toContain('listening');
    expect(existsSync(dataDir)).toBe(false);

    const short = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', '-h'], { env });
    expect(short.status, short.stderr).toBe(0);
    expect(short.stdout).toBe(help.stdout);
  });
});

describe('the .env file of npm start and npm run dev', () => {
  // Their preload, run where a .env is (or is not) with the variable set in the shell or not.
  const preload = join(ROOT, 'scripts', 'env-file.mjs');
  const readVariables = (cwd: string, env: Record<string, string> = {}) =>
    run(process.execPath, ['--import', preload, '-e', 'console.log(process.env.FROM_FILE, process.env.SET_TWICE)'], {
      cwd,
      env: { PATH: process.env.PATH, ...env },
    });

  it('is read when there is one, the shell\'s variables winning', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const dir = tempDir('sb-env-file');
    writeFileSync(join(dir, '.env'), 'FROM_FILE=file\nSET_TWICE=file\n');
    const result = await readVariables(dir, { SET_TWICE: 'shell' });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('file shell\n');
  });

  it('is not missed out loud when there is none', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const result = await readVariables(tempDir('sb-env-file'));
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('undefined undefined\n');
  });
});

describe('the providers example of docs/providers.md', () => {
  it('is a configuration the server accepts, routed as the page says', () => {
    const page = readFileSync(new URL('../docs/providers.md', import.meta.url), 'utf8');
    const [providers, models] = [...page.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const config = testConfig({ PROVIDERS_JSON: providers, MODELS_JSON: models, OPENAI_API_KEY: 'sk-docs', ANTHROPIC_API_KEY: 'sk-ant-docs' });
    expect(config.providers.map((p) => [p.id, p.kind, p.prefill])).toEqual([
      ['openai', 'openai', false],
      ['anthropic', 'anthropic', true],
      ['local', 'openai-compatible', false],
    ]);
    const sonnet = config.chat.models.find((m) => m.id === 'claude-sonnet')!;
    expect(sonnet).toMatchObject({ provider: 'anthropic', fallbacks: ['gpt-4.1'] });
    // Priced by genai-prices at the deployment's own rates, cache writes included.
    expect(sonnet.deployments[0]!.price.cacheWriteMicrosPerMillion).toBeGreaterThan(sonnet.deployments[0]!.price.inputMicrosPerMillion);
    // The hold covers the dearest of the model and its fallback.
    const gpt = config.chat.models.find((m) => m.id === 'gpt-4.1')!;
    expect(sonnet.price.outputMicrosPerMillion).toBe(Math.max(sonnet.deployments[0]!.price.outputMicrosPerMillion, gpt.price.outputMicrosPerMillion));
  });

  it('refuses a provider whose key variable is unset, without printing any key', () => {
    const json = JSON.stringify([{ id: 'anthropic', kind: 'anthropic', apiKeyEnv: 'NO_SUCH_KEY_VARIABLE' }, { id: 'x', kind: 'openai', apiKey: 'sk-secret-never-printed' }, { id: 'x', kind: 'openai', apiKey: 'sk-secret-never-printed' }]);
    let message = '';
    try {
      testConfig({ PROVIDERS_JSON: json });
    } catch (error) {
      message = String(error);
    }
    expect(message).toContain('apiKeyEnv names NO_SUCH_KEY_VARIABLE, which is not set');
    expect(message).toContain('the id is used twice');
    expect(message).not.toContain('sk-secret-never-printed');
  });
});
