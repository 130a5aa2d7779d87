// Runs graphql-http's GraphQL-over-HTTP server audit against casefile.
//
//   node audit.mjs <graphql url> <token>
//
// Every request carries `Authorization: Bearer <token>`. Prints each audit with its
// result and exits non-zero when any audit ends in `warn` or `error` (`notice` results
// are printed and counted but do not fail the run).
import { auditServer } from 'graphql-http';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node audit.mjs <graphql url> <token>');
  process.exit(2);
}

const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url, fetchFn });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const result of results) {
  counts[result.status] = (counts[result.status] ?? 0) + 1;
  let line = `${result.status.padEnd(6)} ${result.id} ${result.name}`;
  if (result.status !== 'ok') {
    const status = result.response?.status;
    line += `\n         reason: ${result.reason}${status ? ` (HTTP ${status})` : ''}`;
  }
  console.log(line);
}
console.log(`audit: ${counts.ok} ok, ${counts.warn} warn, ${counts.error} error (${counts.notice} notice, ${results.length} audits)`);
if (results.length === 0) {
  console.error('audit: no audit ran');
  process.exit(1);
}
process.exit(counts.warn > 0 || counts.error > 0 ? 1 : 0);
