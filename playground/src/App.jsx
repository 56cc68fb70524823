import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { GraphiQL, HISTORY_PLUGIN } from 'graphiql';
import { Panel, PanelGroup, PanelResizeHandle } from 'react-resizable-panels';

import { createFetcher, identify, loadToken, operationType, run, saveToken } from './connection.js';
import { LiveAlertsContext, LIVE_ALERTS_PLUGIN, useLiveAlerts } from './LiveAlerts.jsx';
import { ResultsPanel } from './results/ResultsPanel.jsx';
import { SAVED_QUERIES_PLUGIN } from './SavedQueries.jsx';
import { SessionContext } from './session.js';
import { shareLink, sharedState } from './share.js';

// GraphiQL puts its Docs explorer first by itself.
const PLUGINS = [SAVED_QUERIES_PLUGIN, HISTORY_PLUGIN, LIVE_ALERTS_PLUGIN];

const WELCOME = `# Welcome to the mlgate playground.
# Enter an API key or JWT above, then pick a saved query on the left
# (or write your own: Ctrl-Space completes, Ctrl-Enter runs, the Docs panel explains every field).
{
  me { tenant role subject }
}
`;

const LAYOUT_KEY = 'mlgate.layout';
/** What the live feed's answers are "of", for the view (it has no query of its own to share). */
const FEED = '# the live drift-alert feed';
const EMPTY_VIEW = { tab: 'table', list: null, chart: null, sorting: null, hidden: [] };

/** The view settings a link or a new answer may carry, with defaults for the rest. */
const viewOf = (view) => ({
  ...EMPTY_VIEW,
  ...(['table', 'chart', 'json'].includes(view?.tab) && { tab: view.tab }),
  ...(typeof view?.list === 'string' && { list: view.list }),
  ...(typeof view?.chart === 'string' && { chart: view.chart }),
  ...(view?.sorting?.column && { sorting: { column: String(view.sorting.column), desc: Boolean(view.sorting.desc) } }),
  ...(Array.isArray(view?.hidden) && { hidden: view.hidden.filter((c) => typeof c === 'string') }),
});

const variablesText = (variables) =>
  typeof variables === 'string' ? variables : JSON.stringify(variables ?? {}, null, 2);

