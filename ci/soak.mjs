// Soak test: a mixed load on a running casefile for a fixed time, watching the server.
//
//   node ci/soak.mjs <base http url> <admin token> <server pid> [--duration 30m] [--clients 16]
//                    [--rate 4] [--short] [--rss-limit 10]
//
// Starts nothing: the server (and its database) run already. Each client has its own API
// token (created here, revoked at the end) and loops over a weighted mix, paced at --rate
// operations per second: reads (case list, case page, detection list, node), writes
// (createCase, updateCase with expectedVersion on its own case and on one case shared by
// all clients, postMessage, ingestDetections), evidence uploads and downloads, case
// exports, and short-lived subscriptions. Every client also keeps one graphql-ws
// subscription on its own case for the whole run, and one more watches the shared case:
// each must receive the event of every write acknowledged on its case.
//
// Bounded: a fixed pool of cases, at most --max-new-cases new cases, --max-detections
// distinct detections (ingesting the same externalId again is a no-op) and --max-uploads
// evidence files of at most 16 KiB.
//
// Every 10 s and at the end it prints requests and errors by kind, p50/p99 latency per
// kind (of the last 10 s, and of the whole run at the end), the server's RSS and open file
// descriptors (from /proc/<pid>) and its database pool connections and WebSockets (from
// /metrics). It exits 1 when any request failed (VERSION_CONFLICTs on the shared case are
// expected and counted apart), RSS grew --rss-limit percent (10) or more after the warm-up
// (the first 5 minutes, or the first half of a shorter run; medians of three samples), file
// descriptors or pool connections grew beyond a small slack, or a subscription missed an
// event.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';

// graphql-ws and ws come from ci/compat (`npm ci` there).
const require = createRequire(new URL('./compat/package.json', import.meta.url));
const { createClient } = require('graphql-ws');
const WebSocket = require('ws');

import { Http, GraphqlError } from './soak/http.mjs';
import { Stats } from './soak/stats.mjs';
import { LiveCase } from './soak/live.mjs';

const usage =
  'usage: node ci/soak.mjs <base url> <admin token> <server pid> [--duration 30m] [--clients 16] [--rate 4] [--short] [--rss-limit 10]';

