import type { Logger } from '../logger.js';
import { estimateCompletionTokens } from '../metering/tokens.js';
import type { ModelInfo } from '../model-catalog.js';
import type { Metrics } from '../observability/metrics.js';
import type { ProviderFailure } from '../providers/provider.js';
import { countsAgainstDeployment, endsReply, retriedInPlace, retryDelayMs, type Circuit, type RouteTarget } from '../providers/router.js';
import type { DeltaPublisher } from '../streams/delta-publisher.js';
import type { ToolCallDelta } from '../streams/stream-hub.js';
import { producedOutput, runAttempt } from './attempt.js';
import { observeAttempt } from './attempt-metrics.js';
import { priceAttempt, type AttemptRecord } from './attempt-records.js';
import type { GenerationJob, GenerationSettings } from './runner.js';
import type { ToolCallAssembly } from './tool-call-assembly.js';

/** The longest wait between two attempts at one deployment (a longer Retry-After moves on instead). */
const MAX_RETRY_WAIT_MS = 10_000;

/** A retry's wait, cut short by a stop (or shutdown): the retry is then never sent. */
const waitUnlessStopped = (ms: number, stop: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      stop.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    stop.addEventListener('abort', done, { once: true });
  });

/** The text subscribers hold: it grows, or starts anew after a restart (a reset). */
export interface ReplyText {
  text: string;
  /** The tool calls written so far; a restart drops them with the text. */
  toolCalls: ToolCallAssembly;
  /** Bumped by every reset, so that a checkpoint knows to rewrite rather than append. */
  version: number;
}

/** How the reply's attempts ended: the last failure, and the target whose answer completed it. */
export interface RouteOutcome {
  failure?: ProviderFailure;
  finishReason?: string;
  finishedBy?: RouteTarget;
}

export interface FailoverDeps {
  /** The targets of a reply for a catalog model, in the order they are tried. */
  route: (model: ModelInfo) => RouteTarget[];
  circuit: Circuit;
  settings: Pick<GenerationSettings, 'maxAttempts' | 'failoverFirstTokenMs' | 'generationMaxMs' | 'maxToolArgumentsBytes'>;
  logger: Logger;
  metrics: Pick<Metrics, 'generation' | 'upstream'>;
}

/**
 * Tries the reply's targets in order until one completes it. Before any text reached a client,
 * a deployment that fails in a way worth retrying gets up to `maxAttempts` calls (waiting as
 * its Retry-After asks, else with jittered backoff), then the next target is tried; a silent
 * one is not called again. Once text is out and the stream dies, the next target carries on:
 * from the partial text where it accepts a prefill, else from the start, after a reset. A reply
 * cut once tool calls had begun always restarts: half a tool call cannot be prefilled. A
 * deployment whose circuit is open is skipped; one due for a probe gets one call.
 */
