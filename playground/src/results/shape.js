// How an answer becomes rows and columns. GraphQL answers keep the order the
// query asked for (mlgate preserves it), so the columns do too: nested
// objects become `a.b` columns in place, lists of scalars one joined cell,
// and lists of objects one cell that expands into its own table.

/** Every list of objects in `value` with its dotted path, outermost first. */
export function listsOfObjects(value) {
  const found = [];
  const visit = (node, at) => {
    if (Array.isArray(node)) {
      if (isListOfRecords(node)) found.push({ path: at.join('.'), rows: node });
      node.forEach((item, i) => visit(item, [...at, i]));
    } else if (isRecord(node)) {
      for (const [key, child] of Object.entries(node)) visit(child, [...at, key]);
    }
  };
  visit(value, []);
  return found;
}

export const isRecord = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
export const isListOfRecords = (v) => Array.isArray(v) && v.length > 0 && v.every(isRecord);

/**
 * An object's leaves as `a.b.c` keys, in field order. A list of scalars stays
 * an array (shown joined); a list of objects stays an array of objects (shown
 * as an expandable cell).
 */
export function flatten(node, prefix = '', out = {}) {
  for (const [key, value] of Object.entries(node)) {
    const column = `${prefix}${key}`;
    if (isRecord(value)) flatten(value, `${column}.`, out);
    else out[column] = value;
  }
  return out;
}

/**
 * The columns of `rows` in query order. Each row lists its keys in order; a
 * key first seen in a later row (its object was null before) is placed right
 * after the key that precedes it in that row, not at the end.
 */
export function orderedColumns(rows) {
  const columns = [];
  for (const row of rows) {
    let after = -1;
    for (const key of Object.keys(row)) {
      const known = columns.indexOf(key);
      if (known >= 0) {
        after = known;
        continue;
      }
      // A null object (`model`) and its fields (`model.modelId`) are one place.
      const fields = columns.filter((c) => c.startsWith(`${key}.`));
      if (fields.length) {
        after = columns.indexOf(fields[fields.length - 1]);
        continue;
      }
      const parent = columns.findIndex((c) => key.startsWith(`${c}.`));
      if (parent >= 0) {
        columns[parent] = key;
        after = parent;
        continue;
      }
      columns.splice(after + 1, 0, key);
      after += 1;
    }
  }
  return columns;
}

/**
 * The rows a view shows: the chosen list (or the answer's largest list of
 * objects), flattened, with their columns; `null` when the answer holds no
 * list (a single object is shown as one row).
 */
export function tableOf(data, chosenPath = null) {
  if (!isRecord(data)) return null;
  // Lists inside a row (`nodes.3.feedback`) open from their cell instead.
  const all = listsOfObjects(data);
  const outer = all.filter((l) => !/(^|\.)\d+(\.|$)/.test(l.path));
  const lists = outer.length ? outer : all;
  const largest = lists.reduce((best, l) => (!best || l.rows.length > best.rows.length ? l : best), null);
  const list = lists.find((l) => l.path === chosenPath) ?? largest;
  if (!list) {
    const row = flatten(data);
    return { path: '', lists, rows: [row], columns: Object.keys(row) };
  }
  const rows = list.rows.map((r) => flatten(r));
  return { path: list.path, lists, rows, columns: orderedColumns(rows) };
}

/** A cell's text. */
export function formatValue(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? value.toExponential(3) : String(Number(value.toPrecision(4)));
  }
  if (Array.isArray(value)) return value.map(formatValue).join(', ');
  // Timestamps to the second, in UTC (the CSV export keeps them whole).
  const time = typeof value === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(value) ? new Date(value) : null;
  if (time && !Number.isNaN(time.getTime())) return `${time.toISOString().slice(0, 19).replace('T', ' ')}Z`;
  return String(value);
}

const collator = new Intl.Collator(undefined, { numeric: true });
const missing = (v) => v === null || v === undefined || (Array.isArray(v) && v.length === 0);

/** Sort order of two cells: numbers as numbers, lists by length, text naturally; missing and empty last. */
function compareValues(a, b) {
  if (missing(a) || missing(b)) return missing(a) - missing(b);
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (Array.isArray(a) && Array.isArray(b)) return a.length - b.length;
  return collator.compare(String(a), String(b));
}

/**
 * The rows as the table shows them: sorted by `sorting` (`{ column, desc }`
 * or null; ties keep the answer's order). The table, the CSV export and the
 * comparison all use this, so an export holds exactly the rows shown.
 */
export function sortedRows(rows, sorting) {
  if (!sorting) return rows;
  const { column, desc } = sorting;
  return rows
    .map((row, i) => ({ row, i }))
    .sort((a, b) => {
      const order = compareValues(a.row[column], b.row[column]);
      // Missing values stay last in either direction.
      const either = missing(a.row[column]) || missing(b.row[column]);
      return (desc && !either ? -order : order) || a.i - b.i;
    })
    .map(({ row }) => row);
}