export function App() {
  const [token, setToken] = useState(loadToken);
  const [identity, setIdentity] = useState({ state: 'checking' });
  // A share link in the URL: its query and variables open in the editor, its
  // view in the results pane, and it runs once the visitor is signed in.
  const [shared, setShared] = useState(sharedState);
  const [result, setResult] = useState(null);
  const [running, setRunning] = useState(null);
  // The view belongs to the query it was set for: another query's answer
  // starts from a fresh view (on the same tab).
  const [viewState, setViewState] = useState(() => ({ ...viewOf(shared?.view), forQuery: shared?.query ?? null }));
  const [pinned, setPinned] = useState(null);
  const [followFeed, setFollowFeed] = useState(false);
  const [layout, setLayout] = useState(() => localStorage.getItem(LAYOUT_KEY) ?? 'below');
  // The editor's text, to tell when the answer shown is of an earlier version.
  // GraphiQL reports edits after a pause, so a run also sets it: what ran is
  // what the editor held.
  const [editorQuery, setEditorQuery] = useState(shared?.query ?? null);
  const editorVariables = useRef(shared?.variables ?? null);

  useEffect(() => {
    let current = true;
    setIdentity({ state: 'checking' });
    identify(token).then((found) => current && setIdentity(found));
    return () => {
      current = false;
    };
  }, [token]);

  // A new answer (not a subscription's next event) ends following the feed,
  // and tells what the editor held when it ran.
  const lastRun = useRef(null);
  const onResult = useCallback((update) => {
    if (typeof update === 'object' && update && update.at !== lastRun.current) {
      lastRun.current = update.at;
      setFollowFeed(false);
      if (update.query) setEditorQuery(update.query);
    }
    setResult(update);
  }, []);
  const reports = useMemo(() => ({ onRunning: setRunning, onResult }), [onResult]);
  const fetcher = useMemo(() => createFetcher(token, reports), [token, reports]);
  const alerts = useLiveAlerts(identity.state === 'ok' ? token : null);

  // A shared query runs once its visitor is signed in; a mutation or a
  // subscription only opens in the editor (a link must not write with the
  // visitor's credentials, nor hold a stream open, unasked).
  useEffect(() => {
    if (!shared || identity.state !== 'ok') return;
    const type = operationType(shared.query, shared.operationName);
    // `null`: it does not parse, or names no operation; the server says which.
    if (type === 'query' || type === null) {
      const base = { operationName: shared.operationName, query: shared.query, variables: {}, at: Date.now() };
      try {
        base.variables = shared.variables.trim() ? JSON.parse(shared.variables) : {};
        run(token, base, reports);
      } catch (error) {
        onResult({ ...base, kind: 'query', value: { errors: [{ message: `the link's variables are not JSON: ${error.message}` }] } });
      }
    }
    setShared(null);
    window.history.replaceState(null, '', window.location.pathname);
  }, [shared, identity.state, token, reports, onResult]);

  const feedResult = useMemo(
    () =>
      followFeed && {
        kind: 'feed',
        operationName: 'LiveDriftAlerts (feed)',
        query: FEED,
        at: Date.now(),
        live: alerts.status === 'live',
        value: { data: { driftAlerts: [...alerts.alerts].reverse() } },
      },
    [followFeed, alerts],
  );
  const shown = feedResult || result;
  const view =
    !shown?.query || viewState.forQuery === shown.query ? viewState : { ...EMPTY_VIEW, tab: viewState.tab };
  const setView = (next) => setViewState({ ...next, forQuery: shown?.query ?? null });

  const signIn = (value) => {
    const trimmed = value.trim();
    saveToken(trimmed);
    setToken(trimmed);
  };
  const ran = shown?.query && shown.query !== FEED;
  const share = () =>
    shareLink({
      query: ran ? shown.query : (editorQuery ?? ''),
      variables: ran ? variablesText(shown.variables) : (editorVariables.current ?? ''),
      operationName: ran ? shown.operationName : null,
      view: viewOf(view),
    });
  const toggleLayout = () => {
    const next = layout === 'below' ? 'right' : 'below';
    localStorage.setItem(LAYOUT_KEY, next);
    setLayout(next);
  };
  const session = useMemo(() => ({ token, showFeed: () => setFollowFeed(true) }), [token]);
  const stale = Boolean(ran && editorQuery && editorQuery !== shown.query);

  return (
    <div className="playground">
      <Header identity={identity} token={token} onSignIn={signIn} layout={layout} onLayout={toggleLayout} />
      <PanelGroup
        key={layout}
        direction={layout === 'below' ? 'vertical' : 'horizontal'}
        autoSaveId={`${LAYOUT_KEY}.${layout}`}
        className="workspace"
      >
        <Panel id="editor" order={1} defaultSize={layout === 'below' ? 50 : 55} minSize={20}>
          <SessionContext.Provider value={session}>
            <LiveAlertsContext.Provider value={alerts}>
              <GraphiQL
                // A new token means a new schema request and WebSocket client.
                key={token}
                fetcher={fetcher}
                plugins={PLUGINS}
                visiblePlugin={SAVED_QUERIES_PLUGIN}
                defaultQuery={WELCOME}
                initialQuery={shared?.query}
                initialVariables={shared?.variables}
                defaultEditorToolsVisibility="variables"
                isHeadersEditorEnabled={false}
                // Credentials are kept by the box above, not as headers.
                showPersistHeadersSettings={false}
                onEditQuery={setEditorQuery}
                onEditVariables={(variables) => (editorVariables.current = variables)}
              >
                <GraphiQL.Logo>mlgate</GraphiQL.Logo>
              </GraphiQL>
            </LiveAlertsContext.Provider>
          </SessionContext.Provider>
        </Panel>
        <PanelResizeHandle className="resize-handle" data-testid="resize-handle" />
        <Panel id="results" order={2} defaultSize={layout === 'below' ? 50 : 45} minSize={15}>
          <ResultsPanel
            result={shown}
            running={running}
            view={view}
            onView={setView}
            stale={stale}
            share={share}
            pinned={pinned}
            onPin={() => setPinned((p) => (p ? null : shown))}
          />
        </Panel>
      </PanelGroup>
    </div>
  );
}

function Header({ identity, token, onSignIn, layout, onLayout }) {
  const [draft, setDraft] = useState(token);
  useEffect(() => setDraft(token), [token]);
  const submit = (event) => {
    event.preventDefault();
    onSignIn(draft);
  };
  return (
    <header className="topbar">
      <span className="brand">mlgate playground</span>
      <form className="credentials" onSubmit={submit}>
        <label htmlFor="credentials">API key or JWT</label>
        <input
          id="credentials"
          data-testid="credentials"
          type="password"
          autoComplete="off"
          spellCheck="false"
          placeholder="mlg_… (kept in this browser only)"
          value={draft}
          onChange={(event) => setDraft(event.target.value)}
        />
        <button type="submit" data-testid="sign-in">
          Use
        </button>
        {token && (
          <button type="button" className="secondary" onClick={() => onSignIn('')}>
            Forget
          </button>
        )}
      </form>
      <Identity identity={identity} />
      <button type="button" className="secondary layout" onClick={onLayout} data-testid="layout" title="Where the results pane sits">
        {layout === 'below' ? 'Results right' : 'Results below'}
      </button>
    </header>
  );
}

function Identity({ identity }) {
  switch (identity.state) {
    case 'ok':
      return (
        <span className="identity ok" data-testid="identity">
          tenant <strong>{identity.me.tenant}</strong> · {identity.me.role.toLowerCase()}
          <span className="subject"> ({identity.me.subject})</span>
        </span>
      );
    case 'refused':
      return (
        <span className="identity refused" data-testid="identity" role="alert">
          Credentials refused: {identity.message}
        </span>
      );
    case 'missing':
      return (
        <span className="identity" data-testid="identity">
          Not signed in: every request needs an API key or JWT
        </span>
      );
    default:
      return (
        <span className="identity" data-testid="identity">
          checking…
        </span>
      );
  }
}
