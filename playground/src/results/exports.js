// Taking a result away: CSV of the rows shown (visible columns, current
// order), JSON of the whole answer, both downloaded by the browser.

const cell = (value) => {
  if (value === null || value === undefined) return '';
  let text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  // Tenant text (a feedback comment) must not become a spreadsheet formula.
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  // RFC 4180: quote a field holding a quote, a comma or a line break.
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

export function toCsv(columns, rows) {
  const lines = [columns.map(cell).join(',')];
  for (const row of rows) lines.push(columns.map((c) => cell(row[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** A file name for an export: the operation, the list and the time it ran. */
export function exportName(result, path, extension) {
  const stamp = new Date(result.at).toISOString().slice(0, 19).replaceAll(':', '-');
  const parts = [result.operationName ?? 'result', path].filter(Boolean).join('-');
  return `${parts.replace(/[^\w.-]+/g, '_')}-${stamp}.${extension}`;
}

export function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
