// Credentials (kept in this browser only) and the ways the playground talks
// to mlgate: HTTP for queries and mutations, graphql-transport-ws for
// subscriptions, both carrying `Authorization: Bearer <token>`.
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { getOperationAST, parse } from 'graphql';
import { createClient } from 'graphql-ws';

const STORAGE_KEY = 'mlgate.credentials';

export const loadToken = () => localStorage.getItem(STORAGE_KEY) ?? '';

export function saveToken(token) {
  if (token) localStorage.setItem(STORAGE_KEY, token);
  else localStorage.removeItem(STORAGE_KEY);
}

export const authorization = (token) => (token ? { Authorization: `Bearer ${token}` } : {});

export const websocketUrl = () =>
  `${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}/graphql/ws`;

/** POSTs one GraphQL request; resolves to `{ status, body }`. */
export async function request(token, query, variables = {}, operationName = undefined) {
  const response = await fetch('/graphql', {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/graphql-response+json, application/json',
      ...authorization(token),
    },
    body: JSON.stringify({ query, variables, operationName }),
  });
  return { status: response.status, body: await response.json() };
}

/**
 * Who the credentials belong to: `{ state: 'ok', me }`, `{ state: 'missing' }`,
 * or `{ state: 'refused', message }` (the server's own reason, e.g. a revoked key).
 */
export async function identify(token) {
  if (!token) return { state: 'missing' };
  try {
    const { status, body } = await request(token, '{ me { tenant role subject authMethod expiresAt } }');
    if (status === 200 && body.data?.me) return { state: 'ok', me: body.data.me };
    const reason = body.errors?.[0]?.message ?? `HTTP ${status}`;
    return { state: 'refused', message: status === 401 ? `${reason} (401)` : reason };
  } catch (error) {
    return { state: 'refused', message: `mlgate did not answer: ${error.message}` };
  }
}

/** Whether the operation of `query` named `operationName` (or its only one) is a subscription. */
export const isSubscription = (query, operationName) => operationType(query, operationName) === 'subscription';

/** `query`, `mutation` or `subscription`; null when the document does not parse (the server explains). */
export function operationType(query, operationName) {
  try {
    return getOperationAST(parse(query), operationName ?? undefined)?.operation ?? null;
  } catch {
    return null;
  }
}

/** The most subscription events the results pane keeps (the newest). */
const EVENTS_KEPT = 1000;

/** Each root field's events as one list: `{ driftAlerts: [first, second, …] }`. */
function eventLists(events) {
  const lists = {};
  for (const data of events) {
    for (const [field, value] of Object.entries(data ?? {})) (lists[field] ??= []).push(value);
  }
  return lists;
}

/**
 * Passes a subscription's events on to GraphiQL and reports them, gathered,
 * to the results pane as they arrive. Written by hand rather than as an async
 * generator: GraphiQL stops a subscription with `return()`, which a generator
 * would only act on after the next event; here it ends the stream at once.
 */
function reported(iterable, base, onResult) {
  const inner = iterable[Symbol.asyncIterator]();
  const events = [];
  let received = 0;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    onResult((current) => (current?.at === base.at ? { ...current, live: false } : current));
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      if (stopped) return { done: true, value: undefined };
      const step = await inner.next();
      if (stopped) return { done: true, value: undefined };
      if (step.done) {
        stop();
        return step;
      }
      const event = step.value;
      received += 1;
      if (event?.data) {
        events.push(event.data);
        if (events.length > EVENTS_KEPT) events.shift();
      }
      // An event's errors are that event's: the next clean one clears them.
      const errors = event?.errors?.length ? { errors: event.errors } : {};
      onResult({ ...base, live: true, events: received, value: { ...errors, data: eventLists(events) } });
      return step;
    },
    async return() {
      stop();
      await inner.return?.();
      return { done: true, value: undefined };
    },
  };
}

/**
 * GraphiQL's fetcher for `token`. Queries and mutations are POSTed;
 * subscriptions go over WebSocket with the token in `connection_init`. Every
 * answer but the schema's introspection is also reported to the results pane:
 * `onRunning` when a request starts, `onResult` with its answer (for a
 * subscription, with the events so far, as each arrives).
 */
export function createFetcher(token, { onRunning, onResult }) {
  const headers = authorization(token);
  const wsClient = token
    ? createClient({ url: websocketUrl(), connectionParams: headers, lazy: true, retryAttempts: 3 })
    : undefined;
  const subscriptions = createGraphiQLFetcher({ url: '/graphql', headers, wsClient });
  return (params, options) => {
    if (params.operationName === 'IntrospectionQuery') {
      return request(token, params.query, params.variables ?? {}, params.operationName).then(({ body }) => body);
    }
    const base = {
      operationName: params.operationName ?? null,
      query: params.query,
      variables: params.variables ?? {},
      at: Date.now(),
    };
    if (isSubscription(params.query, params.operationName)) {
      onResult({ ...base, kind: 'subscription', live: true, events: 0, value: { data: null } });
      return Promise.resolve(subscriptions(params, options)).then((answer) =>
        answer && typeof answer[Symbol.asyncIterator] === 'function'
          ? reported(answer, { ...base, kind: 'subscription' }, onResult)
          : (onResult({ ...base, kind: 'subscription', live: false, value: answer }), answer),
      );
    }
    return run(token, base, { onRunning, onResult }).then((result) => result.value);
  };
}

/** Runs a query or mutation and reports it to the results pane; resolves to the report. */
export async function run(token, base, { onRunning, onResult }) {
  onRunning(base);
  const started = performance.now();
  let result;
  try {
    const { status, body } = await request(token, base.query, base.variables, base.operationName ?? undefined);
    result = { ...base, kind: 'query', status, ms: performance.now() - started, value: body };
  } catch (error) {
    const message = `mlgate did not answer: ${error.message}`;
    result = { ...base, kind: 'query', ms: performance.now() - started, value: { errors: [{ message }] } };
  }
  onRunning(null);
  onResult(result);
  return result;
}
