// One caseEvents subscription of the soak and what it must receive: the MESSAGE_POSTED
// event of every acknowledged postMessage (matched by body) and one UPDATED event per
// acknowledged updateCase, each exactly once (no cursor twice).

const SUBSCRIPTION =
  'subscription($caseId: ID!, $after: String) { caseEvents(caseId: $caseId, after: $after) { cursor kind caseId message { body } } }';

export class LiveCase {
  /** `onLatency(ms)`: called with the time from a post to its event. */
  constructor(caseId, onLatency = () => {}) {
    this.caseId = caseId;
    this.onLatency = onLatency;
    this.posting = new Map();
    this.acked = new Set();
    this.bodies = new Set();
    this.cursors = new Set();
    this.updatesAcked = 0;
    this.updatesReceived = 0;
    this.received = 0;
    this.lastCursor = null;
    this.errors = [];
    this.stopped = false;
    this.waiters = [];
  }

  /**
   * Subscribe on `socket` (a graphql-ws client). With `after`, events after that cursor
   * are replayed first, so nothing posted later can be missed. Without it, `hello(body)`
   * posts messages until one arrives: from then on the subscription is known to be live.
   */
  async start(socket, { after = null, hello = null, timeoutMs = 20_000 } = {}) {
    this.unsubscribe = socket.subscribe(
      { query: SUBSCRIPTION, variables: { caseId: this.caseId, after } },
      {
        next: (value) => this.#event(value),
        error: (error) => this.#fail(error),
        complete: () => {
          if (!this.stopped) this.#fail(new Error('the server completed the subscription'));
        },
      },
    );
    if (!hello) return;
    const deadline = Date.now() + timeoutMs;
    for (let n = 0; Date.now() < deadline; n += 1) {
      const body = `soak hello ${n} ${Math.random().toString(36).slice(2)}`;
      await hello(body);
      if (await this.#waitFor(() => this.bodies.has(body), 500)) return;
    }
    throw new Error(`the subscription on ${this.caseId} received none of its hello messages`);
  }

  #event(value) {
    if (value.errors) {
      this.#fail(new Error(JSON.stringify(value.errors)));
      return;
    }
    const event = value.data.caseEvents;
    this.received += 1;
    if (this.cursors.has(event.cursor)) this.errors.push(`event ${event.cursor} received twice`);
    this.cursors.add(event.cursor);
    this.lastCursor = event.cursor;
    if (event.caseId !== this.caseId) this.errors.push(`an event of case ${event.caseId} on ${this.caseId}`);
    if (event.kind === 'MESSAGE_POSTED' && event.message) {
      this.bodies.add(event.message.body);
      const started = this.posting.get(event.message.body);
      if (started !== undefined) {
        this.onLatency(Date.now() - started);
        this.posting.delete(event.message.body);
      }
    } else if (event.kind === 'UPDATED') {
      this.updatesReceived += 1;
    }
    this.waiters.splice(0).forEach((wake) => wake());
  }

  #fail(error) {
    const text = error?.message ?? (Array.isArray(error) ? JSON.stringify(error) : String(error?.reason ?? error?.code ?? error));
    this.errors.push(`${this.caseId}: ${text}`);
    this.waiters.splice(0).forEach((wake) => wake());
  }

  async #waitFor(done, ms) {
    const deadline = Date.now() + ms;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise((wake) => {
        const timer = setTimeout(wake, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(timer);
          wake();
        });
      });
    }
    return true;
  }

  /** A message with `body` is about to be posted on the case. */
  posted(body) {
    this.posting.set(body, Date.now());
  }

  /** The server acknowledged the message with `body`: its event must come. */
  messageAcknowledged(body) {
    this.acked.add(body);
  }

  /** The server acknowledged an update of the case: one more UPDATED event must come. */
  updateAcknowledged() {
    this.updatesAcked += 1;
  }

  /** What has not arrived (yet). */
  missing() {
    const out = [...this.acked].filter((body) => !this.bodies.has(body)).map((body) => `no MESSAGE_POSTED for "${body}"`);
    if (this.updatesReceived < this.updatesAcked) {
      out.push(`${this.updatesAcked - this.updatesReceived} of ${this.updatesAcked} UPDATED events missing`);
    }
    return out;
  }

  /** Wait up to `ms` for every acknowledged write's event. */
  settle(ms) {
    return this.#waitFor(() => this.missing().length === 0, ms);
  }

  stop() {
    this.stopped = true;
    this.unsubscribe?.();
  }
}
