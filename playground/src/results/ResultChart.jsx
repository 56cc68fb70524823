// The chart view: Observable Plot (SVG, themed through currentColor) draws the
// candidate chosen from the answer's shape (charts.js).
import * as Plot from '@observablehq/plot';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';

import { chartCandidates, preferredMeasure, RISK_COLORS, RISK_LEVELS } from './charts.js';

/** The plot's height when the pane leaves no room to fit it (it scrolls then). */
const MIN_HEIGHT = 220;
// Readable on the light and the dark theme alike.
const ACCENT = '#3b7ddd';
const ACCENT_2 = '#e8590c';

/**
 * The size of an element, followed as it resizes (panes are resizable). A
 * callback ref: the element may appear later than the component (after an
 * answer with nothing to chart).
 */
function useSize() {
  const [size, setSize] = useState({ width: 640, height: 400 });
  const observer = useRef(null);
  const ref = useCallback((element) => {
    observer.current?.disconnect();
    observer.current = null;
    if (!element) return;
    observer.current = new ResizeObserver(([entry]) =>
      setSize({ width: Math.max(320, Math.floor(entry.contentRect.width)), height: Math.floor(entry.contentRect.height) }),
    );
    observer.current.observe(element);
  }, []);
  return [ref, size];
}

const time = (v) => new Date(v);
const shortLabel = (text, max = 28) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
const binLabel = (b) => {
  const short = (v) => (typeof v === 'number' ? String(Number(v.toPrecision(3))) : '—');
  return b.lower === b.upper ? short(b.lower) : `${short(b.lower)}–${short(b.upper)}`;
};
const groupOf = (groups) => (row) => groups.map((g) => row[g] ?? '—').join(' · ');
/** The bucket interval Plot should draw bars over, from the buckets' spacing. */
function intervalOf(rows, x) {
  const starts = [...new Set(rows.map((r) => time(r[x]).getTime()))].sort((a, b) => a - b);
  const step = Math.min(...starts.slice(1).map((t, i) => t - starts[i]));
  if (!Number.isFinite(step) || step >= 27 * 86_400_000) return 'month';
  if (step >= 7 * 86_400_000) return 'week';
  if (step >= 86_400_000) return 'day';
  return 'hour';
}

