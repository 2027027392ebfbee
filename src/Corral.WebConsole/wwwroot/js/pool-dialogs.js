// The pool's dialogs: Enter/Exit Maintenance Mode (as XenCenter does it), New VM from a template, Migrate to….

import { openDialog } from "./dialog.js";
import { h, uniqueId } from "./dom.js";
import { XenApiError } from "./errors.js";
import { NULL_REF, byName } from "./format.js";
import {
  diskSrs, evacuatedVms, hosts, inMaintenanceMode, isHostLive, localSrHost, templates, thePool, vmsOnHost,
} from "./model.js";

function labelledList(title, items, emptyText) {
  const headingId = uniqueId("list-title");
  const heading = h("h3", { id: headingId, text: title });
  if (items.length === 0) {
    return h("section", { class: "dialog-section" }, heading, h("p", { class: "empty", text: emptyText }));
  }
  return h("section", { class: "dialog-section" }, heading,
    h("ul", { class: "vm-list", attrs: { "aria-labelledby": headingId } }, items));
}

/**
 * Enter Maintenance Mode: lists the running VMs that will be migrated and those that prevent the evacuation (from
 * host.get_vms_which_prevent_evacuation), then host.disable and Async.host.evacuate. An evacuation that fails
 * re-enables the host, as XenCenter does.
 */
export function enterMaintenanceModeDialog({ connection, cache, actions, describe }, host) {
  const status = h("p", { class: "dialog-loading", text: `Checking which VMs can leave ${host.name_label}…` });
  const lists = h("div", { class: "dialog-lists" });
  const dialog = openDialog({
    title: "Enter Maintenance Mode",
    className: "maintenance-dialog",
    content: [
      h("p", { text: `${host.name_label} will stop accepting VMs, and its running VMs will be migrated live to other hosts of the pool.` }),
      status, lists,
    ],
    buttons: [
      {
        label: "Enter Maintenance Mode",
        primary: true,
        disabled: true,
        describeError: describe,
        action: async () => {
          await connection.call("host.disable", host.opaque_ref);
          actions.runTask(`Entering maintenance mode on ${host.name_label}`, "Async.host.evacuate", host.opaque_ref).catch(() => {
            connection.call("host.enable", host.opaque_ref).catch(() => {});
          });
        },
      },
      { label: "Cancel", cancel: true },
    ],
  });
  (async () => {
    let blockers;
    try {
      blockers = await connection.call("host.get_vms_which_prevent_evacuation", host.opaque_ref);
    } catch (error) {
      if (!dialog.closed) {
        status.textContent = "";
        dialog.setError(describe(error));
      }
      return;
    }
    if (dialog.closed) {
      return;
    }
    const running = vmsOnHost(cache, host.opaque_ref);
    const toMigrate = running.filter((vm) => !(vm.opaque_ref in blockers));
    const preventing = Object.entries(blockers).map(([ref, info]) => {
      const vm = cache.get("VM", ref);
      const [code, ...params] = Array.isArray(info) ? info.map(String) : [String(info)];
      return { name: vm?.name_label ?? ref, reason: evacuationBlocker(cache, code, params, describe) };
    }).sort((a, b) => a.name.localeCompare(b.name));
    status.textContent = preventing.length === 0
      ? `${toMigrate.length} running ${toMigrate.length === 1 ? "VM" : "VMs"} will be migrated.`
      : "The host cannot enter maintenance mode until the VMs below can leave it.";
    lists.replaceChildren(
      labelledList("VMs to migrate", toMigrate.map((vm) => h("li", { text: vm.name_label })), "No running VMs on this host."),
      labelledList("VMs that prevent it", preventing.map((p) => h("li", {}, h("span", { class: "vm-name", text: p.name }), h("span", { class: "reason", text: `: ${p.reason}` }))), "None."),
    );
    dialog.enableButton("Enter Maintenance Mode", preventing.length === 0);
  })();
  return dialog;
}

