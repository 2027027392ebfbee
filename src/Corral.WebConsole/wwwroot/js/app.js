// The console's bootstrap: login, the event stream into the cache, and the tree, toolbar, tabs and tasks rendered
// from it; context menus and dialogs for the actions; the status banner for failovers.

import { Actions, VM_ACTIONS, vmActionEnabled } from "./actions.js";
import { PoolConnection } from "./api.js";
import { ObjectCache } from "./cache.js";
import { consoleView } from "./console-view.js";
import { h } from "./dom.js";
import { XenApiError, describeError } from "./errors.js";
import { EventLoop } from "./events.js";
import { haView } from "./ha-view.js";
import { showContextMenu, closeContextMenu } from "./menu.js";
import { hostByAddress, inMaintenanceMode, isHostLive, masterHost } from "./model.js";
import { performanceView } from "./performance-view.js";
import { enterMaintenanceModeDialog, exitMaintenanceMode, migrateDialog, newVmDialog } from "./pool-dialogs.js";
import { Tabs } from "./tabs.js";
import { TaskTracker } from "./tasks.js";
import { PoolTree, buildTreeModel, nodeKey } from "./tree.js";
import { describeSelection, renderGeneral, renderLogs, renderNetworking, renderStorage, simpleView } from "./views.js";

const $ = (id) => document.getElementById(id);

const cache = new ObjectCache();
const connection = new PoolConnection();
const describe = (error) => describeError(error, (ref) => cache.nameOf(ref));

const ui = {
  loginView: $("login-view"),
  loginForm: $("login-form"),
  loginUser: $("login-user"),
  loginPassword: $("login-password"),
  loginError: $("login-error"),
  loginButton: $("login-button"),
  appView: $("app-view"),
  banner: $("status-banner"),
  alerts: $("alerts"),
  connectionInfo: $("connection-info"),
  treeToggle: $("tree-toggle"),
  treePanel: $("tree-panel"),
  tree: $("pool-tree"),
  selectionTitle: $("selection-title"),
  selectionKind: $("selection-kind"),
  toolbar: $("toolbar"),
  tablist: $("tablist"),
  panels: $("panels"),
  taskList: $("task-list"),
  clearTasks: $("clear-tasks"),
  newVmButton: $("new-vm-button"),
  logoutButton: $("logout-button"),
};

// ---- Status banner and alerts ----

let bannerTimer = null;
function showBanner(text, kind = "info") {
  clearTimeout(bannerTimer);
  ui.banner.textContent = text;
  ui.banner.dataset.kind = kind;
  if (kind === "ok") {
    bannerTimer = setTimeout(() => {
      if (ui.banner.textContent === text) {
        ui.banner.textContent = "";
      }
    }, 30_000);
  }
}

function showAlert(text) {
  const dismiss = h("button", { type: "button", class: "dismiss", text: "Dismiss" });
  const alert = h("div", { class: "alert", attrs: { role: "alert" } }, h("span", { text }), dismiss);
  dismiss.addEventListener("click", () => {
    alert.remove();
  });
  ui.alerts.prepend(alert);
  while (ui.alerts.children.length > 3) {
    ui.alerts.lastElementChild.remove();
  }
}

/** A question that does not block the page: text and buttons [{label, action}]; any button closes it. */
function showOffer(text, choices) {
  const offer = h("div", { class: "offer", attrs: { role: "group", "aria-label": text } }, h("span", { text }));
  for (const choice of choices) {
    const button = h("button", { type: "button", text: choice.label });
    button.addEventListener("click", () => {
      offer.remove();
      choice.action?.();
    });
    offer.appendChild(button);
  }
  ui.alerts.prepend(offer);
  showBanner(text, "info");
}

// ---- Pieces that render from the cache ----

const tracker = new TaskTracker(cache, ui.taskList, ui.clearTasks, describe);
const actions = new Actions({ connection, cache, tracker, describe, alert: showAlert });
const dialogContext = { connection, cache, actions, describe };
const viewContext = { cache, connection, actions, describe };

const tabs = new Tabs(ui.tablist, ui.panels, [
  { id: "general", label: "General", view: simpleView(renderGeneral) },
  { id: "storage", label: "Storage", view: simpleView(renderStorage) },
  { id: "networking", label: "Networking", view: simpleView(renderNetworking) },
  { id: "console", label: "Console", view: consoleView() },
  { id: "performance", label: "Performance", view: performanceView() },
  { id: "ha", label: "HA", view: haView() },
  { id: "logs", label: "Logs", view: simpleView(renderLogs) },
]);
tabs.select("general");

const tree = new PoolTree(ui.tree, {
  onSelect: () => render(),
  onContextMenu: (node, anchor) => openContextMenu(node, anchor),
  onDropVm: (vmRef, hostRef) => actions.dropVmOnHost(vmRef, hostRef),
});

