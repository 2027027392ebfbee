// Formatting of XenAPI values for people: dates, sizes, durations.

export const NULL_REF = "OpaqueRef:NULL";

export function isNullRef(ref) {
  return !ref || ref === NULL_REF;
}

/** XenAPI datetimes: "20240131T12:34:56Z" (also accepts ISO 8601). Returns null for the epoch, XenAPI's "unset". */
export function parseXenDate(text) {
  if (!text || typeof text !== "string") {
    return null;
  }
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?Z?$/.exec(text);
  const date = match
    ? new Date(Date.UTC(+match[1], +match[2] - 1, +match[3], +match[4], +match[5], +match[6]))
    : new Date(text);
  if (Number.isNaN(date.getTime()) || date.getTime() <= 0) {
    return null;
  }
  return date;
}

export function formatDateTime(date) {
  if (!date) {
    return "";
  }
  return date.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function formatBytes(bytes) {
  const value = Number(bytes);
  if (!Number.isFinite(value)) {
    return "";
  }
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let scaled = Math.abs(value);
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || scaled >= 100 ? 0 : 1;
  return `${value < 0 ? "-" : ""}${scaled.toFixed(digits)} ${units[unit]}`;
}

export function formatRate(bytesPerSecond) {
  return `${formatBytes(bytesPerSecond)}/s`;
}

export function formatDuration(seconds) {
  let rest = Math.max(0, Math.floor(seconds));
  const days = Math.floor(rest / 86400);
  rest -= days * 86400;
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  const parts = [];
  if (days) parts.push(`${days} ${days === 1 ? "day" : "days"}`);
  if (hours) parts.push(`${hours} ${hours === 1 ? "hour" : "hours"}`);
  if (minutes || parts.length === 0) parts.push(`${minutes} ${minutes === 1 ? "minute" : "minutes"}`);
  return parts.join(" ");
}

export function formatPercent(fraction) {
  return `${Math.round(Math.max(0, Math.min(1, Number(fraction) || 0)) * 100)}%`;
}

export function yesNo(value) {
  return value ? "Yes" : "No";
}

/** Sorts records by name_label the way people expect ("vm2" before "vm10"). */
export function byName(a, b) {
  return (a.name_label ?? "").localeCompare(b.name_label ?? "", undefined, { numeric: true, sensitivity: "base" });
}
