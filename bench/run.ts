import { cpus } from 'node:os';
import { goalsReport, record } from './goals.js';
import { benchReads } from './reads.js';
import { benchWrites } from './writes.js';
import { benchCapacity } from './capacity.js';
import { cpuMsOf, PACED_CHUNK_MS, PACED_FIRST_TOKEN_MS, PROMPTS, registerBenchUser, startSwitchboard, startUpstream } from './harness.js';
import { benchDirect, benchSwitchboard, type Pace, type StreamingResult, type StreamingScenario } from './streaming.js';

/**
 * `npm run bench`: the cost Switchboard adds on top of plain HTTP and on top of talking to the
 * upstream directly. Prints markdown tables with ratios; bench/RESULTS.md keeps the findings.
 * BENCH_ONLY=reads, writes, capacity or streaming runs one part (e.g. to profile it with BENCH_PROFILE=1).
 */
// 64 chunks of 8 characters.
const REPLY = Array.from({ length: 128 }, (_, i) => `t${String(i).padStart(3, '0')}`).join('');
const CHUNK_CHARS = 8;
const CHUNKS = Math.ceil(REPLY.length / CHUNK_CHARS);
const PACED: Pace = { name: 'paced', prompt: PROMPTS.paced, chunkMs: PACED_CHUNK_MS };
const UNPACED: Pace = { name: 'unpaced', prompt: PROMPTS.unpaced, chunkMs: 0 };
// BENCH_STREAMS: the concurrency levels of the paced runs; each runs three rounds (at least 10 replies).
const STREAM_LEVELS = (process.env.BENCH_STREAMS ?? '1,50,200').split(',').map(Number);
const SCENARIOS: StreamingScenario[] = [
  ...STREAM_LEVELS.map((concurrency) => ({ pace: PACED, concurrency, generations: Math.max(10, concurrency * 3) })),
  { pace: UNPACED, concurrency: 20, generations: 100 },
];
const only = process.env.BENCH_ONLY;

const database = process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite (embedded)';
const pubsub = process.env.REDIS_URL ? 'Redis' : 'in-process';
console.log(`# Switchboard bench — ${new Date().toISOString()}`);
console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model}; database ${database}; streams ${pubsub}\n`);
// Reads and writes start (and seed) servers of their own; they run first, each alone on the machine.
if (!only || only === 'reads') console.log(await benchReads());
if (!only || only === 'writes') console.log(await benchWrites());
if (!only || only === 'capacity') console.log(await benchCapacity());
if (only === 'reads' || only === 'writes' || only === 'capacity') {
  console.log(goalsReport());
  process.exit(0);
}

const upstream = await startUpstream(REPLY, CHUNK_CHARS);
const server = await startSwitchboard(upstream.baseUrl, {
  MAX_CONCURRENT_GENERATIONS: '10000',
  WS_MAX_CONNECTIONS_PER_IP: '10000',
  WS_MAX_CONNECTIONS_PER_USER: '10000',
});
try {
  await runStreaming(server.url, await streamingUsers(server.url));
} finally {
  await server.stop();
  await upstream.stop();
}
console.log(goalsReport());

/** BENCH_STREAM_USERS users (default 50), whose replies the lanes share in turn. */
async function streamingUsers(url: URL): Promise<string[]> {
  const count = Number(process.env.BENCH_STREAM_USERS ?? 50);
  const users = await Promise.all(Array.from({ length: count }, () => registerBenchUser(url)));
  return users.map((u) => u.accessToken);
}

async function runStreaming(url: URL, tokens: string[]) {
  const rows: [StreamingResult, StreamingResult][] = [];
  const serverCpuMs: number[] = [];
  for (const scenario of SCENARIOS) {
    const direct = await benchDirect(upstream.baseUrl, scenario, REPLY, CHUNK_CHARS);
    const cpuBefore = cpuMsOf(server.pid);
    const through = await benchSwitchboard(url, tokens, scenario, REPLY, CHUNK_CHARS);
    serverCpuMs.push(cpuMsOf(server.pid) - cpuBefore);
    rows.push([direct, through]);
  }
  recordStreamingGoals(rows, serverCpuMs);
  console.log(
    `\n## Streaming overhead\n\nStreaming: each reply is ${CHUNKS} chunks; paced: first chunk after ${PACED_FIRST_TOKEN_MS} ms, then one every ` +
      `${PACED_CHUNK_MS} ms. Direct: the openai SDK reading aimock's SSE; Switchboard: sendMessage over HTTP, then ` +
      `messageStream over an open graphql-ws socket. Lag: how much later than its nominal time each later delta ` +
      `arrives, measured from the first delta. Stall: a gap over ${2 * PACED_CHUNK_MS} ms between deltas.\n`,
  );
  console.log(
    '| pace | streams at once | replies | first token p50 / p99 ms (direct) | first token p50 / p99 ms (Switchboard) | added first token p50 ms | lag p99 ms direct / Switchboard | stalls direct / Switchboard | sendMessage p50 ms | chunks/s Switchboard | server CPU ms per reply |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [index, [direct, through]] of rows.entries()) {
    const { pace, concurrency, generations } = through.scenario;
    console.log(
      `| ${pace.name} | ${concurrency} | ${generations} | ${ms(direct.firstTokenP50Ms)} / ${ms(direct.firstTokenP99Ms)} | ` +
        `${ms(through.firstTokenP50Ms)} / ${ms(through.firstTokenP99Ms)} | **${ms(through.firstTokenP50Ms - direct.firstTokenP50Ms)}** | ` +
        `${ms(direct.lagP99Ms)} / **${ms(through.lagP99Ms)}** | ${direct.stalls} / **${through.stalls}** | ${ms(through.sendP50Ms)} | ` +
        `${((generations * CHUNKS) / (through.wallMs / 1000)).toFixed(0)} | ${ms(serverCpuMs[index]! / generations)} |`,
    );
  }
}

/** The latency and CPU goals, from the paced rows at 1, 50 and 200 streams (those that ran). */
function recordStreamingGoals(rows: [StreamingResult, StreamingResult][], serverCpuMs: number[]): void {
  rows.forEach(([direct, through], index) => {
    const { pace, concurrency, generations } = through.scenario;
    if (pace.name !== 'paced') return;
    const addedFirstToken = through.firstTokenP50Ms - direct.firstTokenP50Ms;
    // Stalls against the direct reads' (at least one, so that zero against zero reads as 0, not NaN).
    const stallRatio = through.stalls / Math.max(1, direct.stalls);
    if (concurrency === 1) {
      record('firstToken1', addedFirstToken);
      record('sendP50', through.sendP50Ms);
    }
    if (concurrency === 50) {
      record('firstToken50', addedFirstToken);
      record('extraLag50', through.lagP99Ms - direct.lagP99Ms);
      record('stalls50', stallRatio);
    }
    if (concurrency === 200) {
      record('firstToken200', addedFirstToken);
      record('stalls200', stallRatio);
      record('cpuPerChunk200', (1000 * serverCpuMs[index]!) / (generations * CHUNKS));
    }
  });
}

function ms(value: number): string {
  return value.toFixed(1);
}
