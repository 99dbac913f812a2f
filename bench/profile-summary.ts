import { readFileSync } from 'node:fs';

/**
 * Summarizes a V8 CPU profile (`--cpu-prof`, BENCH_PROFILE=1): self time per package or source
 * file, and the heaviest functions. `npx tsx bench/profile-summary.ts bench/profiles/<file> [top]`.
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg, windowArg] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [top] [from-to seconds, e.g. 20-25]');
const top = Number(topArg ?? 30);
// Only the samples taken between these offsets from the start (the phase being studied).
const [fromSeconds, toSeconds] = (windowArg ?? '0-1e9').split('-').map(Number) as [number, number];
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfMicros = new Map<number, number>();
let elapsedMicros = 0;
profile.samples.forEach((id, i) => {
  elapsedMicros += profile.timeDeltas[i] ?? 0;
  if (elapsedMicros < fromSeconds * 1e6 || elapsedMicros > toSeconds * 1e6) return;
  selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const total = [...selfMicros.values()].reduce((a, b) => a + b, 0);

function where(url: string): string {
  if (!url) return '(native)';
  const modules = url.split('node_modules/');
  if (modules.length > 1) {
    const parts = modules.at(-1)!.split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (url.startsWith('node:')) return url;
  return url.replace(/^.*\/(src|bench|test)\//, '$1/');
}

function tally(key: (node: ProfileNode) => string): [string, number][] {
  const sums = new Map<string, number>();
  for (const [id, micros] of selfMicros) {
    const k = key(byId.get(id)!);
    sums.set(k, (sums.get(k) ?? 0) + micros);
  }
  return [...sums].sort((a, b) => b[1] - a[1]).slice(0, top);
}

const percent = (micros: number) => `${((micros / total) * 100).toFixed(1)}%`;
console.log(`total sampled: ${(total / 1e6).toFixed(2)} s\n\nself time by package or file:`);
for (const [k, v] of tally((n) => where(n.callFrame.url))) console.log(`  ${percent(v).padStart(6)}  ${k}`);
console.log('\nheaviest functions (self time):');
for (const [k, v] of tally((n) => `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`)) {
  console.log(`  ${percent(v).padStart(6)}  ${k}`);
}

// Inclusive time of our own functions: where the work starts, whatever library does it.
const parentOf = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
const inclusive = new Map<string, number>();
for (const [id, micros] of selfMicros) {
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
    const frame = byId.get(at)!.callFrame;
    if (!frame.url.includes('/src/')) continue;
    const key = `${frame.functionName || '(anonymous)'} ${where(frame.url)}:${frame.lineNumber + 1}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + micros);
  }
}
console.log('\nour functions, inclusive time:');
for (const [k, v] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${percent(v).padStart(6)}  ${k}`);

// Busy time (idle left out) by the stage of a relayed reply that started the work: the outermost
// of these on each sample's stack. Work resumed from a promise or a socket callback has none of
// its starter on the stack, and counts under the first stage its own frames name, or under none.
const STAGES: [string, RegExp][] = [
  ['sendMessage HTTP, per reply', /\/src\/http\/server\.ts|node:_http_server|node:_http_common|@whatwg-node\/server/],
  ['database, per reply (Prisma, pg)', /@prisma\/|\/pg\/|\/pg-pool\/|\/pg-protocol\//],
  ['upstream read, per chunk (the HTTP client, SSE, the attempt)', /undici|node:_http_client|\/src\/providers\/|\/src\/generation\/attempt|webstreams|eventsource-parser/],
  ['publishing, per chunk (publisher, hub, local record, replay writer, ioredis)', /delta-publisher|stream-hub|local-stream|replay-writer|stream-transports|\/ioredis\/|standard-as-callback/],
  ['delivery, per chunk (graphql-ws, the executor, ws, the follower)', /\/graphql-ws\/|@graphql-tools\/executor|\/ws\/lib\/|@envelop\/|stream-follower|request-context|stream-event-shortcut|frames-per-tick|\/src\/http\/graphql-ws/],
];
const byStage = new Map<string, number>();
let busy = 0;
for (const [id, micros] of selfMicros) {
  const name = byId.get(id)!.callFrame.functionName;
  if (name === '(idle)') continue;
  busy += micros;
  const urls: string[] = [];
  for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) urls.push(byId.get(at)!.callFrame.url);
  const stage =
    name === '(garbage collector)'
      ? 'garbage collection'
      : (urls.reverse().flatMap((url) => STAGES.filter(([, pattern]) => pattern.test(url)).map(([label]) => label))[0] ??
        'no frame to tell (I/O callbacks, microtask runs, timers)');
  byStage.set(stage, (byStage.get(stage) ?? 0) + micros);
}
console.log('\nbusy share of each second (to find a phase for the window argument):');
const perSecond: number[] = [];
let clock = 0;
profile.samples.forEach((id, i) => {
  clock += profile.timeDeltas[i] ?? 0;
  if (byId.get(id)!.callFrame.functionName === '(idle)') return;
  const second = Math.floor(clock / 1e6);
  perSecond[second] = (perSecond[second] ?? 0) + (profile.timeDeltas[i] ?? 0) / 1e4;
});
console.log(`  ${Array.from(perSecond, (v, second) => `${second}:${Math.round(v ?? 0)}%`).join(' ')}`);
console.log('\nbusy time by stage (idle left out):');
for (const [k, v] of [...byStage].sort((a, b) => b[1] - a[1])) console.log(`  ${((v / busy) * 100).toFixed(1).padStart(5)}%  ${k}`);
