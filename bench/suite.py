#!/usr/bin/env python3
"""casefile's benchmark suite (issue 10): run by bench/run, which builds first.

Starts a PostgreSQL cluster of its own (pg_stat_statements loaded), seeds medium data,
starts casefile, PostGraphile 5 and PostGraphile 4 on the same database, checks once that
they answer Q1 and Q2 with the same rows, then measures Q1-Q5 with the suite's load
generator and the SQL limit with pgbench, and prints one table. See bench/README.md.
"""

import argparse
import base64
import csv
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
TOOLS = os.path.join(BENCH, ".tools")
T0 = time.time()
PROCS = []


def log(msg):
    print(f"[{time.time() - T0:7.1f} s] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def pg_bindir():
    out = subprocess.run(["pg_config", "--bindir"], text=True, capture_output=True)
    if out.returncode == 0 and os.path.exists(os.path.join(out.stdout.strip(), "initdb")):
        return out.stdout.strip()
    dirs = sorted(d for d in os.listdir("/usr/lib/postgresql") if d.replace(".", "").isdigit())
    return f"/usr/lib/postgresql/{dirs[-1]}/bin"


class Cluster:
    """A throwaway PostgreSQL cluster (as the `postgres` OS user when run as root)."""

    def __init__(self, work):
        self.bindir = pg_bindir()
        self.dir = os.path.join(work, "pg")
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        os.makedirs(work, exist_ok=True)
        if self.as_user:
            shutil.chown(work, "postgres")
        run(self.as_user + [f"{self.bindir}/initdb", "-D", self.dir, "-U", "postgres",
                            "--auth=trust", "--no-sync"])
        with open(os.path.join(self.dir, "postgresql.conf"), "a") as f:
            f.write(f"""
port = {self.port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{work}'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = top
max_connections = 400
shared_buffers = 1GB
work_mem = 16MB
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 4GB
""")
        run(self.as_user + [f"{self.bindir}/pg_ctl", "-D", self.dir, "-l",
                            os.path.join(work, "pg.log"), "-w", "start"])

    def url(self, db):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def psql(self, db, sql):
        return run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", self.url(db),
                    "-c", sql]).stdout.strip()

    def stop(self):
        subprocess.run(self.as_user + [f"{self.bindir}/pg_ctl", "-D", self.dir, "-m", "fast",
                                       "stop"], capture_output=True)


def start(cmd, env, log_path, cwd=None):
    f = open(log_path, "w")
    p = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=f, stderr=subprocess.STDOUT,
                         cwd=cwd, start_new_session=True)
    PROCS.append(p)
    return p


def stop(p):
    if p and p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def post(url, body, token=None, ctype="application/json", timeout=600):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("content-type", ctype)
    req.add_header("accept", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_http(url, p, seconds=120):
    for _ in range(seconds * 10):
        if p.poll() is not None:
            raise SystemExit(f"a server exited during its start: {url}")
        try:
            post(url, json.dumps({"query": "{ __typename }"}), timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers (casefile wants a token)
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def serve_casefile(binary, env, log_path):
    """Starts `binary serve` on a free port with the suite's pool of 16; answers the
    process and its GraphQL url once it answers."""
    port = free_port()
    proc = start([binary, "serve"], {**env, "CASEFILE_LISTEN": f"127.0.0.1:{port}",
                 "CASEFILE_POOL_SIZE": "16"}, log_path)
    url = f"http://127.0.0.1:{port}/graphql"
    wait_http(url, proc)
    return proc, url


def peak_rss_mb(pid):
    """Peak RSS of the process and its children (node's workers), in MB."""
    total = 0
    for p in [pid] + children(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024)


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], text=True, capture_output=True).stdout
    kids = [int(x) for x in out.split()]
    return kids + [g for k in kids for g in children(k)]


