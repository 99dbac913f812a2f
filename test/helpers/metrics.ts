/** Scrapes /metrics next to a server's /graphql URL, as Prometheus would. */
export async function scrape(graphqlUrl: URL, token?: string): Promise<string> {
  const response = await fetch(new URL('/metrics', graphqlUrl), { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return response.text();
}

/** The sum of the samples named `name` whose labels include `labels`, in a Prometheus text scrape. */
export function sample(scraped: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of scraped.split('\n')) {
    const match = /^([\w:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const pairs = new Set((match[2] ?? '').split(',').filter(Boolean));
    if (Object.entries(labels).every(([key, value]) => pairs.has(`${key}="${value}"`))) sum += Number(match[3]);
  }
  return sum;
}
