// The read-only tabs: General, Storage, Networking and Logs, rendered from the cache for the selected object.

import { definitionList, h, table } from "./dom.js";
import {
  byName, formatBytes, formatDateTime, formatDuration, formatPercent, isNullRef, parseXenDate, yesNo,
} from "./format.js";
import {
  guestAddresses, hosts, inMaintenanceMode, isHostLive, isIsoSr, isMaster, localSrHost, masterHost, pbdsOfHost, pbdsOfSr,
  realVms, thePool, vbdsOfVm, vifsOfVm, virtualizationState, vmStatus,
} from "./model.js";

const capitalize = (text) => (text ? text[0].toUpperCase() + text.slice(1) : text);
const nameOr = (record, fallback = "None") => record?.name_label ?? fallback;

/** A view that re-renders all its content from the cache on every change (no controls to keep focus in). */
export function simpleView(render) {
  let container = null;
  return {
    mount(element, context, selection) {
      container = element;
      this.update(context, selection);
    },
    update(context, selection) {
      container?.replaceChildren(render(context, selection));
    },
    unmount() {
      container = null;
    },
  };
}

function heading(text) {
  return h("h3", { text });
}

// ---- General ----

export function renderGeneral({ cache }, selection) {
  const record = selection.record;
  switch (selection.cls) {
    case "vm":
      return generalVm(cache, record);
    case "host":
      return generalHost(cache, record);
    case "sr":
      return generalSr(cache, record);
    case "network":
      return generalNetwork(cache, record);
    default:
      return generalPool(cache, record);
  }
}

function generalVm(cache, vm) {
  const metrics = cache.get("VM_metrics", vm.metrics);
  const guest = cache.get("VM_guest_metrics", vm.guest_metrics);
  const started = parseXenDate(metrics?.start_time);
  const running = vm.power_state === "Running" || vm.power_state === "Paused";
  const addresses = [...guestAddresses(cache, vm).values()].flat();
  const memory = running && metrics?.memory_actual > 0 ? metrics.memory_actual : vm.memory_dynamic_max ?? vm.memory_static_max;
  return h("div", {},
    heading("VM general properties"),
    definitionList([
      ["Name", vm.name_label, "name"],
      ["Description", vm.name_description || "—", "description"],
      ["Power state", capitalize(vmStatus(vm)), "power-state"],
      ["Resident host", running ? nameOr(cache.get("host", vm.resident_on), "—") : "—", "resident-host"],
      ["Home server", isNullRef(vm.affinity) ? "None" : nameOr(cache.get("host", vm.affinity), "None"), "home-server"],
      ["Memory", formatBytes(memory), "memory"],
      ["vCPUs", String(running && metrics?.VCPUs_number > 0 ? metrics.VCPUs_number : vm.VCPUs_at_startup), "vcpus"],
      ["Uptime", running && started ? formatDuration((Date.now() - started.getTime()) / 1000) : "—", "uptime"],
      ["IP addresses", addresses.length ? addresses.join(", ") : "—", "ip-addresses"],
      ["Virtualization state", virtualizationState(cache, vm), "virtualization-state"],
      ["Operating system", guest?.os_version?.name ?? "—", "operating-system"],
      ["HA restart priority", restartPriorityText(vm.ha_restart_priority), "ha-restart-priority"],
      ["UUID", vm.uuid, "uuid"],
    ]));
}

export function restartPriorityText(priority) {
  if (priority === "restart") return "Restart";
  if (priority === "best-effort") return "Restart if possible";
  return "Do not restart";
}