class Loadgen:
    def __init__(self, binary, work):
        self.binary = binary
        self.work = work

    def run(self, url, bodies, clients, seconds, warmup, token=None, ctype="application/json"):
        path = os.path.join(self.work, f"bodies-{uuid.uuid4().hex}.txt")
        with open(path, "w") as f:
            f.write("\n".join(bodies) + "\n")
        cmd = [self.binary, "--url", url, "--bodies", path, "--clients", str(clients),
               "--seconds", str(seconds), "--warmup", str(warmup), "--content-type", ctype]
        if token:
            cmd += ["--token", token]
        out = run(cmd).stdout.strip().splitlines()[-1]
        return json.loads(out)


def statements_per_request(cluster, db, url, body, token, n=40):
    """pg_stat_statements calls per request over n sequential requests (BEGIN, COMMIT,
    ROLLBACK, SAVEPOINT, RELEASE and session SETs excluded; authentication included)."""
    for _ in range(3):
        post(url, body, token)
    cluster.psql(db, "SELECT pg_stat_statements_reset()")
    for _ in range(n):
        post(url, body, token)
    calls = cluster.psql(db, """
        SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND query !~* '^\\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET|SHOW|DISCARD|DEALLOCATE|START TRANSACTION)'
          AND query !~* 'pg_stat_statements'""")
    return round(int(calls) / n, 2)


CF_STATS = """query Stats($w: StatsWindow!) { caseStats(window: $w) { window
  openByStatus { status count } openBySeverity { severity count } openByKind { kind count }
  resolvedByResolution { resolution count } createdPerDay { day count } resolvedPerDay { day count }
  created previousCreated resolved previousResolved meanTimeToAssignSeconds meanTimeToResolveSeconds
  meanTimeToResolveBySeverity { severity seconds } topRules { name count } topDevices { name count } } }"""


def gql(query, variables=None):
    return json.dumps({"query": query, "variables": variables or {}})


CF_Q1 = """query Q1 { cases(first: 50) { totalCount nodes { number name status severity
  updatedAt detectionCount assignee { displayName } subject { username } } } }"""
CF_Q2 = """query Q2($n: Int!) { case(number: $n) { detections(first: 100) { totalCount nodes {
  id ruleName observedAt riskScore severity riskIndicators { name weight }
  device { hostname } file { name sha256 } } } } }"""
PG_Q1 = """query Q1($t: UUID!) { %s(tenant: $t, first: 50) { totalCount nodes { number name
  status severity updatedAt detectionCount userByTenantIdAndAssigneeId { displayName }
  subjectByTenantIdAndSubjectId { username } } } }"""
PG_Q2 = """query Q2($t: UUID!, $n: Int!) { caseByTenantIdAndNumber(tenantId: $t, number: $n) {
  caseDetectionsByTenantIdAndCaseId(first: 100, orderBy: [OBSERVED_AT_DESC, DETECTION_ID_DESC]) {
  totalCount nodes { detectionId detectionByTenantIdAndDetectionId { ruleName observedAt
  riskScore severity riskIndicators deviceHostname fileName fileSha256 } } } } }"""


def decode_id(global_id):
    raw = global_id + "=" * (-len(global_id) % 4)
    return base64.urlsafe_b64decode(raw).decode().split(":", 1)[1]


def rows_q1(server, answer):
    if "errors" in answer:
        raise SystemExit(f"{server} Q1 failed: {json.dumps(answer)[:500]}")
    conn = next(iter(answer["data"].values()))
    return conn["totalCount"], [n["number"] for n in conn["nodes"]]


def rows_q2(server, answer):
    if "errors" in answer:
        raise SystemExit(f"{server} Q2 failed: {json.dumps(answer)[:500]}")
    case = next(iter(answer["data"].values()))
    if server in ("casefile", "baseline"):
        conn = case["detections"]
        return conn["totalCount"], [decode_id(n["id"]) for n in conn["nodes"]]
    conn = case["caseDetectionsByTenantIdAndCaseId"]
    return conn["totalCount"], [n["detectionId"] for n in conn["nodes"]]


