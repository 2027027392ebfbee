// The HA tab (pool level): state, heartbeat storage, failures to tolerate and plan status; enable/disable; each
// VM's restart priority, start order and delay. Controls are built once and updated in place, so typing is not lost.

import { definitionList, h, uniqueId } from "./dom.js";
import { byName } from "./format.js";
import { isIsoSr, isTemplateLibrary, realVms, thePool } from "./model.js";
import { restartPriorityText } from "./views.js";

const PRIORITIES = [
  ["restart", "Restart"],
  ["best-effort", "Restart if possible"],
  ["", "Do not restart"],
];

function labelled(text, control) {
  const id = uniqueId("ha");
  control.id = id;
  return h("span", { class: "inline-field" }, h("label", { attrs: { for: id }, text }), control);
}

export function haView() {
  let container = null;
  let structure = null;
  let statusBox = null;
  let rowControls = new Map();
  let failuresInput = null;
  let context = null;

  const heartbeatSrs = (cache) => cache.all("SR").filter((sr) => sr.shared && !isIsoSr(sr) && !isTemplateLibrary(sr)).sort(byName);

  function build(pool) {
    const { cache, actions, connection } = context;
    // What the role may not change is shown, not offered (the pool would refuse it).
    const may = (method) => connection.may(method);
    rowControls = new Map();
    const computeOutput = h("p", { class: "compute-output", attrs: { "aria-live": "polite" } });
    const computeButton = h("button", { type: "button", text: "Compute maximum failures to tolerate", hidden: !may("pool.ha_compute_max_host_failures_to_tolerate") });
    computeButton.addEventListener("click", async () => {
      computeOutput.textContent = "Computing…";
      try {
        const max = await actions.call("Computing the maximum failures to tolerate", "pool.ha_compute_max_host_failures_to_tolerate");
        computeOutput.textContent = `The pool can tolerate up to ${max} host ${Number(max) === 1 ? "failure" : "failures"} with the current VMs.`;
      } catch {
        computeOutput.textContent = "";
      }
    });

    let controls;
    if (!pool.ha_enabled) {
      const srs = heartbeatSrs(cache);
      const srSelect = h("select", {}, srs.map((sr) => h("option", { value: sr.opaque_ref, text: sr.name_label })));
      const enableButton = h("button", { type: "button", class: "primary", text: "Enable HA", disabled: srs.length === 0, hidden: !may("pool.enable_ha") });
      enableButton.addEventListener("click", () => {
        actions.runTask("Enabling HA", "Async.pool.enable_ha", [srSelect.value], {}).catch(() => {});
      });
      controls = h("div", { class: "control-row" }, labelled("Heartbeat storage", srSelect), enableButton,
        srs.length === 0 ? h("p", { class: "hint", text: "HA needs a shared storage repository for its heartbeat." }) : null);
    } else {
      failuresInput = h("input", { type: "number", min: 0, step: 1, value: String(pool.ha_host_failures_to_tolerate ?? 0) });
      const setButton = h("button", { type: "button", text: "Set failures to tolerate", hidden: !may("pool.set_ha_host_failures_to_tolerate") });
      setButton.addEventListener("click", () => {
        const value = Number.parseInt(failuresInput.value, 10);
        if (Number.isNaN(value) || value < 0) {
          failuresInput.focus();
          return;
        }
        actions.call("Setting the failures to tolerate", "pool.set_ha_host_failures_to_tolerate", pool.opaque_ref, value).catch(() => {
          failuresInput.value = String(thePool(cache)?.ha_host_failures_to_tolerate ?? 0);
        });
      });
      const disableButton = h("button", { type: "button", text: "Disable HA", hidden: !may("pool.disable_ha") });
      disableButton.addEventListener("click", () => {
        actions.runTask("Disabling HA", "Async.pool.disable_ha").catch(() => {});
      });
      controls = h("div", { class: "control-row" }, labelled("Failures to tolerate", failuresInput), setButton, disableButton);
    }

    statusBox = h("div", { class: "ha-status" });
    const vmRows = realVms(cache).map((vm) => {
      const priority = h("select", { disabled: !may("VM.set_ha_restart_priority"), attrs: { "aria-label": `Restart priority of ${vm.name_label}` } },
        PRIORITIES.map(([value, text]) => h("option", { value, text })));
      const order = h("input", { type: "number", min: 0, step: 1, disabled: !may("VM.set_order"), attrs: { "aria-label": `Start order of ${vm.name_label}` } });
      const delay = h("input", { type: "number", min: 0, step: 1, disabled: !may("VM.set_start_delay"), attrs: { "aria-label": `Start delay of ${vm.name_label} in seconds` } });
      const ref = vm.opaque_ref;
      priority.addEventListener("change", () => {
        actions.call(`Setting the restart priority of ${vm.name_label}`, "VM.set_ha_restart_priority", ref, priority.value)
          .catch(() => { priority.value = cache.get("VM", ref)?.ha_restart_priority ?? ""; });
      });
      const numberSetter = (input, method, field, what) => input.addEventListener("change", () => {
        const value = Number.parseInt(input.value, 10);
        if (Number.isNaN(value) || value < 0) {
          input.value = String(cache.get("VM", ref)?.[field] ?? 0);
          return;
        }
        actions.call(`Setting the ${what} of ${vm.name_label}`, method, ref, value)
          .catch(() => { input.value = String(cache.get("VM", ref)?.[field] ?? 0); });
      });
      numberSetter(order, "VM.set_order", "order", "start order");
      numberSetter(delay, "VM.set_start_delay", "start_delay", "start delay");
      rowControls.set(ref, { priority, order, delay });
      return h("tr", { dataset: { ref } }, h("th", { attrs: { scope: "row" }, text: vm.name_label }), h("td", {}, priority), h("td", {}, order), h("td", {}, delay));
    });
    const vmTable = vmRows.length
      ? h("div", { class: "table-scroll" }, h("table", { class: "grid" },
        h("caption", { class: "visually-hidden", text: "VM restart priorities" }),
        h("thead", {}, h("tr", {}, ["VM", "Restart priority", "Start order", "Start delay (s)"].map((text) => h("th", { attrs: { scope: "col" }, text })))),
        h("tbody", {}, vmRows)))
      : h("p", { class: "empty", text: "The pool has no VMs." });

    container.replaceChildren(
      h("section", { attrs: { "aria-label": "Pool high availability" } }, h("h3", { text: "Pool high availability" }), statusBox, controls,
        h("div", { class: "control-row" }, computeButton), computeOutput),
      h("section", { attrs: { "aria-label": "VM restart priorities" } }, h("h3", { text: "VM restart priorities" }),
        h("p", { class: "hint", text: "Protected VMs (Restart) are restarted on another host when theirs fails; lower start orders start first." }),
        vmTable));
  }

  function refresh(pool) {
    const { cache } = context;
    const statefileSrs = (pool.ha_statefiles ?? []).map((vdiRef) => cache.get("SR", cache.get("VDI", vdiRef)?.SR)?.name_label).filter(Boolean);
    const enabled = Boolean(pool.ha_enabled);
    statusBox.replaceChildren(definitionList([
      ["HA", enabled ? "Enabled" : "Disabled", "ha-enabled"],
      ["Heartbeat storage", statefileSrs.length ? statefileSrs.join(", ") : "—", "heartbeat-srs"],
      ["Failures to tolerate", enabled ? String(pool.ha_host_failures_to_tolerate ?? 0) : "—", "failures-to-tolerate"],
      ["Failover plan", enabled ? planText(pool) : "—", "plan"],
      ["Overcommitted", enabled ? (pool.ha_overcommitted ? "Yes: the pool cannot restart every protected VM if hosts fail" : "No") : "—", "overcommitted"],
    ]));
    if (failuresInput && document.activeElement !== failuresInput) {
      failuresInput.value = String(pool.ha_host_failures_to_tolerate ?? 0);
    }
    for (const [ref, controls] of rowControls) {
      const vm = cache.get("VM", ref);
      if (!vm) continue;
      if (document.activeElement !== controls.priority) {
        controls.priority.value = vm.ha_restart_priority ?? "";
        controls.priority.title = restartPriorityText(vm.ha_restart_priority);
      }
      if (document.activeElement !== controls.order) controls.order.value = String(vm.order ?? 0);
      if (document.activeElement !== controls.delay) controls.delay.value = String(vm.start_delay ?? 0);
    }
  }

  return {
    mount(element, ctx, selection) {
      container = element;
      structure = null;
      this.update(ctx, selection);
    },
    update(ctx) {
      context = ctx;
      const pool = thePool(ctx.cache);
      if (!container || !pool) {
        return;
      }
      const key = [pool.ha_enabled, realVms(ctx.cache).map((vm) => `${vm.opaque_ref}=${vm.name_label}`).join(","),
        heartbeatSrs(ctx.cache).map((sr) => sr.opaque_ref).join(",")].join("|");
      if (key !== structure) {
        const hadFocus = container.contains(document.activeElement);
        failuresInput = null;
        build(pool);
        structure = key;
        if (hadFocus) {
          container.querySelector("button, select, input")?.focus();
        }
      }
      refresh(pool);
    },
    unmount() {
      container = null;
    },
  };
}

function planText(pool) {
  const tolerate = Number(pool.ha_host_failures_to_tolerate ?? 0);
  const planFor = Number(pool.ha_plan_exists_for ?? 0);
  const ok = planFor >= tolerate;
  return `A plan exists for ${planFor} host ${planFor === 1 ? "failure" : "failures"}${ok ? "" : ` (fewer than the ${tolerate} to tolerate)`}`;
}
