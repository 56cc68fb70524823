// Table and chart views of the last query result, beside GraphiQL's JSON.
// The table shows the result's largest list of objects, flattened; the chart
// plots a list whose rows carry a `bucketStart` (predictionStats with a
// bucket, driftSummary trends): bars for one measure, a line for another;
// or a list of bins with `referenceShare` and `currentShare` (driftAnalysis):
// the two distributions side by side.
import { useMemo, useState } from 'react';

const MAX_COLUMNS = 30;
const MAX_ROWS = 500;

/** Every list of objects in `value`, with its path, outermost first. */
function listsOfObjects(value, path = []) {
  const found = [];
  const visit = (node, at) => {
    if (Array.isArray(node)) {
      if (node.length && node.every((item) => item && typeof item === 'object' && !Array.isArray(item))) {
        found.push({ path: at.join('.'), rows: node });
      }
      node.forEach((item, i) => visit(item, [...at, i]));
    } else if (node && typeof node === 'object') {
      Object.entries(node).forEach(([key, child]) => visit(child, [...at, key]));
    }
  };
  visit(value, path);
  return found;
}

/** An object's scalar leaves as `a.b.c` columns; lists of scalars are joined. */
function flatten(node, prefix = '', out = {}) {
  for (const [key, value] of Object.entries(node)) {
    const column = `${prefix}${key}`;
    if (value === null || typeof value !== 'object') out[column] = value;
    else if (Array.isArray(value)) {
      out[column] = value.every((v) => v === null || typeof v !== 'object')
        ? value.join(', ')
        : `${value.length} item${value.length === 1 ? '' : 's'}`;
    } else flatten(value, `${column}.`, out);
  }
  return out;
}

const format = (value) => {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toPrecision(4);
  return String(value);
};

export function ResultViews({ result }) {
  const [view, setView] = useState('table');
  const data = result?.value?.data ?? null;
  const errors = result?.value?.errors ?? null;
  return (
    <aside className="result-views" data-testid="result-views">
      <nav className="view-tabs">
        {['table', 'chart'].map((name) => (
          <button
            key={name}
            type="button"
            data-view={name}
            className={view === name ? 'active' : ''}
            onClick={() => setView(name)}
          >
            {name === 'table' ? 'Table' : 'Chart'}
          </button>
        ))}
        <span className="view-source">{result ? result.operationName ?? 'result' : 'no result yet'}</span>
      </nav>
      {errors && (
        <p className="view-errors" role="alert">
          {errors.map((e) => `${e.extensions?.code ?? 'ERROR'}: ${e.message}`).join(' · ')}
        </p>
      )}
      {!data ? (
        <p className="hint">Run a query: its lists show here as a table, and time-bucketed results as a chart.</p>
      ) : view === 'table' ? (
        <ResultTable data={data} />
      ) : (
        <ResultChart data={data} />
      )}
    </aside>
  );
}

