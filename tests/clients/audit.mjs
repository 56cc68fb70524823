// Usage: node audit.mjs <graphql url> <api key>
// Runs graphql-http's auditServer with the key attached to every request and
// exits non-zero if any MUST requirement fails. Prints one line per audit.
import { auditServer } from 'graphql-http';

const [url, key] = process.argv.slice(2);
if (!url || !key) {
  console.error('usage: node audit.mjs <graphql url> <api key>');
  process.exit(2);
}

const fetchWithKey = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${key}`);
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url, fetchFn: fetchWithKey });
let mustFailures = 0;
let counts = { ok: 0, warn: 0, error: 0 };
for (const result of results) {
  counts[result.status] += 1;
  const level = result.name.startsWith('MUST') ? 'MUST' : result.name.startsWith('SHOULD') ? 'SHOULD' : 'MAY';
  if (result.status === 'error') mustFailures += 1;
  if (result.status !== 'ok') {
    console.log(`${result.status.toUpperCase()} [${level}] ${result.name}: ${result.reason}`);
  }
}
console.log(`audit: ${counts.ok} ok, ${counts.warn} warnings, ${counts.error} errors`);
process.exit(mustFailures === 0 ? 0 : 1);
