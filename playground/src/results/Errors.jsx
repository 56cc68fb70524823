// GraphQL errors as an analyst reads them: the code, the reason in one line,
// where in the query, and the path in the answer. A parse error's message
// carries the parser's multi-line caret drawing; its reason is the line
// that says what was expected.

function reason(message) {
  const lines = String(message ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  const expected = lines.find((l) => l.startsWith('= '));
  return expected ? expected.slice(2) : (lines[0] ?? 'error');
}

export function Errors({ errors, status }) {
  if (!errors?.length) return null;
  return (
    <ul className="errors" role="alert" data-testid="errors">
      {errors.map((error, i) => (
        <li key={i}>
          <span className="code">{error.extensions?.code ?? (status >= 400 ? `HTTP ${status}` : 'ERROR')}</span>
          <span className="message">{reason(error.message)}</span>
          {error.locations?.length > 0 && (
            <span className="where">
              {error.locations.map((l) => `line ${l.line}, column ${l.column}`).join('; ')}
            </span>
          )}
          {error.path?.length > 0 && <span className="where">at {error.path.join('.')}</span>}
        </li>
      ))}
    </ul>
  );
}
