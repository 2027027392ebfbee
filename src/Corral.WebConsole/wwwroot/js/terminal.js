// A plain-text terminal for the serial console: UTF-8 bytes in, lines out. Handles \r, \n, backspace and the cursor
// movements a shell prompt uses, and drops other ANSI escape sequences (no xterm.js: the guest is a serial line).

const MAX_LINES = 3000;

export class PlainTerminal {
  #decoder = new TextDecoder("utf-8");
  #lines = [[]];
  #row = 0;
  #col = 0;
  #escape = null; // pending escape sequence text, or null

  /** Feeds bytes (ArrayBuffer or Uint8Array) or text. */
  write(data) {
    const text = typeof data === "string" ? data : this.#decoder.decode(data instanceof ArrayBuffer ? new Uint8Array(data) : data, { stream: true });
    for (const char of text) {
      this.#put(char);
    }
    if (this.#lines.length > MAX_LINES) {
      const drop = this.#lines.length - MAX_LINES;
      this.#lines.splice(0, drop);
      this.#row = Math.max(0, this.#row - drop);
    }
  }

  /** The screen as text. */
  text() {
    return this.#lines.map((line) => line.join("")).join("\n");
  }

  clear() {
    this.#lines = [[]];
    this.#row = 0;
    this.#col = 0;
  }

  #line() {
    while (this.#lines.length <= this.#row) {
      this.#lines.push([]);
    }
    return this.#lines[this.#row];
  }

  #put(char) {
    if (this.#escape !== null) {
      this.#continueEscape(char);
      return;
    }
    switch (char) {
      case "\x1b":
        this.#escape = "";
        return;
      case "\r":
        this.#col = 0;
        return;
      case "\n":
        this.#row += 1;
        this.#col = 0;
        this.#line();
        return;
      case "\b":
        this.#col = Math.max(0, this.#col - 1);
        return;
      case "\t": {
        const next = (Math.floor(this.#col / 8) + 1) * 8;
        while (this.#col < next) this.#print(" ");
        return;
      }
      case "\x07":
      case "\x00":
        return;
      default:
        if (char < " " || char === "\x7f") {
          return;
        }
        this.#print(char);
    }
  }

  #print(char) {
    const line = this.#line();
    while (line.length < this.#col) line.push(" ");
    line[this.#col] = char;
    this.#col += 1;
  }

  #continueEscape(char) {
    const sequence = this.#escape + char;
    if (sequence.length === 1 && char !== "[" && char !== "]" && char !== "(" && char !== ")") {
      this.#escape = null; // a two-character escape (ESC 7, ESC c, ...): ignored
      return;
    }
    if (sequence[0] === "]") {
      // OSC: ends with BEL or ESC \ (title changes and such): ignored.
      if (char === "\x07" || sequence.endsWith("\x1b\\")) this.#escape = null;
      else this.#escape = sequence.length > 256 ? null : sequence;
      return;
    }
    if (sequence[0] === "(" || sequence[0] === ")") {
      if (sequence.length >= 2) this.#escape = null;
      else this.#escape = sequence;
      return;
    }
    // CSI: ESC [ params final-byte
    if (sequence.length > 1 && char >= "@" && char <= "~") {
      this.#escape = null;
      this.#csi(sequence.slice(1, -1), char);
      return;
    }
    this.#escape = sequence.length > 64 ? null : sequence;
  }

  #csi(params, command) {
    const numbers = params.replace(/^[?>]/, "").split(";").map((p) => Number.parseInt(p, 10));
    const n = Number.isNaN(numbers[0]) ? 1 : Math.max(1, numbers[0]);
    const line = this.#line();
    switch (command) {
      case "C":
        this.#col += n;
        break;
      case "D":
        this.#col = Math.max(0, this.#col - n);
        break;
      case "G":
        this.#col = n - 1;
        break;
      case "K": {
        const mode = Number.isNaN(numbers[0]) ? 0 : numbers[0];
        if (mode === 0) line.length = Math.min(line.length, this.#col);
        else if (mode === 1) for (let i = 0; i <= this.#col && i < line.length; i += 1) line[i] = " ";
        else line.length = 0;
        break;
      }
      case "J": {
        const mode = Number.isNaN(numbers[0]) ? 0 : numbers[0];
        if (mode === 2 || mode === 3) {
          // A cleared screen starts a new page below what was there, so the history stays readable.
          this.#row = this.#lines.length;
          this.#col = 0;
          this.#line();
        } else if (mode === 0) {
          line.length = Math.min(line.length, this.#col);
          this.#lines.length = this.#row + 1;
        }
        break;
      }
      case "P": // delete characters at the cursor
        line.splice(this.#col, n);
        break;
      case "@": // insert blanks at the cursor
        line.splice(this.#col, 0, ...Array(n).fill(" "));
        break;
      default:
        // Colours (m), cursor positioning (H) and modes (h/l) do not change plain text.
        break;
    }
  }
}

/** The bytes a key press sends to a serial console, or null for keys left to the browser (Tab moves focus). */
export function keyToSequence(event) {
  if (event.metaKey) {
    return null;
  }
  if (event.ctrlKey && !event.altKey && event.key.length === 1) {
    const code = event.key.toUpperCase().charCodeAt(0);
    if (code >= 64 && code <= 95) {
      return String.fromCharCode(code - 64);
    }
    return null;
  }
  switch (event.key) {
    case "Enter": return "\r";
    case "Backspace": return "\x7f";
    case "Escape": return "\x1b";
    case "ArrowUp": return "\x1b[A";
    case "ArrowDown": return "\x1b[B";
    case "ArrowRight": return "\x1b[C";
    case "ArrowLeft": return "\x1b[D";
    case "Home": return "\x1b[H";
    case "End": return "\x1b[F";
    case "Delete": return "\x1b[3~";
    default:
      if (event.key.length === 1 && !event.ctrlKey) {
        return event.altKey ? `\x1b${event.key}` : event.key;
      }
      return null;
  }
}
