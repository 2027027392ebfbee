// The Performance tab: XenServer's rrd_updates (JSON) from the selected host, or the selected VM's host, every 5 s;
// CPU, memory, disk and network drawn as live charts.

import { baseForAddress } from "./api.js";
import { lineChart } from "./charts.js";
import { h } from "./dom.js";
import { formatBytes, formatRate } from "./format.js";

const POLL_MS = 5000;
const HISTORY_SECONDS = 600;
const RETRY_AFTER_FAILURE_MS = 60_000;

/** Parses rrd_updates' JSON; older xapi wrote its keys unquoted, which this tolerates. */
export function parseRrdUpdates(text) {
  try {
    return JSON.parse(text);
  } catch {
    return JSON.parse(text.replace(/([{,]\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:/g, '$1"$2":'));
  }
}

/** The rows of one host's rrd_updates, kept for the last minutes: [{t, values: Map(legend -> number)}]. */
class HostHistory {
  rows = [];
  lastEnd = null;
  failedAt = 0;
  failure = null;

  add(update) {
    const legend = update?.meta?.legend ?? [];
    const data = [...(update?.data ?? [])].sort((a, b) => Number(a.t) - Number(b.t));
    const lastT = this.rows.length ? this.rows[this.rows.length - 1].t : -Infinity;
    for (const row of data) {
      const t = Number(row.t);
      if (!(t > lastT)) continue;
      const values = new Map();
      (row.values ?? []).forEach((value, i) => values.set(legend[i], Number(value)));
      this.rows.push({ t, values });
    }
    const end = Number(update?.meta?.end);
    if (Number.isFinite(end)) this.lastEnd = end;
    const oldest = Date.now() / 1000 - HISTORY_SECONDS - 30;
    this.rows = this.rows.filter((row) => row.t >= oldest);
  }

  /** A series from each row: combine(values of the row whose names match, as {name: value}) -> number or NaN. */
  series(prefix, combine) {
    return this.rows.map((row) => {
      const matched = {};
      for (const [name, value] of row.values) {
        if (name?.startsWith(prefix)) matched[name.slice(prefix.length)] = value;
      }
      return [row.t, combine(matched)];
    });
  }
}

const sumOf = (pattern) => (m) => {
  const values = Object.entries(m).filter(([name]) => pattern.test(name)).map(([, v]) => v).filter(Number.isFinite);
  return values.length ? values.reduce((a, b) => a + b, 0) : NaN;
};
const averageOf = (pattern) => (m) => {
  const values = Object.entries(m).filter(([name]) => pattern.test(name)).map(([, v]) => v).filter(Number.isFinite);
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
};
const percent = (value) => `${Math.round(value * 1000) / 10}%`;

export function performanceView() {
  let container = null;
  let context = null;
  let selection = null;
  let timer = null;
  const histories = new Map(); // host address -> HostHistory
  let polling = false;

  function targetOf(sel) {
    const { cache } = context;
    if (sel.cls === "host") {
      return { host: sel.record, prefix: `AVERAGE:host:${sel.record.uuid}:`, kind: "host" };
    }
    if (sel.cls === "vm") {
      const host = cache.get("host", sel.record.resident_on);
      return host ? { host, prefix: `AVERAGE:vm:${sel.record.uuid}:`, kind: "vm" } : { host: null, kind: "vm" };
    }
    return null;
  }

  async function poll() {
    if (!container || polling || !selection) return;
    const target = targetOf(selection);
    if (!target?.host?.address) {
      draw();
      return;
    }
    const address = target.host.address;
    let history = histories.get(address);
    if (!history) {
      history = new HostHistory();
      histories.set(address, history);
    }
    // A host without rrd_updates (404) is asked again only after a while, not every 5 s.
    if (history.failure && Date.now() - history.failedAt < RETRY_AFTER_FAILURE_MS) {
      draw();
      return;
    }
    polling = true;
    try {
      const start = Math.floor(history.lastEnd ?? Date.now() / 1000 - HISTORY_SECONDS);
      const url = `${baseForAddress(address)}/rrd_updates?session_id=${encodeURIComponent(context.connection.session ?? "")}`
        + `&start=${start}&cf=AVERAGE&interval=5&host=true&json=true`;
      const response = await fetch(url, { cache: "no-store", credentials: "omit" });
      const body = await response.text();
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      history.add(parseRrdUpdates(body));
      history.failure = null;
    } catch (error) {
      history.failure = error;
      history.failedAt = Date.now();
    } finally {
      polling = false;
    }
    draw();
  }

  function draw() {
    if (!container || !selection) return;
    const target = targetOf(selection);
    if (!target) {
      container.replaceChildren(h("p", { class: "empty", text: "Select a host or a VM to see its performance." }));
      return;
    }
    if (!target.host) {
      container.replaceChildren(h("p", { class: "empty", text: `${selection.record.name_label} is not running: no performance data.` }));
      return;
    }
    const history = histories.get(target.host.address);
    const hasData = history && history.series(target.prefix, (m) => Object.keys(m).length).some(([, n]) => n > 0);
    if (!hasData) {
      container.replaceChildren(h("p", { class: "empty", text: "No performance data yet" }));
      return;
    }
    const p = target.prefix;
    const charts = [];
    if (target.kind === "host") {
      charts.push(lineChart({ title: "CPU", series: [{ label: "Average", className: "s1", points: history.series(p, (m) => (Number.isFinite(m.cpu_avg) ? m.cpu_avg : averageOf(/^cpu\d+$/)(m))) }], format: percent, max: 1 }));
      const total = history.series(p, (m) => m.memory_total_kib * 1024);
      const lastTotal = [...total].reverse().find(([, v]) => Number.isFinite(v))?.[1];
      charts.push(lineChart({ title: "Memory", series: [{ label: "Used", className: "s1", points: history.series(p, (m) => (m.memory_total_kib - m.memory_free_kib) * 1024) }], format: formatBytes, max: lastTotal }));
    } else {
      charts.push(lineChart({ title: "CPU", series: [{ label: "Average", className: "s1", points: history.series(p, averageOf(/^cpu\d+$/)) }], format: percent, max: 1 }));
      charts.push(lineChart({
        title: "Memory",
        series: [
          { label: "Assigned", className: "s1", points: history.series(p, (m) => m.memory) },
          { label: "Used by the guest", className: "s2", points: history.series(p, (m) => (Number.isFinite(m.memory_internal_free) ? m.memory - m.memory_internal_free * 1024 : NaN)) },
        ],
        format: formatBytes,
        max: Number(selection.record.memory_static_max) || undefined,
      }));
    }
    charts.push(lineChart({
      title: "Disk",
      series: [
        { label: "Read", className: "s1", points: history.series(p, sumOf(/^vbd_.*_read$/)) },
        { label: "Write", className: "s2", points: history.series(p, sumOf(/^vbd_.*_write$/)) },
      ],
      format: formatRate,
      binary: true,
    }));
    charts.push(lineChart({
      title: "Network",
      series: [
        { label: "Received", className: "s1", points: history.series(p, sumOf(/^(vif|pif)_.*_rx$/)) },
        { label: "Sent", className: "s2", points: history.series(p, sumOf(/^(vif|pif)_.*_tx$/)) },
      ],
      format: formatRate,
      binary: true,
    }));
    const updated = new Date(history.rows[history.rows.length - 1].t * 1000);
    container.replaceChildren(
      h("p", { class: "hint", text: `${target.kind === "host" ? target.host.name_label : `${selection.record.name_label} on ${target.host.name_label}`}, last ${HISTORY_SECONDS / 60} minutes; updated ${updated.toLocaleTimeString()}.` }),
      h("div", { class: "charts" }, charts));
  }

  return {
    mount(element, ctx, sel) {
      container = element;
      context = ctx;
      selection = sel;
      container.replaceChildren(h("p", { class: "empty", text: "Loading performance data…" }));
      poll();
      timer = setInterval(poll, POLL_MS);
    },
    update(ctx, sel) {
      context = ctx;
      const changed = !selection || sel.key !== selection.key;
      selection = sel;
      if (changed) poll();
    },
    unmount() {
      clearInterval(timer);
      timer = null;
      container = null;
    },
  };
}
