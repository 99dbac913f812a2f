import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The performance goals, each with the figure this run measured: `npm run bench` prints them in
 * one table at the end. Each run saves its figures (BENCH_SAVE, default bench/profiles/goals.json);
 * BENCH_BASELINE names an earlier run's file, whose figures are printed beside as "before".
 */
export interface Goal {
  id: string;
  /** What is measured, as the table shows it. */
  label: string;
  /** The target, as the table shows it. */
  target: string;
  met: (value: number) => boolean;
  unit: string;
}

const at = (max: number) => (value: number) => value <= max;
const atLeast = (min: number) => (value: number) => value >= min;

export const GOALS: Goal[] = [
  { id: 'firstToken1', label: '1 stream: added first token p50', target: '≤ 5 ms', met: at(5), unit: 'ms' },
  { id: 'firstToken50', label: '50 streams: added first token p50', target: '≤ 20 ms', met: at(20), unit: 'ms' },
  { id: 'extraLag50', label: '50 streams: extra lag p99 (Switchboard − direct)', target: '≤ 5 ms', met: at(5), unit: 'ms' },
  { id: 'stalls50', label: '50 streams: stalls, Switchboard / direct', target: '≤ 1.2 ×', met: at(1.2), unit: '×' },
  { id: 'firstToken200', label: '200 streams: added first token p50', target: '≤ 50 ms', met: at(50), unit: 'ms' },
  { id: 'stalls200', label: '200 streams: stalls, Switchboard / direct', target: '≤ 1.5 ×', met: at(1.5), unit: '×' },
  { id: 'cpuPerChunk200', label: '200 streams: server CPU per relayed chunk', target: '≤ 40 µs', met: at(40), unit: 'µs' },
  { id: 'sendP50', label: 'sendMessage p50, one at a time', target: '≤ 3 ms', met: at(3), unit: 'ms' },
  { id: 'capacityDelivered', label: 'capacity: share of the tokens delivered (largest run)', target: '= 100 %', met: atLeast(100), unit: '%' },
  { id: 'capacityGaps', label: 'capacity: gaps within 2 × the interval (largest run, fastest pace)', target: '≥ 99 %', met: atLeast(99), unit: '%' },
  { id: 'capacityRss', label: 'capacity: RSS per stream (largest run, fastest pace)', target: '≤ 64 KB', met: at(64), unit: 'KB' },
  { id: 'meRatio', label: '{ me { id email } } / /health', target: '≥ 0.25', met: atLeast(0.25), unit: '' },
  { id: 'nested32Ratio', label: 'nested read, 32 in flight / hand-written', target: '≥ 0.40', met: atLeast(0.4), unit: '' },
];

export type GoalFigures = Partial<Record<string, number>>;

/** What this run measured, goal by goal; a part that did not run leaves its goals out. */
export const measured: GoalFigures = {};

export function record(id: string, value: number): void {
  if (!GOALS.some((goal) => goal.id === id)) throw new Error(`no goal ${id}`);
  if (Number.isFinite(value)) measured[id] = value;
}

function show(value: number | undefined, unit: string): string {
  if (value === undefined) return '—';
  const digits = unit === '' ? 3 : Math.abs(value) < 10 ? 1 : 0;
  return `${value.toFixed(digits)}${unit && unit !== '%' && unit !== '×' ? ` ${unit}` : unit}`;
}

/** The goals table (before, when a baseline is given; now; target; met), and this run's figures saved. */
export function goalsReport(): string {
  const savePath = process.env.BENCH_SAVE ?? 'bench/profiles/goals.json';
  mkdirSync(dirname(savePath), { recursive: true });
  writeFileSync(savePath, `${JSON.stringify({ at: new Date().toISOString(), figures: measured }, null, 2)}\n`);
  const baselinePath = process.env.BENCH_BASELINE;
  const before: GoalFigures =
    baselinePath && existsSync(baselinePath) ? (JSON.parse(readFileSync(baselinePath, 'utf8')) as { figures: GoalFigures }).figures : {};
  const rows = GOALS.filter((goal) => measured[goal.id] !== undefined || before[goal.id] !== undefined).map((goal) => {
    const now = measured[goal.id];
    const verdict = now === undefined ? '' : goal.met(now) ? '✓' : '✗';
    return `| ${goal.label} | ${show(before[goal.id], goal.unit)} | **${show(now, goal.unit)}** | ${goal.target} | ${verdict} |`;
  });
  return [
    '\n## Goals\n',
    `Before: ${baselinePath ? `\`${baselinePath}\`` : 'no baseline (BENCH_BASELINE=<an earlier run’s goals.json>)'}; now: this run, saved to \`${savePath}\`.\n`,
    '| goal | before | now | target | met |',
    '|---|---:|---:|---:|:-:|',
    ...rows,
    '',
  ].join('\n');
}
