// A context menu (WAI-ARIA menu): opened by right-click, Shift+F10 or the Menu key; arrows move, Enter runs,
// Escape closes and gives focus back to where it was.

import { h } from "./dom.js";

let openMenu = null;

/**
 * Opens a menu of items [{label, action, disabled}] (null items become separators) at a point {x, y} or next to an
 * element. label names the menu for screen readers.
 */
export function showContextMenu(label, items, anchor) {
  closeContextMenu();
  const returnFocus = document.activeElement;
  const menu = h("ul", { class: "context-menu", attrs: { role: "menu", "aria-label": label } });
  const entries = [];
  for (const item of items) {
    if (!item) {
      menu.appendChild(h("li", { class: "separator", attrs: { role: "separator" } }));
      continue;
    }
    const entry = h("li", {
      text: item.label,
      attrs: { role: "menuitem", tabindex: "-1", "aria-disabled": item.disabled ? "true" : null },
    });
    entry.addEventListener("click", (event) => {
      event.stopPropagation();
      if (!item.disabled) {
        // Focus goes back first, so that a dialog the action opens returns it to the same place.
        close(true);
        item.action();
      }
    });
    entries.push({ entry, item });
    menu.appendChild(entry);
  }
  if (entries.length === 0) {
    return;
  }

  const enabled = () => entries.filter((e) => !e.item.disabled).map((e) => e.entry);
  const focusAt = (index) => {
    const list = enabled();
    if (list.length) {
      list[(index + list.length) % list.length].focus();
    }
  };
  menu.addEventListener("keydown", (event) => {
    const list = enabled();
    const index = list.indexOf(document.activeElement);
    if (event.key === "ArrowDown") {
      focusAt(index + 1);
    } else if (event.key === "ArrowUp") {
      focusAt(index - 1);
    } else if (event.key === "Home") {
      focusAt(0);
    } else if (event.key === "End") {
      focusAt(-1);
    } else if (event.key === "Escape" || (event.key === "F10" && event.shiftKey)) {
      close(true);
    } else if (event.key === "Tab") {
      close(true);
    } else if (event.key === "Enter" || event.key === " ") {
      document.activeElement?.click();
    } else if (event.key.length === 1) {
      const letter = event.key.toLowerCase();
      const ordered = [...list.slice(index + 1), ...list.slice(0, index + 1)];
      ordered.find((entry) => entry.textContent.toLowerCase().startsWith(letter))?.focus();
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  });

  const onOutside = (event) => {
    if (!menu.contains(event.target)) {
      close(false);
    }
  };
  const close = (restoreFocus) => {
    if (openMenu !== menu) {
      return;
    }
    openMenu = null;
    document.removeEventListener("pointerdown", onOutside, true);
    window.removeEventListener("resize", onResize);
    menu.remove();
    if (restoreFocus && returnFocus?.isConnected) {
      returnFocus.focus();
    }
  };
  const onResize = () => close(false);
  menu.close = close;

  document.body.appendChild(menu);
  openMenu = menu;
  position(menu, anchor);
  document.addEventListener("pointerdown", onOutside, true);
  window.addEventListener("resize", onResize);
  focusAt(0);
}

export function closeContextMenu() {
  openMenu?.close(false);
}

function position(menu, anchor) {
  let x;
  let y;
  if (anchor instanceof Element) {
    const rect = anchor.getBoundingClientRect();
    x = rect.left + Math.min(rect.width, 40);
    y = rect.bottom;
  } else {
    ({ x, y } = anchor);
  }
  const { width, height } = menu.getBoundingClientRect();
  const left = Math.max(4, Math.min(x, window.innerWidth - width - 4));
  const top = y + height > window.innerHeight - 4 ? Math.max(4, y - height) : y;
  menu.style.left = `${left}px`;
  menu.style.top = `${top}px`;
}
