// The XenAPI over JSON-RPC, and the connection to the pool master: login (following HOST_IS_SLAVE), session expiry,
// and failover to whichever host becomes master when the one we talk to goes away.

import { NetworkError, XenApiError } from "./errors.js";

const ORIGINATOR = "Corral web console";
const CALL_TIMEOUT_MS = 60_000;
const LOGIN_TIMEOUT_MS = 8_000;
const HEARTBEAT_INTERVAL_MS = 5_000;
const HEARTBEAT_TIMEOUT_MS = 6_000;
// A SESSION_INVALID this soon after losing the connection means the master changed, not that the session expired.
const FAILOVER_WINDOW_MS = 120_000;

let nextRequestId = 1;

/** The API base URL for a host address: same scheme and port as the page (the page's own origin for its host). */
export function baseForAddress(address) {
  const host = address.includes(":") && !address.startsWith("[") ? `[${address}]` : address;
  const port = window.location.port ? `:${window.location.port}` : "";
  return `${window.location.protocol}//${host}${port}`;
}

export function addressOfBase(base) {
  try {
    return new URL(base).hostname.replace(/^\[|\]$/g, "");
  } catch {
    return base;
  }
}

/** One JSON-RPC call. Throws XenApiError for a XenAPI failure, NetworkError when the answer never came. */
export async function rpc(base, method, params, { timeoutMs = CALL_TIMEOUT_MS, signal } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error("timed out")), timeoutMs);
  const onAbort = () => controller.abort(signal.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  let body;
  try {
    const response = await fetch(`${base}/jsonrpc`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", method, params, id: nextRequestId++ }),
      signal: controller.signal,
      cache: "no-store",
      credentials: "omit",
    });
    if (!response.ok && !(response.headers.get("content-type") ?? "").includes("json")) {
      throw new Error(`HTTP ${response.status}`);
    }
    body = await response.json();
  } catch (error) {
    if (signal?.aborted) {
      throw new DOMException("aborted", "AbortError");
    }
    const reason = controller.signal.aborted ? new Error("timed out") : error;
    throw new NetworkError(addressOfBase(base), reason);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
  if (body?.error) {
    throw new XenApiError(String(body.error.message ?? "INTERNAL_ERROR"), (body.error.data ?? []).map(String));
  }
  if (!body || !("result" in body)) {
    throw new NetworkError(addressOfBase(base), new Error("not a JSON-RPC answer"));
  }
  return body.result;
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

function isConnectionFailure(error) {
  return error instanceof NetworkError
    || (error instanceof XenApiError && (error.code === "HOST_IS_SLAVE" || error.code === "HOST_IN_EMERGENCY_MODE"));
}

/**
 * The console's link to the pool: where the master is (apiBase), the session, and the credentials, kept in memory
 * only so that a failover can log in again on the new master. Dispatches:
 *  "status"      {text, kind: "info"|"warning"|"ok"} for the status banner,
 *  "reconnected" after a failover (the event stream must start again from ""),
 *  "expired"     when the session has expired (back to the login form).
 */
export class PoolConnection extends EventTarget {
  #password = null;
  #recovery = null;
  #closed = true;
  #lastTrouble = 0;
  #heartbeat = null;
  #lifetime = null;
  #knownAddresses = new Set();

  constructor() {
    super();
    this.apiBase = window.location.origin;
    this.session = null;
    this.user = null;
    /** What the session may call: null for everything (the local superuser), else its rbac_permissions. */
    this.permissions = null;
    this.generation = 0;
    /** Set by the app: the host addresses the pool knows (host records' "address"). */
    this.hostAddresses = () => [];
    /** Set by the app: the host name for an address, for messages. */
    this.hostNameFor = (address) => address;
    /** Set by the app: whether the host we talk to is still pool.master, as far as the event stream says. */
    this.talksToMaster = () => true;
  }

  get connected() {
    return !this.#closed && this.session !== null;
  }

  get recovering() {
    return this.#recovery !== null;
  }

  get address() {
    return addressOfBase(this.apiBase);
  }

  /** Logs in at the page's own host, following HOST_IS_SLAVE to the master. */
  async login(user, password) {
    const { base, session } = await this.#loginFollowingMaster(window.location.origin, user, password, CALL_TIMEOUT_MS);
    this.#closed = false;
    this.#lifetime = new AbortController();
    this.apiBase = base;
    this.session = session;
    this.user = user;
    this.#password = password;
    this.#knownAddresses = new Set([addressOfBase(base)]);
    this.permissions = await this.#permissionsOf(base, session);
    this.generation += 1;
    this.#startHeartbeat();
    return session;
  }

  /**
   * Whether the session may make the call, as XenCenter hides what a role may not do: xapi's permission for a call is
   * its message's name in lower case (Async.VM.start needs vm.start); HTTP handlers' are named "http/...". The pool
   * checks every call anyway: this only keeps the page from offering what would be refused.
   */
  may(method) {
    if (this.permissions === null) return true;
    const name = method.replace(/^Async\./, "").toLowerCase();
    return this.permissions.has(name) || this.permissions.has("pool-admin");
  }

  async #permissionsOf(base, session) {
    if (await rpc(base, "session.get_is_local_superuser", [session, session])) return null;
    return new Set(await rpc(base, "session.get_rbac_permissions", [session, session]));
  }

  async logout() {
    const { session, apiBase } = this;
    this.#shutDown();
    if (session) {
      try {
        await rpc(apiBase, "session.logout", [session], { timeoutMs: 5000 });
      } catch {
        // The session ends on the server by itself when it cannot be told.
      }
    }
  }

  /** A signal that aborts when the user logs out or the session expires. */
  get lifetimeSignal() {
    return this.#lifetime?.signal;
  }

  /**
   * Calls a method with the session as first argument. Waits for a failover in progress first. A connection failure
   * starts a failover and is rethrown; SESSION_INVALID outside a failover means the session expired.
   */
  async call(method, ...args) {
    return this.callWith({}, method, ...args);
  }

  async callWith(options, method, ...args) {
    if (this.#recovery) {
      await this.#recovery;
    }
    if (this.#closed) {
      throw new XenApiError("SESSION_INVALID", [""]);
    }
    const generation = this.generation;
    try {
      return await rpc(this.apiBase, method, [this.session, ...args], { signal: this.#lifetime?.signal, ...options });
    } catch (error) {
      if (error?.name !== "AbortError" && generation === this.generation) {
        this.#onFailure(error);
      }
      throw error;
    }
  }

  /** Resolves when the connection is usable again (after a failover), or at once. */
  async ready() {
    if (this.#recovery) {
      await this.#recovery;
    }
    return this.connected;
  }

  /** Remembers host addresses to try in a failover, beyond those of the host records. */
  rememberAddresses(addresses) {
    for (const address of addresses) {
      if (address) {
        this.#knownAddresses.add(address);
      }
    }
  }

  #onFailure(error) {
    if (this.#closed) {
      return;
    }
    if (isConnectionFailure(error)) {
      this.#lastTrouble = Date.now();
      this.#startRecovery();
    } else if (error instanceof XenApiError && error.code === "SESSION_INVALID") {
      const afterTrouble = Date.now() - this.#lastTrouble < FAILOVER_WINDOW_MS;
      if (afterTrouble || !this.talksToMaster()) {
        this.#startRecovery();
      } else {
        this.#expire();
      }
    }
  }

  #expire() {
    this.#shutDown();
    this.dispatchEvent(new CustomEvent("expired"));
  }

  #shutDown() {
    this.#closed = true;
    this.session = null;
    this.#password = null;
    this.#lifetime?.abort();
    clearInterval(this.#heartbeat);
    this.#heartbeat = null;
  }

  #status(text, kind) {
    this.dispatchEvent(new CustomEvent("status", { detail: { text, kind } }));
  }

  #startRecovery() {
    if (this.#recovery || this.#closed) {
      return;
    }
    this.#recovery = this.#recover().finally(() => {
      this.#recovery = null;
    });
  }

  async #recover() {
    const lostAddress = this.address;
    const lostName = this.hostNameFor(lostAddress);
    const oldSession = this.session;
    this.#status(`Lost the connection to ${lostName}; reconnecting…`, "warning");
    const signal = this.#lifetime?.signal;
    for (let attempt = 0; !this.#closed; attempt += 1) {
      this.rememberAddresses(this.hostAddresses());
      // The host we lost goes last: when it died, waiting for it first would only delay the others.
      const candidates = [...this.#knownAddresses].filter((a) => a !== lostAddress);
      candidates.push(lostAddress);
      for (const address of candidates) {
        if (this.#closed) {
          return;
        }
        try {
          const { base, session } = await this.#loginFollowingMaster(baseForAddress(address), this.user, this.#password, LOGIN_TIMEOUT_MS);
          if (this.#closed) {
            return;
          }
          this.apiBase = base;
          this.session = session;
          this.generation += 1;
          const name = this.hostNameFor(this.address);
          // The loss is said again: it may have lasted too short a time for anyone to read it.
          this.#status(`Lost the connection to ${lostName}. ${this.address === lostAddress ? `Reconnected to ${name}` : `Reconnected to the new master ${name}`}.`, "ok");
          this.dispatchEvent(new CustomEvent("reconnected"));
          if (oldSession && oldSession !== session) {
            // Sessions are pool objects: the old one may still exist; do not leave it behind.
            rpc(base, "session.logout", [oldSession], { timeoutMs: 5000 }).catch(() => {});
          }
          return;
        } catch (error) {
          if (error instanceof XenApiError && error.code === "SESSION_AUTHENTICATION_FAILED") {
            // The password changed meanwhile: only the user can log in again.
            this.#expire();
            return;
          }
        }
      }
      this.#status(`Lost the connection to ${lostName}; still reconnecting (tried ${candidates.map((a) => this.hostNameFor(a)).join(", ")})…`, "warning");
      await sleep(Math.min(1000 + attempt * 1000, 5000), signal);
    }
  }

  /** Logs in at base; a slave answers HOST_IS_SLAVE with the master's address, where we log in instead. */
  async #loginFollowingMaster(base, user, password, timeoutMs) {
    let current = base;
    for (let hop = 0; hop < 4; hop += 1) {
      try {
        const session = await rpc(current, "session.login_with_password", [user, password, "1.0", ORIGINATOR], { timeoutMs });
        return { base: current, session };
      } catch (error) {
        if (error instanceof XenApiError && error.code === "HOST_IS_SLAVE" && error.params[0]) {
          const next = baseForAddress(error.params[0]);
          if (next === current) {
            throw error;
          }
          current = next;
          continue;
        }
        throw error;
      }
    }
    throw new XenApiError("HOST_IS_SLAVE", [addressOfBase(current)]);
  }

  // A long poll to a host that lost its links fails only at its timeout; a short call every few seconds notices sooner.
  #startHeartbeat() {
    clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(async () => {
      if (this.#closed || this.#recovery) {
        return;
      }
      const generation = this.generation;
      try {
        await rpc(this.apiBase, "pool.get_all", [this.session], { timeoutMs: HEARTBEAT_TIMEOUT_MS, signal: this.#lifetime?.signal });
      } catch (error) {
        if (error?.name !== "AbortError" && generation === this.generation) {
          this.#onFailure(error);
        }
      }
    }, HEARTBEAT_INTERVAL_MS);
  }
}
