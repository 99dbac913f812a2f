import type { MeteredUsage } from '../metering/prices.js';
import type { ChatRequest, ProviderFailure } from '../providers/provider.js';
import type { RouteTarget } from '../providers/router.js';
import type { ToolCallDelta } from '../streams/stream-hub.js';

/** How an upstream call ended, as its record says. */
export type AttemptOutcome = 'OK' | 'ERROR' | 'TIMEOUT' | 'CUT' | 'REFUSED';

export interface AttemptResult {
  outcome: AttemptOutcome;
  failure?: ProviderFailure;
  /** As the provider reported it. */
  usage?: MeteredUsage;
  finishReason?: string;
  /** The text this call produced (after its prefill, if it had one). */
  text: string;
  /** The names and arguments of the tool calls it wrote, as text (what its completion estimate counts). */
  toolCallText: string;
  /** The request went out: a call never sent costs nothing. */
  sent: boolean;
  /** Ended by a stop (the reply's own, or shutdown). */
  stopped: boolean;
  startedAt: Date;
  firstTokenMs?: number;
  durationMs: number;
}

export interface AttemptLimits {
  /** Longest wait for the first text. */
  firstTokenMs: number;
  /** Longest wait between two events once text flows. */
  idleMs: number;
  /** The whole reply's deadline (epoch ms). */
  deadline: number;
  /** Bytes of tool-call arguments the call may write; past them the reply ends (it would not fit what a client is sent). */
  maxToolArgumentsBytes: number;
}

/** Whether the call produced anything that may have reached a client: text or a tool call. */
export const producedOutput = (result: Pick<AttemptResult, 'text' | 'toolCallText'>) => result.text.length > 0 || result.toolCallText.length > 0;

/** How late an idle timer may fire before the process counts as having been paused. */
const LATE_TIMER_MS = 1_000;

const REFUSALS = new Set(['context_length', 'content_filter', 'prefill_refused', 'bad_request', 'credentials', 'not_found']);

/**
 * One call to one target. Text goes to `onText` as it arrives, tool-call pieces to `onToolCall`.
 * A call whose tool-call arguments outgrow their limit is ended as a `bad_request`, which ends
 * the reply: another target would likely write them again. A silent provider (no first token
 * within `firstTokenMs`) or a stalled one (no event within `idleMs`) is given up; a stream that
 * ends with neither a finish nor its usage was cut short.
 */
