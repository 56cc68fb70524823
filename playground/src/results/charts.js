// Which charts an answer can be drawn as, from its shape alone (no query
// names): distributions of a drift analysis (bins with reference and current
// shares), reliability diagrams (bins with mean predicted probability and
// observed rate), time series (rows with a `bucketStart`, one line per group
// key), latency percentile bands (p50/p95/p99 over time, or per row), the risk
// mix (critical/high/medium/low counts per row), and bars for any list of
// labelled numbers (SHAP importance, a grouping by risk level). The first
// candidate is the most specific; the view lets the analyst pick another.
import { flatten, isRecord, listsOfObjects, orderedColumns } from './shape.js';

const LABELS = ['feature', 'signal', 'model.modelName', 'model.modelId', 'modelId', 'key.modelId', 'key.riskLevel', 'name', 'id'];
const RISK_LEVELS = ['critical', 'high', 'medium', 'low'];
const PERCENTILES = ['p50', 'p95', 'p99'];

const numeric = (rows, c) => rows.some((r) => typeof r[c] === 'number') && rows.every((r) => r[c] == null || typeof r[c] === 'number');
const textual = (rows, c) => rows.some((r) => typeof r[c] === 'string') && rows.every((r) => r[c] == null || typeof r[c] === 'string');

/** The value at a dotted path of `data`. */
function at(data, path) {
  return path.split('.').reduce((node, key) => (node == null ? node : node[key]), data);
}

/** What names the object holding a nested list: its signal, model or feature. */
function ownerLabel(data, path) {
  const parts = path.split('.');
  for (let end = parts.length - 1; end > 0; end -= 1) {
    const node = at(data, parts.slice(0, end).join('.'));
    if (!isRecord(node)) continue;
    const flat = flatten(node);
    const label = ['signal', 'driftType', 'model.modelName', 'model.modelId', 'modelId', 'feature', 'name']
      .map((c) => flat[c])
      .filter((v) => typeof v === 'string');
    if (node.signal && node.feature) return `${node.signal} ${node.feature}`;
    if (label.length) return label[0];
  }
  return path;
}

/** Prefixes `p` such that `p + 'p50'`, `p + 'p95'`, `p + 'p99'` are numeric columns. */
function percentilePrefixes(columns, rows) {
  return columns
    .filter((c) => c.endsWith('p95') && numeric(rows, c))
    .map((c) => c.slice(0, -3))
    .filter((p) => PERCENTILES.filter((q) => columns.includes(p + q) && numeric(rows, p + q)).length >= 2);
}

/**
 * The column naming each row: one of the usual names, else the first text
 * column, as long as no two rows share a label (bars of equal labels would
 * be summed, silently).
 */
function labelColumn(columns, rows) {
  const unique = (c) => textual(rows, c) && new Set(rows.map((r) => r[c])).size === rows.length;
  return LABELS.find((c) => columns.includes(c) && unique(c)) ?? columns.find(unique) ?? null;
}

/**
 * A list inside a row of another list (`nodes.3.shapValues`): one per row.
 * Charted as drift bins or calibration, and time series of every row
 * together (`types.*.trend`, a line per drift type); nothing else.
 */
const perRow = (path) => /(^|\.)\d+(\.|$)/.test(path);
const pattern = (path) => path.replace(/(^|\.)\d+(?=\.|$)/g, '$1*');
/** The most candidates the chart menu lists (a drift analysis of many features). */
const MAX_CANDIDATES = 60;

