// Usage: node sse-client.mjs <stream url> <viewer key> <since cursor> <alerts to await>
// With graphql-sse's own client (distinct connections mode): subscribes to
// driftAlerts from `since` and, when its connection is cut, lets the client
// reconnect by itself; the headers it reconnects with carry
// `Last-Event-ID`, the cursor of the last alert received, so the server
// resumes after it. Prints {alerts: [metricId…], reconnects} once it has
// the number of alerts asked for. Exits non-zero on anything unexpected.
import { createClient } from 'graphql-sse';

const [url, key, since, wanted] = process.argv.slice(2);
if (!url || !key || !since || !wanted) {
  console.error('usage: node sse-client.mjs <stream url> <viewer key> <since cursor> <alerts to await>');
  process.exit(2);
}

let last = null;
let reconnects = 0;
const client = createClient({
  url,
  headers: () => ({
    authorization: `Bearer ${key}`,
    ...(last ? { 'last-event-id': last } : {}),
  }),
  retryAttempts: 10,
  retry: () => new Promise((resolve) => setTimeout(resolve, 500)),
  on: {
    connected: (reconnected) => {
      if (reconnected) reconnects += 1;
    },
  },
});

const alerts = [];
const timer = setTimeout(() => {
  console.error(`timed out with ${JSON.stringify(alerts)}`);
  process.exit(1);
}, 25_000);

await new Promise((resolve, reject) => {
  const stop = client.subscribe(
    {
      query: 'subscription($since: String) { driftAlerts(since: $since) { cursor metricId } }',
      variables: { since },
    },
    {
      next: (result) => {
        if (result.errors) return reject(new Error(JSON.stringify(result.errors)));
        const alert = result.data.driftAlerts;
        last = alert.cursor;
        alerts.push(alert.metricId);
        if (alerts.length >= Number(wanted)) {
          stop();
          resolve();
        }
      },
      error: reject,
      complete: resolve,
    },
  );
});
clearTimeout(timer);
client.dispose();
console.log(JSON.stringify({ alerts, reconnects }));
process.exit(0);
