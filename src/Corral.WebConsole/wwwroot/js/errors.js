// Errors the page meets, and how they read to a person: a sentence, then the XenAPI code in brackets.

/** A XenAPI failure: the error code and its parameters, as the server sent them. */
export class XenApiError extends Error {
  constructor(code, params = []) {
    super(params.length ? `${code}: ${params.join(", ")}` : code);
    this.name = "XenApiError";
    this.code = code;
    this.params = params;
  }
}

/** The server could not be reached, or answered with something that is not JSON-RPC. */
export class NetworkError extends Error {
  constructor(address, cause) {
    super(`Cannot reach ${address}${cause?.message ? ` (${cause.message})` : ""}`);
    this.name = "NetworkError";
    this.address = address;
  }
}

// Sentences for the errors a Corral pool raises (after xapi's own descriptions). {0}, {1}... are the parameters,
// with object references replaced by the objects' names.
const DESCRIPTIONS = {
  SESSION_AUTHENTICATION_FAILED: "The user name or password is incorrect.",
  SESSION_INVALID: "Your session has expired or is no longer valid.",
  HOST_IS_SLAVE: "This host is not the pool master; the master is at {0}.",
  HOST_IN_EMERGENCY_MODE: "The host has lost contact with the pool database and runs in emergency mode.",
  HOST_OFFLINE: "The host {0} cannot be contacted.",
  HOST_DISABLED: "The host {0} is disabled (in maintenance mode).",
  HOST_NOT_ENOUGH_FREE_MEMORY: "Not enough free memory on the host (needed {0}, available {1}).",
  NO_HOSTS_AVAILABLE: "No host is available to run this VM.",
  HANDLE_INVALID: "The {0} no longer exists.",
  UUID_INVALID: "No {0} has the UUID {1}.",
  VM_BAD_POWER_STATE: "The VM {0} is {2}; this needs it {1}.",
  VM_REQUIRES_SR: "The VM {0} needs the storage {1}, which the target host cannot reach.",
  VM_REQUIRES_NETWORK: "The VM {0} needs the network {1}, which the target host does not have.",
  VM_IS_TEMPLATE: "{0} is a template, not a VM.",
  VM_MIGRATE_FAILED: "The migration of {0} failed: {3}",
  VM_START_FAILED: "The VM {0} could not start: {1}",
  VM_SHUTDOWN_TIMEOUT: "The VM {0} did not shut down in time.",
  VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT: "The VM {0} did not acknowledge the shutdown request.",
  VM_MISSING_PV_DRIVERS: "The VM {0} has no guest agent, which this needs.",
  OTHER_OPERATION_IN_PROGRESS: "Another operation is in progress on this {0}.",
  OPERATION_NOT_ALLOWED: "Not allowed: {0}",
  MESSAGE_METHOD_UNKNOWN: "The server does not support {0}.",
  MESSAGE_PARAMETER_COUNT_MISMATCH: "The server expected {1} arguments for {0}, not {2}.",
  INVALID_VALUE: "Invalid value for {0}: {1}",
  INTERNAL_ERROR: "The server failed: {0}",
  TASK_CANCELLED: "The task was cancelled.",
  SR_FULL: "The storage is full.",
  SR_BACKEND_FAILURE: "The storage failed: {0}",
  HA_IS_ENABLED: "HA is enabled on the pool; disable it first.",
  HA_NOT_ENABLED: "HA is not enabled on the pool.",
  HA_TOO_FEW_HOSTS: "HA needs at least two hosts.",
  HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN: "This would break the HA failover plan: the pool could not restart every protected VM after a host failure.",
  HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED: "The heartbeat storage {0} is not shared by every host.",
  HA_HOST_CANNOT_ACCESS_STATEFILE: "The host {0} cannot reach the heartbeat storage.",
  MEMORY_CONSTRAINT_VIOLATION: "The memory settings are inconsistent: {0}",
  EVENTS_LOST: "Some events were lost.",
};

/**
 * A readable message for any error: XenAPI errors as a sentence followed by the code, network errors as they are.
 * nameOf(ref) turns object references into names where it can.
 */
export function describeError(error, nameOf = () => null) {
  if (error instanceof XenApiError) {
    const params = error.params.map((p) => (typeof p === "string" && p.startsWith("OpaqueRef:") ? nameOf(p) ?? p : String(p)));
    const template = DESCRIPTIONS[error.code];
    const sentence = template
      ? template.replace(/\{(\d+)\}/g, (_, i) => params[Number(i)] ?? "?")
      : params.filter((p) => p !== "").join(", ");
    return sentence ? `${sentence} (${error.code})` : error.code;
  }
  if (error instanceof NetworkError) {
    return error.message;
  }
  return error?.message ? String(error.message) : String(error);
}
