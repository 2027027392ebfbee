// The tabs (WAI-ARIA tabs with automatic activation): one tabpanel per tab, only the selected one mounted.

import { h } from "./dom.js";

export class Tabs {
  #tabs = [];
  #selected = null;
  #mounted = null;
  #context = null;
  #selection = null;

  /** tablist and panels: elements; tabs: [{id, label, view}] where view has mount/update/unmount. */
  constructor(tablist, panelHost, tabs) {
    for (const spec of tabs) {
      const tab = h("button", {
        type: "button",
        id: `tab-${spec.id}`,
        text: spec.label,
        attrs: { role: "tab", "aria-selected": "false", "aria-controls": `panel-${spec.id}`, tabindex: "-1" },
      });
      const panel = h("div", {
        id: `panel-${spec.id}`,
        class: "tabpanel",
        hidden: true,
        attrs: { role: "tabpanel", "aria-labelledby": `tab-${spec.id}`, tabindex: "0" },
      });
      tab.addEventListener("click", () => this.select(spec.id));
      tablist.appendChild(tab);
      panelHost.appendChild(panel);
      this.#tabs.push({ ...spec, tab, panel });
    }
    tablist.addEventListener("keydown", (event) => {
      const index = this.#tabs.findIndex((t) => t.tab === document.activeElement);
      if (index < 0) return;
      let next = null;
      if (event.key === "ArrowRight") next = (index + 1) % this.#tabs.length;
      else if (event.key === "ArrowLeft") next = (index - 1 + this.#tabs.length) % this.#tabs.length;
      else if (event.key === "Home") next = 0;
      else if (event.key === "End") next = this.#tabs.length - 1;
      if (next === null) return;
      event.preventDefault();
      this.select(this.#tabs[next].id);
      this.#tabs[next].tab.focus();
    });
  }

  get selectedId() {
    return this.#selected;
  }

  select(id) {
    const spec = this.#tabs.find((t) => t.id === id);
    if (!spec || this.#selected === id) return;
    this.#selected = id;
    for (const t of this.#tabs) {
      const on = t.id === id;
      t.tab.setAttribute("aria-selected", String(on));
      t.tab.tabIndex = on ? 0 : -1;
      t.panel.hidden = !on;
    }
    this.#mount();
  }

  /** Shows the selected object's data (context: {cache, connection, actions, ...}; selection: {key, cls, ref, record}). */
  show(context, selection) {
    this.#context = context;
    const changedObject = selection?.key !== this.#selection?.key;
    this.#selection = selection;
    if (!this.#mounted || changedObject) {
      this.#mount();
    } else {
      this.#mounted.view.update(context, selection);
    }
  }

  /** Tears the current view down (logout). */
  clear() {
    this.#mounted?.view.unmount();
    this.#mounted = null;
    this.#selection = null;
    for (const t of this.#tabs) t.panel.replaceChildren();
  }

  #mount() {
    if (!this.#context || !this.#selection) return;
    const spec = this.#tabs.find((t) => t.id === this.#selected);
    if (!spec) return;
    if (this.#mounted && this.#mounted !== spec) {
      this.#mounted.view.unmount();
      this.#mounted.panel.replaceChildren();
    }
    if (this.#mounted === spec) {
      // Same tab, another object: views with connections (console, charts) start afresh.
      spec.view.unmount();
    }
    this.#mounted = spec;
    spec.view.mount(spec.panel, this.#context, this.#selection);
  }
}