/** Chart candidates for `data`, most specific first. */
export function chartCandidates(data) {
  if (!isRecord(data)) return [];
  const out = [];
  const reliability = [];
  // Per-row time series, gathered by pattern, each row's list named by its owner.
  const trends = new Map();
  for (const { path, rows: raw } of listsOfObjects(data)) {
    const rows = raw.map((r) => flatten(r));
    const columns = orderedColumns(rows);
    if (numeric(rows, 'referenceShare') && numeric(rows, 'currentShare')) {
      out.push({ id: `distribution:${path}`, kind: 'distribution', title: `${ownerLabel(data, path)}: reference and current distributions`, path, rows });
      continue;
    }
    if (numeric(rows, 'meanPredicted') && numeric(rows, 'observedRate')) {
      reliability.push({ series: ownerLabel(data, path), rows });
      continue;
    }
    const x = columns.find((c) => c === 'bucketStart' || c.endsWith('.bucketStart'));
    if (perRow(path)) {
      if (x) {
        const series = ownerLabel(data, path);
        const gathered = trends.get(pattern(path)) ?? [];
        trends.set(pattern(path), [...gathered, ...rows.map((r) => ({ ...r, series }))]);
      }
      continue;
    }
    const measures = columns.filter((c) => c !== x && numeric(rows, c));
    if (!measures.length) continue;
    if (x) {
      const groups = columns.filter((c) => c !== x && c.startsWith('key.') && rows.some((r) => r[c] != null));
      for (const prefix of percentilePrefixes(columns, rows)) {
        out.push({ id: `band:${path}:${prefix}`, kind: 'band', title: `${prefix.replace(/^measures\./, '').replace(/\.$/, ' ')}p50–p99 over time`, path, rows, x, groups, prefix });
      }
      out.push({ id: `timeseries:${path}`, kind: 'timeseries', title: `${path} over time`, path, rows, x, groups, measures });
      continue;
    }
    const label = labelColumn(columns, rows);
    if (!label) continue;
    const risk = columns
      .filter((c) => c.endsWith('critical'))
      .map((c) => c.slice(0, -'critical'.length))
      .find((p) => RISK_LEVELS.every((level) => numeric(rows, p + level)));
    if (risk !== undefined) {
      out.push({ id: `risk:${path}:${risk}`, kind: 'risk', title: `Risk mix per ${label}`, path, rows, label, prefix: risk });
    }
    for (const prefix of percentilePrefixes(columns, rows)) {
      out.push({ id: `range:${path}:${prefix}`, kind: 'range', title: `${prefix}p50–p99 per ${label}`, path, rows, label, prefix });
    }
    out.push({ id: `bar:${path}`, kind: 'bar', title: `${path} per ${label}`, path, rows, label, measures });
  }
  for (const [path, rows] of trends) {
    const columns = orderedColumns(rows);
    const x = columns.find((c) => c === 'bucketStart' || c.endsWith('.bucketStart'));
    const measures = columns.filter((c) => c !== x && numeric(rows, c));
    if (measures.length) {
      out.push({ id: `timeseries:${path}`, kind: 'timeseries', title: `${path} over time`, path, rows, x, groups: ['series'], measures });
    }
  }
  if (reliability.length) {
    out.unshift({ id: 'reliability', kind: 'reliability', title: 'Reliability diagram (calibration)', series: reliability });
  }
  // A drift analysis' distributions and a calibration come before the lists they sit in.
  const rank = { distribution: 0, reliability: 0, band: 1, risk: 2, timeseries: 3, range: 4, bar: 5 };
  return out
    .map((c, i) => ({ c, i }))
    .sort((a, b) => rank[a.c.kind] - rank[b.c.kind] || a.i - b.i)
    .map(({ c }) => c)
    .slice(0, MAX_CANDIDATES);
}

/** The measure a chart shows first: an importance, a PSI, a count, then the first number. */
export function preferredMeasure(candidate) {
  const { measures } = candidate;
  return (
    measures.find((m) => /meanAbs/i.test(m)) ??
    measures.find((m) => /psi/i.test(m)) ??
    measures.find((m) => /(^|\.)count$/i.test(m)) ??
    measures.find((m) => /count$/i.test(m)) ??
    measures[0]
  );
}

export const RISK_COLORS = { critical: '#c92a2a', high: '#e8590c', medium: '#f2b807', low: '#2b8a3e' };
export { RISK_LEVELS };
