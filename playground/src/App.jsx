import { useEffect, useMemo, useState } from 'react';
import { GraphiQL, HISTORY_PLUGIN } from 'graphiql';

import { createFetcher, identify, loadToken, saveToken } from './connection.js';
import { LiveAlertsContext, LIVE_ALERTS_PLUGIN, useLiveAlerts } from './LiveAlerts.jsx';
import { SAVED_QUERIES_PLUGIN } from './SavedQueries.jsx';
import { ResultViews } from './ResultViews.jsx';

// GraphiQL puts its Docs explorer first by itself.
const PLUGINS = [SAVED_QUERIES_PLUGIN, HISTORY_PLUGIN, LIVE_ALERTS_PLUGIN];

const WELCOME = `# Welcome to the mlgate playground.
# Enter an API key or JWT above, then pick a saved query on the left
# (or write your own: Ctrl-Space completes, the Docs panel explains every field).
{
  me { tenant role subject }
}
`;

export function App() {
  const [token, setToken] = useState(loadToken);
  const [identity, setIdentity] = useState({ state: 'checking' });
  const [result, setResult] = useState(null);

  useEffect(() => {
    let current = true;
    setIdentity({ state: 'checking' });
    identify(token).then((found) => current && setIdentity(found));
    return () => {
      current = false;
    };
  }, [token]);

  const fetcher = useMemo(() => createFetcher(token, setResult), [token]);
  const alerts = useLiveAlerts(identity.state === 'ok' ? token : null);

  const signIn = (value) => {
    const trimmed = value.trim();
    saveToken(trimmed);
    setToken(trimmed);
  };

  return (
    <div className="playground">
      <Header identity={identity} token={token} onSignIn={signIn} />
      <main className="workspace">
        <LiveAlertsContext.Provider value={alerts}>
          <GraphiQL
            // A new token means a new schema request and WebSocket client.
            key={token}
            fetcher={fetcher}
            plugins={PLUGINS}
            visiblePlugin={SAVED_QUERIES_PLUGIN}
            defaultQuery={WELCOME}
            defaultEditorToolsVisibility="variables"
            isHeadersEditorEnabled={false}
          >
            <GraphiQL.Logo>mlgate</GraphiQL.Logo>
          </GraphiQL>
        </LiveAlertsContext.Provider>
        <ResultViews result={result} />
      </main>
    </div>
  );
}

function Header({ identity, token, onSignIn }) {
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