function generalHost(cache, host) {
  const metrics = cache.get("host_metrics", host.metrics);
  const live = isHostLive(cache, host);
  const cpuInfo = host.cpu_info ?? {};
  const cpuCount = cpuInfo.cpu_count ?? (host.host_CPUs?.length || "");
  const cpus = [cpuCount ? `${cpuCount}` : "", cpuInfo.modelname ? `× ${cpuInfo.modelname}` : ""].filter(Boolean).join(" ") || "Unknown";
  const running = realVms(cache).filter((vm) => vm.resident_on === host.opaque_ref && vm.power_state !== "Halted");
  return h("div", {},
    heading("Host general properties"),
    definitionList([
      ["Name", host.name_label, "name"],
      ["Description", host.name_description || "—", "description"],
      ["Pool master", isMaster(cache, host) ? "Yes (master)" : "No", "master"],
      ["Live", live ? "Yes" : "No (host dead)", "live"],
      ["Enabled", host.enabled === false ? "No (maintenance mode)" : inMaintenanceMode(host) ? "Yes (maintenance mode)" : "Yes", "enabled"],
      ["Address", host.address || "—", "address"],
      ["Memory total", metrics ? formatBytes(metrics.memory_total) : "—", "memory-total"],
      ["Memory free", metrics ? formatBytes(metrics.memory_free) : "—", "memory-free"],
      ["CPUs", cpus, "cpus"],
      ["Running VMs", String(running.length), "running-vms"],
      ["Software version", host.software_version?.product_version ? `${host.software_version.product_brand ?? ""} ${host.software_version.product_version}`.trim() : "—", "software-version"],
      ["UUID", host.uuid, "uuid"],
    ]));
}

function generalPool(cache, pool) {
  const vms = realVms(cache);
  const master = masterHost(cache);
  return h("div", {},
    heading("Pool general properties"),
    definitionList([
      ["Name", pool?.name_label || "Pool", "name"],
      ["Description", pool?.name_description || "—", "description"],
      ["Master", master ? `${master.name_label} (${master.address})` : "Unknown", "master"],
      ["High availability", pool?.ha_enabled ? "Enabled" : "Disabled", "ha"],
      ["Hosts", `${hosts(cache).length} (${hosts(cache).filter((host) => isHostLive(cache, host)).length} live)`, "hosts"],
      ["VMs", `${vms.length} (${vms.filter((vm) => vm.power_state === "Running").length} running)`, "vms"],
      ["Default storage", nameOr(cache.get("SR", pool?.default_SR)), "default-sr"],
      ["UUID", pool?.uuid ?? "", "uuid"],
    ]));
}

function generalSr(cache, sr) {
  const hostRef = localSrHost(cache, sr);
  return h("div", {},
    heading("Storage general properties"),
    definitionList([
      ["Name", sr.name_label, "name"],
      ["Description", sr.name_description || "—", "description"],
      ["Type", isIsoSr(sr) ? `${sr.type} (ISO library)` : sr.type, "type"],
      ["Scope", sr.shared ? "Shared by the pool" : `Local to ${nameOr(cache.get("host", hostRef), "one host")}`, "scope"],
      ["Size", formatBytes(sr.physical_size), "size"],
      ["Used", `${formatBytes(sr.physical_utilisation)}${sr.physical_size > 0 ? ` (${formatPercent(sr.physical_utilisation / sr.physical_size)})` : ""}`, "used"],
      ["Virtual disks", String(cache.all("VDI").filter((vdi) => vdi.SR === sr.opaque_ref).length), "vdis"],
      ["UUID", sr.uuid, "uuid"],
    ]));
}

function generalNetwork(cache, network) {
  return h("div", {},
    heading("Network general properties"),
    definitionList([
      ["Name", network.name_label, "name"],
      ["Description", network.name_description || "—", "description"],
      ["Bridge", network.bridge || "—", "bridge"],
      ["MTU", String(network.MTU ?? ""), "mtu"],
      ["Virtual interfaces", String(cache.all("VIF").filter((vif) => vif.network === network.opaque_ref).length), "vifs"],
      ["UUID", network.uuid, "uuid"],
    ]));
}

// ---- Storage ----