/** Plot options for one candidate; `measure` for the kinds that have a choice. */
function plotOptions(candidate, measure, width, height) {
  // The plot fills the pane's height (less the legend), never below MIN_HEIGHT.
  const h = Math.max(MIN_HEIGHT, height - 40);
  const base = { width, height: h, marginLeft: 64, marginBottom: 44, style: { background: 'transparent', fontSize: '11px' } };
  switch (candidate.kind) {
    case 'timeseries': {
      const { x, groups } = candidate;
      const rows = [...candidate.rows].sort((a, b) => time(a[x]) - time(b[x]));
      const grouped = groups.length > 0 && new Set(rows.map(groupOf(groups))).size > 1;
      const marks = grouped
        ? // Buckets without a value (no metric that hour) are left out, not drawn as gaps.
          [Plot.lineY(rows.filter((r) => r[measure] != null), { x: (r) => time(r[x]), y: measure, stroke: groupOf(groups), marker: 'dot', tip: true })]
        : [Plot.rectY(rows, { x: (r) => time(r[x]), interval: intervalOf(rows, x), y: measure, fill: ACCENT, inset: 1, tip: true })];
      return {
        ...base,
        x: { type: 'utc', label: null },
        y: { grid: true, label: measure, zero: true },
        color: grouped ? { legend: true, label: groups.join(' · ') } : undefined,
        marks: [...marks, Plot.ruleY([0])],
      };
    }
    case 'band': {
      const { rows, x, groups, prefix } = candidate;
      const grouped = groups.length > 0 && new Set(rows.map(groupOf(groups))).size > 1;
      const at = (q) => (r) => r[prefix + q];
      const series = grouped ? groupOf(groups) : () => 'p50–p99';
      const sorted = [...rows].sort((a, b) => time(a[x]) - time(b[x]));
      return {
        ...base,
        x: { type: 'utc', label: null },
        y: { grid: true, label: `${prefix.replace(/^measures\./, '').replace(/\.$/, '')} (p50–p99 band, p95 line)`, zero: true },
        color: { legend: true, ...(grouped ? {} : { domain: ['p50–p99', 'p95'], range: [ACCENT, ACCENT_2] }) },
        marks: [
          Plot.areaY(sorted, { x: (r) => time(r[x]), y1: at('p50'), y2: at('p99'), fill: series, fillOpacity: 0.25, z: series }),
          Plot.lineY(sorted, { x: (r) => time(r[x]), y: at('p95'), stroke: grouped ? series : () => 'p95', z: series, marker: 'dot', tip: true }),
        ],
      };
    }
    case 'range': {
      const { rows, label, prefix } = candidate;
      const at = (q) => (r) => r[prefix + q];
      return {
        ...base,
        marginLeft: labelMargin(rows, label),
        y: { label: null },
        x: { grid: true, label: `${prefix.replace(/\.$/, '')} (p50 to p99, dot p95)`, zero: true },
        color: { legend: true, domain: ['p50–p99', 'p95'], range: [ACCENT, ACCENT_2] },
        marks: [
          Plot.ruleY(rows, { y: (r) => shortLabel(String(r[label])), x1: at('p50'), x2: at('p99'), stroke: () => 'p50–p99', strokeWidth: 8, strokeOpacity: 0.6 }),
          Plot.dot(rows, { y: (r) => shortLabel(String(r[label])), x: at('p95'), fill: () => 'p95', r: 5, tip: true }),
        ],
      };
    }
    case 'risk': {
      const { rows, label, prefix } = candidate;
      const long = rows.flatMap((r) => RISK_LEVELS.map((level) => ({ label: shortLabel(String(r[label])), level, count: r[prefix + level] ?? 0 })));
      return {
        ...base,
        marginLeft: labelMargin(rows, label),
        y: { label: null },
        x: { grid: true, label: 'predictions per risk level' },
        color: { legend: true, domain: RISK_LEVELS, range: RISK_LEVELS.map((l) => RISK_COLORS[l]) },
        marks: [Plot.barX(long, { y: 'label', x: 'count', fill: 'level', order: RISK_LEVELS, tip: true }), Plot.ruleX([0])],
      };
    }
    case 'bar': {
      const { rows, label } = candidate;
      return {
        ...base,
        height: Math.max(h, 22 * rows.length + 60),
        marginLeft: labelMargin(rows, label),
        y: { label: null },
        x: { grid: true, label: measure },
        marks: [
          Plot.barX(rows, { y: (r) => shortLabel(String(r[label])), x: measure, fill: ACCENT, sort: { y: '-x' }, tip: true }),
          Plot.ruleX([0]),
        ],
      };
    }
    case 'reliability': {
      const long = candidate.series.flatMap(({ series, rows }) =>
        rows.filter((b) => b.meanPredicted != null && b.observedRate != null).map((b) => ({ ...b, series })),
      );
      return {
        ...base,
        // Near square: equal units on both axes read best.
        width: Math.min(width, h + 200),
        height: h,
        x: { domain: [0, 1], grid: true, label: 'mean predicted probability' },
        y: { domain: [0, 1], grid: true, label: 'observed violation rate' },
        r: { range: [2, 9] },
        color: { legend: true },
        marks: [
          Plot.line([[0, 0], [1, 1]], { stroke: 'currentColor', strokeOpacity: 0.45, strokeDasharray: '4 4' }),
          Plot.line(long, { x: 'meanPredicted', y: 'observedRate', stroke: 'series' }),
          Plot.dot(long, { x: 'meanPredicted', y: 'observedRate', r: 'count', fill: 'series', tip: true }),
        ],
      };
    }
    case 'distribution': {
      const long = candidate.rows.flatMap((b) => [
        { bin: binLabel(b), sample: 'reference', share: b.referenceShare },
        { bin: binLabel(b), sample: 'current', share: b.currentShare },
      ]);
      const order = candidate.rows.map(binLabel);
      return {
        ...base,
        marginBottom: 64,
        x: { domain: order, label: null, tickRotate: order.length > 8 ? -35 : 0 },
        y: { grid: true, label: 'share', zero: true },
        color: { legend: true, domain: ['reference', 'current'], range: [ACCENT, ACCENT_2] },
        marks: [Plot.barY(long, { x: 'bin', y1: 0, y2: 'share', fill: 'sample', fillOpacity: 0.5, tip: true }), Plot.ruleY([0])],
      };
    }
    default:
      return null;
  }
}

function labelMargin(rows, label) {
  const longest = Math.max(...rows.map((r) => shortLabel(String(r[label] ?? '')).length));
  return Math.min(220, 16 + longest * 6.5);
}

/** The chart for `data` (the answer's `data`), with a choice of chart and measure. */
export function ResultChart({ data, chartId, onChartId }) {
  const candidates = useMemo(() => chartCandidates(data), [data]);
  const chosen = candidates.find((c) => c.id === chartId) ?? candidates[0];
  const [measureChoice, setMeasure] = useState(null);
  const [box, { width, height }] = useSize();
  const plot = useRef(null);
  const measure = chosen?.measures?.includes(measureChoice) ? measureChoice : chosen?.measures && preferredMeasure(chosen);

  useEffect(() => {
    if (!chosen || !plot.current) return;
    const controls = plot.current.parentElement?.querySelector('.chart-controls')?.offsetHeight ?? 30;
    const options = plotOptions(chosen, measure, width - 16, height - controls - 24);
    plot.current.replaceChildren(Plot.plot(options));
  }, [chosen, measure, width, height]);

  if (!chosen) {
    return (
      <p className="hint" data-testid="chart-none">
        Nothing to chart in this answer. Charts are drawn for time buckets, labelled numbers (SHAP importance, risk mix,
        percentiles), calibration bins and drift distributions.
      </p>
    );
  }
  return (
    <div className="chart-wrap" ref={box}>
      <div className="chart-controls">
        <label>
          Chart
          <select value={chosen.id} onChange={(e) => onChartId(e.target.value)} data-testid="chart-choice">
            {candidates.map((c) => (
              <option key={c.id} value={c.id}>
                {c.title}
              </option>
            ))}
          </select>
        </label>
        {chosen.measures && (
          <label>
            Measure
            <select value={measure} onChange={(e) => setMeasure(e.target.value)} data-testid="chart-measure">
              {chosen.measures.map((m) => (
                <option key={m}>{m}</option>
              ))}
            </select>
          </label>
        )}
      </div>
      <div className="chart" data-testid="chart" data-kind={chosen.kind} ref={plot} />
    </div>
  );
}
