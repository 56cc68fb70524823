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

/** Whether the operation `params` would run is a subscription. */
function isSubscription({ query, operationName }) {
  try {
    return getOperationAST(parse(query), operationName ?? undefined)?.operation === 'subscription';
  } catch {
    return false; // the server explains a document that does not parse
  }
}

/**
 * GraphiQL's fetcher for `token`. Queries and mutations are POSTed, and each
 * result (not the schema introspection) is also reported to `onResult` for
 * the table and chart views; subscriptions go over WebSocket with the token
 * in `connection_init`.
 */
export function createFetcher(token, onResult) {
  const headers = authorization(token);
  const wsClient = token
    ? createClient({ url: websocketUrl(), connectionParams: headers, lazy: true, retryAttempts: 3 })
    : undefined;
  const subscriptions = createGraphiQLFetcher({ url: '/graphql', headers, wsClient });
  return (params, options) => {
    if (isSubscription(params)) return subscriptions(params, options);
    return request(token, params.query, params.variables ?? {}, params.operationName).then(({ body }) => {
      if (params.operationName !== 'IntrospectionQuery') {
        onResult({ operationName: params.operationName ?? null, value: body });
      }
      return body;
    });
  };
}
