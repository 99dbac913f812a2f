import { cpus } from 'node:os';
import { benchHttp, type HttpResult } from './http.js';
import { PACED_CHUNK_MS, PROMPTS, registerBenchUser, startSwitchboard, startUpstream } from './harness.js';
import { benchDirect, benchSwitchboard, ROUNDS } from './streaming.js';

/**
 * `npm run bench`: the cost Switchboard adds on top of plain HTTP and on top of talking to the
 * upstream directly. Prints markdown tables with ratios; bench/RESULTS.md keeps the findings.
 * BENCH_ONLY=http or BENCH_ONLY=streaming runs one part (e.g. to profile it with BENCH_PROFILE=1).
 */
const REPLY = Array.from({ length: 150 }, (_, i) => `token${i}`).join(' ');
const CHUNK_CHARS = 8;
const only = process.env.BENCH_ONLY;

const upstream = await startUpstream(REPLY, CHUNK_CHARS);
const server = await startSwitchboard(upstream.baseUrl);
try {
  const user = await registerBenchUser(server.url);
  const database = process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite (embedded)';
  const pubsub = process.env.REDIS_URL ? 'Redis' : 'in-process';
  console.log(`# Switchboard bench — ${new Date().toISOString()}`);
  console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model}; database ${database}; streams ${pubsub}\n`);
  if (only !== 'streaming') printHttp(await benchHttp(server.url, user));
  if (only !== 'http') await runStreaming(server.url, user.accessToken);
} finally {
  await server.stop();
  await upstream.stop();
}

function printHttp(results: HttpResult[]) {
  const baseline = results[0]!.requestsPerSecond;
  console.log('| HTTP scenario | req/s | p50 ms | p99 ms | throughput vs /health |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(`| ${r.name} | ${r.requestsPerSecond.toFixed(0)} | ${r.p50Ms} | ${r.p99Ms} | ${(r.requestsPerSecond / baseline).toFixed(3)} |`);
  }
}

async function runStreaming(url: URL, token: string) {
  const chunks = Math.ceil(REPLY.length / CHUNK_CHARS);
  const results = [];
  for (const prompt of [PROMPTS.unpaced, PROMPTS.paced]) {
    results.push(await benchDirect(upstream.baseUrl, prompt, REPLY), await benchSwitchboard(url, token, prompt, REPLY));
  }
  console.log(
    `\nStreaming: ${results[0]!.generations} generations per row, ${results[0]!.generations / ROUNDS} at a time, ` +
      `each ${chunks} upstream chunks, unpaced or paced at ${PACED_CHUNK_MS} ms per chunk.\n`,
  );
  console.log('| streaming path | first token p50 / p99 ms | complete p50 / p99 ms | wall s | upstream chunks/s |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of results) {
    const chunksPerSecond = (r.generations * chunks) / (r.wallMs / 1000);
    console.log(
      `| ${r.name} | ${r.firstTokenP50Ms.toFixed(1)} / ${r.firstTokenP99Ms.toFixed(1)} | ${r.completeP50Ms.toFixed(1)} / ${r.completeP99Ms.toFixed(1)} | ${(r.wallMs / 1000).toFixed(2)} | ${chunksPerSecond.toFixed(0)} |`,
    );
  }
  for (let i = 0; i < results.length; i += 2) {
    const [direct, through] = [results[i]!, results[i + 1]!];
    console.log(
      `\n${through.name} / direct: first token p50 ×${(through.firstTokenP50Ms / direct.firstTokenP50Ms).toFixed(2)} ` +
        `(+${(through.firstTokenP50Ms - direct.firstTokenP50Ms).toFixed(0)} ms), complete p50 ×${(through.completeP50Ms / direct.completeP50Ms).toFixed(2)} ` +
        `(+${(through.completeP50Ms - direct.completeP50Ms).toFixed(0)} ms), wall ×${(through.wallMs / direct.wallMs).toFixed(2)}`,
    );
  }
}
