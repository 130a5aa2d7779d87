// Live subscriptions on a running casefile, with independent clients.
//
//   node live.mjs <base http url> <token>
//
// 1. graphql-transport-ws through the npm graphql-ws client: subscribe to caseEvents of a
//    new case, post a message over HTTP, receive MESSAGE_POSTED with the message's body.
// 2. legacy graphql-ws (subscriptions-transport-ws) over a raw socket: the same.
// Prints how long each event took to arrive (the timeout is generous: 30 s).
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [baseArg, token] = process.argv.slice(2);
if (!baseArg || !token) {
  console.error('usage: node live.mjs <base url> <token>');
  process.exit(2);
}
const base = new URL(baseArg);
const httpUrl = new URL('/graphql', base).toString();
const wsUrl = (() => {
  const url = new URL('/graphql/ws', base);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
})();
const TIMEOUT_MS = 30_000;
const SUBSCRIPTION =
  'subscription($caseId: ID!) { caseEvents(caseId: $caseId) { cursor kind caseId message { body author { email } } } }';

async function graphql(query, variables) {
  const response = await fetch(httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(`${query.slice(0, 40)}…: ${JSON.stringify(body.errors)}`);
  return body.data;
}

async function newCase(name) {
  const data = await graphql('mutation($i: CreateCaseInput!) { createCase(input: $i) { case { id } } }', {
    i: { name: `${name} ${Date.now() % 100000}` },
  });
  return data.createCase.case.id;
}

const post = (caseId, body) =>
  graphql('mutation($i: PostMessageInput!) { postMessage(input: $i) { message { id } } }', { i: { caseId, body } });

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${TIMEOUT_MS} ms waiting for ${what}`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function checkEvent(event, caseId, body) {
  if (event?.kind !== 'MESSAGE_POSTED') throw new Error(`expected MESSAGE_POSTED, got ${JSON.stringify(event)}`);
  if (event.caseId !== caseId) throw new Error(`event of case ${event.caseId}, expected ${caseId}`);
  if (event.message?.body !== body) throw new Error(`message body ${JSON.stringify(event.message?.body)}`);
}

async function checkGraphqlWsClient() {
  const caseId = await newCase('graphql-ws client');
  const client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    connectionParams: { authorization: `Bearer ${token}` },
  });
  try {
    const events = client.iterate({ query: SUBSCRIPTION, variables: { caseId } });
    const first = events.next();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const started = Date.now();
    await post(caseId, 'hello from CI (graphql-ws)');
    const { value } = await withTimeout(first, 'MESSAGE_POSTED');
    if (value.errors) throw new Error(JSON.stringify(value.errors));
    checkEvent(value.data.caseEvents, caseId, 'hello from CI (graphql-ws)');
    await events.return();
    return `MESSAGE_POSTED after ${Date.now() - started} ms, cursor ${value.data.caseEvents.cursor.slice(0, 12)}…`;
  } finally {
    await client.dispose();
  }
}

async function checkLegacy() {
  const caseId = await newCase('legacy client');
  const socket = new WebSocket(wsUrl, 'graphql-ws');
  const inbox = [];
  const waiters = [];
  let closed = null;
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString());
    if (message.type === 'ka') return;
    inbox.push(message);
    waiters.splice(0).forEach((wake) => wake());
  });
  socket.on('close', (code, reason) => {
    closed = { code, reason: reason.toString() };
    waiters.splice(0).forEach((wake) => wake());
  });
  const next = (what) =>
    withTimeout(
      (async () => {
        while (inbox.length === 0) {
          if (closed) throw new Error(`socket closed with ${closed.code} ${closed.reason} before ${what}`);
          await new Promise((wake) => waiters.push(wake));
        }
        return inbox.shift();
      })(),
      what,
    );
  try {
    await withTimeout(new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); }), 'open');
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
    const ack = await next('connection_ack');
    if (ack.type !== 'connection_ack') throw new Error(`expected connection_ack, got ${JSON.stringify(ack)}`);
    socket.send(JSON.stringify({ id: '1', type: 'start', payload: { query: SUBSCRIPTION, variables: { caseId } } }));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const started = Date.now();
    await post(caseId, 'hello from CI (legacy)');
    const data = await next('data');
    if (data.type !== 'data' || data.id !== '1') throw new Error(`expected data for 1, got ${JSON.stringify(data)}`);
    if (data.payload.errors) throw new Error(JSON.stringify(data.payload.errors));
    checkEvent(data.payload.data.caseEvents, caseId, 'hello from CI (legacy)');
    socket.send(JSON.stringify({ id: '1', type: 'stop' }));
    return `MESSAGE_POSTED after ${Date.now() - started} ms`;
  } finally {
    socket.terminate();
  }
}

const checks = [
  ['graphql-ws client: caseEvents receives MESSAGE_POSTED', checkGraphqlWsClient],
  ['legacy graphql-ws: caseEvents receives MESSAGE_POSTED', checkLegacy],
];
let failed = 0;
for (const [name, check] of checks) {
  try {
    console.log(`ok   ${name}: ${await check()}`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name}: ${error?.message ?? JSON.stringify(error)}`);
  }
}
console.log(`live: ${checks.length - failed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
