// The Console tab: a running VM's serial console (vt100, over a websocket, as plain text) and its graphical console
// (rfb, through noVNC). Console records name where each is served: console.location on the VM's host.

import { h, uniqueId } from "./dom.js";
import { consolesOfVm, isHostLive } from "./model.js";
import { PlainTerminal, keyToSequence } from "./terminal.js";

/**
 * console.location (https://host/console?uuid=...) as a websocket URL with the session, as XenServer's clients do. The
 * host is the location's; the scheme and port are the page's, as for every host the page calls (baseForAddress), so a
 * page served over HTTP keeps to HTTP and one served over HTTPS to the certificates its browser accepted there.
 */
export function consoleSocketUrl(location, session) {
  const url = new URL(location, window.location.href);
  url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  url.port = window.location.port;
  url.searchParams.set("session_id", session);
  return url.toString();
}

let rfbModule = null;
async function loadNoVnc() {
  // Loaded on first use only, so the rest of the console works on a host without noVNC.
  rfbModule ??= Promise.all([import("../vendor/novnc/core/rfb.js"), import("../vendor/novnc/core/util/logging.js")])
    .then(([rfb, logging]) => ({ RFB: rfb.default, logging }));
  try {
    return await rfbModule;
  } catch (error) {
    rfbModule = null;
    throw error;
  }
}

/** Whether a console's location names the given host (its address, brackets of an IPv6 literal aside). */
function servedBy(consoleRecord, host) {
  try {
    const bare = (name) => String(name).replace(/^\[|\]$/g, "").toLowerCase();
    return bare(new URL(consoleRecord.location).hostname) === bare(host.address);
  } catch {
    return false;
  }
}