function parseArgs(argv) {
  const positional = [];
  const options = {
    durationMs: 30 * 60_000,
    clients: 16,
    rate: 4,
    maxNewCases: 200,
    maxDetections: 2000,
    maxUploads: 300,
  };
  const duration = (text) => {
    const match = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(text ?? '');
    if (!match) throw new Error(`not a duration: ${text} (e.g. 30m, 120s)`);
    return Number(match[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 'm'];
  };
  const count = (text, name) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} needs a whole number > 0`);
    return value;
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--short') options.durationMs = 2 * 60_000;
    else if (arg === '--duration') options.durationMs = duration(argv[++i]);
    else if (arg === '--clients') options.clients = count(argv[++i], 'clients');
    else if (arg === '--rate') options.rate = count(argv[++i], 'rate');
    else if (arg === '--max-new-cases') options.maxNewCases = count(argv[++i], 'max-new-cases');
    else if (arg === '--max-detections') options.maxDetections = count(argv[++i], 'max-detections');
    else if (arg === '--max-uploads') options.maxUploads = count(argv[++i], 'max-uploads');
    else if (arg === '--rss-limit') options.rssLimitPercent = count(argv[++i], 'rss-limit');
    else if (arg.startsWith('--')) throw new Error(`unknown option ${arg}`);
    else positional.push(arg);
  }
  const [base, token, pid] = positional;
  if (!base || !token || !/^\d+$/.test(pid ?? '') || positional.length > 3) throw new Error(usage);
  return { base: new URL(base), token, pid: Number(pid), ...options };
}

let config;
try {
  config = parseArgs(process.argv.slice(2));
} catch (error) {
  console.error(error.message);
  process.exit(2);
}

// A fresh server's RSS rises for its first minutes under this load (its statement and
// document caches fill, the allocator settles), then stays flat: the warm-up is 5 minutes
// of a long run, half of a short one.
const WARMUP_MS = Math.min(5 * 60_000, config.durationMs / 2);
const REPORT_EVERY_MS = 10_000;
const RSS_GROWTH_LIMIT = (config.rssLimitPercent ?? 10) / 100;
const FD_SLACK = 8;
const CONNECTION_SLACK = 2;
const EVENT_GRACE_MS = 15_000;
const runId = Date.now().toString(36);
const wsUrl = (() => {
  const url = new URL('/graphql/ws', config.base);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
})();

// ---- the server, watched from outside -------------------------------------------------

function rssKiB() {
  const status = readFileSync(`/proc/${config.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
}

const openFds = () => readdirSync(`/proc/${config.pid}/fd`).length;

// Pool connections (in use + idle) and WebSockets from /metrics; null when not exposed.
async function metrics(http) {
  const { body } = await http.request('GET', '/metrics');
  const text = body.toString('utf8');
  const gauge = (name, state) => {
    const labels = state ? `\\{state="${state}"\\}` : '';
    const match = new RegExp(`^${name}${labels} (\\d+)`, 'm').exec(text);
    return match ? Number(match[1]) : null;
  };
  const inUse = gauge('casefile_db_pool_connections', 'in_use');
  const idle = gauge('casefile_db_pool_connections', 'idle');
  return {
    connections: inUse === null || idle === null ? null : inUse + idle,
    inUse,
    websockets: gauge('casefile_websocket_connections'),
  };
}

async function sample(http) {
  const { connections, inUse, websockets } = await metrics(http);
  return { at: Date.now(), rssKiB: rssKiB(), fds: openFds(), connections, inUse, websockets };
}

// ---- GraphQL documents ----------------------------------------------------------------

const Q = {
  viewer: '{ viewer { id } }',
  createToken:
    'mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { tokenId token } }',
  revokeToken: 'mutation($i: RevokeApiTokenInput!) { revokeApiToken(input: $i) { clientMutationId } }',
  createCase: 'mutation($i: CreateCaseInput!) { createCase(input: $i) { case { id number version } } }',
  updateCase: 'mutation($i: UpdateCaseInput!) { updateCase(input: $i) { case { id version } } }',
  version: 'query($id: ID!) { node(id: $id) { ... on Case { version } } }',
  postMessage: 'mutation($i: PostMessageInput!) { postMessage(input: $i) { message { id } } }',
  ingest:
    'mutation($i: IngestDetectionsInput!) { ingestDetections(input: $i) { detections { id } } }',
  addDetections:
    'mutation($i: CaseDetectionsInput!) { addDetectionsToCase(input: $i) { case { id } } }',
  cases:
    'query { cases(first: 20, orderBy: { field: UPDATED_AT, direction: DESC }) { nodes { id number name status detectionCount } } }',
  casePage:
    'query($n: Int!) { case(number: $n) { id name status version assignee { email } detectionCount riskSummary { highest } detections(first: 20) { nodes { id ruleName } } messages(last: 20) { nodes { id body author { email } } } } }',
  detections:
    'query { detections(first: 20) { nodes { id ruleName severity observedAt device { hostname } file { name sha256 } } } }',
  node: 'query($id: ID!) { node(id: $id) { id ... on Case { number name } ... on Detection { ruleName } } }',
};

// ---- setup ----------------------------------------------------------------------------

const admin = new Http(config.base, config.token);
const stats = new Stats();
const shared = {
  newCases: 0,
  detectionSeq: 0,
  uploads: 0,
  cases: [], // every case the readers may read: { id, number }
  stored: [], // detections with uploaded contents: { id, sha256 }
  detections: [], // detection ids for node reads
  contendedAccepted: 0,
};

function later(ms) {
  return new Date(Date.now() + ms).toISOString();
}

async function newCase(http, name) {
  const data = await http.graphql(Q.createCase, { i: { name } });
  const made = data.createCase.case;
  shared.cases.push({ id: made.id, number: made.number });
  return made;
}

async function ingestFile(http, content, label) {
  const sha256 = createHash('sha256').update(content).digest('hex');
  const data = await http.graphql(Q.ingest, {
    i: {
      detections: [
        {
          externalId: `soak-${runId}-file-${label}`,
          source: 'FILE_ACTIVITY',
          ruleName: 'Soak evidence',
          observedAt: new Date().toISOString(),
          riskScore: 1,
          device: { hostname: 'soak-host' },
          file: { name: `soak ${label}.bin`, sha256, size: content.length },
        },
      ],
    },
  });
  const id = data.ingestDetections.detections[0].id;
  const { status } = await http.request('PUT', `/detections/${encodeURIComponent(id)}/file`, {
    body: content,
  });
  if (status !== 201) throw new Error(`upload answered ${status}`);
  shared.stored.push({ id, sha256 });
  shared.detections.push(id);
  return id;
}

async function setup() {
  const viewer = (await admin.graphql(Q.viewer)).viewer;
  const clients = [];
  for (let i = 0; i < config.clients; i += 1) {
    const made = await admin.graphql(Q.createToken, {
      i: { userId: viewer.id, name: `soak ${runId} ${i}`, expiresAt: later(config.durationMs + 3_600_000) },
    });
    const http = new Http(config.base, made.createApiToken.token);
    const own = await newCase(http, `Soak ${runId} client ${i}`);
    clients.push({ index: i, http, token: made.createApiToken.token, tokenId: made.createApiToken.tokenId, own });
  }
  const contended = await newCase(admin, `Soak ${runId} shared`);
  // The export case: a few stored files, written to by nobody else.
  const exported = await newCase(admin, `Soak ${runId} export`);
  const files = [];
  for (let i = 0; i < 4; i += 1) files.push(await ingestFile(admin, randomBytes(4096 + i), `export-${i}`));
  shared.uploads += files.length;
  await admin.graphql(Q.addDetections, { i: { caseId: exported.id, detectionIds: files } });
  return { clients, contended, exported };
}

// ---- the operations -------------------------------------------------------------------

const pick = (list) => list[Math.floor(Math.random() * list.length)];

function operations(client, world) {
  const { http } = client;
  const ops = {
    async cases() {
      await http.graphql(Q.cases);
    },
    async casePage() {
      await http.graphql(Q.casePage, { n: pick(shared.cases).number });
    },
    async detections() {
      await http.graphql(Q.detections);
    },
    async node() {
      const id = shared.detections.length > 0 && Math.random() < 0.5 ? pick(shared.detections) : pick(shared.cases).id;
      const data = await http.graphql(Q.node, { id });
      if (data.node?.id !== id) throw new Error(`node(${id}) answered ${JSON.stringify(data.node)}`);
    },
    async createCase() {
      shared.newCases += 1;
      await newCase(http, `Soak ${runId} new ${shared.newCases}`);
    },
    async updateCase() {
      const { node } = await http.graphql(Q.version, { id: client.own.id });
      const description = `soak update ${randomBytes(6).toString('hex')}`;
      await http.graphql(Q.updateCase, {
        i: { id: client.own.id, expectedVersion: node.version, description },
      });
      client.live.updateAcknowledged();
    },
    async updateShared() {
      const { node } = await http.graphql(Q.version, { id: world.contended.id });
      const description = `soak shared ${randomBytes(6).toString('hex')}`;
      try {
        await http.graphql(Q.updateCase, {
          i: { id: world.contended.id, expectedVersion: node.version, description },
        });
        world.sharedLive.updateAcknowledged();
      } catch (error) {
        if (error instanceof GraphqlError && error.code === 'VERSION_CONFLICT') return 'conflict';
        throw error;
      }
    },
    async postMessage() {
      const body = `soak message ${randomBytes(6).toString('hex')}`;
      client.live.posted(body);
      await http.graphql(Q.postMessage, { i: { caseId: client.own.id, body } });
      client.live.messageAcknowledged(body);
    },
    async ingestDetections() {
      const detections = [];
      for (let k = 0; k < 5; k += 1) {
        const seq = shared.detectionSeq % config.maxDetections;
        shared.detectionSeq += 1;
        detections.push({
          externalId: `soak-${runId}-${seq}`,
          source: 'XDR',
          ruleName: `Soak rule ${seq % 7}`,
          observedAt: new Date().toISOString(),
          riskScore: 2,
          device: { hostname: `soak-host-${seq % 5}` },
          actor: `soak${seq % 3}@soak.test`,
        });
      }
      const data = await http.graphql(Q.ingest, { i: { detections } });
      for (const { id } of data.ingestDetections.detections) {
        if (shared.detections.length < config.maxDetections) shared.detections.push(id);
      }
    },
    async upload() {
      shared.uploads += 1;
      const content = randomBytes(1024 + Math.floor(Math.random() * 15 * 1024));
      await ingestFile(http, content, `${client.index}-${shared.uploads}`);
    },
    async download() {
      const file = pick(shared.stored);
      const { status, body } = await http.request('GET', `/detections/${encodeURIComponent(file.id)}/file`);
      if (status !== 200) throw new Error(`download answered ${status}`);
      const sha = createHash('sha256').update(body).digest('hex');
      if (sha !== file.sha256) throw new Error(`download of ${file.id} hashes to ${sha}, not ${file.sha256}`);
    },
    async export() {
      const { status, body } = await http.request('GET', `/cases/${world.exported.number}/export`);
      if (status !== 200) throw new Error(`export answered ${status}: ${body.toString('utf8', 0, 300)}`);
      // A whole ZIP ends with its end-of-central-directory record (PK\x05\x06).
      if (body.length < 22 || body.indexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]), body.length - 22 - 65_535) < 0) {
        throw new Error(`export of ${body.length} bytes is not a whole ZIP`);
      }
    },
    // A short-lived socket: connect, subscribe after the last event the client's
    // long-lived subscription saw (so the post cannot race the subscription), post,
    // receive the event, close. Its latency is the whole round.
    async subscribe() {
      const live = new LiveCase(client.own.id);
      const socket = createClient({
        url: wsUrl,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: false,
        connectionParams: { authorization: `Bearer ${client.token}` },
      });
      try {
        await live.start(socket, { after: client.live.lastCursor });
        const body = `soak short-lived ${randomBytes(6).toString('hex')}`;
        client.live.posted(body);
        await http.graphql(Q.postMessage, { i: { caseId: client.own.id, body } });
        client.live.messageAcknowledged(body);
        live.messageAcknowledged(body);
        await live.settle(10_000);
        const missing = live.missing();
        if (missing.length > 0 || live.errors.length > 0) {
          throw new Error(`a short-lived subscription: ${[...missing, ...live.errors].slice(0, 3).join('; ')}`);
        }
      } finally {
        live.stop();
        await socket.dispose();
      }
    },
  };
  return ops;
}

