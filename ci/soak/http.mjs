// HTTP for the soak: one keep-alive agent per client (closed at the end, so the server's
// count of open connections can be checked), GraphQL over POST, raw requests for files.
import http from 'node:http';
import https from 'node:https';

const TIMEOUT_MS = 60_000;

/** A GraphQL error answer; `code` is the first error's `extensions.code`. */
export class GraphqlError extends Error {
  constructor(errors) {
    const first = errors[0] ?? {};
    super(`${first.extensions?.code ?? 'NO_CODE'}: ${first.message ?? JSON.stringify(errors)}`);
    this.code = first.extensions?.code ?? null;
  }
}

export class Http {
  constructor(base, token) {
    this.base = base;
    this.token = token;
    this.module = base.protocol === 'https:' ? https : http;
    this.agent = new this.module.Agent({ keepAlive: true, maxSockets: 4 });
  }

  /** `{ status, headers, body }` with the whole body as a Buffer. */
  request(method, path, { body, headers = {} } = {}) {
    const url = new URL(path, this.base);
    return new Promise((resolve, reject) => {
      const req = this.module.request(
        url,
        {
          method,
          agent: this.agent,
          timeout: TIMEOUT_MS,
          headers: {
            authorization: `Bearer ${this.token}`,
            ...(body ? { 'content-length': Buffer.byteLength(body) } : {}),
            ...headers,
          },
        },
        (res) => {
          const chunks = [];
          res.on('data', (chunk) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** The `data` of a GraphQL answer; throws GraphqlError on errors. */
  async graphql(query, variables) {
    const { status, body } = await this.request('POST', '/graphql', {
      body: JSON.stringify({ query, variables }),
      headers: { 'content-type': 'application/json', accept: 'application/json' },
    });
    let answer;
    try {
      answer = JSON.parse(body.toString('utf8'));
    } catch {
      throw new Error(`HTTP ${status}, not JSON: ${body.toString('utf8', 0, 200)}`);
    }
    if (answer.errors?.length) throw new GraphqlError(answer.errors);
    if (status !== 200 || !answer.data) throw new Error(`HTTP ${status}: ${body.toString('utf8', 0, 200)}`);
    return answer.data;
  }

  close() {
    this.agent.destroy();
  }
}
