// Usage: node playground-e2e.mjs <base url> <viewer key> <service key> <screenshot folder>
// Drives Debian's Chromium (headless, through playwright-core) through the
// playground mlgate serves at <base url>/, at 1366×768 and at 1920×1080:
//   - sign-in (a refused key gets a clear message), the editor's room;
//   - every saved query: it answers without errors, the table's columns follow
//     the query's field order, and the chart is of the kind its shape calls
//     for (SHAP importance: bars; latency: a percentile band; calibration: a
//     reliability diagram; daily volume per model: lines with a legend naming
//     the models; drift analysis: two distributions; model performance: the
//     risk mix);
//   - a list cell expands in place; a sorted table with a hidden column is
//     exported as CSV holding exactly the rows and columns shown;
//   - a share link opened in a fresh browser context (no credentials) shows
//     the same query, and after sign-in the same view and rows; a broken
//     query's error is shown as code, reason and location;
//   - a drift alert written during the test reaches the live feed and the
//     saved subscription's table;
//   - dark mode reaches the results pane; GraphiQL's "Persist headers" is gone;
// and every request the page made went to <base url> itself. Screenshots go
// to the folder. Prints one JSON summary line; exits non-zero on a failure.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'graphql';
import { chromium } from 'playwright-core';

const [base, viewerKey, serviceKey, shots] = process.argv.slice(2);
if (!base || !viewerKey || !serviceKey || !shots) {
  console.error('usage: node playground-e2e.mjs <base url> <viewer key> <service key> <screenshot folder>');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const origin = new URL(base);
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SIZES = [
  { width: 1366, height: 768 },
  { width: 1920, height: 1080 },
];
/** The chart kind each saved query's answer must be drawn as. */
const CHARTS = {
  'shap-importance': 'bar',
  'latency-percentiles': 'band',
  calibration: 'reliability',
  'daily-volume-by-model': 'timeseries',
  'drift-analysis': 'distribution',
  'model-performance': 'risk',
  'drift-summary': 'timeseries',
};

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
});
const summary = { requests: 0, websockets: 0, foreign: [], consoleErrors: [], steps: [], sizes: {}, queries: {}, screenshots: [] };
const step = (name) => summary.steps.push(name);
const fail = (message) => {
  throw new Error(message);
};
const isLocal = (url) => {
  if (url.startsWith('data:') || url.startsWith('blob:')) return true;
  const u = new URL(url);
  return u.hostname === origin.hostname && u.port === origin.port;
};

async function newPage(size, options = {}) {
  const context = await browser.newContext({ viewport: size, acceptDownloads: true, ...options });
  const page = await context.newPage();
  page.on('request', (request) => {
    summary.requests += 1;
    if (!isLocal(request.url())) summary.foreign.push(request.url());
  });
  page.on('websocket', (socket) => {
    summary.websockets += 1;
    if (!isLocal(socket.url())) summary.foreign.push(socket.url());
  });
  page.on('pageerror', (error) => summary.consoleErrors.push(String(error)));
  return { context, page };
}

async function screenshot(page, name) {
  const path = join(shots, `${name}.png`);
  await page.waitForTimeout(250);
  await page.screenshot({ path });
  summary.screenshots.push(path);
}

async function signIn(page, key) {
  await page.getByTestId('credentials').fill(key);
  await page.getByTestId('sign-in').click();
  await page.getByTestId('identity').getByText('acme-cloud').waitFor({ timeout: 15_000 });
}

/** The query's fields as dotted paths, in document order (parents before children). */
function fieldOrder(query) {
  const order = [];
  const visit = (selectionSet, prefix) => {
    for (const selection of selectionSet?.selections ?? []) {
      if (selection.kind === 'Field') {
        const path = `${prefix}${(selection.alias ?? selection.name).value}`;
        order.push(path);
        visit(selection.selectionSet, `${path}.`);
      } else if (selection.kind === 'InlineFragment') visit(selection.selectionSet, prefix);
    }
  };
  const operation = parse(query).definitions.find((d) => d.kind === 'OperationDefinition');
  visit(operation.selectionSet, '');
  return order;
}

