// The table view: the chosen list's rows in query order, sortable by any
// column, columns chosen by the analyst, lists of objects (SHAP top-k,
// feedback) expanded in a detail row. Only the rows in view are rendered
// (@tanstack/react-virtual), so a 10,000-group answer scrolls freely.
// Sorting is our own (shape.js's sortedRows): the CSV export and the
// comparison need the very rows shown, outside any table instance.
import { useVirtualizer } from '@tanstack/react-virtual';
import { useMemo, useRef, useState } from 'react';

import { flatten, formatValue, isListOfRecords, isRecord, orderedColumns, sortedRows } from './shape.js';

const cellClass = (value) => (typeof value === 'number' ? 'number' : '');

/** Columns in a menu of checkboxes; hidden ones are left out of the table and the export. */
export function ColumnChooser({ columns, hidden, onHidden }) {
  const shown = columns.length - columns.filter((c) => hidden.includes(c)).length;
  return (
    <details className="column-chooser" data-testid="column-chooser">
      <summary>
        Columns {shown}/{columns.length}
      </summary>
      <div className="column-menu">
        <button type="button" onClick={() => onHidden([])}>
          Show all
        </button>
        {columns.map((c) => (
          <label key={c}>
            <input
              type="checkbox"
              checked={!hidden.includes(c)}
              onChange={(e) => onHidden(e.target.checked ? hidden.filter((h) => h !== c) : [...hidden, c])}
            />
            {c}
          </label>
        ))}
      </div>
    </details>
  );
}

/** A list of objects inside a cell, as a small table of its own. */
function NestedTable({ items }) {
  const rows = items.map((item) => (isRecord(item) ? flatten(item) : { value: item }));
  const columns = orderedColumns(rows);
  return (
    <table className="nested">
      <thead>
        <tr>
          {columns.map((c) => (
            <th key={c}>{c}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((row, i) => (
          <tr key={i}>
            {columns.map((c) => (
              <td key={c} className={cellClass(row[c])}>
                {isListOfRecords(row[c]) ? <NestedTable items={row[c]} /> : formatValue(row[c])}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function ResultTable({ table, sorting, onSorting, hidden }) {
  const scroller = useRef(null);
  // Which list cell of a row is open; weak, so old answers' rows are not kept.
  const [expanded, setExpanded] = useState(() => new WeakMap());
  const columns = table.columns.filter((c) => !hidden.includes(c));
  const rows = useMemo(() => sortedRows(table.rows, sorting), [table.rows, sorting]);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => 27,
    overscan: 16,
  });
  const items = virtualizer.getVirtualItems();
  const top = items.length ? items[0].start : 0;
  const bottom = items.length ? virtualizer.getTotalSize() - items[items.length - 1].end : 0;

  const sortBy = (column) => {
    if (sorting?.column !== column) onSorting({ column, desc: false });
    else if (!sorting.desc) onSorting({ column, desc: true });
    else onSorting(null);
  };
  const toggle = (row, column) =>
    setExpanded((current) => {
      // A WeakMap cannot be copied; a new one per change holds just this row's state and the rest.
      const next = new WeakMap();
      for (const r of rows) if (current.has(r)) next.set(r, current.get(r));
      if (next.get(row) === column) next.delete(row);
      else next.set(row, column);
      return next;
    });

  return (
    <div className="table-wrap" ref={scroller} data-testid="table-scroller">
      <table data-testid="result-table" data-rows={rows.length} data-path={table.path}>
        <thead>
          <tr>
            {columns.map((c) => (
              <th
                key={c}
                data-column={c}
                aria-sort={sorting?.column === c ? (sorting.desc ? 'descending' : 'ascending') : 'none'}
              >
                <button type="button" onClick={() => sortBy(c)} title="Sort by this column">
                  {c}
                  <span className="sort-mark">{sorting?.column === c ? (sorting.desc ? ' ▼' : ' ▲') : ''}</span>
                </button>
              </th>
            ))}
          </tr>
        </thead>
        {top > 0 && (
          <tbody aria-hidden="true">
            <tr style={{ height: top }} />
          </tbody>
        )}
        {items.map((item) => {
          const row = rows[item.index];
          const open = expanded.get(row);
          return (
            <tbody key={item.key} data-index={item.index} ref={virtualizer.measureElement}>
              <tr className="data-row">
                {columns.map((c) => (
                  <td key={c} className={cellClass(row[c])}>
                    {isListOfRecords(row[c]) ? (
                      <button
                        type="button"
                        className="expand"
                        aria-expanded={open === c}
                        data-expand={c}
                        onClick={() => toggle(row, c)}
                      >
                        {row[c].length} {open === c ? '▾' : '▸'}
                      </button>
                    ) : Array.isArray(row[c]) && row[c].length === 0 ? (
                      '—'
                    ) : (
                      formatValue(row[c])
                    )}
                  </td>
                ))}
              </tr>
              {open && columns.includes(open) && (
                <tr className="detail-row">
                  <td colSpan={columns.length}>
                    <div className="detail-title">{open}</div>
                    <NestedTable items={row[open]} />
                  </td>
                </tr>
              )}
            </tbody>
          );
        })}
        {bottom > 0 && (
          <tbody aria-hidden="true">
            <tr style={{ height: bottom }} />
          </tbody>
        )}
      </table>
      {rows.length === 0 && <p className="hint">The list is empty.</p>}
    </div>
  );
}
