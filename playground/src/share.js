// Share links: the query, its variables and the view (tab, list, chart,
// sort, hidden columns) in the URL's fragment, which browsers never send to
// a server. The credential is never part of it: whoever opens the link signs
// in with their own key, and sees their own tenant's answer.

const PREFIX = '#share=';

const toBase64Url = (text) => {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
};

const fromBase64Url = (text) => {
  const binary = atob(text.replaceAll('-', '+').replaceAll('_', '/'));
  return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
};

/** The link for `state` ({ query, variables, operationName, view }) on this page. */
export function shareLink(state) {
  const { query, variables, operationName, view } = state;
  const payload = toBase64Url(JSON.stringify({ v: 1, query, variables, operationName, view }));
  return `${window.location.origin}${window.location.pathname}${PREFIX}${payload}`;
}

/** The shared state in this page's URL, or null (a broken link is ignored, with a note). */
export function sharedState(hash = window.location.hash) {
  if (!hash.startsWith(PREFIX)) return null;
  try {
    const state = JSON.parse(fromBase64Url(hash.slice(PREFIX.length)));
    if (state.v !== 1 || typeof state.query !== 'string') return null;
    return {
      query: state.query,
      variables: typeof state.variables === 'string' ? state.variables : '',
      operationName: typeof state.operationName === 'string' ? state.operationName : null,
      view: state.view && typeof state.view === 'object' ? state.view : {},
    };
  } catch {
    console.warn('the share link in this URL could not be read');
    return null;
  }
}