def pgbench(cluster, db, sql, clients, seconds, work):
    path = os.path.join(work, f"pgbench-{uuid.uuid4().hex}.sql")
    with open(path, "w") as f:
        f.write(sql)
    out = run(["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T",
               str(int(seconds)), "-f", path, cluster.url(db)]).stdout
    tps = lat = None
    for line in out.splitlines():
        if line.startswith("tps ="):
            tps = float(line.split()[2])
        if line.startswith("latency average"):
            lat = float(line.split()[3])
    return {"clients": clients, "rps": tps, "p50ms": lat, "p99ms": None}


def detection_line(i, tag):
    return {
        "externalId": f"{tag}-{i:08d}", "source": "XDR", "ruleName": "Bulk Rule %d" % (i % 20),
        "observedAt": "2026-11-20T10:00:00Z", "riskScore": i % 7,
        "device": {"hostname": "host-%d" % (i % 500), "ip": "10.1.2.3"},
        "actor": "user%d@example.test" % (i % 100),
    }


def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--casefile", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--scale", default="medium")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--clients", default="16,64")
    ap.add_argument("--growth", default="10000,100000,1000000")
    ap.add_argument("--ingest-rows", type=int, default=20000)
    ap.add_argument("--parts", default="q1,q2,q3,q4,q5",
                    help="which workloads to run (comma-separated): q1,q2,q3,q4,q5")
    ap.add_argument("--no-postgraphile", action="store_true")
    ap.add_argument("--baseline", metavar="BINARY",
                    help="another casefile build, run beside this one on the same data: its Q1 "
                         "and Q2 points are labelled 'baseline' and the ratios compare the two")
    ap.add_argument("--out", default=os.path.join(BENCH, ".out"))
    a = ap.parse_args()
    clients = [int(c) for c in a.clients.split(",") if c]
    parts = {x.strip().lower() for x in a.parts.split(",") if x.strip()}
    pages = bool(parts & {"q1", "q2"})
    work = os.path.join("/tmp", f"casefile-bench-{os.getpid()}")
    os.makedirs(a.out, exist_ok=True)
    results = {"cores": os.cpu_count(), "scale": a.scale, "seconds": a.seconds, "points": []}
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], text=True,
                            capture_output=True).stdout.strip()
    results["commit"] = commit
    log(f"{os.cpu_count()} cores, commit {commit}, {a.seconds:g} s a point, clients {clients}")
    cluster = Cluster(work)
    lg = Loadgen(a.loadgen, work)
    servers = []
    try:
        db = "bench"
        run(["createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", db])
        # One token drives the whole load: the per-token rate limit (1,200 a minute by
        # default) would answer most of it 429, so the benchmark turns it off.
        env = {"DATABASE_URL": cluster.url(db), "RUST_LOG": "warn", "CASEFILE_DATA_DIR": work,
               "CASEFILE_RATE_LIMIT_PER_MINUTE": "0"}
        log(f"seeding {a.scale} (progress in {work}/seed.log)")
        started = time.time()
        with open(os.path.join(work, "seed.log"), "w") as err:
            seeded = json.loads(subprocess.run(
                [a.casefile, "seed", "--scale", a.scale], env={**os.environ, **env}, text=True,
                stdout=subprocess.PIPE, stderr=err, check=True).stdout)
        results["seedSeconds"] = round(time.time() - started, 1)
        log(f"seeded in {results['seedSeconds']} s")
        tenant = seeded["tenants"][0]
        token, tuuid, largest = tenant["adminToken"], tenant["tenantUuid"], tenant["largestCase"]["number"]
        cluster.psql(db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        with open(os.path.join(BENCH, "bench.sql")) as f:
            run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", cluster.url(db)], input=f.read())
        cluster.psql(db, "VACUUM ANALYZE")

        cf, cf_url = serve_casefile(a.casefile, env, os.path.join(work, "casefile.log"))
        servers.append({"name": "casefile", "proc": cf, "url": cf_url, "token": token,
                        "q1": gql(CF_Q1), "q2": gql(CF_Q2, {"n": largest})})
        if pages and a.baseline:
            # An A/B of two builds: the same settings, data and load generator, points
            # measured in turn, so the machine's state weighs on both alike.
            base, base_url = serve_casefile(a.baseline, env, os.path.join(work, "baseline.log"))
            servers.append({"name": "baseline", "proc": base, "url": base_url, "token": token,
                            "q1": gql(CF_Q1), "q2": gql(CF_Q2, {"n": largest})})
        if pages and not a.no_postgraphile:
            p5_port, p4_port = free_port(), free_port()
            shutil.copy(os.path.join(BENCH, "graphile.config.mjs"), os.path.join(TOOLS, "pg5"))
            p5 = start([os.path.join(TOOLS, "pg5/node_modules/node/bin/node"),
                        "node_modules/.bin/postgraphile", "-C", "graphile.config.mjs"],
                       {"DATABASE_URL": cluster.url(db), "NODE_ENV": "production",
                        "PORT": str(p5_port)}, os.path.join(work, "pg5.log"),
                       cwd=os.path.join(TOOLS, "pg5"))
            p4 = start([os.path.join(TOOLS, "pg5/node_modules/node/bin/node"),
                        "node_modules/.bin/postgraphile", "-c", cluster.url(db), "-s",
                        "public,bench", "--host", "127.0.0.1", "-p", str(p4_port),
                        "--disable-query-log", "--dynamic-json", "--max-pool-size", "16"],
                       {"NODE_ENV": "production"}, os.path.join(work, "pg4.log"),
                       cwd=os.path.join(TOOLS, "pg4"))
            for name, p, port, fn in [("PostGraphile 5", p5, p5_port, "benchOpenCases"),
                                      ("PostGraphile 4", p4, p4_port, "openCases")]:
                url = f"http://127.0.0.1:{port}/graphql"
                wait_http(url, p)
                servers.append({"name": name, "proc": p, "url": url, "token": None,
                                "q1": gql(PG_Q1 % fn, {"t": tuuid}),
                                "q2": gql(PG_Q2, {"t": tuuid, "n": largest})})

        if pages:
            # The same rows from every server, checked once before timing.
            ref = None
            for s in servers:
                q1 = rows_q1(s["name"], post(s["url"], s["q1"], s["token"]))
                q2 = rows_q2(s["name"], post(s["url"], s["q2"], s["token"]))
                if ref is None:
                    ref = (q1, q2)
                    log(f"Q1: {q1[0]} open cases, page of {len(q1[1])}; Q2: case {largest} "
                        f"holds {q2[0]}, page of {len(q2[1])}")
                elif (q1, q2) != ref:
                    raise SystemExit(f"{s['name']} answers other rows than casefile: "
                                     f"Q1 {q1 == ref[0]}, Q2 {q2 == ref[1]}")
            log(f"same rows from {', '.join(s['name'] for s in servers)}")

            for s in servers:
                for q in ["q1", "q2"]:
                    s["stmts_" + q] = statements_per_request(cluster, db, s["url"], s[q], s["token"])

            for q in [q for q in ["q1", "q2"] if q in parts]:
                for c in clients:
                    for s in servers:
                        r = lg.run(s["url"], [s[q]], c, a.seconds, a.warmup, s["token"])
                        r.update(server=s["name"], query=q.upper(), stmts=s["stmts_" + q])
                        results["points"].append(r)
                        log(f"{q.upper()} {s['name']:<15} {c:>3} clients: {r['rps']:>8.1f} req/s "
                            f"p50 {r['p50ms']} ms p99 {r['p99ms']} ms, errors {r['errors']}, "
                            f"loadgen CPU {r['loadgenCpuPct']}%")
                        if r["errors"]:
                            log(f"  first error: {r['firstError']}")

            # The limit: the minimal SQL of each page under pgbench.
            case_uuid = cluster.psql(db, f"SELECT id FROM cases WHERE tenant_id = '{tuuid}' AND number = {largest}")
            limit_sql = {
                "Q1": f"""SELECT c.number, c.name, c.status, c.severity, c.updated_at, c.detection_count,
      u.display_name, s.username FROM cases c
      LEFT JOIN users u ON u.tenant_id = c.tenant_id AND u.id = c.assignee_id
      LEFT JOIN subjects s ON s.tenant_id = c.tenant_id AND s.id = c.subject_id
      WHERE c.tenant_id = '{tuuid}' AND c.status_rank < 4
      ORDER BY c.updated_at DESC, c.number DESC LIMIT 50;
    SELECT count(*) FROM cases WHERE tenant_id = '{tuuid}' AND status_rank < 4;
    """,
                "Q2": f"""SELECT d.id, d.rule_name, d.observed_at, d.risk_score, d.severity, d.risk_indicators,
      d.device_hostname, d.file_name, d.file_sha256 FROM case_detections l
      JOIN detections d ON d.tenant_id = l.tenant_id AND d.id = l.detection_id
      WHERE l.case_id = '{case_uuid}' ORDER BY l.observed_at DESC, l.detection_id DESC LIMIT 100;
    SELECT detection_count FROM cases WHERE id = '{case_uuid}';
    """,
            }
            for q, sql in [(q, sql) for q, sql in limit_sql.items() if q.lower() in parts]:
                for c in clients:
                    r = pgbench(cluster, db, sql, c, a.seconds, work)
                    r.update(server="SQL limit", query=q, stmts=2)
                    results["points"].append(r)
                    log(f"{q} SQL limit (pgbench)  {c:>3} clients: {r['rps']:>8.1f} tps, avg {r['p50ms']} ms")

        if "q3" in parts:
            # Q3: the mutation mix (casefile).
            page = post(cf_url, gql("{ cases(first: 100) { nodes { id } } detections(first: 100) { nodes { id } } }"), token)
            case_ids = [n["id"] for n in page["data"]["cases"]["nodes"]]
            det_ids = [n["id"] for n in page["data"]["detections"]["nodes"]]
            has_post = "postMessage" in json.dumps(post(cf_url, gql('{ __type(name: "Mutation") { fields { name } } }'), token))
            mix = []
            for i in range(300):
                cid = case_ids[i % len(case_ids)]
                if i % 3 == 0:
                    mix.append(gql("mutation($i: UpdateCaseInput!) { updateCase(input: $i) { case { version } } }",
                                   {"i": {"id": cid, "description": f"bench update {i}"}}))
                elif i % 3 == 1:
                    mix.append(gql("mutation($i: CaseDetectionsInput!) { addDetectionsToCase(input: $i) { case { detectionCount } } }",
                                   {"i": {"caseId": cid, "detectionIds": det_ids[i % len(det_ids):][:3]}}))
                elif has_post:
                    mix.append(gql("mutation($i: PostMessageInput!) { postMessage(input: $i) { clientMutationId } }",
                                   {"i": {"caseId": cid, "body": f"bench message {i}"}}))
                else:
                    mix.append(gql("mutation($i: UpdateCaseInput!) { updateCase(input: $i) { case { version } } }",
                                   {"i": {"id": cid, "findings": f"<p>bench {i}</p>"}}))
            results["q3PostMessage"] = has_post
            for c in clients:
                r = lg.run(cf_url, mix, c, a.seconds, a.warmup, token)
                r.update(server="casefile", query="Q3", stmts=None)
                results["points"].append(r)
                log(f"Q3 casefile mix {c:>3} clients: {r['rps']:.1f} req/s p50 {r['p50ms']} ms p99 {r['p99ms']} ms, errors {r['errors']}")
                if r["errors"]:
                    log(f"  first error: {r['firstError']}")

        if "q4" in parts:
            # Q4: ingest, the same rows three ways (each with its own external ids).
            n = a.ingest_rows
            ndjson = "".join(json.dumps(detection_line(i, "nd")) + "\n" for i in range(n))
            started = time.time()
            answer = post(cf_url.replace("/graphql", "/ingest/detections"), ndjson, token, "application/x-ndjson")
            nd_rate = answer["accepted"] / (time.time() - started)
            started = time.time()
            accepted = 0
            for k in range(0, n, 1000):
                batch = [detection_line(i, "gq") for i in range(k, min(n, k + 1000))]
                r = post(cf_url, gql("mutation($i: IngestDetectionsInput!) { ingestDetections(input: $i) { accepted } }",
                                     {"i": {"detections": batch}}), token)
                accepted += r["data"]["ingestDetections"]["accepted"]
            gq_rate = accepted / (time.time() - started)
            buf = io.StringIO()
            w = csv.writer(buf)
            for i in range(n):
                d = detection_line(i, "cp")
                w.writerow([tuuid, str(uuid.uuid4()), d["externalId"], "XDR", d["ruleName"], d["ruleName"].lower(),
                            d["observedAt"], d["riskScore"], d["device"]["hostname"], d["device"]["hostname"],
                            d["device"]["ip"], d["actor"], d["actor"]])
            started = time.time()
            run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", cluster.url(db), "-c",
                 "\\copy detections (tenant_id, id, external_id, source, rule_name, rule_name_key, observed_at, "
                 "risk_score, device_hostname, device_hostname_key, device_ip, actor, actor_key) FROM pstdin WITH (FORMAT csv)"],
                input=buf.getvalue())
            copy_rate = n / (time.time() - started)
            results["q4"] = {"rows": n, "ndjson": round(nd_rate), "ingestDetections": round(gq_rate), "copy": round(copy_rate),
                             "ndjsonAccepted": answer["accepted"], "ndjsonRejected": len(answer["rejected"])}
            log(f"Q4 ingest of {n:,} rows: NDJSON {nd_rate:,.0f}/s, ingestDetections {gq_rate:,.0f}/s, COPY {copy_rate:,.0f}/s")

        for s in servers:
            s["rss"] = peak_rss_mb(s["proc"].pid)
        results["rss"] = {s["name"]: s["rss"] for s in servers}
        for s in servers:
            stop(s["proc"])

        if "q5" in parts:
            # Q5: growth, from the large cases-only seed.
            growth = []
            growth_sizes = [int(x) for x in a.growth.split(",") if x]
            for cases in growth_sizes:
                gdb = f"growth_{cases}"
                run(["createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", gdb])
                genv = {**env, "DATABASE_URL": cluster.url(gdb)}
                started = time.time()
                with open(os.path.join(work, f"seed-{cases}.log"), "w") as err:
                    g = json.loads(subprocess.run([a.casefile, "seed", "--scale", "large", "--cases", str(cases)],
                                                  env={**os.environ, **genv}, text=True, stdout=subprocess.PIPE,
                                                  stderr=err, check=True).stdout)
                log(f"Q5 seeded {cases:,} cases in {time.time() - started:.0f} s")
                cluster.psql(gdb, "VACUUM ANALYZE")
                gt = g["tenants"][0]
                port = free_port()
                p = start([a.casefile, "serve"], {**genv, "CASEFILE_LISTEN": f"127.0.0.1:{port}"},
                          os.path.join(work, f"casefile-{cases}.log"))
                url = f"http://127.0.0.1:{port}/graphql"
                wait_http(url, p)
                point = {"cases": cases}
                for q, body in [("Q1", gql(CF_Q1)), ("Q2", gql(CF_Q2, {"n": gt["largestCase"]["number"]}))]:
                    r = lg.run(url, [body], clients[0], a.seconds, a.warmup, gt["adminToken"])
                    point[q] = r["p50ms"]
                    point[q + "rps"] = r["rps"]
                if cases == growth_sizes[-1]:
                    # Dashboard statistics at the largest size, one client: latency, not load.
                    for w in ["P30D", "P365D"]:
                        r = lg.run(url, [gql(CF_STATS, {"w": w})], 1, a.seconds, a.warmup, gt["adminToken"])
                        point["stats" + w] = {"p50ms": r["p50ms"], "p99ms": r["p99ms"]}
                point["rss"] = peak_rss_mb(p.pid)
                stop(p)
                growth.append(point)
                log(f"Q5 {cases:>9,} cases: Q1 median {point['Q1']} ms, Q2 median {point['Q2']} ms ({clients[0]} clients)")
                cluster.psql("postgres", f"DROP DATABASE {gdb}")
            results["q5"] = growth
    finally:
        for p in PROCS:
            stop(p)
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(a.out, f"results-{stamp}.json"), "w") as f:
        json.dump(results, f, indent=1)
    print_table(results)
    # A figure measured over failing requests measures the failures: any error fails the run.
    failed = [p for p in results["points"] if p.get("errors")]
    if failed:
        raise SystemExit("requests failed during the load: " + ", ".join(
            f"{p['query']} {p['server']} @{p['clients']}: {p['errors']}" for p in failed))


