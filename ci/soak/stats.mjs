// Counts and latencies by kind of operation: of the current window and of the whole run.

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export class Stats {
  constructor() {
    this.kinds = new Map();
    this.errors = 0;
    this.conflicts = 0;
    this.errorSamples = new Map();
  }

  #kind(name) {
    let kind = this.kinds.get(name);
    if (!kind) {
      kind = { requests: 0, errors: 0, conflicts: 0, window: [], all: [] };
      this.kinds.set(name, kind);
    }
    return kind;
  }

  ok(name, ms) {
    const kind = this.#kind(name);
    kind.requests += 1;
    kind.window.push(ms);
    kind.all.push(ms);
  }

  /** An expected VERSION_CONFLICT: counted apart, not an error. */
  conflict(name, ms) {
    this.ok(name, ms);
    this.#kind(name).conflicts += 1;
    this.conflicts += 1;
  }

  error(name, error) {
    const kind = this.#kind(name);
    kind.requests += 1;
    kind.errors += 1;
    this.errors += 1;
    const text = `${name}: ${error?.message ?? error}`.slice(0, 300);
    this.errorSamples.set(text, (this.errorSamples.get(text) ?? 0) + 1);
  }

  nextWindow() {
    for (const kind of this.kinds.values()) kind.window = [];
  }

  firstErrors(n = 5) {
    return [...this.errorSamples].slice(0, n).map(([text, count]) => `${text} (×${count})`);
  }

  /** A table: requests, errors, conflicts, p50 and p99 in ms (the window's, or the run's). */
  table(whole) {
    const rows = [['kind', 'requests', 'errors', 'conflicts', whole ? 'p50 ms (run)' : 'p50 ms (10 s)', whole ? 'p99 ms (run)' : 'p99 ms (10 s)']];
    for (const [name, kind] of [...this.kinds].sort(([a], [b]) => a.localeCompare(b))) {
      const sorted = [...(whole ? kind.all : kind.window)].sort((a, b) => a - b);
      const fmt = (v) => (Number.isNaN(v) ? '-' : v.toFixed(1));
      rows.push([name, kind.requests, kind.errors, kind.conflicts, fmt(percentile(sorted, 50)), fmt(percentile(sorted, 99))].map(String));
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
  }
}