/** Why a VM cannot leave its host, worded for a list of VMs (the VM is named by the list item itself). */
function evacuationBlocker(cache, code, params, describe) {
  const name = (ref) => cache.nameOf(ref) ?? ref;
  switch (code) {
    case "VM_REQUIRES_SR":
      return `its disk is on ${name(params[1])}, which no other host can reach (${code})`;
    case "VM_REQUIRES_NETWORK":
      return `it needs the network ${name(params[1])}, which no other host has (${code})`;
    case "HOST_NOT_ENOUGH_FREE_MEMORY":
      return `no other host has enough free memory for it (${code})`;
    case "NO_HOSTS_AVAILABLE":
      return `no other host can run it (${code})`;
    default:
      return describe(new XenApiError(code, params));
  }
}

/**
 * Exit Maintenance Mode, as the brief and XenCenter have it: host.enable at once, then, when the last evacuation moved
 * VMs that still run elsewhere, an offer (not modal: the pool stays usable meanwhile) to bring them back with
 * Async.host.restore_evacuated_vms.
 */
export async function exitMaintenanceMode({ cache, actions }, host, offer) {
  const moved = evacuatedVms(cache, host).filter((vm) => vm.power_state === "Running" && vm.resident_on !== host.opaque_ref);
  try {
    await actions.call(`Exiting maintenance mode on ${host.name_label}`, "host.enable", host.opaque_ref);
  } catch {
    return; // shown
  }
  if (moved.length === 0) {
    return;
  }
  const names = moved.map((vm) => vm.name_label).join(", ");
  offer(`${host.name_label} left maintenance mode. Move the VMs it had back to it (${names})?`, [
    {
      label: `Move VMs back to ${host.name_label}`,
      action: () => actions.runTask(`Moving VMs back to ${host.name_label}`, "Async.host.restore_evacuated_vms", host.opaque_ref).catch(() => {}),
    },
    { label: "Leave them where they are" },
  ]);
}

function field(labelText, control, hint) {
  const id = control.id || uniqueId("field");
  control.id = id;
  let hintElement = null;
  if (hint) {
    hintElement = h("p", { class: "hint", id: `${id}-hint`, text: hint });
    control.setAttribute("aria-describedby", hintElement.id);
  }
  return h("div", { class: "field" }, h("label", { attrs: { for: id }, text: labelText }), control, hintElement);
}

function option(value, text, selected = false, disabled = false) {
  return h("option", { value, text, selected, disabled });
}

/**
 * New VM: Async.VM.copy of a template onto the chosen SR, VM.provision, then the home server (affinity; "none"
 * leaves it OpaqueRef:NULL), and optionally Async.VM.start. onCreated(vmRef) selects it.
 */
