import { createContext, useContext, useEffect, useState } from 'react';
import { createClient } from 'graphql-ws';

import { authorization, request, websocketUrl } from './connection.js';
import { SessionContext } from './session.js';

const SUBSCRIPTION = `subscription LiveDriftAlerts($since: String) {
  driftAlerts(since: $since, minLevel: INFO) {
    cursor sequence level driftType metricId psiScore ksStatistic driftScore measuredAt raisedAt
    model { modelId modelName }
  }
}`;

/** The most alerts the feed keeps on screen. */
const KEPT = 200;

export const LiveAlertsContext = createContext({ status: 'off', alerts: [] });

/**
 * The tenant's drift alerts as they are raised, from the moment the page
 * signed in: subscribed with `since: driftAlertCursor`, so nothing between
 * the two is missed; a reconnect replays from the same cursor and alerts
 * already shown are skipped by their sequence number.
 */
export function useLiveAlerts(token) {
  const [feed, setFeed] = useState({ status: 'off', alerts: [], error: null });

  useEffect(() => {
    if (!token) {
      setFeed({ status: 'off', alerts: [], error: null });
      return undefined;
    }
    let disposed = false;
    let newest = 0;
    const client = createClient({
      url: websocketUrl(),
      connectionParams: authorization(token),
      retryAttempts: Infinity,
      shouldRetry: () => true,
      on: {
        connected: () => !disposed && setFeed((f) => ({ ...f, status: 'live', error: null })),
        closed: (event) =>
          !disposed &&
          setFeed((f) => ({ ...f, status: 'reconnecting', error: event?.reason || f.error })),
      },
    });
    setFeed({ status: 'connecting', alerts: [], error: null });
    request(token, '{ driftAlertCursor }').then(({ body }) => {
      if (disposed) return;
      const since = body.data?.driftAlertCursor ?? null;
      client.subscribe(
        { query: SUBSCRIPTION, variables: { since } },
        {
          next: ({ data, errors }) => {
            if (errors?.length) {
              setFeed((f) => ({ ...f, error: errors[0].message }));
              return;
            }
            const alert = data?.driftAlerts;
            if (!alert || alert.sequence <= newest) return;
            newest = alert.sequence;
            setFeed((f) => ({ ...f, alerts: [alert, ...f.alerts].slice(0, KEPT) }));
          },
          error: (error) => setFeed((f) => ({ ...f, status: 'stopped', error: String(error?.reason ?? error) })),
          complete: () => {},
        },
      );
    });
    return () => {
      disposed = true;
      client.dispose();
    };
  }, [token]);

  return feed;
}

function BellIcon() {
  return (
    <svg viewBox="0 0 24 24" width="20" height="20" fill="none" stroke="currentColor" strokeWidth="1.5" aria-hidden="true">
      <path d="M6 17V11a6 6 0 1 1 12 0v6l2 2H4z" />
      <path d="M10 21h4" />
    </svg>
  );
}

const time = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
const score = (value) => (value == null ? '—' : value.toFixed(3));

function LiveAlerts() {
  const { status, alerts, error } = useContext(LiveAlertsContext);
  const { showFeed } = useContext(SessionContext);
  return (
    <section className="live-alerts" data-testid="live-alerts">
      <div className="graphiql-doc-explorer-title">Live drift alerts</div>
      {status !== 'off' && (
        <button type="button" className="show-feed" onClick={showFeed} data-testid="show-feed">
          Show in the results pane (table, chart, export)
        </button>
      )}
      <p className={`feed-status ${status}`} data-testid="feed-status">
        {status === 'off' ? 'Sign in to follow your tenant’s drift alerts.' : `Feed ${status}`}
        {error && <span className="feed-error"> · {error}</span>}
      </p>
      {alerts.length === 0 && status !== 'off' && <p className="hint">No alert since this page opened.</p>}
      <ol>
        {alerts.map((alert) => (
          <li key={alert.sequence} data-metric={alert.metricId}>
            <span className={`level ${(alert.level ?? 'info').toLowerCase()}`}>{alert.level ?? 'INFO'}</span>
            <strong>{alert.model?.modelName ?? alert.model?.modelId ?? 'no model'}</strong>
            <span className="drift-type">{alert.driftType.toLowerCase()} drift</span>
            <div className="alert-detail">
              {alert.metricId} · PSI {score(alert.psiScore)} · KS {score(alert.ksStatistic)} · measured {time(alert.measuredAt)}
            </div>
          </li>
        ))}
      </ol>
    </section>
  );
}

export const LIVE_ALERTS_PLUGIN = {
  title: 'Live drift alerts',
  icon: BellIcon,
  content: LiveAlerts,
};
