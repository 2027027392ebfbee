// The pool tree (WAI-ARIA tree view): pool, hosts with their VMs and local SRs, halted VMs, shared SRs, networks.
// Rendering reuses each object's element across updates, so focus, selection and expansion survive the event stream.

import { h, uniqueId, visuallyHidden } from "./dom.js";
import { byName } from "./format.js";
import {
  hostStatusWords, hosts, isHostLive, isMaster, inMaintenanceMode, isIsoSr, localSrHost, realVms, srKindWords, thePool, vmStatus,
} from "./model.js";

export const VM_DRAG_TYPE = "application/x-corral-vm";

// Words that deserve a visible label next to the name; the others are shown by the icon (with hidden text).
const VISIBLE_WORDS = new Set(["master", "host dead", "maintenance mode", "migrating", "starting", "shutting down", "rebooting", "paused", "suspended"]);

export function nodeKey(cls, ref) {
  return `${cls.toLowerCase()}:${ref}`;
}

/** The tree's content from the cache: nodes {key, cls, ref, label, words, icon, children, draggable, dropTarget}. */
export function buildTreeModel(cache) {
  const pool = thePool(cache);
  if (!pool) {
    return null;
  }
  const vms = realVms(cache);
  const srs = cache.all("SR").sort(byName);
  const vmNode = (vm) => {
    const status = vmStatus(vm);
    return { key: nodeKey("vm", vm.opaque_ref), cls: "vm", ref: vm.opaque_ref, label: vm.name_label, words: [status], icon: `vm-${status.replace(/ /g, "-")}`, children: [], draggable: true };
  };
  const srNode = (sr) => {
    const words = srKindWords(cache, sr);
    return { key: nodeKey("sr", sr.opaque_ref), cls: "sr", ref: sr.opaque_ref, label: sr.name_label, words, icon: isIsoSr(sr) ? "sr-iso" : `sr-${words[0]}`, children: [] };
  };
  const hostNodes = hosts(cache).map((host) => {
    const words = hostStatusWords(cache, host);
    let icon = "host";
    if (!isHostLive(cache, host)) icon = "host-dead";
    else if (inMaintenanceMode(host)) icon = "host-maintenance";
    const children = [
      ...vms.filter((vm) => vm.resident_on === host.opaque_ref && vm.power_state !== "Halted").map(vmNode),
      ...srs.filter((sr) => localSrHost(cache, sr) === host.opaque_ref).map(srNode),
    ];
    return { key: nodeKey("host", host.opaque_ref), cls: "host", ref: host.opaque_ref, label: host.name_label, words, icon, children, dropTarget: true, master: isMaster(cache, host) };
  });
  const hostRefs = new Set(hosts(cache).map((host) => host.opaque_ref));
  // Halted VMs (and any whose host is unknown) sit under the pool, as XenCenter shows them.
  const poolVms = vms.filter((vm) => vm.power_state === "Halted" || !hostRefs.has(vm.resident_on)).map(vmNode);
  const poolSrs = srs.filter((sr) => !localSrHost(cache, sr)).map(srNode);
  const networks = cache.all("network").sort(byName).map((network) => ({
    key: nodeKey("network", network.opaque_ref), cls: "network", ref: network.opaque_ref, label: network.name_label, words: ["network"], icon: "network", children: [],
  }));
  const poolWords = [pool.ha_enabled ? "HA enabled" : "HA disabled"];
  return {
    key: nodeKey("pool", pool.opaque_ref), cls: "pool", ref: pool.opaque_ref, label: pool.name_label || "Pool", words: poolWords, icon: "pool",
    children: [...hostNodes, ...poolVms, ...poolSrs, ...networks],
  };
}

export class PoolTree {
  #root;
  #elements = new Map();
  #nodes = new Map();
  #parents = new Map();
  #collapsed = new Set();
  #selectedKey = null;
  #focusKey = null;
  #callbacks;