/** Waits until the results pane shows `operation`'s answer (not running). */
async function answerOf(page, operation, { live = false } = {}) {
  const status = page.locator(`[data-testid="result-status"][data-operation="${operation}"]`);
  await status.waitFor({ timeout: 30_000 });
  if (live) await status.locator('.live-dot').waitFor({ timeout: 15_000 });
  return status;
}

async function tableColumns(page) {
  const table = page.getByTestId('result-table');
  await table.waitFor({ timeout: 10_000 });
  return {
    path: await table.getAttribute('data-path'),
    rows: Number(await table.getAttribute('data-rows')),
    columns: await table.locator('thead th').evaluateAll((ths) => ths.map((th) => th.dataset.column)),
  };
}

const rowTexts = (page, n) =>
  page.getByTestId('result-table').locator('tr.data-row').evaluateAll(
    (rows, count) => rows.slice(0, count).map((r) => r.innerText.replace(/\s+/g, ' ').trim()),
    n,
  );

/** RFC 4180: quoted fields may hold commas, quotes ("") and line breaks. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), (i += 1);
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      (row = []), (field = ''), (i += 1);
    } else field += c;
  }
  if (field || row.length) row.push(field), rows.push(row);
  return rows;
}

const queryFiles = (name) => readFileSync(new URL(`../../playground/queries/${name}`, import.meta.url), 'utf8');

try {
  for (const size of SIZES) {
    const tag = `${size.width}`;
    const { context, page } = await newPage(size);
    await page.goto(`${base}/`, { waitUntil: 'load' });
    const identity = page.getByTestId('identity');
    await identity.getByText('Not signed in').waitFor({ timeout: 15_000 });
    if (size === SIZES[0]) {
      await page.getByTestId('credentials').fill('mlg_this_is_not_a_key');
      await page.getByTestId('sign-in').click();
      await identity.getByText(/Credentials refused: invalid API key \(401\)/).waitFor({ timeout: 15_000 });
      step('refused key: clear message');
    }
    await signIn(page, viewerKey);
    step(`${tag}: signed in`);

    // Room to write: the query editor is most of the width, the results pane all of it.
    await page.locator('.graphiql-query-editor').waitFor({ timeout: 15_000 });
    const editorBox = await page.locator('.graphiql-query-editor').boundingBox();
    const resultsBox = await page.getByTestId('result-views').boundingBox();
    summary.sizes[tag] = { editorWidth: Math.round(editorBox.width), editorHeight: Math.round(editorBox.height), resultsWidth: Math.round(resultsBox.width), resultsHeight: Math.round(resultsBox.height) };
    if (editorBox.width < size.width * 0.55) fail(`${tag}: the query editor is ${editorBox.width}px wide`);
    if (resultsBox.width < size.width * 0.95) fail(`${tag}: the results pane is ${resultsBox.width}px wide`);

    const saved = await page.locator('[data-query]').evaluateAll((buttons) => buttons.map((b) => b.dataset.query));
    if (saved.length < 10) fail(`${saved.length} saved queries`);
    for (const id of saved) {
      const file = (await import('node:fs')).readdirSync(new URL('../../playground/queries/', import.meta.url)).find((f) => f.replace(/^\d+-/, '').replace(/\.graphql$/, '') === id);
      const text = queryFiles(file);
      const operationName = parse(text).definitions[0].name.value;
      const subscription = /^\s*subscription\b/m.test(text);
      if (subscription) continue; // below, with an alert written while it runs
      await page.locator(`[data-view="table"]`).click();
      await page.locator(`[data-query="${id}"]`).click();
      await answerOf(page, operationName);
      if (await page.getByTestId('errors').count()) fail(`${id}: ${await page.getByTestId('errors').innerText()}`);
      const { path, rows, columns } = await tableColumns(page);
      const order = fieldOrder(text);
      const listPath = path.replace(/\.\d+(?=\.|$)/g, '');
      const positions = columns.map((c) => order.indexOf(listPath ? `${listPath}.${c}` : c));
      if (positions.some((p) => p < 0)) fail(`${id}: columns ${columns} not all in the query (${order})`);
      if (positions.some((p, i) => i > 0 && p <= positions[i - 1])) fail(`${id}: columns out of query order: ${columns}`);
      const record = { rows, path, columns: columns.length };
      // Only the rows in view (and a margin) are in the page.
      record.rendered = await page.getByTestId('result-table').locator('tr.data-row').count();
      if (rows > 80 && record.rendered >= rows) fail(`${id}: all ${rows} rows rendered at once`);
      if (size === SIZES[0] && ['high-risk-predictions', 'model-performance'].includes(id)) await screenshot(page, `${tag}-${id}-table`);
      await page.locator(`[data-view="chart"]`).click();
      const chart = page.getByTestId('chart');
      if (CHARTS[id]) {
        await chart.locator('svg').first().waitFor({ timeout: 10_000 });
        record.chart = await chart.getAttribute('data-kind');
        if (record.chart !== CHARTS[id]) fail(`${id}: a ${record.chart} chart, expected ${CHARTS[id]}`);
        // Shapes of Plot's marks, not of its axes or the legend's swatches.
        const MARKS = ['bar', 'line', 'dot', 'area', 'rect'].map((m) => `svg g[aria-label="${m}"] > *`).join(', ');
        record.marks = await chart.locator(MARKS).count();
        if (record.marks < 3) fail(`${id}: the chart draws ${record.marks} marks`);
        record.legend = (await chart.locator('[class*="-swatches"]').allInnerTexts()).join(' ').replace(/\s+/g, ' ').trim();
        if (id === 'drift-summary') {
          const types = new Set(record.legend.match(/\b(DATA|CONCEPT|PREDICTION|FEATURE)\b/g) ?? []);
          if (types.size < 2) fail(`${id}: the legend names ${[...types]} (${record.legend})`);
        }
        if (id === 'daily-volume-by-model') {
          const models = new Set(record.legend.match(/[a-z]+-risk-\d+/g) ?? []);
          if (models.size < 2) fail(`${id}: the legend names ${[...models]} (${record.legend})`);
        }
        await screenshot(page, `${tag}-${id}-chart`);
      } else {
        record.chart = (await chart.count()) ? await chart.getAttribute('data-kind') : 'none';
      }
      summary.queries[id] = record;
    }
    step(`${tag}: ${Object.keys(summary.queries).length} saved queries in query order, charts of their kind`);

    if (size === SIZES[0]) {
      // Expand, sort, hide, export.
      await page.locator('[data-view="table"]').click();
      await page.locator('[data-query="high-risk-predictions"]').click();
      await answerOf(page, 'HighRiskPredictions');
      await page.locator('[data-expand="shapValues"]').first().click();
      const detail = page.locator('tr.detail-row table.nested');
      await detail.waitFor({ timeout: 5_000 });
      const nestedHeads = await detail.locator('th').allInnerTexts();
      if (!nestedHeads.includes('feature')) fail(`the SHAP detail row shows ${nestedHeads}`);
      await page.locator('[data-expand="shapValues"]').first().click();
      await page.locator('th[data-column="confidenceScore"] button').click();
      await page.locator('th[data-column="confidenceScore"] button').click(); // descending
      await page.getByTestId('column-chooser').locator('summary').click();
      await page.getByTestId('column-chooser').getByLabel('resourceId').uncheck();
      await page.getByTestId('column-chooser').locator('summary').click();
      const shown = await tableColumns(page);
      if (shown.columns.includes('resourceId')) fail('a hidden column is still shown');
      const firstRows = await rowTexts(page, 10);
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-csv').click()]);
      const csv = parseCsv(readFileSync(await download.path(), 'utf8'));
      const header = csv[0];
      if (header.join() !== shown.columns.join()) fail(`CSV header ${header} ≠ table ${shown.columns}`);
      if (csv.length - 1 !== shown.rows) fail(`CSV has ${csv.length - 1} rows, the table ${shown.rows}`);
      const confidence = header.indexOf('confidenceScore');
      const values = csv.slice(1).map((row) => Number(row[confidence]));
      if (values.some((v, i) => i > 0 && v > values[i - 1])) fail('the CSV is not in the order shown (confidenceScore descending)');
      const shownIds = firstRows.map((row) => row.split(' ')[0]);
      const csvIds = csv.slice(1, 1 + shownIds.length).map((row) => row[0]);
      if (csvIds.join() !== shownIds.join()) fail(`CSV rows ${csvIds} are not the table's ${shownIds}`);
      summary.csv = { file: download.suggestedFilename(), rows: csv.length - 1, tableRows: shown.rows, columns: header.length };
      step(`CSV: ${csv.length - 1} rows × ${header.length} columns as shown`);
      await screenshot(page, `${tag}-sorted-expanded`);

      // The share link reopens the same query, variables and view in a fresh context.
      await page.getByTestId('share').click();
      const link = await page.getByTestId('share-url').inputValue();
      if (link.includes(viewerKey) || /mlg_/.test(decodeURIComponent(link))) fail('the share link holds a credential');
      const fresh = await newPage(size);
      await fresh.page.goto(link, { waitUntil: 'load' });
      await fresh.page.getByTestId('identity').getByText('Not signed in').waitFor({ timeout: 15_000 });
      await fresh.page.locator('.graphiql-query-editor').getByText('HighRiskPredictions').first().waitFor({ timeout: 15_000 });
      await signIn(fresh.page, viewerKey);
      await answerOf(fresh.page, 'HighRiskPredictions');
      const freshColumns = await tableColumns(fresh.page);
      if (freshColumns.columns.join() !== shown.columns.join()) fail(`shared view columns ${freshColumns.columns}`);
      const freshRows = await rowTexts(fresh.page, 10);
      if (freshRows.join('\n') !== firstRows.join('\n')) fail(`shared rows differ:\n${freshRows.join('\n')}\n≠\n${firstRows.join('\n')}`);
      await fresh.page.getByTestId('share').click();
      const again = await fresh.page.getByTestId('share-url').inputValue();
      if (again !== link) fail('the shared page shares a different state');
      await screenshot(fresh.page, `${tag}-shared-link`);
      await fresh.context.close();
      summary.shareLinkLength = link.length;
      step('share link: same query, view and rows in a fresh context');

      // A broken query, through a link: its error as code, reason and place.
      const broken = link.replace(/#share=.*/, `#share=${Buffer.from(JSON.stringify({ v: 1, query: '{ models { nodes { modelId }', variables: '', operationName: null, view: {} })).toString('base64url')}`);
      const error = await newPage(size);
      await error.page.goto(broken, { waitUntil: 'load' });
      await signIn(error.page, viewerKey);
      const errors = error.page.getByTestId('errors');
      await errors.waitFor({ timeout: 15_000 });
      summary.parseError = (await errors.innerText()).replace(/\s+/g, ' ').trim();
      if (!/GRAPHQL_PARSE_FAILED/.test(summary.parseError) || !/line 1, column \d+/.test(summary.parseError) || /\^/.test(summary.parseError)) {
        fail(`parse error shown as: ${summary.parseError}`);
      }
      await error.context.close();
      step(`parse error: ${summary.parseError}`);

      // A link to a mutation opens it, and runs nothing until asked.
      const mutation = link.replace(/#share=.*/, `#share=${Buffer.from(JSON.stringify({ v: 1, query: 'mutation { revokeApiKey(keyId: "nope") }', variables: '', operationName: null, view: {} })).toString('base64url')}`);
      const writer = await newPage(size);
      let posted = 0;
      writer.page.on('request', (r) => r.method() === 'POST' && /revokeApiKey/.test(r.postData() ?? '') && (posted += 1));
      await writer.page.goto(mutation, { waitUntil: 'load' });
      await signIn(writer.page, viewerKey);
      await writer.page.locator('.graphiql-query-editor').getByText('revokeApiKey').first().waitFor({ timeout: 15_000 });
      await writer.page.waitForTimeout(1000);
      if (posted) fail('a shared mutation ran on opening the link');
      await writer.context.close();
      step('a shared mutation is only opened');

      // GraphiQL's settings keep only what applies to mlgate.
      await page.getByRole('button', { name: /settings/i }).first().click();
      const dialog = page.getByRole('dialog');
      await dialog.waitFor({ timeout: 5_000 });
      if (/persist headers/i.test(await dialog.innerText())) fail('the settings offer "Persist headers"');
      await page.keyboard.press('Escape');
      step('settings: no "Persist headers"');

      // An answer pinned beside the next one.
      await page.getByTestId('pin').click();
      await page.locator('[data-query="model-performance"]').click();
      await answerOf(page, 'ModelPerformance');
      const sides = page.getByTestId('compare').locator('.side');
      if ((await sides.count()) !== 2) fail('no side-by-side comparison');
      const pinnedTitle = await sides.nth(0).locator('.side-title').innerText();
      const pinnedRows = await sides.nth(0).locator('tr.data-row').count();
      const currentRows = await sides.nth(1).locator('tr.data-row').count();
      if (!/HighRiskPredictions/.test(pinnedTitle) || pinnedRows !== shown.rows || currentRows !== summary.queries['model-performance'].rows) {
        fail(`comparison: ${pinnedTitle} with ${pinnedRows} rows beside ${currentRows}`);
      }
      await screenshot(page, `${tag}-compare`);
      await page.getByTestId('pin').click();
      step(`comparison: ${pinnedRows} pinned rows beside ${currentRows}`);

      // A drift alert written meanwhile: in the feed and in the subscription's table.
      await page.getByRole('button', { name: /live drift alerts/i }).first().click();
      await page.getByTestId('feed-status').getByText('Feed live').waitFor({ timeout: 15_000 });
      await page.getByRole('button', { name: /saved queries/i }).first().click();
      await page.locator('[data-view="table"]').click();
      await page.locator('[data-query="live-drift-alerts"]').click();
      await answerOf(page, 'LiveDriftAlerts', { live: true });
      const metricId = `e2e-${Date.now()}`;
      const written = await fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${serviceKey}` },
        body: JSON.stringify({
          query: 'mutation($input: [DriftMetricInput!]!) { recordDriftMetrics(input: $input) { alertsTriggered } }',
          variables: { input: [{ metricId, modelId: 'ensemble-risk-03', driftType: 'DATA', driftScore: 0.42, psiScore: 0.42 }] },
        }),
      }).then((r) => r.json());
      if (written.errors) fail(`writing the alert failed: ${JSON.stringify(written.errors)}`);
      const cell = page.getByTestId('result-table').locator('td', { hasText: metricId });
      await cell.waitFor({ timeout: 10_000 });
      await page.getByRole('button', { name: /live drift alerts/i }).first().click();
      await page.locator(`[data-metric="${metricId}"]`).waitFor({ timeout: 10_000 });
      summary.liveAlert = (await page.locator(`[data-metric="${metricId}"]`).innerText()).replace(/\s+/g, ' ').trim();
      const subscribed = await tableColumns(page);
      const order = fieldOrder(queryFiles('07-live-drift-alerts.graphql'));
      const positions = subscribed.columns.map((c) => order.indexOf(`driftAlerts.${c}`));
      if (positions.some((p, i) => p < 0 || (i > 0 && p <= positions[i - 1]))) fail(`subscription columns ${subscribed.columns}`);
      summary.subscriptionRows = subscribed.rows;
      await page.getByTestId('show-feed').click();
      await page.getByTestId('result-table').locator('td', { hasText: metricId }).waitFor({ timeout: 10_000 });
      await screenshot(page, `${tag}-live-alert`);
      step('live alert: in the feed, the subscription table and the feed table');
      // Another saved query after the running subscription: it stops the subscription and runs.
      await page.getByRole('button', { name: /saved queries/i }).first().click();
      await page.locator('[data-query="shap-importance"]').click();
      await answerOf(page, 'ShapImportance');
      step('a saved query after a running subscription runs');
    }

    if (size === SIZES[1]) {
      // Pane sizes are the analyst's and stay across reloads.
      const handle = await page.getByTestId('resize-handle').boundingBox();
      await page.mouse.move(handle.x + handle.width / 2, handle.y + handle.height / 2);
      await page.mouse.down();
      await page.mouse.move(handle.x + handle.width / 2, handle.y - 150, { steps: 8 });
      await page.mouse.up();
      const dragged = (await page.getByTestId('result-views').boundingBox()).height;
      await page.waitForTimeout(500); // the layout is saved after a short debounce
      if (Math.abs(dragged - summary.sizes[tag].resultsHeight - 150) > 20) fail(`dragging left the results ${dragged}px high`);
      await page.reload({ waitUntil: 'load' });
      await page.getByTestId('identity').getByText('acme-cloud').waitFor({ timeout: 15_000 });
      await page.locator('.graphiql-query-editor').waitFor({ timeout: 15_000 });
      const kept = (await page.getByTestId('result-views').boundingBox()).height;
      if (Math.abs(kept - dragged) > 3) fail(`the results pane was ${dragged}px high, ${kept}px after a reload`);
      summary.sizes[tag].resizedResultsHeight = Math.round(kept);
      step(`resized panes kept across a reload (${Math.round(kept)}px)`);

      // Dark mode everywhere: GraphiQL's theme setting reaches the results pane and the chart.
      await page.evaluate(() => localStorage.setItem('graphiql:theme', 'dark'));
      await page.reload({ waitUntil: 'load' });
      await page.getByTestId('identity').getByText('acme-cloud').waitFor({ timeout: 15_000 });
      await page.locator('.graphiql-query-editor').waitFor({ timeout: 15_000 });
      await page.locator('[data-query="daily-volume-by-model"]').click();
      await answerOf(page, 'DailyVolumeByModel');
      await page.locator('[data-view="chart"]').click();
      await page.getByTestId('chart').locator('svg').first().waitFor({ timeout: 10_000 });
      const colours = await page.evaluate(() => {
        const luminance = (css) => {
          const [r, g, b] = css.match(/\d+/g).map(Number);
          return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
        };
        const pane = getComputedStyle(document.querySelector('[data-testid="result-views"]'));
        const chart = getComputedStyle(document.querySelector('[data-testid="chart"]'));
        return { pane: luminance(pane.backgroundColor), text: luminance(pane.color), chartText: luminance(chart.color) };
      });
      summary.dark = colours;
      if (!(colours.pane < 0.3 && colours.text > 0.7 && colours.chartText > 0.7)) fail(`dark mode: ${JSON.stringify(colours)}`);
      await screenshot(page, `${tag}-dark-chart`);
      step('dark mode: results pane and chart');
    }
    await context.close();
  }
  if (summary.foreign.length) fail(`requests left ${origin.host}: ${summary.foreign.join(', ')}`);
  if (summary.consoleErrors.length) fail(`page errors: ${summary.consoleErrors.join(' | ')}`);
  console.log(JSON.stringify({ ok: true, ...summary }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error?.message ?? error), ...summary }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
