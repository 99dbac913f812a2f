import type { ModelInfo } from '../model-catalog.js';
import { anthropicProvider, createAnthropicClient } from './anthropic.js';
import { createUpstream, openAICompatibleProvider } from './openai-compatible.js';
import type { ProviderSettings } from './provider-settings.js';
import { planRoute, type ProviderHandle, type RouteTarget } from './router.js';

/** The configured providers by id, each behind the one provider interface. */
export function createProviders(
  settings: ProviderSettings[],
  options: { upstreamTimeoutMs: number; demoBaseUrl?: string },
): Map<string, ProviderHandle> {
  return new Map(
    settings.map((p): [string, ProviderHandle] => {
      const baseUrl = p.demo ? options.demoBaseUrl : p.baseUrl;
      const client = { apiKey: p.apiKey, baseUrl, timeoutMs: p.timeoutMs ?? options.upstreamTimeoutMs };
      const chat = p.kind === 'anthropic' ? anthropicProvider(createAnthropicClient(client)) : openAICompatibleProvider(createUpstream(client));
      return [p.id, { id: p.id, kind: p.kind, chat, prefill: p.prefill, ...(p.timeoutMs ? { timeoutMs: p.timeoutMs } : {}) }];
    }),
  );
}

/** Routes a catalog model to its targets: its deployments, then its fallbacks'. */
export function createRouter(models: ModelInfo[], providers: ReadonlyMap<string, ProviderHandle>, upstreamTimeoutMs: number): (model: ModelInfo) => RouteTarget[] {
  const catalog = new Map(models.map((m) => [m.id, m]));
  const routes = new Map(models.map((m) => [m.id, planRoute(m, catalog, providers, upstreamTimeoutMs)]));
  return (model) => routes.get(model.id) ?? planRoute(model, catalog, providers, upstreamTimeoutMs);
}
