// What the buttons and menus do: XenAPI calls, Async.* where the work takes time, each followed as a task.

import { openDialog } from "./dialog.js";
import { h } from "./dom.js";
import { vmActionAllowed } from "./model.js";

/** The VM power actions, with XenCenter's names, the power states they need and the Async call they make. */
export const VM_ACTIONS = [
  { label: "Start", method: "Async.VM.start", operation: "start", states: ["Halted"], extraArgs: [false, false], verb: "Starting" },
  { label: "Shut down", method: "Async.VM.clean_shutdown", operation: "clean_shutdown", states: ["Running"], verb: "Shutting down" },
  { label: "Reboot", method: "Async.VM.clean_reboot", operation: "clean_reboot", states: ["Running"], verb: "Rebooting" },
  { label: "Force shut down", method: "Async.VM.hard_shutdown", operation: "hard_shutdown", states: ["Running", "Paused"], verb: "Forcing shutdown of", confirm: true },
  { label: "Force reboot", method: "Async.VM.hard_reboot", operation: "hard_reboot", states: ["Running", "Paused"], verb: "Forcing reboot of", confirm: true },
];

export function vmActionEnabled(action, vm) {
  return vmActionAllowed(vm, action.operation, action.states);
}

export class Actions {
  /** alert(text): shows an error where the user sees it. */
  constructor({ connection, cache, tracker, describe, alert }) {
    this.connection = connection;
    this.cache = cache;
    this.tracker = tracker;
    this.describe = describe;
    this.alert = alert;
  }

  /** Makes an Async.* call and follows its task. Errors are shown and rethrown. */
  async runTask(title, method, ...args) {
    let taskRef;
    try {
      taskRef = await this.connection.call(method, ...args);
    } catch (error) {
      this.tracker.failed(title, error);
      this.alert(`${title}: ${this.describe(error)}`);
      throw error;
    }
    try {
      return await this.tracker.track(taskRef, title);
    } catch (error) {
      this.alert(`${title}: ${this.describe(error)}`);
      throw error;
    }
  }

  /** A synchronous call whose error is shown (and rethrown). */
  async call(title, method, ...args) {
    try {
      return await this.connection.call(method, ...args);
    } catch (error) {
      this.alert(`${title}: ${this.describe(error)}`);
      throw error;
    }
  }

  /** Runs a VM power action, after a confirmation for the forced ones (as XenCenter asks). */
  vmAction(action, vm) {
    const run = () => this.runTask(`${action.verb} ${vm.name_label}`, action.method, vm.opaque_ref, ...(action.extraArgs ?? [])).catch(() => {});
    if (!action.confirm) {
      run();
      return;
    }
    openDialog({
      title: action.label,
      content: [h("p", { text: `${action.label} ${vm.name_label}? The guest is not asked first: unsaved work in it is lost.` })],
      buttons: [
        { label: action.label, primary: true, action: () => { run(); } },
        { label: "Cancel", cancel: true },
      ],
    });
  }

  /** Live migration within the pool (drag and drop, or "Migrate to…"). */
  migrate(vm, host) {
    return this.runTask(`Migrating ${vm.name_label} to ${host.name_label}`, "Async.VM.pool_migrate", vm.opaque_ref, host.opaque_ref, { live: "true" }).catch(() => {});
  }

  startOn(vm, host) {
    return this.runTask(`Starting ${vm.name_label} on ${host.name_label}`, "Async.VM.start_on", vm.opaque_ref, host.opaque_ref, false, false).catch(() => {});
  }

  /** A VM dropped on a host: a running VM migrates live there, a halted one starts there. */
  dropVmOnHost(vmRef, hostRef) {
    const vm = this.cache.get("VM", vmRef);
    const host = this.cache.get("host", hostRef);
    if (!vm || !host) {
      return;
    }
    if (vm.power_state === "Halted") {
      this.startOn(vm, host);
    } else if (vm.resident_on !== hostRef) {
      this.migrate(vm, host);
    }
  }
}
