// The results pane: the last answer (a query's, a subscription's events as
// they arrive, or the live alert feed) as a table, a chart or JSON; exports;
// a share link; and a pinned answer beside the current one for comparison.
import { useEffect, useMemo, useState } from 'react';

import { Errors } from './Errors.jsx';
import { download, exportName, toCsv } from './exports.js';
import { ResultChart } from './ResultChart.jsx';
import { ColumnChooser, ResultTable } from './ResultTable.jsx';
import { sortedRows, tableOf } from './shape.js';

const TABS = [
  ['table', 'Table'],
  ['chart', 'Chart'],
  ['json', 'JSON'],
];
/** The most JSON text the JSON tab renders; the export holds all of it. */
const JSON_SHOWN = 1_000_000;

const clock = (at) => new Date(at).toLocaleTimeString();

/** What the answer is and how fresh: operation, when, how long, how many rows. */
function Status({ result, table, stale, running }) {
  if (running) return <span className="result-status running">running {running.operationName ?? 'query'}…</span>;
  if (!result) return <span className="result-status">no result yet</span>;
  const rows = table ? `${table.rows.length} row${table.rows.length === 1 ? '' : 's'}${table.path ? ` of ${table.path}` : ''}` : null;
  const parts = [
    result.operationName ?? (result.kind === 'subscription' ? 'subscription' : 'query'),
    result.kind === 'query' ? `ran ${clock(result.at)}` : `since ${clock(result.at)}`,
    result.ms != null ? `${Math.round(result.ms)} ms` : null,
    rows,
  ].filter(Boolean);
  return (
    <span className="result-status" data-testid="result-status" data-operation={result.operationName ?? ''}>
      {result.live && <span className="live-dot">● live · </span>}
      {parts.join(' · ')}
      {stale && <span className="stale"> · the query was edited since</span>}
    </span>
  );
}

/** One answer in the chosen tab. */
function ResultBody({ result, table, view, onView }) {
  const data = result?.value?.data ?? null;
  if (!result) {
    return <p className="hint">Run a query (Ctrl-Enter, or a saved query on the left): its answer shows here as a table, a chart or JSON.</p>;
  }
  if (view.tab === 'json') {
    const text = JSON.stringify(result.value, null, 2) ?? '';
    return (
      <pre className="json-view" data-testid="json-view">
        {text.length > JSON_SHOWN ? `${text.slice(0, JSON_SHOWN)}\n… (${text.length} characters: export JSON for all of it)` : text}
      </pre>
    );
  }
  if (!data) {
    return result.live ? <p className="hint">Subscribed: events show here as they arrive.</p> : <p className="hint">The answer has no data.</p>;
  }
  if (view.tab === 'chart') {
    return <ResultChart data={data} chartId={view.chart} onChartId={(chart) => onView({ ...view, chart })} />;
  }
  return (
    <ResultTable
      table={table}
      sorting={view.sorting}
      onSorting={(sorting) => onView({ ...view, sorting })}
      hidden={view.hidden}
    />
  );
}

export function ResultsPanel({ result, running, view, onView, stale, share, pinned, onPin }) {
  const data = result?.value?.data ?? null;
  const table = useMemo(() => (data ? tableOf(data, view.list) : null), [data, view.list]);
  const pinnedTable = useMemo(
    () => (pinned?.value?.data ? tableOf(pinned.value.data, view.list) : null),
    [pinned, view.list],
  );
  const [link, setLink] = useState(null);
  // A link is of the answer it was made for.
  useEffect(() => setLink(null), [result?.at]);

  const exportCsv = () => {
    const columns = table.columns.filter((c) => !view.hidden.includes(c));
    download(exportName(result, table.path, 'csv'), 'text/csv', toCsv(columns, sortedRows(table.rows, view.sorting)));
  };
  const exportJson = () =>
    download(exportName(result, '', 'json'), 'application/json', `${JSON.stringify(result.value, null, 2)}\n`);
  const makeLink = () => {
    const url = share();
    setLink(url);
    navigator.clipboard?.writeText(url).catch(() => {});
  };

  return (
    <section className="results" data-testid="result-views">
      <nav className="results-bar">
        <div className="tabs" role="tablist">
          {TABS.map(([name, label]) => (
            <button
              key={name}
              type="button"
              role="tab"
              aria-selected={view.tab === name}
              data-view={name}
              className={view.tab === name ? 'active' : ''}
              onClick={() => onView({ ...view, tab: name })}
            >
              {label}
            </button>
          ))}
        </div>
        {table && table.lists.length > 1 && view.tab === 'table' && (
          <label className="list-choice">
            List
            <select
              value={table.path}
              onChange={(e) => onView({ ...view, list: e.target.value, sorting: null })}
              data-testid="list-choice"
            >
              {table.lists.map((l) => (
                <option key={l.path} value={l.path}>
                  {l.path} ({l.rows.length})
                </option>
              ))}
            </select>
          </label>
        )}
        {table && view.tab === 'table' && (
          <ColumnChooser columns={table.columns} hidden={view.hidden} onHidden={(hidden) => onView({ ...view, hidden })} />
        )}
        <Status result={result} table={table} stale={stale} running={running} />
        <div className="actions">
          <button type="button" disabled={!table} onClick={exportCsv} data-testid="export-csv" title="The rows and columns shown, as CSV">
            CSV
          </button>
          <button type="button" disabled={!result} onClick={exportJson} data-testid="export-json" title="The whole answer, as JSON">
            JSON
          </button>
          <button type="button" onClick={makeLink} data-testid="share" title="A link to this query, its variables and this view (never your credentials)">
            Share link
          </button>
          <button
            type="button"
            disabled={!result && !pinned}
            onClick={onPin}
            data-testid="pin"
            title="Keep this answer beside the next ones, to compare"
          >
            {pinned ? 'Unpin' : 'Pin to compare'}
          </button>
        </div>
      </nav>
      {link && (
        <div className="share-link">
          <input readOnly value={link} data-testid="share-url" onFocus={(e) => e.target.select()} />
          <span className="hint">copied · holds the query, variables and view, not your credentials</span>
          <button type="button" className="link" onClick={() => setLink(null)}>
            close
          </button>
        </div>
      )}
      <Errors errors={result?.value?.errors} status={result?.status} />
      {pinned ? (
        <div className="compare" data-testid="compare">
          <div className="side">
            <div className="side-title">
              pinned: {pinned.operationName ?? 'result'} · {clock(pinned.at)}
            </div>
            <Errors errors={pinned.value?.errors} status={pinned.status} />
            <ResultBody result={pinned} table={pinnedTable} view={view} onView={onView} />
          </div>
          <div className="side">
            <div className="side-title">current: {result?.operationName ?? 'no result yet'}</div>
            <ResultBody result={result} table={table} view={view} onView={onView} />
          </div>
        </div>
      ) : (
        <ResultBody result={result} table={table} view={view} onView={onView} />
      )}
    </section>
  );
}