export async function runAttempt(
  target: RouteTarget,
  request: ChatRequest,
  limits: AttemptLimits,
  stopSignal: AbortSignal,
  onText: (delta: string) => void,
  onToolCall: (delta: ToolCallDelta) => void,
): Promise<AttemptResult> {
  const startedAt = new Date();
  const started = performance.now();
  const controller = new AbortController();
  const onStop = () => controller.abort('stopped');
  stopSignal.addEventListener('abort', onStop);
  let idleTimer: NodeJS.Timeout | undefined;
  /** When the upstream was last heard from (performance.now()); the idle wait runs from there. */
  let quietSince = started;
  let text = '';
  let toolCallText = '';
  let toolArgumentsBytes = 0;
  const output = () => text.length > 0 || toolCallText.length > 0;
  let firstTokenMs: number | undefined;
  let ended = false;
  /** Whether the timer was armed since output began (the wait is then the idle one, which may be shorter). */
  let armedForIdle = false;
  /** How long until the upstream has been silent too long: the first token's wait runs from the start, later ones from the last event. */
  const untilTimeout = () => {
    const limitAt = output() ? quietSince + limits.idleMs : started + limits.firstTokenMs;
    return Math.min(limitAt - performance.now(), limits.deadline - Date.now());
  };
  // One timer per call, not one per event: an event only moves `quietSince`, and a timer that
  // finds the upstream was heard from since it was armed is armed again for what is left.
  const armIdleTimer = () => {
    const wait = Math.max(0, untilTimeout());
    const armedAt = Date.now();
    idleTimer = setTimeout(() => {
      if (ended) return;
      // A timer that fires late means this process was paused or starved, and the upstream's
      // data may be waiting unread in the socket: timers run before I/O. Let the I/O phase run
      // first, and time out only if nothing came, or (late) nothing came over a fresh wait.
      const late = Date.now() - armedAt > wait + LATE_TIMER_MS;
      if (!late && untilTimeout() > 0) return armIdleTimer();
      const heardAt = quietSince;
      setImmediate(() => {
        if (ended) return;
        if (quietSince !== heardAt) return armIdleTimer();
        if (!late) return controller.abort('timeout');
        quietSince = performance.now();
        armIdleTimer();
      });
    }, wait);
  };
  let usage: MeteredUsage | undefined;
  let finishReason: string | undefined;
  let sent = false;
  const result = (outcome: AttemptOutcome, failure?: ProviderFailure): AttemptResult => ({
    outcome,
    ...(failure ? { failure } : {}),
    ...(usage ? { usage } : {}),
    ...(finishReason ? { finishReason } : {}),
    text,
    toolCallText,
    sent,
    stopped: controller.signal.reason === 'stopped',
    startedAt,
    ...(firstTokenMs === undefined ? {} : { firstTokenMs }),
    durationMs: Math.round(performance.now() - started),
  });
  const failed = (failure: ProviderFailure): AttemptResult =>
    result(failure.kind === 'timeout' ? 'TIMEOUT' : failure.kind === 'cut' ? 'CUT' : REFUSALS.has(failure.kind) ? 'REFUSED' : 'ERROR', failure);
  try {
    if (stopSignal.aborted) return result('OK');
    armIdleTimer();
    sent = true;
    const stream = target.provider.chat.stream(request, {
      signal: controller.signal,
      // The idle timer above is the timeout (it tells a paused process from a silent upstream);
      // the provider's own must not race it, so here it only bounds the whole reply.
      timeoutMs: Math.max(1, limits.deadline - Date.now()),
    });
    for await (const event of stream) {
      quietSince = performance.now();
      if (event.type === 'usage') usage = event.usage;
      else if (event.type === 'finish') finishReason = event.reason;
      else if (event.type === 'text' && event.delta && !controller.signal.aborted) {
        firstTokenMs ??= Math.round(performance.now() - started);
        text += event.delta;
        onText(event.delta);
      } else if (event.type === 'tool_call' && !controller.signal.aborted) {
        toolArgumentsBytes += Buffer.byteLength(event.argumentsDelta);
        if (toolArgumentsBytes > limits.maxToolArgumentsBytes) {
          controller.abort('tool_arguments');
          return failed(toolArgumentsTooLong(limits.maxToolArgumentsBytes));
        }
        firstTokenMs ??= Math.round(performance.now() - started);
        toolCallText += (event.name ?? '') + event.argumentsDelta;
        const { type: _type, ...delta } = event;
        onToolCall(delta);
      }
      if (!armedForIdle && output()) {
        armedForIdle = true;
        clearTimeout(idleTimer);
        armIdleTimer();
      }
    }
    // Aborting does not throw: the loop just ends, so the reason is checked here.
    if (controller.signal.reason === 'timeout') return failed(target.provider.chat.describeFailure(undefined, { reason: 'timeout' }));
    if (controller.signal.aborted) return result('OK');
    if (!finishReason && !usage) return failed({ kind: 'cut', message: 'The model provider ended its answer early' });
    return result('OK');
  } catch (error) {
    if (controller.signal.reason === 'stopped') return result('OK');
    const reason = controller.signal.reason === 'timeout' ? 'timeout' : undefined;
    return failed(target.provider.chat.describeFailure(error, { reason, started: output() }));
  } finally {
    ended = true;
    clearTimeout(idleTimer);
    stopSignal.removeEventListener('abort', onStop);
  }
}

function toolArgumentsTooLong(maxBytes: number): ProviderFailure {
  return {
    kind: 'bad_request',
    errorCode: 'tool_arguments_too_long',
    message: `The model wrote tool-call arguments longer than the limit of ${maxBytes} bytes`,
  };
}