connection.hostAddresses = () => cache.all("host").map((host) => host.address).filter(Boolean);
connection.hostNameFor = (address) => hostByAddress(cache, address)?.name_label ?? address;
connection.talksToMaster = () => {
  const master = masterHost(cache);
  return !master || master.address === connection.address;
};

const eventLoop = new EventLoop(connection, cache, (error) => showAlert(`Live updates: ${describe(error)}`));

function currentSelection() {
  const key = tree.selectedKey;
  const node = key && tree.node(key);
  if (!node) return null;
  const record = cache.get(node.cls, node.ref);
  return record ? { key, cls: node.cls, ref: node.ref, record } : null;
}

function render() {
  if (!connection.connected && !connection.recovering) return;
  const model = buildTreeModel(cache);
  tree.render(model);
  if (!model) return;
  if (!tree.node(tree.selectedKey)) {
    tree.select(model.key, { quiet: true });
  }
  connection.rememberAddresses(cache.all("host").map((host) => host.address));
  const selection = currentSelection();
  if (!selection) return;
  ui.selectionTitle.textContent = selection.record.name_label || "Pool";
  ui.selectionKind.textContent = describeSelection(cache, selection);
  renderToolbar(selection);
  renderConnectionInfo();
  tabs.show(viewContext, selection);
}

function renderConnectionInfo() {
  const host = hostByAddress(cache, connection.address);
  const name = host?.name_label ?? connection.address;
  const master = masterHost(cache);
  ui.connectionInfo.textContent = `${connection.user ?? ""}@${name}${master && host && master.opaque_ref === host.opaque_ref ? " (master)" : ""}`;
}

// ---- Toolbar ----

const toolbarButtons = new Map();
for (const action of VM_ACTIONS) {
  const button = h("button", { type: "button", text: action.label, class: "vm-action", dataset: { action: action.operation } });
  button.addEventListener("click", () => {
    const selection = currentSelection();
    if (selection?.cls === "vm") actions.vmAction(action, selection.record);
  });
  toolbarButtons.set(action.label, { button, action });
  ui.toolbar.appendChild(button);
}
const migrateButton = h("button", { type: "button", text: "Migrate to…", class: "vm-action" });
migrateButton.addEventListener("click", () => {
  const selection = currentSelection();
  if (selection?.cls === "vm") migrateDialog(dialogContext, selection.record);
});
const moreButton = h("button", { type: "button", text: "More actions", attrs: { "aria-haspopup": "menu" } });
moreButton.addEventListener("click", () => {
  const selection = currentSelection();
  const node = selection && tree.node(selection.key);
  if (node) openContextMenu(node, moreButton);
});
ui.toolbar.append(migrateButton, moreButton);
ui.toolbar.addEventListener("keydown", (event) => {
  if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
  const buttons = [...ui.toolbar.querySelectorAll("button")].filter((b) => !b.disabled && !b.hidden);
  const index = buttons.indexOf(document.activeElement);
  if (index < 0) return;
  event.preventDefault();
  buttons[(index + (event.key === "ArrowRight" ? 1 : buttons.length - 1)) % buttons.length].focus();
});

function renderToolbar(selection) {
  const isVm = selection.cls === "vm";
  for (const { button, action } of toolbarButtons.values()) {
    button.hidden = !isVm || !connection.may(action.method);
    button.disabled = !isVm || !vmActionEnabled(action, selection.record);
  }
  migrateButton.hidden = !isVm || !connection.may("VM.pool_migrate");
  migrateButton.disabled = !isVm || selection.record.power_state !== "Running" || cache.all("host").length < 2;
  moreButton.hidden = menuItemsFor(tree.node(selection.key)).length === 0;
  ui.toolbar.setAttribute("aria-label", isVm ? `Actions for ${selection.record.name_label}` : "Actions");
}

// ---- Context menus ----

function menuItemsFor(node) {
  const items = allMenuItemsFor(node).filter((item) => item === null || connection.may(item.method));
  // No separator first, last or twice in a row once items are left out.
  return items.filter((item, i) => item !== null || (i > 0 && i < items.length - 1 && items[i - 1] !== null));
}