// Kind → weight in the mix.
const MIX = {
  cases: 12,
  casePage: 12,
  detections: 10,
  node: 10,
  createCase: 2,
  updateCase: 8,
  updateShared: 4,
  postMessage: 10,
  ingestDetections: 5,
  upload: 3,
  download: 6,
  export: 1,
  subscribe: 1,
};
const MIX_TOTAL = Object.values(MIX).reduce((a, b) => a + b, 0);

function drawKind() {
  let r = Math.random() * MIX_TOTAL;
  for (const [kind, weight] of Object.entries(MIX)) {
    r -= weight;
    if (r < 0) return kind;
  }
  return 'cases';
}

async function runClient(client, world, until) {
  const ops = operations(client, world);
  const interval = 1000 / config.rate;
  let next = Date.now() + Math.random() * interval;
  while (Date.now() < until) {
    const wait = next - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    next = Math.max(next + interval, Date.now() - interval);
    let kind = drawKind();
    // Past their caps, creations become reads and uploads downloads.
    if (kind === 'createCase' && shared.newCases >= config.maxNewCases) kind = 'cases';
    if (kind === 'upload' && shared.uploads >= config.maxUploads) kind = 'download';
    const started = performance.now();
    try {
      const outcome = await ops[kind]();
      if (outcome === 'conflict') stats.conflict(kind, performance.now() - started);
      else stats.ok(kind, performance.now() - started);
    } catch (error) {
      stats.error(kind, error);
    }
  }
}