function ResultTable({ data }) {
  const lists = useMemo(() => listsOfObjects(data), [data]);
  const largest = lists.reduce((best, list) => (!best || list.rows.length > best.rows.length ? list : best), null);
  if (!largest) {
    const row = flatten(data);
    return <KeyValues row={row} />;
  }
  const rows = largest.rows.slice(0, MAX_ROWS).map((row) => flatten(row));
  const all = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  // What a row is (ids, names, levels) before what it measures.
  const numeric = (column) => rows.some((row) => typeof row[column] === 'number');
  const columns = [...all.filter((c) => !numeric(c)), ...all.filter(numeric)].slice(0, MAX_COLUMNS);
  return (
    <div className="table-wrap">
      <p className="view-caption">
        {largest.path} · {largest.rows.length} row{largest.rows.length === 1 ? '' : 's'}
      </p>
      <table data-testid="result-table">
        <thead>
          <tr>
            {columns.map((column) => (
              <th key={column}>{column}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={i}>
              {columns.map((column) => (
                <td key={column} className={typeof row[column] === 'number' ? 'number' : ''}>
                  {format(row[column])}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function KeyValues({ row }) {
  return (
    <table data-testid="result-table">
      <tbody>
        {Object.entries(row).map(([key, value]) => (
          <tr key={key}>
            <th>{key}</th>
            <td>{format(value)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The lists that can be charted: rows with a `bucketStart` and numbers. */
function chartableSeries(data) {
  return listsOfObjects(data)
    .map(({ path, rows }) => {
      const flat = rows.map((row) => flatten(row));
      const columns = [...new Set(flat.flatMap((row) => Object.keys(row)))];
      const x = columns.find((c) => c === 'bucketStart' || c.endsWith('.bucketStart'));
      const measures = columns.filter((c) => c !== x && flat.some((row) => typeof row[c] === 'number'));
      const groups = columns.filter(
        (c) => c !== x && c.startsWith('key.') && flat.some((row) => typeof row[c] === 'string'),
      );
      return x && measures.length ? { path, rows: flat, x, measures, groups } : null;
    })
    .filter(Boolean);
}

/** The bin lists of a drift analysis, named by their signal. */
function distributions(data) {
  const out = [];
  const visit = (node, name) => {
    if (Array.isArray(node)) node.forEach((item, i) => visit(item, `${name} ${i + 1}`));
    else if (node && typeof node === 'object') {
      const label = node.signal ? [node.signal, node.feature].filter(Boolean).join(' ') : name;
      const bins = node.bins;
      if (
        Array.isArray(bins) &&
        bins.length &&
        bins.every((b) => typeof b?.referenceShare === 'number' && typeof b?.currentShare === 'number')
      ) {
        out.push({ name: label, bins });
      }
      Object.entries(node).forEach(([key, child]) => key !== 'bins' && visit(child, label));
    }
  };
  visit(data, 'distribution');
  return out;
}

function ResultChart({ data }) {
  const bins = useMemo(() => distributions(data), [data]);
  if (bins.length) return <DistributionCharts distributions={bins} />;
  return <BucketChart data={data} />;
}

const REFERENCE_COLOR = '#2f6fde';
const CURRENT_COLOR = '#d9480f';

function binLabel(bin) {
  const short = (v) => (typeof v === 'number' ? Number(v.toPrecision(3)) : '—');
  return bin.lower === bin.upper ? `${short(bin.lower)}` : `${short(bin.lower)}–${short(bin.upper)}`;
}

/** One chart per signal: each bin's reference and current share as paired bars. */
function DistributionCharts({ distributions: all }) {
  const [chosen, setChosen] = useState(null);
  const shown = all.find((d) => d.name === chosen) ?? all[0];
  const { bins } = shown;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const step = plotWidth / bins.length;
  const max = niceMax(bins.flatMap((b) => [b.referenceShare, b.currentShare]));
  const y = (v) => MARGIN.top + plotHeight * (1 - v / max);
  const bar = (b, i, key, offset, color) => (
    <rect
      key={`${key}-${i}`}
      className="bar"
      data-share={key}
      fill={color}
      x={MARGIN.left + step * i + step * offset}
      width={step * 0.38}
      y={y(b[key])}
      height={Math.max(0, MARGIN.top + plotHeight - y(b[key]))}
    >
      <title>{`${binLabel(b)}: ${key === 'referenceShare' ? 'reference' : 'current'} ${format(b[key])}`}</title>
    </rect>
  );
  return (
    <div className="chart-wrap">
      <div className="chart-controls">
        <label>
          Signal
          <select value={shown.name} onChange={(e) => setChosen(e.target.value)} data-testid="chart-signal">
            {all.map((d) => (
              <option key={d.name}>{d.name}</option>
            ))}
          </select>
        </label>
      </div>
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} className="chart" data-testid="chart" role="img" aria-label={`${shown.name}: reference and current shares per bin`}>
        {[0, 0.25, 0.5, 0.75, 1].map((f) => (
          <g key={f}>
            <line x1={MARGIN.left} x2={WIDTH - MARGIN.right} y1={y(max * f)} y2={y(max * f)} className="grid" />
            <text x={MARGIN.left - 6} y={y(max * f) + 4} className="axis left">
              {format(max * f)}
            </text>
          </g>
        ))}
        {bins.map((b, i) => bar(b, i, 'referenceShare', 0.1, REFERENCE_COLOR))}
        {bins.map((b, i) => bar(b, i, 'currentShare', 0.52, CURRENT_COLOR))}
        {bins.map((b, i) => (
          <text key={i} x={MARGIN.left + step * (i + 0.5)} y={HEIGHT - MARGIN.bottom + 14} className="axis bottom" transform={`rotate(35 ${MARGIN.left + step * (i + 0.5)} ${HEIGHT - MARGIN.bottom + 14})`}>
            {binLabel(b)}
          </text>
        ))}
        <rect x={WIDTH - MARGIN.right - 150} y={MARGIN.top} width={10} height={10} fill={REFERENCE_COLOR} />
        <text x={WIDTH - MARGIN.right - 136} y={MARGIN.top + 9} className="legend">reference share</text>
        <rect x={WIDTH - MARGIN.right - 150} y={MARGIN.top + 16} width={10} height={10} fill={CURRENT_COLOR} />
        <text x={WIDTH - MARGIN.right - 136} y={MARGIN.top + 25} className="legend">current share</text>
      </svg>
    </div>
  );
}

function BucketChart({ data }) {
  const candidates = useMemo(() => chartableSeries(data), [data]);
  const [seriesPath, setSeriesPath] = useState(null);
  const series = candidates.find((c) => c.path === seriesPath) ?? candidates[0];
  const [barChoice, setBar] = useState(null);
  const [lineChoice, setLine] = useState(null);
  if (!series) {
    return <p className="hint">Nothing to chart: run a query with time buckets (“Prediction volume and p95 latency per day”, a drift summary’s trend) or a drift analysis’s bins.</p>;
  }
  const pick = (choice, preferred, fallback) =>
    series.measures.includes(choice) ? choice : (series.measures.find(preferred) ?? fallback);
  const bar = pick(barChoice, (m) => /count$/i.test(m), series.measures[0]);
  const line = lineChoice === '' ? '' : pick(lineChoice, (m) => /p95|max|avg/i.test(m) && m !== bar, '');
  return (
    <div className="chart-wrap">
      <div className="chart-controls">
        {candidates.length > 1 && (
          <label>
            Series
            <select value={series.path} onChange={(e) => setSeriesPath(e.target.value)}>
              {candidates.map((c) => (
                <option key={c.path}>{c.path}</option>
              ))}
            </select>
          </label>
        )}
        <label>
          Bars
          <select value={bar} onChange={(e) => setBar(e.target.value)} data-testid="chart-bars">
            {series.measures.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </label>
        <label>
          Line
          <select value={line} onChange={(e) => setLine(e.target.value)} data-testid="chart-line">
            <option value="">none</option>
            {series.measures.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </label>
      </div>
      <BarLineChart series={series} bar={bar} line={line} />
    </div>
  );
}

const WIDTH = 640;
const HEIGHT = 320;
const MARGIN = { top: 16, right: 56, bottom: 56, left: 56 };
const COLORS = ['#2f6fde', '#d9480f', '#2b8a3e', '#7048e8', '#c2255c', '#1098ad'];

function niceMax(values) {
  const max = Math.max(0, ...values.filter((v) => typeof v === 'number'));
  if (max === 0) return 1;
  const step = 10 ** Math.floor(Math.log10(max));
  return Math.ceil(max / step) * step;
}

function label(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toISOString().slice(5, 16).replace('T', ' ');
}

/** Bars of `bar` per bucket (one line per group when grouped), and `line` on a right-hand axis. */
function BarLineChart({ series, bar, line }) {
  const buckets = [...new Set(series.rows.map((row) => row[series.x]))].sort();
  const groupOf = (row) => series.groups.map((g) => row[g]).join(' · ') || null;
  const groups = [...new Set(series.rows.map(groupOf))];
  const grouped = groups.length > 1;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const step = plotWidth / Math.max(buckets.length, 1);
  const xAt = (bucket) => MARGIN.left + step * (buckets.indexOf(bucket) + 0.5);
  const barMax = niceMax(series.rows.map((row) => row[bar]));
  const yBar = (v) => MARGIN.top + plotHeight * (1 - (v ?? 0) / barMax);
  const lineMax = line ? niceMax(series.rows.map((row) => row[line])) : 1;
  const yLine = (v) => MARGIN.top + plotHeight * (1 - v / lineMax);
  const labelEvery = Math.ceil(buckets.length / 12);
  const path = (rows, key, y) =>
    rows
      .filter((row) => typeof row[key] === 'number')
      .map((row, i) => `${i ? 'L' : 'M'}${xAt(row[series.x]).toFixed(1)},${y(row[key]).toFixed(1)}`)
      .join(' ');
  return (
    <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} className="chart" data-testid="chart" role="img" aria-label={`${bar} per bucket`}>
      {[0, 0.25, 0.5, 0.75, 1].map((f) => (
        <g key={f}>
          <line x1={MARGIN.left} x2={WIDTH - MARGIN.right} y1={yBar(barMax * f)} y2={yBar(barMax * f)} className="grid" />
          <text x={MARGIN.left - 6} y={yBar(barMax * f) + 4} className="axis left">
            {format(barMax * f)}
          </text>
          {line && (
            <text x={WIDTH - MARGIN.right + 6} y={yLine(lineMax * f) + 4} className="axis right">
              {format(lineMax * f)}
            </text>
          )}
        </g>
      ))}
      {grouped
        ? groups.map((group, i) => (
            <path
              key={group}
              d={path(series.rows.filter((row) => groupOf(row) === group), bar, yBar)}
              className="series-line"
              stroke={COLORS[i % COLORS.length]}
            >
              <title>{group}</title>
            </path>
          ))
        : series.rows.map((row) => (
            <rect
              key={row[series.x]}
              className="bar"
              data-bucket={row[series.x]}
              x={xAt(row[series.x]) - step * 0.35}
              width={step * 0.7}
              y={yBar(row[bar])}
              height={Math.max(0, MARGIN.top + plotHeight - yBar(row[bar]))}
            >
              <title>{`${label(row[series.x])}: ${bar} ${format(row[bar])}`}</title>
            </rect>
          ))}
      {line && !grouped && <path d={path(series.rows, line, yLine)} className="series-line" stroke="#d9480f" />}
      {buckets.map((bucket, i) =>
        i % labelEvery === 0 ? (
          <text key={bucket} x={xAt(bucket)} y={HEIGHT - MARGIN.bottom + 14} className="axis bottom" transform={`rotate(35 ${xAt(bucket)} ${HEIGHT - MARGIN.bottom + 14})`}>
            {label(bucket)}
          </text>
        ) : null,
      )}
      <text x={MARGIN.left} y={HEIGHT - 4} className="legend">
        {grouped ? `${bar} by ${series.groups.join(', ')}` : `bars: ${bar}${line ? ` · line (right axis): ${line}` : ''}`}
      </text>
    </svg>
  );
}
