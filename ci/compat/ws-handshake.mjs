// Checks casefile's GraphQL WebSocket endpoint with independent clients.
//
//   node ws-handshake.mjs <ws url> <token>
//
// 1. graphql-transport-ws, through the graphql-ws client: a query sent as a subscription
//    answers `next` with the admin's email, then `complete`.
// 2. graphql-transport-ws with a wrong token: the server closes the socket with 4401 or 4403.
// 3. legacy graphql-ws (subscriptions-transport-ws), spoken over a raw socket:
//    connection_init -> connection_ack, start -> data -> complete.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node ws-handshake.mjs <ws url> <token>');
  process.exit(2);
}

const EMAIL = 'admin@localhost';
const QUERY = '{ viewer { email } }';
const TIMEOUT_MS = 10_000;

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${TIMEOUT_MS} ms waiting for ${what}`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describe(error) {
  if (error instanceof Error) return error.message;
  if (error && typeof error.code === 'number') return `socket closed with ${error.code} ${error.reason ?? ''}`.trim();
  return JSON.stringify(error);
}

/** graphql-transport-ws: one operation through the graphql-ws client. */
function runOverClient(authorization) {
  const closes = [];
  const client = createClient({
    url,
    webSocketImpl: WebSocket,
    lazy: true,
    retryAttempts: 0,
    connectionParams: { authorization },
    on: { closed: (event) => closes.push(event) },
  });
  const results = [];
  const done = new Promise((resolve, reject) => {
    client.subscribe(
      { query: QUERY },
      {
        next: (result) => results.push(result),
        error: (error) => reject(error),
        complete: () => resolve(),
      },
    );
  });
  return { client, results, closes, done };
}

async function checkTransportWs() {
  const { client, results, done } = runOverClient(`Bearer ${token}`);
  try {
    await withTimeout(done, 'complete');
  } finally {
    await client.dispose();
  }
  if (results.length !== 1) {
    throw new Error(`expected one next message, got ${results.length}: ${JSON.stringify(results)}`);
  }
  const [result] = results;
  if (result.errors?.length) throw new Error(`next carried errors: ${JSON.stringify(result.errors)}`);
  const email = result.data?.viewer?.email;
  if (email !== EMAIL) throw new Error(`next payload email is ${JSON.stringify(email)}, expected ${EMAIL}`);
  return `next ${JSON.stringify(result)}, then complete`;
}

async function checkWrongTokenRejected() {
  const { client, results, closes, done } = runOverClient('Bearer not-a-valid-token');
  let outcome;
  try {
    await withTimeout(done, 'the server to close the socket');
    outcome = 'complete';
  } catch (error) {
    outcome = error;
  } finally {
    await client.dispose();
  }
  if (results.length > 0) throw new Error(`a wrong token got results: ${JSON.stringify(results)}`);
  const code = outcome?.code ?? closes[0]?.code;
  if (code !== 4401 && code !== 4403) {
    throw new Error(`expected close code 4401 or 4403 for a wrong token, got ${outcome === 'complete' ? 'complete' : describe(outcome)}`);
  }
  const reason = outcome?.reason ?? closes[0]?.reason ?? '';
  return `closed with ${code}${reason ? ` (${reason})` : ''}`;
}

/** Legacy graphql-ws (subscriptions-transport-ws) over a raw socket. */
async function checkLegacyGraphqlWs() {
  const socket = new WebSocket(url, 'graphql-ws');
  const inbox = [];
  const waiters = [];
  let closed = null;
  socket.on('message', (data) => {
    let message;
    try {
      message = JSON.parse(data.toString());
    } catch {
      message = { type: '<not json>', raw: data.toString() };
    }
    if (message.type === 'ka') return; // keep-alive
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
  const expect = async (type, what) => {
    const message = await next(what);
    if (message.type !== type) throw new Error(`expected ${type}, got ${JSON.stringify(message)}`);
    return message;
  };
  const send = (message) => socket.send(JSON.stringify(message));

  try {
    await withTimeout(
      new Promise((resolve, reject) => {
        socket.once('open', resolve);
        socket.once('error', reject);
        socket.once('unexpected-response', (_, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
      }),
      'the socket to open',
    );
    if (socket.protocol !== 'graphql-ws') {
      throw new Error(`server chose subprotocol ${JSON.stringify(socket.protocol)}, expected "graphql-ws"`);
    }
    send({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } });
    await expect('connection_ack', 'connection_ack');
    send({ id: '1', type: 'start', payload: { query: QUERY } });
    const data = await expect('data', 'data');
    if (data.id !== '1') throw new Error(`data for id ${JSON.stringify(data.id)}, expected "1"`);
    const email = data.payload?.data?.viewer?.email;
    if (email !== EMAIL) throw new Error(`data payload email is ${JSON.stringify(email)}: ${JSON.stringify(data)}`);
    const complete = await expect('complete', 'complete');
    if (complete.id !== '1') throw new Error(`complete for id ${JSON.stringify(complete.id)}, expected "1"`);
    send({ type: 'connection_terminate' });
    return `connection_ack, data ${JSON.stringify(data.payload)}, complete`;
  } finally {
    socket.terminate();
  }
}

const checks = [
  ['graphql-transport-ws: query over the subscription protocol', checkTransportWs],
  ['graphql-transport-ws: a wrong token is refused', checkWrongTokenRejected],
  ['legacy graphql-ws: init, start, data, complete', checkLegacyGraphqlWs],
];

let failed = 0;
for (const [name, check] of checks) {
  try {
    const detail = await check();
    console.log(`ok   ${name}: ${detail}`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name}: ${describe(error)}`);
  }
}
console.log(`ws-handshake: ${checks.length - failed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
