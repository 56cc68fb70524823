// Usage: node playground-e2e.mjs <base url> <viewer key> <service key> <screenshot.png>
// (also writes <screenshot>-chart.png and <screenshot>-live.png)
// Drives Debian's Chromium (headless, through playwright-core) through the
// playground mlgate serves at <base url>/:
//   1. the page loads and says it is not signed in; a refused key gets a clear message;
//   2. with the demo viewer key it shows the tenant and role;
//   3. the saved "Model performance" query runs and its result shows in
//      GraphiQL's response and in the table view; a screenshot is taken;
//   4. the saved daily-volume query draws bars in the chart view;
//   5. a drift alert written (over HTTP, with the service key) during the
//      test appears in the live alert feed;
// and every request the page made went to <base url> itself.
// Prints one JSON summary line; exits non-zero on the first failure.
import { chromium } from 'playwright-core';

const [base, viewerKey, serviceKey, screenshot] = process.argv.slice(2);
if (!base || !viewerKey || !serviceKey || !screenshot) {
  console.error('usage: node playground-e2e.mjs <base url> <viewer key> <service key> <screenshot.png>');
  process.exit(2);
}
const origin = new URL(base);
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-quic',
    '--no-first-run',
  ],
});
const summary = { requests: 0, websockets: 0, foreign: [], consoleErrors: [], steps: [] };
const step = (name) => summary.steps.push(name);

function isLocal(url) {
  if (url.startsWith('data:') || url.startsWith('blob:')) return true;
  const u = new URL(url);
  return u.hostname === origin.hostname && u.port === origin.port;
}

try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.on('request', (request) => {
    summary.requests += 1;
    if (!isLocal(request.url())) summary.foreign.push(request.url());
  });
  page.on('websocket', (socket) => {
    summary.websockets += 1;
    if (!isLocal(socket.url())) summary.foreign.push(socket.url());
  });
  page.on('console', (message) => {
    if (message.type() === 'error') summary.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => summary.consoleErrors.push(String(error)));

  await page.goto(`${base}/`, { waitUntil: 'load' });
  const identity = page.getByTestId('identity');
  await identity.getByText('Not signed in').waitFor({ timeout: 15_000 });
  step('loaded, not signed in');

  const credentials = page.getByTestId('credentials');
  await credentials.fill('mlg_this_is_not_a_key');
  await page.getByTestId('sign-in').click();
  await identity.getByText(/Credentials refused: invalid API key \(401\)/).waitFor({ timeout: 15_000 });
  step('refused key: clear message');

  await credentials.fill(viewerKey);
  await page.getByTestId('sign-in').click();
  await identity.getByText('acme-cloud').waitFor({ timeout: 15_000 });
  const who = await identity.innerText();
  if (!/viewer/.test(who)) throw new Error(`identity shows ${who}`);
  step(`signed in: ${who}`);

  // The schema loads (the Docs panel needs it), then the saved query runs.
  await page.locator('[data-query="model-performance"]').click();
  const response = page.locator('.graphiql-response');
  await response.getByText('predictionCount').first().waitFor({ timeout: 20_000 });
  const rows = page.getByTestId('result-table').locator('tbody tr');
  await rows.first().waitFor({ timeout: 10_000 });
  const rowCount = await rows.count();
  if (rowCount < 3) throw new Error(`model performance table has ${rowCount} rows`);
  const firstRow = await rows.first().innerText();
  step(`model performance: ${rowCount} models in the table`);
  await page.waitForTimeout(300);
  await page.screenshot({ path: screenshot, fullPage: false });
  summary.screenshot = screenshot;
  summary.firstRow = firstRow.replace(/\s+/g, ' ').trim();

  await page.locator('[data-query="prediction-volume-by-day"]').click();
  await response.getByText('bucketStart').first().waitFor({ timeout: 20_000 });
  await page.locator('[data-view="chart"]').click();
  const chart = page.getByTestId('chart');
  await chart.waitFor({ timeout: 10_000 });
  // One bar per day of the 30; days before the demo data begins are empty.
  const heights = await chart
    .locator('rect.bar')
    .evaluateAll((bars) => bars.map((bar) => Number(bar.getAttribute('height'))));
  summary.chartBars = heights.length;
  summary.chartNonEmptyBars = heights.filter((h) => h > 0).length;
  if (heights.length < 30 || summary.chartNonEmptyBars < 3) {
    throw new Error(`chart shows ${heights.length} bars, ${summary.chartNonEmptyBars} non-empty`);
  }
  step(`chart: ${heights.length} daily bars, ${summary.chartNonEmptyBars} with predictions`);
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-chart.png') });

  await page.getByRole('button', { name: /live drift alerts/i }).first().click();
  await page.getByTestId('feed-status').getByText('Feed live').waitFor({ timeout: 15_000 });
  const metricId = `e2e-${Date.now()}`;
  const written = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${serviceKey}` },
    body: JSON.stringify({
      query: 'mutation($input: [DriftMetricInput!]!) { recordDriftMetrics(input: $input) { alertsTriggered } }',
      variables: {
        input: [{ metricId, modelId: 'ensemble-risk-03', driftType: 'DATA', driftScore: 0.42, psiScore: 0.42 }],
      },
    }),
  }).then((r) => r.json());
  if (written.errors) throw new Error(`writing the alert failed: ${JSON.stringify(written.errors)}`);
  await page.locator(`[data-metric="${metricId}"]`).waitFor({ timeout: 10_000 });
  const alert = await page.locator(`[data-metric="${metricId}"]`).innerText();
  summary.liveAlert = alert.replace(/\s+/g, ' ').trim();
  step('live alert shown');
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-live.png') });

  if (summary.foreign.length) throw new Error(`requests left ${origin.host}: ${summary.foreign.join(', ')}`);
  console.log(JSON.stringify({ ok: true, ...summary }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error?.message ?? error), ...summary }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
