// The client-side copy of the pool: class -> ref -> record, kept up to date from event.from. The UI renders from it.

import { isNullRef } from "./format.js";

export class ObjectCache {
  #classes = new Map();
  #listeners = new Set();
  #pending = false;

  /** Forgets everything (before a fresh event.from with token ""). */
  reset() {
    this.#classes.clear();
    this.#notify();
  }

  /** Applies event.from events: add/mod store the snapshot, del removes the object. */
  applyEvents(events) {
    for (const event of events) {
      const cls = String(event.class).toLowerCase();
      let objects = this.#classes.get(cls);
      if (!objects) {
        objects = new Map();
        this.#classes.set(cls, objects);
      }
      if (event.operation === "del") {
        objects.delete(event.ref);
      } else if (event.snapshot) {
        // opaque_ref, as XenCenter's objects carry it: a record knows its own reference.
        objects.set(event.ref, { ...event.snapshot, opaque_ref: event.ref });
      }
    }
    if (events.length > 0) {
      this.#notify();
    }
  }

  get(cls, ref) {
    if (isNullRef(ref)) {
      return undefined;
    }
    return this.#classes.get(cls.toLowerCase())?.get(ref);
  }

  all(cls) {
    return [...(this.#classes.get(cls.toLowerCase())?.values() ?? [])];
  }

  /** Finds the class of a reference (references are unique across classes). */
  classOf(ref) {
    for (const [cls, objects] of this.#classes) {
      if (objects.has(ref)) {
        return cls;
      }
    }
    return null;
  }

  /** A name for any reference, for messages. */
  nameOf(ref) {
    const cls = this.classOf(ref);
    if (!cls) {
      return null;
    }
    const record = this.get(cls, ref);
    return record.name_label ?? record.name ?? record.uuid ?? null;
  }

  /** Calls listener (at most once per animation frame) after changes. Returns an unsubscribe function. */
  subscribe(listener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify() {
    if (this.#pending) {
      return;
    }
    this.#pending = true;
    // Event batches come in bursts; one render per frame is enough.
    requestAnimationFrame(() => {
      this.#pending = false;
      for (const listener of [...this.#listeners]) {
        try {
          listener();
        } catch (error) {
          console.warn("render failed", error);
        }
      }
    });
  }
}
