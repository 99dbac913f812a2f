import type { Logger } from '../logger.js';
import type { ModelInfo } from '../model-catalog.js';
import type { UpstreamMetrics } from '../observability/metrics.js';
import type { ChatRequest } from '../providers/provider.js';
import { countsAgainstDeployment, endsReply, type Circuit, type RouteTarget } from '../providers/router.js';
import { runAttempt } from './attempt.js';
import { observeAttempt } from './attempt-metrics.js';
import { priceAttempt, type AttemptRecord } from './attempt-records.js';

export interface RouteCallDeps {
  /** The targets of a call for a catalog model, in the order they are tried. */
  route: (model: ModelInfo) => RouteTarget[];
  circuit: Circuit;
  logger: Logger;
  metrics: UpstreamMetrics;
}

/** What a call along a route brought: the whole answer, or none, and every attempt priced. */
export interface RouteCallResult {
  /** The answer of the target that completed the call; undefined when none did. */
  text?: string;
  /** The target whose answer it is. */
  finishedBy?: RouteTarget;
  /** Each attempt, marked `billed` when the user pays for it (it produced text, or it was stopped while under way). */
  attempts: AttemptRecord[];
}

/**
 * A short call nobody follows live (a conversation's title): the model's targets are tried in
 * order, once each, skipping those whose circuit is open, until one answers in full. Nothing is
 * retried in place and there is no last-resort call: the answer is a nicety, not worth the wait.
 */
export async function callAlongRoute(
  deps: RouteCallDeps,
  model: ModelInfo,
  request: Omit<ChatRequest, 'model' | 'reasoning'>,
  options: { promptEstimate: number; deadline: number; signal: AbortSignal },
): Promise<RouteCallResult> {
  const { circuit, logger, metrics } = deps;
  const attempts: AttemptRecord[] = [];
  for (const target of deps.route(model)) {
    if ((await circuit.admit(target.key)) === 'open') continue;
    if (options.signal.aborted) break;
    const result = await runAttempt(
      target,
      { ...request, model: target.deployment.model, reasoning: target.model.reasoning },
      { firstTokenMs: target.timeoutMs, idleMs: target.timeoutMs, deadline: options.deadline },
      options.signal,
      () => {},
    );
    const record = priceAttempt(target, result, options.promptEstimate, undefined);
    // The provider bills what it produced, and most likely a call cut off by a stop too.
    record.billed = result.text.length > 0 || (result.stopped && result.sent);
    attempts.push(record);
    observeAttempt(metrics, attempts);
    if (result.stopped) break;
    if (!result.failure) {
      await circuit.recordSuccess(target.key);
      record.billed = true;
      return { text: result.text, finishedBy: target, attempts };
    }
    if (countsAgainstDeployment(result.failure)) await circuit.recordFailure(target.key);
    logger.warn(
      { provider: target.provider.id, model: target.deployment.model, kind: result.failure.kind, status: result.failure.status },
      'an upstream call along a route failed',
    );
    if (endsReply(result.failure)) break;
  }
  return { attempts };
}