export function renderStorage({ cache }, selection) {
  const record = selection.record;
  if (selection.cls === "vm") {
    const rows = vbdsOfVm(cache, record.opaque_ref).map((vbd) => {
      const vdi = cache.get("VDI", vbd.VDI);
      const sr = vdi && cache.get("SR", vdi.SR);
      return [vbd.userdevice, vbd.device || "—", vbd.empty ? "(empty)" : nameOr(vdi, "—"), nameOr(sr, "—"), vdi ? formatBytes(vdi.virtual_size) : "—", vbd.type, vbd.mode, yesNo(vbd.currently_attached)];
    });
    return table(`Virtual disks of ${record.name_label}`, ["Position", "Device", "Disk", "Storage", "Size", "Type", "Mode", "Attached"], rows, { empty: "This VM has no disks." });
  }
  if (selection.cls === "host") {
    const rows = pbdsOfHost(cache, record.opaque_ref).map((pbd) => {
      const sr = cache.get("SR", pbd.SR);
      return sr ? [sr.name_label, sr.type, sr.shared ? "Shared" : "Local", formatBytes(sr.physical_size), formatBytes(sr.physical_utilisation), yesNo(pbd.currently_attached)] : null;
    }).filter(Boolean).sort((a, b) => a[0].localeCompare(b[0]));
    return table(`Storage of ${record.name_label}`, ["Storage", "Type", "Scope", "Size", "Used", "Attached"], rows, { empty: "No storage is plugged into this host." });
  }
  if (selection.cls === "sr") {
    const rows = cache.all("VDI").filter((vdi) => vdi.SR === record.opaque_ref).sort(byName).map((vdi) => {
      const users = cache.all("VBD").filter((vbd) => vbd.VDI === vdi.opaque_ref).map((vbd) => nameOr(cache.get("VM", vbd.VM), "")).filter(Boolean);
      return [vdi.name_label, vdi.type, formatBytes(vdi.virtual_size), formatBytes(vdi.physical_utilisation), users.join(", ") || "—"];
    });
    const pbdRows = pbdsOfSr(cache, record.opaque_ref).map((pbd) => [nameOr(cache.get("host", pbd.host), "—"), yesNo(pbd.currently_attached)]);
    return h("div", {},
      table(`Virtual disks on ${record.name_label}`, ["Disk", "Type", "Size", "Used", "Used by"], rows, { empty: "No virtual disks." }),
      table(`Hosts connected to ${record.name_label}`, ["Host", "Attached"], pbdRows, { empty: "No host is connected." }));
  }
  if (selection.cls === "network") {
    return h("p", { class: "empty", text: "Networks have no storage." });
  }
  const rows = cache.all("SR").sort(byName).map((sr) => {
    const host = cache.get("host", localSrHost(cache, sr));
    return [sr.name_label, sr.type, isIsoSr(sr) ? "ISO library" : sr.shared ? "Shared" : `Local to ${nameOr(host, "a host")}`, formatBytes(sr.physical_size), formatBytes(sr.physical_utilisation)];
  });
  return table("Storage of the pool", ["Storage", "Type", "Scope", "Size", "Used"], rows, { empty: "The pool has no storage." });
}

// ---- Networking ----

