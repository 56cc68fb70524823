// The saved analyst queries of ../queries/*.graphql. Each file starts with
// comment lines: the title, a description, and `# variables: {…}` with the
// default variables, in which `{{now}}`, `{{daysAgo:N}}` and `{{hoursAgo:N}}`
// become timestamps when the query is loaded, and `"{{alertCursor}}"` the
// tenant's current drift-alert cursor (a subscription resumes from it).
// (tests/playground.rs runs every file against demo data the same way.)
const files = import.meta.glob('../queries/*.graphql', { query: '?raw', import: 'default', eager: true });

function parse(path, text) {
  const header = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('#')) break;
    header.push(line.replace(/^#\s?/, '').trim());
  }
  const variablesLine = header.find((line) => line.startsWith('variables:'));
  const description = header
    .slice(1)
    .filter((line) => !line.startsWith('variables:'))
    .join(' ');
  const name = path.split('/').pop().replace(/\.graphql$/, '');
  return {
    id: name.replace(/^\d+-/, ''),
    title: header[0] ?? name,
    description,
    query: text
      .split('\n')
      .filter((line) => !line.startsWith('#'))
      .join('\n')
      .trim(),
    variables: variablesLine ? variablesLine.slice('variables:'.length).trim() : '{}',
  };
}

export const SAVED_QUERIES = Object.entries(files)
  .sort(([a], [b]) => a.localeCompare(b))
  .map(([path, text]) => parse(path, text));

/** The variables JSON with its time placeholders filled in, pretty-printed. */
export function resolveVariables(json, now = new Date(), cursor = null) {
  const iso = (date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const filled = json
    .replaceAll('"{{alertCursor}}"', JSON.stringify(cursor))
    .replaceAll('{{now}}', iso(now))
    .replace(/\{\{daysAgo:(\d+)\}\}/g, (_, n) => iso(new Date(now - n * 86_400_000)))
    .replace(/\{\{hoursAgo:(\d+)\}\}/g, (_, n) => iso(new Date(now - n * 3_600_000)));
  try {
    return JSON.stringify(JSON.parse(filled), null, 2);
  } catch {
    return filled;
  }
}
