import type { UpstreamMetrics } from '../observability/metrics.js';
import type { AttemptRecord } from './attempt-records.js';

/**
 * Counts a reply's latest attempt and, when it was made on another target than the one before,
 * the failover. Text had flowed when an earlier attempt produced some: a reply's text is only
 * ever replaced by new text, never emptied.
 */
export function observeAttempt(metrics: UpstreamMetrics, attempts: readonly AttemptRecord[]): void {
  const latest = attempts.at(-1);
  if (!latest) return;
  const provider = latest.target.provider.id;
  const { outcome, durationMs, firstTokenMs } = latest.result;
  metrics.attempts.inc({ provider, model: latest.target.deployment.model, outcome });
  metrics.attemptDuration.observe({ provider, outcome }, durationMs / 1000);
  if (firstTokenMs !== undefined) metrics.firstToken.observe({ provider }, firstTokenMs / 1000);
  const previous = attempts.at(-2);
  if (previous && previous.target !== latest.target) {
    metrics.failovers.inc({
      from_provider: previous.target.provider.id,
      to_provider: provider,
      reason: previous.result.failure?.kind ?? 'none',
      mid_stream: String(attempts.slice(0, -1).some((a) => a.result.text.length > 0)),
    });
  }
}
