import { z } from 'zod';
import { parseJsonSetting } from '../json-setting.js';

export type ProviderKind = 'openai' | 'openai-compatible' | 'anthropic';

/** One named provider, its key resolved. Never logged: it holds a secret. */
export interface ProviderSettings {
  id: string;
  kind: ProviderKind;
  baseUrl?: string;
  apiKey: string;
  /** Accepts an assistant message as the start of its reply (a prefill). */
  prefill: boolean;
  /** Overrides UPSTREAM_TIMEOUT_SECONDS for this provider's calls. */
  timeoutMs?: number;
  /** Served by the built-in demo upstream. */
  demo?: boolean;
}

/** The provider every model deploys on when its entry names no deployments. */
export const DEFAULT_PROVIDER_ID = 'openai';

const providerSchema = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1 to 64 letters, digits or . _ -, starting with a letter or digit'),
    kind: z.enum(['openai', 'openai-compatible', 'anthropic']),
    baseUrl: z.url({ protocol: /^https?$/ }).optional(),
    apiKey: z.string().min(1).optional(),
    apiKeyEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the name of an environment variable').optional(),
    prefill: z.boolean().optional(),
    timeoutSeconds: z.number().positive().max(3600).optional(),
  })
  .refine((p) => !(p.apiKey && p.apiKeyEnv), { message: 'give apiKey or apiKeyEnv, not both' });

type ProviderEntry = z.infer<typeof providerSchema>;

/**
 * Parses PROVIDERS_JSON and resolves each provider's key (from `apiKeyEnv` in `env`, or `apiKey`).
 * Undefined when unset; throws a readable error (which never includes a key) when malformed.
 */
export function providersFromJson(json: string | undefined, env: Record<string, string | undefined>): ProviderSettings[] | undefined {
  if (!json) return undefined;
  const entries = parseJsonSetting(json, z.array(providerSchema).min(1));
  const problems: string[] = [];
  const seen = new Set<string>();
  const providers = entries.map((entry, index): ProviderSettings => {
    const where = `${index} (${JSON.stringify(entry.id)})`;
    if (seen.has(entry.id)) problems.push(`${where}: the id is used twice`);
    seen.add(entry.id);
    const apiKey = keyOf(entry, env);
    if (!apiKey && entry.apiKeyEnv) problems.push(`${where}: apiKeyEnv names ${entry.apiKeyEnv}, which is not set`);
    else if (!apiKey && entry.kind !== 'openai-compatible') problems.push(`${where}: a ${entry.kind} provider needs apiKey or apiKeyEnv`);
    return {
      id: entry.id,
      kind: entry.kind,
      ...(entry.baseUrl ? { baseUrl: entry.baseUrl } : {}),
      // A local OpenAI-compatible server (vLLM, Ollama) may need no key; the SDK still wants one.
      apiKey: apiKey ?? 'none',
      prefill: entry.prefill ?? entry.kind === 'anthropic',
      ...(entry.timeoutSeconds ? { timeoutMs: Math.round(entry.timeoutSeconds * 1000) } : {}),
    };
  });
  if (problems.length > 0) throw new Error(problems.join('; '));
  return providers;
}

function keyOf(entry: ProviderEntry, env: Record<string, string | undefined>): string | undefined {
  if (entry.apiKeyEnv) return env[entry.apiKeyEnv] || undefined;
  return entry.apiKey;
}

/**
 * The providers the environment configures: PROVIDERS_JSON, else one `openai` provider from
 * OPENAI_API_KEY and OPENAI_BASE_URL (the built-in demo upstream without a key).
 */
export function providersFromEnv(env: Record<string, string | undefined>): ProviderSettings[] {
  const configured = providersFromJson(env.PROVIDERS_JSON, env);
  if (configured) return configured;
  return [
    {
      id: DEFAULT_PROVIDER_ID,
      kind: 'openai-compatible',
      ...(env.OPENAI_BASE_URL ? { baseUrl: env.OPENAI_BASE_URL } : {}),
      apiKey: env.OPENAI_API_KEY ?? 'demo',
      prefill: false,
      ...(env.OPENAI_API_KEY ? {} : { demo: true }),
    },
  ];
}
