// Usage: node ws-client.mjs <http base url> <viewer key> <service key> <model id>
// With graphql-ws's own client: subscribes to driftAlerts from the tenant's
// current cursor, records a drift metric over HTTP, and prints the alert it
// receives as one JSON line; then connects with a refused key and prints the
// close code the client reports. Exits non-zero on anything unexpected.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [base, viewer, service, modelId] = process.argv.slice(2);
if (!base || !viewer || !service || !modelId) {
  console.error('usage: node ws-client.mjs <http base url> <viewer key> <service key> <model id>');
  process.exit(2);
}
const wsUrl = `${base.replace(/^http/, 'ws')}/graphql/ws`;

async function graphql(key, query, variables) {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 10_000);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const { driftAlertCursor } = await graphql(viewer, '{ driftAlertCursor }');
const client = createClient({
  url: wsUrl,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${viewer}` },
  retryAttempts: 0,
});
const alerts = client.iterate({
  query: 'subscription($since: String) { driftAlerts(since: $since) { sequence metricId level model { modelId } } }',
  variables: { since: driftAlertCursor },
});
const first = alerts.next();
await graphql(
  service,
  'mutation($input: [DriftMetricInput!]!) { recordDriftMetrics(input: $input) { alertsTriggered } }',
  { input: [{ metricId: 'graphql-ws-1', modelId, driftType: 'DATA', driftScore: 0.4, psiScore: 0.4 }] },
);
const { value } = await withTimeout(first, 'the alert');
if (value.errors) throw new Error(JSON.stringify(value.errors));
console.log(JSON.stringify({ alert: value.data.driftAlerts }));
await alerts.return();
await client.dispose();

const refused = createClient({
  url: wsUrl,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: 'Bearer mlg_not_a_key' },
  retryAttempts: 0,
});
try {
  const attempt = refused.iterate({ query: '{ me { tenant } }' });
  await withTimeout(attempt.next(), 'the refusal');
  throw new Error('a refused key was served');
} catch (error) {
  if (typeof error?.code !== 'number') throw error;
  console.log(JSON.stringify({ refusedWith: error.code, reason: error.reason }));
}
await refused.dispose();
