// Modal dialogs (WAI-ARIA dialog): named by their heading, focus kept inside while open (the page behind is inert),
// Escape cancels, and focus returns to where it was.

import { focusableElements, focusFirst, h, uniqueId } from "./dom.js";

/**
 * Opens a modal dialog. buttons: [{label, primary, cancel, action}] where action() may be async; it returns false to
 * keep the dialog open, and a thrown error is shown in the dialog. Returns {element, body, close, setError, button}.
 */
export function openDialog({ title, content = [], buttons = [], className = "", onClose, initialFocus }) {
  const returnFocus = document.activeElement;
  const titleId = uniqueId("dialog-title");
  const errorLine = h("p", { class: "dialog-error", attrs: { role: "alert" } });
  const body = h("div", { class: "dialog-body" }, content);
  const buttonElements = new Map();
  const buttonRow = h("div", { class: "dialog-buttons" });
  const dialog = h("div", {
    class: `dialog ${className}`.trim(),
    attrs: { role: "dialog", "aria-modal": "true", "aria-labelledby": titleId },
  }, h("h2", { id: titleId, text: title }), body, errorLine, buttonRow);
  const backdrop = h("div", { class: "dialog-backdrop" }, dialog);

  const others = [...document.body.children].filter((el) => !el.inert && el.tagName !== "SCRIPT");
  let closed = false;
  const close = (result) => {
    if (closed) {
      return;
    }
    closed = true;
    backdrop.remove();
    for (const el of others) {
      el.inert = false;
    }
    document.removeEventListener("keydown", onKeyDown, true);
    if (returnFocus?.isConnected && typeof returnFocus.focus === "function") {
      returnFocus.focus();
    }
    onClose?.(result);
  };
  const setError = (text) => {
    errorLine.textContent = text ?? "";
  };
  const setBusy = (busy) => {
    dialog.setAttribute("aria-busy", String(busy));
    for (const [, element] of buttonElements) {
      element.disabled = busy || element.dataset.disabled === "true";
    }
  };

  for (const spec of buttons) {
    const button = h("button", {
      type: "button",
      class: spec.primary ? "primary" : "",
      text: spec.label,
    });
    if (spec.disabled) {
      button.disabled = true;
      button.dataset.disabled = "true";
    }
    button.addEventListener("click", async () => {
      if (spec.cancel || !spec.action) {
        close(spec.cancel ? null : spec.label);
        return;
      }
      setError("");
      setBusy(true);
      try {
        const result = await spec.action();
        if (result !== false) {
          close(result ?? spec.label);
          return;
        }
      } catch (error) {
        setError(spec.describeError ? spec.describeError(error) : String(error?.message ?? error));
      }
      if (!closed) {
        setBusy(false);
      }
    });
    buttonElements.set(spec.label, button);
    buttonRow.appendChild(button);
  }

  const onKeyDown = (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      close(null);
    } else if (event.key === "Tab") {
      const focusables = focusableElements(dialog);
      if (focusables.length === 0) {
        event.preventDefault();
        dialog.focus();
        return;
      }
      const first = focusables[0];
      const last = focusables[focusables.length - 1];
      if (event.shiftKey && (document.activeElement === first || !dialog.contains(document.activeElement))) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (document.activeElement === last || !dialog.contains(document.activeElement))) {
        event.preventDefault();
        first.focus();
      }
    }
  };

  document.body.appendChild(backdrop);
  for (const el of others) {
    el.inert = true;
  }
  dialog.tabIndex = -1;
  document.addEventListener("keydown", onKeyDown, true);
  if (initialFocus) {
    initialFocus.focus();
  } else {
    focusFirst(body.querySelector("input, select, textarea") ? body : buttonRow);
  }
  if (!dialog.contains(document.activeElement)) {
    dialog.focus();
  }

  return {
    element: dialog,
    body,
    close,
    setError,
    setBusy,
    button: (label) => buttonElements.get(label),
    enableButton(label, enabled) {
      const button = buttonElements.get(label);
      if (button) {
        button.dataset.disabled = String(!enabled);
        button.disabled = !enabled;
      }
    },
    get closed() {
      return closed;
    },
  };
}