// ---- the run --------------------------------------------------------------------------

function report(label, samples, final) {
  const s = samples.at(-1);
  console.log(
    `\n[${label}] RSS ${(s.rssKiB / 1024).toFixed(1)} MiB, fds ${s.fds}, pool connections ${s.connections ?? 'not exposed'}, WebSockets ${s.websockets ?? '?'}, VERSION_CONFLICT ${stats.conflicts}`,
  );
  console.log(stats.table(final));
}

async function main() {
  const started = Date.now();
  console.log(
    `soak ${runId}: ${config.clients} clients at ${config.rate} op/s each for ${config.durationMs / 1000} s against ${config.base}, server pid ${config.pid}; warm-up ${WARMUP_MS / 1000} s`,
  );
  const samples = [await sample(admin)];
  const world = await setup();
  // Long-lived subscriptions: one per client on its own case, one on the shared case.
  const sockets = [];
  const subscribe = async (token, caseId, http) => {
    const socket = createClient({
      url: wsUrl,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: false,
      connectionParams: { authorization: `Bearer ${token}` },
    });
    sockets.push(socket);
    const live = new LiveCase(caseId, (ms) => stats.ok('event delivery', ms));
    const hello = (body) => http.graphql(Q.postMessage, { i: { caseId, body } });
    await live.start(socket, { hello });
    return live;
  };
  for (const client of world.clients) client.live = await subscribe(client.token, client.own.id, client.http);
  world.sharedLive = await subscribe(config.token, world.contended.id, admin);
  const lives = [...world.clients.map((c) => c.live), world.sharedLive];

  const loadStarted = Date.now();
  const until = loadStarted + config.durationMs;
  let warm = null;
  const timer = setInterval(async () => {
    try {
      samples.push(await sample(admin));
      if (!warm && Date.now() - loadStarted >= WARMUP_MS) {
        warm = samples.at(-1);
        console.log(`\nwarm-up over: RSS ${(warm.rssKiB / 1024).toFixed(1)} MiB, fds ${warm.fds}, pool connections ${warm.connections}`);
      }
      report(`${Math.round((Date.now() - loadStarted) / 1000)} s`, samples, false);
      stats.nextWindow();
    } catch (error) {
      console.log(`sampling failed: ${error.message}`);
    }
  }, REPORT_EVERY_MS);
  await Promise.all(world.clients.map((client) => runClient(client, world, until)));
  clearInterval(timer);
  const underLoad = await sample(admin);
  samples.push(underLoad);
  warm ??= samples[Math.min(1, samples.length - 1)];
  // The pool opens connections as the load needs them: its size at the end is compared
  // with the most it had during the warm-up.
  const warmConnections = Math.max(...samples.filter((s) => s.at <= warm.at).map((s) => s.connections ?? 0));
  // RSS moves by several MiB from one sample to the next: each side of the comparison is
  // the median of three samples (the last three of the warm-up, the last three under load).
  const medianRss = (list) => list.map((s) => s.rssKiB).sort((a, b) => a - b)[Math.floor(list.length / 2)];
  const warmIndex = samples.indexOf(warm);
  const warmRss = medianRss(samples.slice(Math.max(1, warmIndex - 2), warmIndex + 1));
  const endRss = medianRss(samples.slice(Math.max(1, samples.length - 3)));

  // Every acknowledged write's event, then close every socket and connection.
  await Promise.all(lives.map((live) => live.settle(EVENT_GRACE_MS)));
  const missing = lives.flatMap((live) => live.missing().map((m) => `${live.caseId}: ${m}`));
  const liveErrors = lives.flatMap((live) => live.errors);
  const received = lives.reduce((n, live) => n + live.received, 0);
  for (const live of lives) live.stop();
  await Promise.all(sockets.map((socket) => socket.dispose()));
  for (const client of world.clients) {
    try {
      await admin.graphql(Q.revokeToken, { i: { tokenId: client.tokenId } });
    } catch (error) {
      console.log(`revoking a soak token failed: ${error.message}`);
    }
    client.http.close();
  }
  // Let the server close what the clients left.
  let idle = await sample(admin);
  for (let i = 0; i < 20 && (idle.fds > warm.fds + FD_SLACK || idle.websockets > 0); i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    idle = await sample(admin);
  }
  admin.close();
  samples.push(idle);

  report(`end, ${Math.round((underLoad.at - loadStarted) / 1000)} s`, [underLoad], true);
  const first = samples[0];
  const growth = (endRss - warmRss) / warmRss;
  const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
  console.log(
    `\nRSS: start ${mib(first.rssKiB)}, after warm-up ${mib(warm.rssKiB)} (median of 3: ${mib(warmRss)}), end ${mib(underLoad.rssKiB)} (median of 3: ${mib(endRss)}), ${(growth * 100).toFixed(1)}% after warm-up; peak ${mib(Math.max(...samples.map((s) => s.rssKiB)))}`,
  );
  console.log(
    `fds: start ${first.fds}, after warm-up ${warm.fds}, end under load ${underLoad.fds}, after the clients closed ${idle.fds} (other than pool connections: ${first.fds - (first.connections ?? 0)} before, ${idle.fds - (idle.connections ?? 0)} after)`,
  );
  console.log(
    `pool connections (from /metrics): start ${first.connections}, most during the warm-up ${warmConnections}, end ${underLoad.connections}, after ${idle.connections} (${idle.inUse} in use); WebSockets after ${idle.websockets}`,
  );
  console.log(`subscriptions: ${lives.length} long-lived, ${received} events received, ${missing.length} missing`);
  console.log(`bounded: ${shared.newCases} new cases, ${Math.min(shared.detectionSeq, config.maxDetections)} distinct detections, ${shared.uploads} uploads`);

  const failures = [];
  if (stats.errors > 0) failures.push(`${stats.errors} request(s) failed: ${stats.firstErrors().join('; ')}`);
  if (growth >= RSS_GROWTH_LIMIT) failures.push(`RSS grew ${(growth * 100).toFixed(1)}% after the warm-up`);
  if (idle.fds > warm.fds + FD_SLACK) failures.push(`open fds grew from ${warm.fds} (after the warm-up) to ${idle.fds}`);
  // Idle before and after the load, the fds other than pool connections.
  const otherFds = (s) => s.fds - (s.connections ?? 0);
  if (otherFds(idle) > otherFds(first) + FD_SLACK) {
    failures.push(`fds other than pool connections grew from ${otherFds(first)} (before the load) to ${otherFds(idle)}`);
  }
  if (warm.connections === null) failures.push('/metrics exposes no pool connections');
  else {
    const most = Math.max(underLoad.connections, idle.connections);
    if (most > warmConnections + CONNECTION_SLACK) {
      failures.push(`pool connections grew from ${warmConnections} (during the warm-up) to ${most}`);
    }
    if (idle.inUse > 1) failures.push(`${idle.inUse} pool connections still in use after the load`);
  }
  if (idle.websockets !== null && idle.websockets > 0) failures.push(`${idle.websockets} WebSocket(s) still open on the server`);
  if (missing.length > 0) failures.push(`subscriptions missed ${missing.length} event(s): ${missing.slice(0, 5).join('; ')}`);
  if (liveErrors.length > 0) failures.push(`subscriptions ended with errors: ${liveErrors.slice(0, 5).join('; ')}`);
  console.log(`\nsoak ran ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (failures.length > 0) {
    for (const failure of failures) console.log(`FAIL ${failure}`);
    process.exit(1);
  }
  console.log('soak passed: no errors, RSS, fds and connections steady, every event received');
}

main().catch((error) => {
  console.error(`soak aborted: ${error?.stack ?? error}`);
  process.exit(1);
});