export function newVmDialog({ connection, cache, actions, describe }, { onCreated, preferredHost } = {}) {
  const templateList = templates(cache);
  const pool = thePool(cache);
  const templateSelect = h("select", { required: true }, templateList.map((t, i) => option(t.opaque_ref, t.name_label, i === 0)));
  const nameInput = h("input", { type: "text", required: true, autocomplete: "off", value: templateList[0] ? `New VM from ${templateList[0].name_label}` : "" });
  let nameEdited = false;
  nameInput.addEventListener("input", () => { nameEdited = true; });
  templateSelect.addEventListener("change", () => {
    if (!nameEdited) {
      nameInput.value = `New VM from ${templateSelect.selectedOptions[0]?.textContent ?? ""}`;
    }
  });
  const srs = diskSrs(cache);
  const defaultSr = srs.find((sr) => sr.opaque_ref === pool?.default_SR) ?? srs[0];
  const srSelect = h("select", { required: true }, srs.map((sr) => option(sr.opaque_ref, srLabel(cache, sr), sr === defaultSr)));
  const homeSelect = h("select", {},
    option(NULL_REF, "None (don't assign a home server)", true),
    hosts(cache).map((host) => option(host.opaque_ref, host.name_label, false)));
  if (preferredHost) {
    homeSelect.value = preferredHost;
  }
  const startId = uniqueId("start");
  const startBox = h("input", { type: "checkbox", id: startId, checked: true });
  const form = h("form", { class: "form-grid", attrs: { novalidate: true } },
    field("Template", templateSelect),
    field("Name", nameInput),
    field("Storage", srSelect, "The storage repository for the new VM's disks."),
    field("Home server", homeSelect, "A home server is where the VM starts when it can; with none, the pool picks a host."),
    h("p", { class: "checkbox-row" }, startBox, h("label", { attrs: { for: startId }, text: "Start the new VM" })));
  const dialog = openDialog({
    title: "New VM",
    className: "new-vm-dialog",
    content: templateList.length === 0 ? [h("p", { text: "The pool has no templates." })] : [form],
    buttons: [
      {
        label: "Create",
        primary: true,
        disabled: templateList.length === 0 || srs.length === 0,
        describeError: describe,
        action: async () => {
          const name = nameInput.value.trim();
          if (!name) {
            nameInput.focus();
            throw new Error("Give the new VM a name.");
          }
          createVm({ connection, actions }, {
            template: templateSelect.value, name, sr: srSelect.value, home: homeSelect.value, start: startBox.checked, onCreated,
          });
        },
      },
      { label: "Cancel", cancel: true },
    ],
    initialFocus: templateList.length ? templateSelect : undefined,
  });
  // Enter in a field creates the VM, as the dialog's default button would.
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    dialog.button("Create")?.click();
  });
  return dialog;
}

async function createVm({ connection, actions }, { template, name, sr, home, start, onCreated }) {
  let vmRef;
  try {
    vmRef = await actions.runTask(`Creating ${name}`, "Async.VM.copy", template, name, sr);
    await actions.call(`Creating ${name}`, "VM.provision", vmRef);
    if (await connection.call("VM.get_is_a_template", vmRef)) {
      await actions.call(`Creating ${name}`, "VM.set_is_a_template", vmRef, false);
    }
    await actions.call(`Setting the home server of ${name}`, "VM.set_affinity", vmRef, home || NULL_REF);
  } catch {
    return; // already shown
  }
  onCreated?.(vmRef);
  if (start) {
    actions.runTask(`Starting ${name}`, "Async.VM.start", vmRef, false, false).catch(() => {});
  }
}

function srLabel(cache, sr) {
  const free = Number(sr.physical_size) - Number(sr.physical_utilisation);
  const host = cache.get("host", localSrHost(cache, sr));
  const where = sr.shared ? "shared" : host ? `local to ${host.name_label}` : "local";
  return Number.isFinite(free) && sr.physical_size > 0 ? `${sr.name_label} (${where}, ${Math.round(free / 2 ** 30)} GiB free)` : `${sr.name_label} (${where})`;
}

/** Migrate to…: the keyboard way to do what dragging a VM onto a host does. */
export function migrateDialog({ cache, actions, describe }, vm) {
  const targets = hosts(cache).filter((host) => host.opaque_ref !== vm.resident_on).sort(byName);
  const usable = (host) => isHostLive(cache, host) && !inMaintenanceMode(host);
  const select = h("select", {}, targets.map((host) => option(
    host.opaque_ref,
    usable(host) ? host.name_label : `${host.name_label} (${isHostLive(cache, host) ? "maintenance mode" : "host dead"})`,
    false, !usable(host))));
  const firstUsable = targets.find(usable);
  if (firstUsable) {
    select.value = firstUsable.opaque_ref;
  }
  return openDialog({
    title: `Migrate ${vm.name_label}`,
    content: [field("Destination host", select, "The VM keeps running while it moves (live migration).")],
    buttons: [
      {
        label: "Migrate",
        primary: true,
        disabled: !firstUsable,
        describeError: describe,
        action: () => {
          const host = cache.get("host", select.value);
          if (host) {
            actions.migrate(vm, host);
          }
        },
      },
      { label: "Cancel", cancel: true },
    ],
    initialFocus: select,
  });
}