def print_table(r):
    print()
    print(f"casefile benchmark: {r['cores']} cores, commit {r['commit']}, {r['scale']} data "
          f"(seeded in {r.get('seedSeconds')} s), {r['seconds']:g} s a point")
    print()
    pts = r["points"]
    print(f"{'query':<5} {'server':<15} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'stmts/req':>9} {'loadgen CPU':>11} {'errors':>6}")
    for p in pts:
        print(f"{p['query']:<5} {p['server']:<15} {p['clients']:>7} {fmt(p['rps'], 1):>9} "
              f"{fmt(p['p50ms'], 2):>8} {fmt(p['p99ms'], 2):>8} {fmt(p.get('stmts'), 2):>9} "
              f"{(str(p.get('loadgenCpuPct', '-')) + '%') if 'loadgenCpuPct' in p else '-':>11} "
              f"{p.get('errors', 0):>6}")
    print()
    print("Ratios (throughput; p99 casefile / other):")
    for q in ["Q1", "Q2"]:
        for c in sorted({p["clients"] for p in pts if p["query"] == q}):
            by = {p["server"]: p for p in pts if p["query"] == q and p["clients"] == c}
            cf = by.get("casefile")
            if not cf:
                continue
            parts = []
            for other in ["baseline", "PostGraphile 5", "PostGraphile 4"]:
                o = by.get(other)
                if o and o["rps"]:
                    p99 = f", p99 {cf['p99ms'] / o['p99ms']:.2f}x" if o["p99ms"] else ""
                    parts.append(f"casefile/{other} {cf['rps'] / o['rps']:.2f}x{p99}")
            lim = by.get("SQL limit")
            if lim and lim["rps"]:
                for name in ["casefile", "baseline", "PostGraphile 5", "PostGraphile 4"]:
                    if name in by:
                        parts.append(f"{name}/limit {100 * by[name]['rps'] / lim['rps']:.0f}%")
            print(f"  {q} @{c}: " + "; ".join(parts))
    if "q4" in r:
        q4 = r["q4"]
        print(f"Q4 ingest ({q4['rows']:,} rows): NDJSON {q4['ndjson']:,}/s "
              f"({100 * q4['ndjson'] / q4['copy']:.0f}% of COPY), ingestDetections "
              f"{q4['ingestDetections']:,}/s, COPY {q4['copy']:,}/s")
    if r.get("q5"):
        base = r["q5"][0]
        print("Q5 growth (medians at the first client count):")
        for g in r["q5"]:
            print(f"  {g['cases']:>9,} cases: Q1 {g['Q1']} ms ({g['Q1'] / base['Q1']:.2f}x), "
                  f"Q2 {g['Q2']} ms ({g['Q2'] / base['Q2']:.2f}x), casefile peak RSS {g['rss']} MB")
        last = r["q5"][-1]
        if len(r["q5"]) > 1:
            print(f"  ratio {last['cases']:,} / {base['cases']:,} cases: Q1 {last['Q1'] / base['Q1']:.2f}x, "
                  f"Q2 {last['Q2'] / base['Q2']:.2f}x (target: at most 1.5x)")
        for g in r["q5"]:
            for w in ["P30D", "P365D"]:
                if "stats" + w in g:
                    st = g["stats" + w]
                    print(f"  caseStats({w}) at {g['cases']:,} cases: median {st['p50ms']} ms, "
                          f"p99 {st['p99ms']} ms (1 client)")
    print("Peak RSS (MB): " + ", ".join(f"{k} {v}" for k, v in r.get("rss", {}).items()))


if __name__ == "__main__":
    main()