export function renderNetworking({ cache }, selection) {
  const record = selection.record;
  if (selection.cls === "vm") {
    const addresses = guestAddresses(cache, record);
    const rows = vifsOfVm(cache, record.opaque_ref).map((vif) => [
      vif.device, vif.MAC || "(assigned at start)", nameOr(cache.get("network", vif.network), "—"),
      (addresses.get(String(vif.device)) ?? []).join(", ") || "—", yesNo(vif.currently_attached),
    ]);
    return table(`Network interfaces of ${record.name_label}`, ["Device", "MAC", "Network", "IP address", "Attached"], rows, { empty: "This VM has no network interfaces." });
  }
  if (selection.cls === "host") {
    const rows = cache.all("PIF").filter((pif) => pif.host === record.opaque_ref).map((pif) => [
      pif.device, pif.MAC, nameOr(cache.get("network", pif.network), "—"), pif.IP || "—", yesNo(pif.management), yesNo(pif.currently_attached),
    ]);
    return h("div", {},
      definitionList([["Management address", record.address || "—", "address"]]),
      table(`Physical interfaces of ${record.name_label}`, ["Device", "MAC", "Network", "IP address", "Management", "Attached"], rows, { empty: "The host reports no physical interfaces." }));
  }
  if (selection.cls === "network") {
    const rows = cache.all("VIF").filter((vif) => vif.network === record.opaque_ref).map((vif) => {
      const vm = cache.get("VM", vif.VM);
      return vm && !vm.is_a_template ? [vm.name_label, vif.device, vif.MAC || "—", yesNo(vif.currently_attached)] : null;
    }).filter(Boolean).sort((a, b) => a[0].localeCompare(b[0]));
    return table(`VMs on ${record.name_label}`, ["VM", "Device", "MAC", "Attached"], rows, { empty: "No VM is connected." });
  }
  if (selection.cls === "sr") {
    return h("p", { class: "empty", text: "Storage has no network interfaces." });
  }
  const rows = cache.all("network").sort(byName).map((network) => [
    network.name_label, network.bridge || "—", String(network.MTU ?? ""),
    String(cache.all("VIF").filter((vif) => vif.network === network.opaque_ref).length),
    String(cache.all("PIF").filter((pif) => pif.network === network.opaque_ref).length),
  ]);
  return table("Networks of the pool", ["Network", "Bridge", "MTU", "VIFs", "PIFs"], rows, { empty: "The pool has no networks." });
}

// ---- Logs ----

const PRIORITY_NAMES = { 1: "Critical", 2: "Major", 3: "Warning", 4: "Minor", 5: "Information" };

export function renderLogs({ cache }) {
  const objectName = (message) => {
    if (!message.obj_uuid) return "—";
    for (const cls of ["VM", "host", "SR", "pool", "VDI"]) {
      const found = cache.all(cls).find((record) => record.uuid === message.obj_uuid);
      if (found) return found.name_label || cls;
    }
    return message.obj_uuid;
  };
  const messages = cache.all("message")
    .map((message) => ({ message, time: parseXenDate(message.timestamp) }))
    .sort((a, b) => (b.time?.getTime() ?? 0) - (a.time?.getTime() ?? 0))
    .slice(0, 200)
    .map(({ message, time }) => [formatDateTime(time), PRIORITY_NAMES[message.priority] ?? String(message.priority), message.name, objectName(message), message.body]);
  const tasks = cache.all("task")
    .map((task) => ({ task, created: parseXenDate(task.created) }))
    .sort((a, b) => (b.created?.getTime() ?? 0) - (a.created?.getTime() ?? 0))
    .slice(0, 100)
    .map(({ task, created }) => {
      const progress = h("progress", { max: 1, value: Number(task.progress) || 0, attrs: { "aria-label": `Progress of ${task.name_label}` } });
      const error = (task.error_info ?? []).join(" ");
      return [task.name_label, capitalize(task.status), h("span", { class: "progress-cell" }, progress, ` ${formatPercent(task.progress)}`), formatDateTime(created), nameOr(cache.get("host", task.resident_on), "—"), error || "—"];
    });
  return h("div", {},
    table("Alerts and messages", ["Time", "Priority", "Name", "Object", "Message"], messages, { empty: "No messages." }),
    table("Tasks", ["Task", "Status", "Progress", "Started", "Host", "Error"], tasks, { empty: "No tasks." }));
}

/** Used by the app for the selection header. */
export function describeSelection(cache, selection) {
  const record = selection.record;
  switch (selection.cls) {
    case "vm":
      return `VM · ${capitalize(vmStatus(record))}`;
    case "host":
      return `Host · ${[isMaster(cache, record) ? "master" : null, isHostLive(cache, record) ? "live" : "host dead", inMaintenanceMode(record) ? "maintenance mode" : null].filter(Boolean).join(", ")}`;
    case "sr":
      return `Storage · ${isIsoSr(record) ? "ISO library" : record.shared ? "shared" : "local"}`;
    case "network":
      return "Network";
    default:
      return `Pool · ${thePool(cache)?.ha_enabled ? "HA enabled" : "HA disabled"}`;
  }
}