export async function generateAlongRoute(
  deps: FailoverDeps,
  job: GenerationJob,
  stopSignal: AbortSignal,
  { reply, publisher, attempts }: { reply: ReplyText; publisher: DeltaPublisher; attempts: AttemptRecord[] },
  onFirstText: () => void,
): Promise<RouteOutcome> {
  const { circuit, logger, settings } = deps;
  // A prompt with images goes only to models that take them: a fallback without vision is skipped.
  const withImages = job.messages.some((turn) => (turn.images?.length ?? 0) > 0);
  const targets = deps.route(job.model).filter((target) => !withImages || target.model.vision);
  const deadline = Date.now() + settings.generationMaxMs;
  let failure: ProviderFailure | undefined;
  // Attempts from this index on have their text in the reply (a reset moves it).
  let billedFrom = 0;
  let resetDue = false;
  /** After a context-length refusal: only fallbacks with at least this context window. */
  let contextAtLeast: { window: number; refusedBy: string } | undefined;
  const eligible = (t: RouteTarget) => !contextAtLeast || (t.model.id !== contextAtLeast.refusedBy && t.model.contextWindow >= contextAtLeast.window);
  const restartIfDue = () => {
    onFirstText();
    if (!resetDue) return;
    resetDue = false;
    reply.text = '';
    reply.toolCalls.clear();
    reply.version += 1;
    billedFrom = attempts.length;
    publisher.reset();
  };
  const onText = (delta: string) => {
    restartIfDue();
    reply.text += delta;
    publisher.push(delta);
  };
  const onToolCall = (delta: ToolCallDelta) => {
    restartIfDue();
    reply.toolCalls.add(delta);
    publisher.pushToolCall(delta);
  };
  const skipped: RouteTarget[] = [];

  const tryTarget = async (target: RouteTarget, calls: number): Promise<'done' | 'next' | 'end'> => {
    let prefillRefused = false;
    for (let call = 1; call <= calls; call += 1) {
      if (stopSignal.aborted) return 'end';
      const prefill = reply.text && reply.toolCalls.size === 0 && target.prefill && !prefillRefused ? reply.text : undefined;
      // A restart drops the partial reply, but only once the new answer begins: should it fail first, the partial stays.
      resetDue = (reply.text.length > 0 || reply.toolCalls.size > 0) && prefill === undefined;
      const alternatives = targets.slice(targets.indexOf(target) + 1).some(eligible);
      let answered = false;
      // The deployment answers: its circuit closes now, not when a long reply ends (a probe holds it open till then).
      const answering = () => {
        if (!answered) void circuit.recordSuccess(target.key);
        answered = true;
      };
      const result = await runAttempt(
        target,
        {
          model: target.deployment.model,
          messages: job.messages,
          maxTokens: prefill ? Math.max(1, job.maxTokens - estimateCompletionTokens(prefill)) : job.maxTokens,
          temperature: job.temperature,
          ...(job.sampling ? { sampling: job.sampling } : {}),
          ...(job.responseFormat ? { responseFormat: job.responseFormat } : {}),
          ...(job.toolSet ? { tools: job.toolSet.tools, toolChoice: job.toolSet.toolChoice } : {}),
          reasoning: target.model.reasoning,
          ...(prefill ? { prefill } : {}),
        },
        {
          firstTokenMs: alternatives && !target.model.reasoning ? Math.min(target.timeoutMs, settings.failoverFirstTokenMs) : target.timeoutMs,
          idleMs: target.timeoutMs,
          deadline,
          maxToolArgumentsBytes: settings.maxToolArgumentsBytes,
        },
        stopSignal,
        (delta) => {
          answering();
          onText(delta);
        },
        (delta) => {
          answering();
          onToolCall(delta);
        },
      );
      const record = priceAttempt(target, result, job.promptEstimate, prefill);
      attempts.push(record);
      observeAttempt(deps.metrics.upstream, attempts);
      resetDue = false;
      if (result.stopped) return 'end';
      if (!result.failure) {
        if (!answered) await circuit.recordSuccess(target.key);
        failure = undefined;
        return 'done';
      }
      failure = result.failure;
      deps.metrics.generation.upstreamErrors.inc({ status: failure.status ? String(failure.status) : failure.kind });
      if (countsAgainstDeployment(failure)) await circuit.recordFailure(target.key);
      logger.warn(
        { messageId: job.messageId, provider: target.provider.id, model: target.deployment.model, call, kind: failure.kind, status: failure.status },
        'an upstream attempt failed',
      );
      if (failure.kind === 'prefill_refused' && prefill !== undefined && !prefillRefused) {
        // This target does not take a prefill after all: restart the reply here instead.
        prefillRefused = true;
        call -= 1;
        continue;
      }
      if (endsReply(failure)) return 'end';
      if (failure.kind === 'context_length') {
        contextAtLeast = { window: target.model.contextWindow, refusedBy: target.model.id };
        return 'next';
      }
      // Text is out: only another target can carry on (a retry here would repeat it).
      if (producedOutput(result)) return 'next';
      if (!retriedInPlace(failure) || call >= calls) return 'next';
      const waitMs = retryDelayMs(failure, call, MAX_RETRY_WAIT_MS);
      if (waitMs === undefined) return 'next';
      logger.warn({ messageId: job.messageId, provider: target.provider.id, attempt: call, status: failure.status, waitMs }, 'retrying upstream call');
      await waitUnlessStopped(waitMs, stopSignal);
    }
    return 'next';
  };

  for (const target of targets) {
    if (stopSignal.aborted) break;
    if (!eligible(target)) continue;
    const admission = await circuit.admit(target.key);
    if (admission === 'open') {
      skipped.push(target);
      continue;
    }
    const step = await tryTarget(target, admission === 'probe' ? 1 : settings.maxAttempts);
    if (step === 'done') return settleBilling(attempts, billedFrom, { finishReason: attempts.at(-1)?.result.finishReason, finishedBy: target });
    if (step === 'end') break;
  }
  // Every target was skipped by its circuit: rather than refuse outright, the first one gets one call.
  const lastResort = skipped.find(eligible);
  if (attempts.length === 0 && lastResort && !stopSignal.aborted) {
    if ((await tryTarget(lastResort, 1)) === 'done') {
      return settleBilling(attempts, billedFrom, { finishReason: attempts.at(-1)?.result.finishReason, finishedBy: lastResort });
    }
  }
  if (!failure && attempts.length === 0 && !stopSignal.aborted) {
    failure = { kind: 'server_error', message: 'No model provider is available for this model' };
  }
  return settleBilling(attempts, billedFrom, { failure });
}

/** Marks as billed the attempts whose text is in the reply: those since the last reset that produced text, or ended it. */
function settleBilling(attempts: AttemptRecord[], billedFrom: number, outcome: RouteOutcome): RouteOutcome {
  attempts.forEach((a, index) => {
    const last = index === attempts.length - 1;
    a.billed = index >= billedFrom && (producedOutput(a.result) || (last && a.result.sent && (a.result.outcome === 'OK' || a.result.stopped)));
  });
  return outcome;
}
