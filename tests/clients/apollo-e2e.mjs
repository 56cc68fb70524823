// Usage: node apollo-e2e.mjs <graphql url> <viewer key> <apq|batch|trusted|manifest>
// Apollo Client 4 against a running mlgate, recording every request it
// sends. Prints one JSON line: what each step answered and the requests
// behind it ({method, query: whether the text was sent, hash: whether a
// persistedQuery hash was, batch: entries when the body was an array}).
// `manifest` prints instead the trusted-documents manifest of the `Me`
// query ({sha256: text}, as @graphql-codegen's client preset writes it),
// with the text exactly as Apollo sends it (`__typename` added).
// Exits non-zero on anything unexpected; the Rust test checks the log.
import { createHash } from 'node:crypto';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { print } from 'graphql';
import { of } from 'rxjs';
import { BatchHttpLink } from '@apollo/client/link/batch-http';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries';

const [url, key, scenario] = process.argv.slice(2);
if (!url || !key || !scenario) {
  console.error('usage: node apollo-e2e.mjs <graphql url> <viewer key> <apq|batch|trusted|manifest>');
  process.exit(2);
}

const sent = [];
async function recordingFetch(input, init = {}) {
  const target = new URL(typeof input === 'string' ? input : (input.url ?? String(input)));
  const method = init.method ?? 'GET';
  let entries;
  if (method === 'GET') {
    const p = target.searchParams;
    entries = [{ query: p.has('query'), extensions: p.get('extensions') }];
  } else {
    const body = JSON.parse(init.body);
    entries = (Array.isArray(body) ? body : [body]).map((b) => ({
      query: typeof b.query === 'string',
      extensions: b.extensions ? JSON.stringify(b.extensions) : null,
    }));
  }
  const response = await fetch(input, init);
  sent.push({
    method,
    status: response.status,
    batch: entries.length,
    query: entries.every((e) => e.query),
    hash: entries.every((e) => (e.extensions ?? '').includes('sha256Hash')),
  });
  return response;
}

const sha256 = (text) => createHash('sha256').update(text).digest('hex');
const headers = { authorization: `Bearer ${key}` };
const http = (options = {}) => new HttpLink({ uri: url, headers, fetch: recordingFetch, ...options });
const client = (link) => new ApolloClient({ link, cache: new InMemoryCache() });

const ME = gql`query Me { me { tenant role } }`;
const MODELS = gql`query Models { models(first: 2) { totalCount } }`;
const CURSOR = gql`query Cursor { driftAlertCursor }`;

// Runs a step: its answer (or error codes) and the requests it cost.
async function step(name, run) {
  const before = sent.length;
  let answer;
  try {
    const result = await run();
    answer = { data: result.data ?? null };
  } catch (error) {
    const errors = error.errors ?? error.graphQLErrors ?? [];
    answer = { error: errors.map((e) => e.extensions?.code ?? e.message), message: String(error.message) };
  }
  return { step: name, ...answer, requests: sent.slice(before) };
}

const steps = [];
if (scenario === 'apq') {
  const apollo = client(createPersistedQueryLink({ sha256 }).concat(http()));
  steps.push(await step('first', () => apollo.query({ query: ME, fetchPolicy: 'network-only' })));
  steps.push(await step('again', () => apollo.query({ query: ME, fetchPolicy: 'network-only' })));
  const viaGet = client(createPersistedQueryLink({ sha256, useGETForHashedQueries: true }).concat(http()));
  steps.push(await step('get-first', () => viaGet.query({ query: MODELS, fetchPolicy: 'network-only' })));
  steps.push(await step('get-again', () => viaGet.query({ query: MODELS, fetchPolicy: 'network-only' })));
} else if (scenario === 'batch') {
  const apollo = client(new BatchHttpLink({ uri: url, headers, fetch: recordingFetch, batchMax: 5, batchInterval: 20 }));
  const before = sent.length;
  const answers = await Promise.all(
    [ME, MODELS, CURSOR].map((query) => apollo.query({ query, fetchPolicy: 'network-only' })),
  );
  steps.push({ step: 'batched', data: answers.map((a) => a.data), requests: sent.slice(before) });
} else if (scenario === 'trusted') {
  const apollo = client(createPersistedQueryLink({ sha256 }).concat(http()));
  steps.push(await step('listed', () => apollo.query({ query: ME, fetchPolicy: 'network-only' })));
  steps.push(await step('unlisted', () => apollo.query({ query: MODELS, fetchPolicy: 'network-only' })));
} else if (scenario === 'manifest') {
  const manifest = {};
  const capture = new ApolloLink((operation) => {
    const text = print(operation.query);
    manifest[sha256(text)] = text;
    return of({ data: { me: { __typename: 'Me', tenant: '', role: 'VIEWER' } } });
  });
  await client(capture).query({ query: ME });
  console.log(JSON.stringify(manifest));
  process.exit(0);
} else {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}
console.log(JSON.stringify(steps));
