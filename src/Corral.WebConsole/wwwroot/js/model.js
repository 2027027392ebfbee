// What the records mean, as XenCenter reads them: which VMs are real, where they run, host states, SR placement.
// Relations are computed from forward links (VM.resident_on, VBD.VM, PBD.host...), which every event carries.

import { byName } from "./format.js";

const EVACUATED_KEY = "MAINTENANCE_MODE_EVACUATED_VMS_MIGRATED";

export function thePool(cache) {
  return cache.all("pool")[0];
}

/** VMs a person manages: not templates, snapshots or control domains. */
export function realVms(cache) {
  return cache.all("VM").filter((vm) => !vm.is_a_template && !vm.is_a_snapshot && !vm.is_control_domain).sort(byName);
}

export function templates(cache) {
  return cache.all("VM").filter((vm) => vm.is_a_template && !vm.is_a_snapshot).sort(byName);
}

export function hosts(cache) {
  return cache.all("host").sort(byName);
}

export function isMaster(cache, host) {
  return thePool(cache)?.master === host.opaque_ref;
}

export function masterHost(cache) {
  const pool = thePool(cache);
  return pool ? cache.get("host", pool.master) : undefined;
}

/** host_metrics.live; unknown (no metrics yet) counts as live so a fresh pool does not flash "dead". */
export function isHostLive(cache, host) {
  const metrics = cache.get("host_metrics", host.metrics);
  return metrics ? metrics.live !== false : true;
}

/** XenCenter's maintenance mode: the host is disabled (it also reads other_config MAINTENANCE_MODE=true). */
export function inMaintenanceMode(host) {
  return host.enabled === false || host.other_config?.MAINTENANCE_MODE === "true";
}

/** The VMs the last evacuation moved off the host (Corral keeps XenCenter's key). */
export function evacuatedVms(cache, host) {
  const list = host.other_config?.[EVACUATED_KEY] ?? "";
  return list.split(",").map((ref) => ref.trim()).filter(Boolean).map((ref) => cache.get("VM", ref)).filter(Boolean);
}

export function vmsOnHost(cache, hostRef) {
  return realVms(cache).filter((vm) => vm.resident_on === hostRef && vm.power_state !== "Halted");
}

export function isMigrating(vm) {
  return Object.values(vm.current_operations ?? {}).some((op) => op === "pool_migrate" || op === "migrate_send");
}

/** The operation names in flight on an object (current_operations values). */
export function currentOperations(record) {
  return Object.values(record?.current_operations ?? {});
}

/** One word for a VM's state: running, halted, paused, suspended, migrating, starting... */
export function vmStatus(vm) {
  if (isMigrating(vm)) {
    return "migrating";
  }
  const ops = currentOperations(vm);
  if (ops.includes("start") || ops.includes("start_on")) {
    return "starting";
  }
  if (ops.some((op) => op.includes("shutdown"))) {
    return "shutting down";
  }
  if (ops.some((op) => op.includes("reboot"))) {
    return "rebooting";
  }
  return String(vm.power_state ?? "unknown").toLowerCase();
}

export function hostStatusWords(cache, host) {
  const words = [];
  if (isMaster(cache, host)) words.push("master");
  words.push(isHostLive(cache, host) ? "live" : "host dead");
  if (inMaintenanceMode(host)) words.push("maintenance mode");
  return words;
}

export function pbdsOfSr(cache, srRef) {
  return cache.all("PBD").filter((pbd) => pbd.SR === srRef);
}

export function pbdsOfHost(cache, hostRef) {
  return cache.all("PBD").filter((pbd) => pbd.host === hostRef);
}

/** The host a non-shared SR belongs to (its only PBD's host), else null: the SR shows under the pool. */
export function localSrHost(cache, sr) {
  if (sr.shared) {
    return null;
  }
  const hostsOfSr = [...new Set(pbdsOfSr(cache, sr.opaque_ref).map((pbd) => pbd.host))];
  return hostsOfSr.length === 1 ? hostsOfSr[0] : null;
}

export function isIsoSr(sr) {
  return sr.content_type === "iso" || sr.type === "iso";
}

export function srKindWords(cache, sr) {
  if (isIsoSr(sr)) return ["ISO library"];
  return [localSrHost(cache, sr) ? "local" : sr.shared ? "shared" : "local"];
}

/** The SR Corral keeps its templates' disks in: not storage for VMs of one's own. */
export function isTemplateLibrary(sr) {
  return sr.other_config?.["corral-template-library"] === "true";
}

/** SRs a new VM's disks can go on: user storage, not ISO libraries or the template library. */
export function diskSrs(cache) {
  return cache.all("SR").filter((sr) => !isIsoSr(sr) && !isTemplateLibrary(sr)).sort(byName);
}

export function vbdsOfVm(cache, vmRef) {
  return cache.all("VBD").filter((vbd) => vbd.VM === vmRef).sort((a, b) => String(a.userdevice).localeCompare(String(b.userdevice), undefined, { numeric: true }));
}

export function vifsOfVm(cache, vmRef) {
  return cache.all("VIF").filter((vif) => vif.VM === vmRef).sort((a, b) => String(a.device).localeCompare(String(b.device), undefined, { numeric: true }));
}

export function consolesOfVm(cache, vmRef) {
  return cache.all("console").filter((c) => c.VM === vmRef);
}

/** The guest agent's IP addresses by VIF device, from VM_guest_metrics.networks ("0/ip", "0/ipv4/0", "0/ipv6/0"). */
export function guestAddresses(cache, vm) {
  const networks = cache.get("VM_guest_metrics", vm.guest_metrics)?.networks ?? {};
  const byDevice = new Map();
  for (const [key, value] of Object.entries(networks)) {
    const device = key.split("/")[0];
    if (!value) continue;
    const list = byDevice.get(device) ?? [];
    if (!list.includes(value)) list.push(value);
    byDevice.set(device, list);
  }
  return byDevice;
}

/**
 * "Optimized (version 7.2.19)" while the guest agent answers, "Tools not responding" once it stopped (its metrics are
 * no longer live), else "Tools not installed" (XenCenter's words).
 */
export function virtualizationState(cache, vm) {
  const metrics = cache.get("VM_guest_metrics", vm.guest_metrics);
  const version = metrics?.PV_drivers_version ?? {};
  if (!metrics || !version.major) {
    return vm.power_state === "Running" ? "Tools not installed" : "Unknown (the VM is not running)";
  }
  const text = [version.major, version.minor, version.micro].filter((part) => part !== undefined).join(".");
  if (vm.power_state === "Running" && metrics.live === false) {
    return `Tools not responding (version ${text})`;
  }
  return `Optimized (version ${text})`;
}

/**
 * Whether an action can run now: the pool master keeps allowed_operations what the server would accept (an empty
 * list means nothing may start now, e.g. while another operation runs), as XenCenter reads it.
 */
export function vmActionAllowed(vm, operation, powerStates) {
  if (!powerStates.includes(vm.power_state)) {
    return false;
  }
  if (isMigrating(vm)) {
    return false;
  }
  return (vm.allowed_operations ?? []).includes(operation);
}

export function hostByAddress(cache, address) {
  return cache.all("host").find((host) => host.address === address);
}
