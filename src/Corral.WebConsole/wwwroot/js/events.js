// The event.from loop that keeps the cache current: token "" first (every object as "add"), then a 30 s long poll
// with the returned token. A failover restarts it from "" on the new master.

import { XenApiError } from "./errors.js";

export const EVENT_CLASSES = [
  "pool", "host", "host_metrics", "VM", "VM_metrics", "VM_guest_metrics", "SR", "PBD", "VDI", "VBD",
  "network", "VIF", "PIF", "task", "message", "console",
];

const LONG_POLL_SECONDS = 30;

export class EventLoop {
  #run = 0;
  #controller = null;
  #firstSync = null;
  #resolveFirstSync = null;

  constructor(connection, cache, onProblem) {
    this.connection = connection;
    this.cache = cache;
    this.onProblem = onProblem;
    this.classes = [...EVENT_CLASSES];
    connection.addEventListener("reconnected", () => {
      if (this.#controller) {
        this.start();
      }
    });
  }

  /** Starts (or restarts) from token "". Resolves the returned promise after the first full sync. */
  start() {
    this.stop();
    this.#firstSync = new Promise((resolve) => { this.#resolveFirstSync = resolve; });
    const run = ++this.#run;
    this.#controller = new AbortController();
    this.#loop(run, this.#controller.signal);
    return this.#firstSync;
  }

  stop() {
    this.#run += 1;
    this.#controller?.abort();
    this.#controller = null;
  }

  async #loop(run, signal) {
    let token = "";
    const lifetime = this.connection.lifetimeSignal;
    lifetime?.addEventListener("abort", () => this.#controller?.abort(), { once: true });
    while (run === this.#run && this.connection.connected) {
      try {
        const result = await this.connection.callWith(
          { timeoutMs: (LONG_POLL_SECONDS + 30) * 1000, signal },
          "event.from", this.classes, token, token === "" ? 0.0 : LONG_POLL_SECONDS);
        if (run !== this.#run) {
          return;
        }
        if (token === "") {
          this.cache.reset();
        }
        this.cache.applyEvents(result.events ?? []);
        if (token === "") {
          this.#resolveFirstSync?.(true);
        }
        token = result.token;
      } catch (error) {
        if (run !== this.#run || error?.name === "AbortError") {
          return;
        }
        if (error instanceof XenApiError && error.code === "EVENT_SUBSCRIPTION_PARSE_FAILURE") {
          // A class this server does not have (an older Corral without consoles, say): follow the others.
          const unknown = String(error.params[0] ?? "").split("/")[0].toLowerCase();
          const before = this.classes.length;
          this.classes = this.classes.filter((cls) => cls.toLowerCase() !== unknown);
          if (this.classes.length === before) {
            this.onProblem?.(error);
            await delay(5000, signal);
          }
          continue;
        }
        if (error instanceof XenApiError && (error.code === "EVENTS_LOST" || error.code === "EVENT_FROM_TOKEN_PARSE_FAILURE")) {
          token = "";
          continue;
        }
        // Connection trouble or session end: the connection fails over (and "reconnected" restarts this loop) or
        // expires (and the app goes back to the login form). Either way this run waits, then stops or goes on.
        const stillConnected = await this.connection.ready();
        if (!stillConnected || run !== this.#run) {
          return;
        }
        if (!(error instanceof XenApiError && error.code === "SESSION_INVALID") && error?.name !== "NetworkError") {
          this.onProblem?.(error);
          await delay(2000, signal);
        } else {
          await delay(500, signal);
        }
        token = "";
      }
    }
  }
}

function delay(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