export function consoleView() {
  let container = null;
  let context = null;
  let signature = null;
  let mode = "serial";
  let session = null; // the live connection: {close()}

  function teardown() {
    session?.close();
    session = null;
  }

  function message(text) {
    teardown();
    container.replaceChildren(h("p", { class: "empty console-message", text }));
  }

  function build(vm, serial, graphical) {
    teardown();
    if (mode === "graphical" && !graphical) mode = "serial";
    if (mode === "serial" && !serial) mode = "graphical";
    const state = h("span", { class: "console-state", attrs: { "aria-live": "polite" }, text: "Connecting…" });
    const serialButton = h("button", { type: "button", text: "Serial console", disabled: !serial, attrs: { "aria-pressed": String(mode === "serial") } });
    const graphicalButton = h("button", { type: "button", text: "Graphical console", disabled: !graphical, attrs: { "aria-pressed": String(mode === "graphical") } });
    const reconnectButton = h("button", { type: "button", text: "Reconnect" });
    const area = h("div", { class: "console-area" });
    serialButton.addEventListener("click", () => { if (mode !== "serial") { mode = "serial"; build(vm, serial, graphical); } });
    graphicalButton.addEventListener("click", () => { if (mode !== "graphical") { mode = "graphical"; build(vm, serial, graphical); } });
    reconnectButton.addEventListener("click", () => build(vm, serial, graphical));
    container.replaceChildren(
      h("div", { class: "control-row console-toolbar", attrs: { role: "group", "aria-label": "Console" } }, serialButton, graphicalButton, reconnectButton, state),
      area);
    const setState = (text) => { state.textContent = text; };
    session = mode === "serial" ? openSerial(area, vm, serial, setState) : openGraphical(area, vm, graphical, setState);
  }

  function openSerial(area, vm, record, setState) {
    const hintId = uniqueId("terminal-hint");
    const terminal = new PlainTerminal();
    const screen = h("pre", {
      class: "terminal",
      attrs: { tabindex: "0", role: "log", "aria-live": "off", "aria-label": `Serial console of ${vm.name_label}`, "aria-describedby": hintId },
    });
    const hint = h("p", { id: hintId, class: "hint", text: "Click or focus the console and type to send keys; Tab leaves it. Or send a whole line below." });
    const lineInput = h("input", { type: "text", autocomplete: "off", spellcheck: false, id: uniqueId("send-line") });
    const sendForm = h("form", { class: "send-line" },
      h("label", { attrs: { for: lineInput.id }, text: "Send a line" }), lineInput, h("button", { type: "submit", text: "Send" }));
    area.replaceChildren(screen, hint, sendForm);

    let socket = null;
    let closedByUs = false;
    let renderPending = false;
    const render = () => {
      if (renderPending) return;
      renderPending = true;
      requestAnimationFrame(() => {
        renderPending = false;
        const atBottom = screen.scrollHeight - screen.scrollTop - screen.clientHeight < 40;
        screen.textContent = terminal.text();
        if (atBottom) screen.scrollTop = screen.scrollHeight;
      });
    };
    const encoder = new TextEncoder();
    // Keys typed while the connection opens are kept and sent once it is open, not lost.
    let pending = "";
    const send = (text) => {
      if (socket?.readyState === WebSocket.OPEN) {
        socket.send(encoder.encode(text));
        return true;
      }
      if (socket?.readyState === WebSocket.CONNECTING) {
        pending += text;
        return true;
      }
      return false;
    };
    screen.addEventListener("keydown", (event) => {
      const sequence = keyToSequence(event);
      if (sequence !== null && send(sequence)) {
        event.preventDefault();
      }
    });
    screen.addEventListener("paste", (event) => {
      const text = event.clipboardData?.getData("text") ?? "";
      if (text && send(text.replace(/\r?\n/g, "\r"))) {
        event.preventDefault();
      }
    });
    sendForm.addEventListener("submit", (event) => {
      event.preventDefault();
      if (send(`${lineInput.value}\r`)) {
        lineInput.value = "";
      }
    });

    try {
      socket = new WebSocket(consoleSocketUrl(record.location, context.connection.session));
    } catch (error) {
      setState(`Cannot open the console: ${error.message}`);
      return { close() {} };
    }
    socket.binaryType = "arraybuffer";
    // A host that lost its links never answers: say so rather than "Connecting…" forever.
    const openTimer = setTimeout(() => {
      if (socket.readyState === WebSocket.CONNECTING) setState("No answer from the VM's host yet…");
    }, 10_000);
    socket.addEventListener("open", () => {
      clearTimeout(openTimer);
      setState("Connected");
      if (pending) {
        socket.send(encoder.encode(pending));
        pending = "";
      }
    });
    socket.addEventListener("message", (event) => {
      terminal.write(event.data);
      render();
    });
    socket.addEventListener("error", () => setState("The console connection failed"));
    socket.addEventListener("close", (event) => {
      if (!closedByUs) {
        setState(event.reason ? `Disconnected: ${event.reason}` : "Disconnected");
      }
    });
    return {
      close() {
        closedByUs = true;
        clearTimeout(openTimer);
        socket?.close();
      },
    };
  }

  function openGraphical(area, vm, record, setState) {
    const screen = h("div", { class: "vnc-screen", attrs: { role: "application", "aria-label": `Graphical console of ${vm.name_label}` } });
    const ctrlAltDel = h("button", { type: "button", text: "Send Ctrl+Alt+Del", disabled: true });
    area.replaceChildren(h("div", { class: "control-row" }, ctrlAltDel), screen);
    let rfb = null;
    let closed = false;
    loadNoVnc().then(({ RFB, logging }) => {
      if (closed) return;
      // Without TLS noVNC logs "requires a secure context" as an error, though a console without VNC authentication
      // (QEMU's, reached through the host) needs none of the APIs it means; its other messages stay.
      logging.initLogging("none");
      try {
        rfb = new RFB(screen, consoleSocketUrl(record.location, context.connection.session), { wsProtocols: ["binary"] });
      } finally {
        logging.initLogging("warn");
      }
      rfb.scaleViewport = true;
      rfb.addEventListener("connect", () => { setState("Connected"); ctrlAltDel.disabled = false; });
      rfb.addEventListener("disconnect", (event) => {
        ctrlAltDel.disabled = true;
        if (!closed) setState(event.detail?.clean ? "Disconnected" : "The console connection failed");
      });
      rfb.addEventListener("securityfailure", (event) => setState(`Refused: ${event.detail?.reason ?? "security failure"}`));
      ctrlAltDel.addEventListener("click", () => rfb?.sendCtrlAltDel());
    }).catch(() => {
      if (!closed) {
        setState("The graphical console is unavailable: this host does not serve noVNC.");
      }
    });
    return {
      close() {
        closed = true;
        try {
          rfb?.disconnect();
        } catch {
          // already gone
        }
      },
    };
  }

  return {
    mount(element, ctx, selection) {
      container = element;
      signature = null;
      this.update(ctx, selection);
    },
    update(ctx, selection) {
      context = ctx;
      if (!container) return;
      if (selection.cls !== "vm") {
        if (signature !== "none") {
          signature = "none";
          message("Select a VM to see its console.");
        }
        return;
      }
      const vm = selection.record;
      const host = ctx.cache.get("host", vm.resident_on);
      // Only a console located on the VM's own host is served: right after a migration the old location lingers for
      // a moment, until the new host rewrites it, and connecting there would only be refused.
      const consoles = consolesOfVm(ctx.cache, vm.opaque_ref).filter((c) => host && servedBy(c, host));
      const serial = consoles.find((c) => c.protocol === "vt100");
      const graphical = consoles.find((c) => c.protocol === "rfb");
      const running = vm.power_state === "Running" || vm.power_state === "Paused";
      const hostDead = host && !isHostLive(ctx.cache, host);
      // A new session (failover) or a new location (the VM migrated) means a new connection.
      const next = [vm.opaque_ref, running, hostDead, serial?.location, graphical?.location, ctx.connection.session].join("|");
      if (next === signature) return;
      signature = next;
      if (!ctx.connection.may("http/connect_console_ws")) {
        message(`Your role does not include ${vm.name_label}'s console (VM operators and above have it).`);
      } else if (!running) {
        message(`${vm.name_label} is not running: start it to see its console.`);
      } else if (hostDead) {
        message(`${vm.name_label}'s host ${host.name_label} is not responding (host dead): its console is out of reach.`);
      } else if (!serial && !graphical) {
        message(`No console is available for ${vm.name_label} on ${host?.name_label ?? "its host"} yet.`);
      } else {
        build(vm, serial, graphical);
      }
    },
    unmount() {
      teardown();
      container = null;
      signature = null;
    },
  };
}