/** Each node's menu; every item names the call it makes, so that a role that may not make it does not see it. */
function allMenuItemsFor(node) {
  if (!node) return [];
  const record = cache.get(node.cls, node.ref);
  if (!record) return [];
  if (node.cls === "vm") {
    return [
      ...VM_ACTIONS.map((action) => ({ label: action.label, method: action.method, disabled: !vmActionEnabled(action, record), action: () => actions.vmAction(action, record) })),
      null,
      { label: "Migrate to…", method: "VM.pool_migrate", disabled: record.power_state !== "Running", action: () => migrateDialog(dialogContext, record) },
    ];
  }
  if (node.cls === "host") {
    const live = isHostLive(cache, record);
    return [
      inMaintenanceMode(record)
        ? { label: "Exit Maintenance Mode", method: "host.enable", disabled: !live, action: () => exitMaintenanceMode(dialogContext, record, showOffer) }
        : { label: "Enter Maintenance Mode", method: "host.evacuate", disabled: !live, action: () => enterMaintenanceModeDialog(dialogContext, record) },
      null,
      { label: "New VM…", method: "VM.copy", action: () => openNewVm(record.opaque_ref) },
    ];
  }
  if (node.cls === "pool") {
    return [{ label: "New VM…", method: "VM.copy", action: () => openNewVm() }];
  }
  return [];
}

function openContextMenu(node, anchor) {
  const items = menuItemsFor(node);
  if (items.length) {
    showContextMenu(`Actions for ${node.label}`, items, anchor);
  }
}

function openNewVm(preferredHost) {
  newVmDialog(dialogContext, {
    preferredHost,
    onCreated: (vmRef) => {
      // The new VM shows up through the event stream; select it once it has.
      const trySelect = (attempt = 0) => {
        const key = nodeKey("vm", vmRef);
        if (tree.node(key)) tree.select(key);
        else if (attempt < 20) setTimeout(() => trySelect(attempt + 1), 250);
      };
      trySelect();
    },
  });
}

// ---- Phone layout: the tree folds into a panel above the tabs ----

function setTreeExpanded(expanded) {
  ui.treeToggle.setAttribute("aria-expanded", String(expanded));
  ui.treePanel.classList.toggle("collapsed", !expanded);
}
ui.treeToggle.addEventListener("click", () => {
  setTreeExpanded(ui.treeToggle.getAttribute("aria-expanded") !== "true");
});

// ---- Login, logout, expiry ----

function showLogin(message = "") {
  ui.appView.hidden = true;
  ui.loginView.hidden = false;
  ui.loginError.textContent = message;
  ui.loginPassword.value = "";
  ui.loginButton.disabled = false;
  (ui.loginUser.value ? ui.loginPassword : ui.loginUser).focus();
}

function endSession() {
  closeContextMenu();
  eventLoop.stop();
  tabs.clear();
  cache.reset();
  tree.render(null);
  tracker.clear();
  ui.alerts.replaceChildren();
}

ui.loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const user = ui.loginUser.value.trim();
  const password = ui.loginPassword.value;
  if (!user) {
    ui.loginError.textContent = "Enter a user name.";
    ui.loginUser.focus();
    return;
  }
  ui.loginButton.disabled = true;
  ui.loginError.textContent = "";
  showBanner("Logging in…", "info");
  try {
    await connection.login(user, password);
  } catch (error) {
    ui.banner.textContent = "";
    ui.loginButton.disabled = false;
    ui.loginError.textContent = error instanceof XenApiError && error.code === "SESSION_AUTHENTICATION_FAILED"
      ? `Wrong user name or password (${error.code}).`
      : `Cannot log in: ${describe(error)}`;
    ui.loginPassword.focus();
    ui.loginPassword.select();
    return;
  }
  ui.loginPassword.value = "";
  ui.loginView.hidden = true;
  ui.appView.hidden = false;
  ui.newVmButton.hidden = !connection.may("VM.copy");
  // On a phone the tree comes first, above the tabs; its button folds it away.
  setTreeExpanded(true);
  showBanner(`Connected to ${connection.address}`, "ok");
  // The first full sync usually takes well under a second; the page does not wait forever for it.
  await Promise.race([eventLoop.start(), new Promise((resolve) => { setTimeout(resolve, 15_000); })]);
  render();
  const master = masterHost(cache);
  showBanner(`Connected to ${master?.address === connection.address ? `the pool master ${master.name_label}` : connection.hostNameFor(connection.address)}`, "ok");
  tree.element(tree.selectedKey)?.focus();
});

ui.logoutButton.addEventListener("click", async () => {
  endSession();
  await connection.logout();
  showBanner("Logged out", "ok");
  showLogin();
});

ui.newVmButton.addEventListener("click", () => openNewVm());

connection.addEventListener("status", (event) => showBanner(event.detail.text, event.detail.kind));
connection.addEventListener("expired", () => {
  endSession();
  showBanner("Your session has expired; log in again.", "warning");
  showLogin("Your session has expired; log in again.");
});

cache.subscribe(render);
// Uptimes and "updated" times move on without events.
setInterval(() => {
  if (connection.connected && tabs.selectedId === "general") render();
}, 30_000);

// A promise nobody handled is a bug; the user sees it too, not only the browser's log.
window.addEventListener("unhandledrejection", (event) => {
  showAlert(`Unexpected error: ${describe(event.reason)}`);
});

showLogin();
