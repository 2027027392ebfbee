// The tasks this console started (Async.* calls), followed through the event stream: progress while pending, then
// success or the error. Shown in the tasks area; each track() also resolves or rejects with the task's outcome.

import { h } from "./dom.js";
import { XenApiError } from "./errors.js";
import { formatPercent } from "./format.js";

const KEEP_FINISHED = 8;

export class TaskTracker {
  #tracked = new Map();
  #list;
  #cache;
  #describe;
  #clearButton;

  /** list: the ul of the tasks area; describe(error) makes a readable message. */
  constructor(cache, list, clearButton, describe) {
    this.#cache = cache;
    this.#list = list;
    this.#clearButton = clearButton;
    this.#describe = describe;
    cache.subscribe(() => this.#update());
    clearButton.addEventListener("click", () => {
      for (const [ref, entry] of this.#tracked) {
        if (entry.done) {
          this.#tracked.delete(ref);
          entry.element.remove();
        }
      }
      this.#updateClearButton();
    });
  }

  /** Follows a task; resolves with its result (the text inside XenAPI's <value>) or rejects with its XenApiError. */
  track(taskRef, title) {
    return new Promise((resolve, reject) => {
      const progress = h("progress", { max: 1, value: 0, attrs: { "aria-label": `Progress of ${title}` } });
      const state = h("span", { class: "task-state", text: "Pending" });
      const element = h("li", { class: "task task-pending", dataset: { task: taskRef } },
        h("span", { class: "task-title", text: title }), progress, state);
      this.#list.prepend(element);
      this.#tracked.set(taskRef, { title, element, progress, state, resolve, reject, done: false });
      this.#trim();
      this.#update();
    });
  }

  /** Forgets every task (logout): their outcomes no longer concern anyone. */
  clear() {
    this.#tracked.clear();
    this.#list.replaceChildren();
    this.#updateClearButton();
  }

  /** Records a call that failed before it could become a task, so the error shows where tasks show. */
  failed(title, error) {
    const element = h("li", { class: "task task-failure" },
      h("span", { class: "task-title", text: title }),
      h("span", { class: "task-state", text: `Failed: ${this.#describe(error)}` }));
    const ref = `local-${Date.now()}-${Math.random()}`;
    this.#list.prepend(element);
    this.#tracked.set(ref, { title, element, done: true });
    this.#trim();
    this.#updateClearButton();
  }

  #update() {
    for (const [ref, entry] of this.#tracked) {
      if (entry.done) {
        continue;
      }
      const task = this.#cache.get("task", ref);
      if (!task) {
        continue;
      }
      const progress = Number(task.progress) || 0;
      entry.progress.value = progress;
      entry.element.className = `task task-${task.status}`;
      if (task.status === "pending" || task.status === "cancelling") {
        entry.state.textContent = `${task.status === "cancelling" ? "Cancelling" : "In progress"}, ${formatPercent(progress)}`;
        continue;
      }
      entry.done = true;
      if (task.status === "success") {
        entry.progress.value = 1;
        entry.state.textContent = "Done";
        entry.resolve(decodeResult(task.result));
      } else {
        const info = task.error_info ?? [];
        const error = task.status === "cancelled" ? new XenApiError("TASK_CANCELLED", [ref]) : new XenApiError(info[0] ?? "INTERNAL_ERROR", info.slice(1));
        entry.state.textContent = `Failed: ${this.#describe(error)}`;
        entry.reject(error);
      }
    }
    this.#updateClearButton();
  }

  #trim() {
    const finished = [...this.#tracked].filter(([, entry]) => entry.done);
    for (const [ref, entry] of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) {
      this.#tracked.delete(ref);
      entry.element.remove();
    }
  }

  #updateClearButton() {
    this.#clearButton.hidden = ![...this.#tracked.values()].some((entry) => entry.done);
  }
}

/** xapi stores a task's result as an XML-RPC value fragment: "<value>OpaqueRef:...</value>". */
export function decodeResult(result) {
  if (!result) {
    return "";
  }
  const text = String(result).replace(/^\s*<value>(?:<string>)?/, "").replace(/(?:<\/string>)?<\/value>\s*$/, "");
  const entities = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, entity) => {
    if (entity[0] === "#") {
      return String.fromCodePoint(entity[1].toLowerCase() === "x" ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10));
    }
    return entities[entity.toLowerCase()];
  });
}