  /** root: the ul[role=tree]. callbacks: onSelect(node), onContextMenu(node, {x, y} | element), onDropVm(vmRef, hostRef). */
  constructor(root, callbacks) {
    this.#root = root;
    this.#callbacks = callbacks;
    root.addEventListener("keydown", (event) => this.#onKeyDown(event));
    root.addEventListener("click", (event) => this.#onClick(event));
    root.addEventListener("dblclick", (event) => this.#onDoubleClick(event));
    root.addEventListener("contextmenu", (event) => this.#onContextMenu(event));
    root.addEventListener("focusin", (event) => this.#onFocusIn(event));
    root.addEventListener("dragstart", (event) => this.#onDragStart(event));
    root.addEventListener("dragover", (event) => this.#onDragOver(event));
    root.addEventListener("dragleave", (event) => this.#onDragLeave(event));
    root.addEventListener("drop", (event) => this.#onDrop(event));
    root.addEventListener("dragend", () => this.#clearDropTargets());
  }

  get selectedKey() {
    return this.#selectedKey;
  }

  node(key) {
    return this.#nodes.get(key);
  }

  /** The treeitem element of a node. */
  element(key) {
    return this.#elements.get(key);
  }

  render(model) {
    const active = document.activeElement;
    const focusedKey = this.#root.contains(active) ? active.closest("[role=treeitem]")?.dataset.key : null;
    const seen = new Set();
    this.#nodes.clear();
    this.#parents.clear();
    if (model) {
      this.#renderChildren(this.#root, [model], seen, null);
    } else {
      this.#root.replaceChildren();
    }
    for (const key of [...this.#elements.keys()]) {
      if (!seen.has(key)) {
        this.#elements.delete(key);
      }
    }
    if (!this.#nodes.has(this.#focusKey)) {
      this.#focusKey = this.#nodes.has(this.#selectedKey) ? this.#selectedKey : model?.key ?? null;
    }
    this.#updateTabStops();
    if (focusedKey) {
      // A moved element loses focus (a VM migrated to another host): give it back.
      const target = this.element(focusedKey) ?? this.element(this.#focusKey);
      if (target && document.activeElement !== target) {
        target.focus({ preventScroll: true });
      }
    }
  }

  /** Selects a node by key (expanding its ancestors); tells onSelect unless quiet. */
  select(key, { focus = false, quiet = false } = {}) {
    if (!this.#nodes.has(key)) {
      return;
    }
    this.#selectedKey = key;
    for (let parent = this.#parents.get(key); parent; parent = this.#parents.get(parent)) {
      if (this.#collapsed.delete(parent)) {
        this.#applyExpansion(parent);
      }
    }
    for (const [elementKey, element] of this.#elements) {
      element.setAttribute("aria-selected", String(elementKey === key));
    }
    this.#focusKey = key;
    this.#updateTabStops();
    if (focus) {
      this.element(key)?.focus();
    }
    this.element(key)?.firstElementChild.scrollIntoView({ block: "nearest" });
    if (!quiet) {
      this.#callbacks.onSelect?.(this.#nodes.get(key));
    }
  }

  #renderChildren(list, nodes, seen, parentKey) {
    const elements = nodes.map((node) => this.#renderNode(node, seen, parentKey));
    elements.forEach((element, index) => {
      if (list.children[index] !== element) {
        list.insertBefore(element, list.children[index] ?? null);
      }
    });
    while (list.children.length > elements.length) {
      list.lastElementChild.remove();
    }
  }

  #renderNode(node, seen, parentKey) {
    seen.add(node.key);
    this.#nodes.set(node.key, node);
    if (parentKey) {
      this.#parents.set(node.key, parentKey);
    }
    let element = this.#elements.get(node.key);
    if (!element) {
      element = this.#createElement(node);
      this.#elements.set(node.key, element);
    }
    element.setAttribute("aria-label", node.label);
    element.dataset.cls = node.cls;
    element.dataset.ref = node.ref;
    element.dataset.status = node.words.join(",");
    const parent = parentKey ? this.#nodes.get(parentKey) : null;
    if (parent) {
      element.dataset.parent = parent.label;
    } else {
      delete element.dataset.parent;
    }
    element.setAttribute("aria-selected", String(node.key === this.#selectedKey));
    element.draggable = Boolean(node.draggable);
    if (node.dropTarget) {
      element.dataset.dropTarget = "host";
    }
    const row = element.firstElementChild;
    row.querySelector(".label").textContent = node.label;
    row.querySelector(".icon").className = `icon icon-${node.icon}`;
    this.#renderBadges(row.querySelector(".badges"), node.words);

    const group = element.lastElementChild;
    if (node.children.length > 0) {
      this.#renderChildren(group, node.children, seen, node.key);
    } else {
      group.replaceChildren();
    }
    this.#applyExpansion(node.key, element, node.children.length > 0);
    return element;
  }

  // A treeitem holds its row and the group of its children, so the DOM nests as the tree does. Its box therefore
  // covers its children too: a pointer aims at the row (.tree-row), which is what a click selects.
  #createElement(node) {
    const badgesId = uniqueId("tree-status");
    const row = h("div", { class: "tree-row" },
      h("span", { class: "twisty", attrs: { "aria-hidden": "true" } }),
      h("span", { class: "icon", attrs: { "aria-hidden": "true" } }),
      h("span", { class: "label" }),
      h("span", { class: "badges", id: badgesId }));
    return h("li", {
      attrs: { role: "treeitem", tabindex: "-1", "aria-describedby": badgesId },
      dataset: { key: node.key },
    }, row, h("ul", { attrs: { role: "group" } }));
  }

  #renderBadges(container, words) {
    const signature = words.join("|");
    if (container.dataset.signature === signature) {
      return;
    }
    container.dataset.signature = signature;
    container.replaceChildren(...words.map((word, index) => {
      const text = index < words.length - 1 ? `${word}, ` : word;
      const slug = word.replace(/ /g, "-");
      return VISIBLE_WORDS.has(word)
        ? h("span", { class: `badge badge-${slug}` }, h("span", { attrs: { "aria-hidden": "true" }, text: word }), visuallyHidden(text))
        : h("span", { class: `badge-hidden badge-${slug}` }, visuallyHidden(text));
    }));
  }

  #applyExpansion(key, element = this.#elements.get(key), hasChildren = (this.#nodes.get(key)?.children.length ?? 0) > 0) {
    if (!element) {
      return;
    }
    const group = element.lastElementChild;
    if (!hasChildren) {
      element.removeAttribute("aria-expanded");
      group.hidden = true;
      return;
    }
    const expanded = !this.#collapsed.has(key);
    element.setAttribute("aria-expanded", String(expanded));
    group.hidden = !expanded;
  }

  #setExpanded(key, expanded) {
    if (expanded) {
      this.#collapsed.delete(key);
    } else {
      this.#collapsed.add(key);
    }
    this.#applyExpansion(key);
  }

  #updateTabStops() {
    for (const [key, element] of this.#elements) {
      element.tabIndex = key === this.#focusKey ? 0 : -1;
    }
  }

  #visibleItems() {
    return [...this.#root.querySelectorAll("[role=treeitem]")].filter((item) => !item.closest("ul[role=group][hidden]"));
  }

  #focusItem(element) {
    if (!element) {
      return;
    }
    this.#focusKey = element.dataset.key;
    this.#updateTabStops();
    element.focus();
  }

  #itemOf(event) {
    const item = event.target.closest?.("[role=treeitem]");
    return item && this.#root.contains(item) ? item : null;
  }

  #onFocusIn(event) {
    const item = this.#itemOf(event);
    if (item && item.dataset.key !== this.#focusKey) {
      this.#focusKey = item.dataset.key;
      this.#updateTabStops();
    }
  }

  #onKeyDown(event) {
    const item = this.#itemOf(event);
    if (!item) {
      return;
    }
    const key = item.dataset.key;
    const node = this.#nodes.get(key);
    const items = this.#visibleItems();
    const index = items.indexOf(item);
    const expandable = node && node.children.length > 0;
    const expanded = expandable && !this.#collapsed.has(key);
    let handled = true;
    if ((event.key === "F10" && event.shiftKey) || event.key === "ContextMenu") {
      this.select(key);
      this.#callbacks.onContextMenu?.(node, item.firstElementChild);
    } else if (event.altKey || event.ctrlKey || event.metaKey) {
      handled = false;
    } else if (event.key === "ArrowDown") {
      this.#focusItem(items[index + 1]);
    } else if (event.key === "ArrowUp") {
      this.#focusItem(items[index - 1]);
    } else if (event.key === "Home") {
      this.#focusItem(items[0]);
    } else if (event.key === "End") {
      this.#focusItem(items[items.length - 1]);
    } else if (event.key === "ArrowRight") {
      if (expandable && !expanded) {
        this.#setExpanded(key, true);
      } else if (expanded) {
        this.#focusItem(this.element(node.children[0].key));
      }
    } else if (event.key === "ArrowLeft") {
      if (expanded) {
        this.#setExpanded(key, false);
      } else {
        this.#focusItem(this.element(this.#parents.get(key)));
      }
    } else if (event.key === "Enter" || event.key === " ") {
      this.select(key);
    } else if (event.key.length === 1 && /\S/.test(event.key)) {
      // Type-ahead: the next visible item whose name starts with the letter.
      const letter = event.key.toLowerCase();
      const ordered = [...items.slice(index + 1), ...items.slice(0, index + 1)];
      this.#focusItem(ordered.find((candidate) => (candidate.getAttribute("aria-label") ?? "").toLowerCase().startsWith(letter)));
    } else {
      handled = false;
    }
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  }

  #onClick(event) {
    const item = this.#itemOf(event);
    if (!item) {
      return;
    }
    if (event.target.closest(".twisty")) {
      const key = item.dataset.key;
      this.#setExpanded(key, this.#collapsed.has(key));
      this.#focusItem(item);
      return;
    }
    this.#focusItem(item);
    this.select(item.dataset.key);
  }

  #onDoubleClick(event) {
    const item = this.#itemOf(event);
    if (item && !event.target.closest(".twisty") && item.hasAttribute("aria-expanded")) {
      const key = item.dataset.key;
      this.#setExpanded(key, this.#collapsed.has(key));
    }
  }

  #onContextMenu(event) {
    const item = this.#itemOf(event);
    if (!item) {
      return;
    }
    event.preventDefault();
    this.#focusItem(item);
    this.select(item.dataset.key);
    this.#callbacks.onContextMenu?.(this.#nodes.get(item.dataset.key), { x: event.clientX, y: event.clientY });
  }

  #onDragStart(event) {
    const item = this.#itemOf(event);
    const node = item && this.#nodes.get(item.dataset.key);
    if (!node?.draggable) {
      return;
    }
    event.dataTransfer.setData(VM_DRAG_TYPE, node.ref);
    event.dataTransfer.setData("text/plain", node.label);
    event.dataTransfer.effectAllowed = "move";
  }

  #dropHost(event) {
    const item = this.#itemOf(event);
    return item?.dataset.dropTarget === "host" ? item : null;
  }

  #onDragOver(event) {
    if (!event.dataTransfer.types.includes(VM_DRAG_TYPE)) {
      return;
    }
    const host = this.#dropHost(event);
    this.#clearDropTargets(host);
    if (host) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      host.classList.add("drop-target");
    }
  }

  #onDragLeave(event) {
    const host = this.#dropHost(event);
    if (host && !host.contains(event.relatedTarget)) {
      host.classList.remove("drop-target");
    }
  }

  #onDrop(event) {
    const host = this.#dropHost(event);
    this.#clearDropTargets();
    const vmRef = event.dataTransfer.getData(VM_DRAG_TYPE);
    if (!host || !vmRef) {
      return;
    }
    event.preventDefault();
    this.#callbacks.onDropVm?.(vmRef, host.dataset.ref);
  }

  #clearDropTargets(except = null) {
    for (const element of this.#root.querySelectorAll(".drop-target")) {
      if (element !== except) {
        element.classList.remove("drop-target");
      }
    }
  }
}
