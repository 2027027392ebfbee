// Small DOM helpers. Text always goes in through textContent, never as HTML, so pool data cannot inject markup.

let nextId = 0;

/** A fresh id for aria-labelledby / aria-describedby / aria-controls links. */
export function uniqueId(prefix = "id") {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * Creates an element. props: class, text, attrs (attributes, aria-* included), dataset, hidden, and on: {event: handler}.
 * Children are nodes or strings (strings become text nodes); null/undefined/false children are skipped.
 */
export function h(tag, props = {}, ...children) {
  const element = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  const { class: className, text, attrs, dataset, on, hidden, ...properties } = props;
  if (className) {
    element.setAttribute("class", className);
  }
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (value !== undefined && value !== null && value !== false) {
        element.setAttribute(name, value === true ? "" : String(value));
      }
    }
  }
  if (dataset) {
    for (const [name, value] of Object.entries(dataset)) {
      if (value !== undefined && value !== null) {
        element.dataset[name] = String(value);
      }
    }
  }
  if (hidden) {
    element.hidden = true;
  }
  for (const [name, value] of Object.entries(properties)) {
    element[name] = value;
  }
  if (on) {
    for (const [event, handler] of Object.entries(on)) {
      element.addEventListener(event, handler);
    }
  }
  if (text !== undefined && text !== null) {
    element.textContent = String(text);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    if (Array.isArray(child)) {
      append(element, child);
    } else if (child instanceof Node) {
      element.appendChild(child);
    } else {
      element.appendChild(document.createTextNode(String(child)));
    }
  }
}

/** Text only screen readers get (for icons that carry meaning). */
export function visuallyHidden(text) {
  return h("span", { class: "visually-hidden", text });
}

/** A definition list from [term, value, fieldName] rows; value may be a string or a node. fieldName becomes data-field. */
export function definitionList(rows, className = "properties") {
  const list = h("dl", { class: className });
  for (const [term, value, field] of rows) {
    list.appendChild(h("dt", { text: term, dataset: { field } }));
    list.appendChild(value instanceof Node ? h("dd", { dataset: { field } }, value) : h("dd", { text: value, dataset: { field } }));
  }
  return list;
}

/** A table with a caption, a header row and rows of cells (strings or nodes). */
export function table(caption, headers, rows, { empty = "None", className = "grid" } = {}) {
  if (rows.length === 0) {
    return h("div", { class: "table-block" }, h("h3", { text: caption }), h("p", { class: "empty", text: empty }));
  }
  const headerRow = h("tr", {}, headers.map((text) => h("th", { text, attrs: { scope: "col" } })));
  const body = h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => (cell instanceof Node ? h("td", {}, cell) : h("td", { text: cell ?? "" }))))));
  return h("div", { class: "table-block table-scroll" }, h("table", { class: className }, h("caption", { text: caption }), h("thead", {}, headerRow), body));
}

/** Moves focus to the first focusable element inside a container (or the container itself). */
export function focusFirst(container) {
  const target = focusableElements(container)[0] ?? container;
  target.focus();
}

export function focusableElements(container) {
  const selector = 'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';
  return [...container.querySelectorAll(selector)].filter((el) => !el.hidden && el.getClientRects().length > 0);
}
