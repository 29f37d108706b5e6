// The data step: paste, upload or type a table; a preview of its first rows, types and errors.
"use strict";

import { CsvReader, PREVIEW_ROWS, TableCheck, csvLine, detectSeparator } from "./table.js";

// Files are read in slices, and the page gets the main thread back after each one.
const SLICE_BYTES = 1 << 18;
const TEXT_SLICE = 1 << 18;
const PASTE_SETTLE_MS = 200;
const SEPARATOR_NAMES = { ",": "comma-separated", "\t": "tab-separated", ";": "semicolon-separated" };

function yieldToPage() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function element(tag, { className, text, attributes } = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  return node;
}

function plural(count, word) {
  return count.toLocaleString("en") + " " + word + (count === 1 ? "" : "s");
}

function where(entry, header) {
  const parts = [];
  if (entry.row === 0) parts.push("Header");
  else if (entry.row) parts.push("Row " + entry.row.toLocaleString("en"));
  if (entry.line) parts.push("line " + entry.line.toLocaleString("en"));
  if (entry.column !== null && entry.column !== undefined) {
    const name = typeof entry.column === "number" ? header[entry.column] : entry.column;
    parts.push("column " + (name ? name : entry.column + 1));
  }
  return parts.join(", ");
}

/** What the server's CSV message names: its data row, file line and column, where it says. */
function placeServerMessage(message) {
  const row = /\bdata row (\d+)/.exec(message);
  const line = /\bline (\d+)/.exec(message);
  const column = /\bcolumn '([^']*)'/.exec(message) || /\bcolumn "([^"]*)"/.exec(message);
  return {
    row: row ? Number(row[1]) : null,
    line: line ? Number(line[1]) : null,
    column: column ? column[1] : null,
  };
}

/** The small table typed on the page: column names and rows of cells. */
function createTableEditor(table, { onChange }) {
  const model = { names: ["x", "y"], rows: [["", ""], ["", ""], ["", ""]] };

  function cellLabel(row, column) {
    return "Row " + (row + 1) + ", column " + (model.names[column] || column + 1);
  }

  function render(focus = null) {
    table.replaceChildren();
    const head = table.createTHead().insertRow();
    head.appendChild(element("th", { text: "#", attributes: { scope: "col" } }));
    model.names.forEach((name, column) => {
      const cell = element("th", { attributes: { scope: "col" } });
      const input = element("input", {
        attributes: { type: "text", "aria-label": "Name of column " + (column + 1), "data-column": String(column) },
      });
      input.value = name;
      input.addEventListener("input", () => {
        model.names[column] = input.value;
        for (const cell of table.querySelectorAll('tbody input[data-column="' + column + '"]')) {
          cell.setAttribute("aria-label", cellLabel(Number(cell.dataset.row), column));
        }
        onChange();
      });
      const remove = element("button", {
        className: "icon secondary",
        text: "×",
        attributes: { type: "button", "aria-label": "Remove column " + (column + 1) },
      });
      remove.disabled = model.names.length <= 1;
      remove.addEventListener("click", () => {
        model.names.splice(column, 1);
        model.rows.forEach((row) => row.splice(column, 1));
        render({ row: -1, column: Math.max(0, column - 1) });
        onChange();
      });
      cell.append(input, remove);
      head.appendChild(cell);
    });
    const body = table.createTBody();
    model.rows.forEach((cells, row) => {
      const line = body.insertRow();
      line.appendChild(element("th", { text: String(row + 1), attributes: { scope: "row" } }));
      cells.forEach((value, column) => {
        const input = element("input", {
          attributes: {
            type: "text",
            "aria-label": cellLabel(row, column),
            "data-row": String(row),
            "data-column": String(column),
          },
        });
        input.value = value;
        input.addEventListener("input", () => {
          model.rows[row][column] = input.value;
          onChange();
        });
        line.insertCell().appendChild(input);
      });
      const remove = element("button", {
        className: "icon secondary",
        text: "×",
        attributes: { type: "button", "aria-label": "Remove row " + (row + 1) },
      });
      remove.disabled = model.rows.length <= 1;
      remove.addEventListener("click", () => {
        model.rows.splice(row, 1);
        render({ row: Math.min(row, model.rows.length - 1), column: 0 });
        onChange();
      });
      line.insertCell().appendChild(remove);
    });
    if (focus) {
      const selector =
        focus.row < 0
          ? 'thead input[data-column="' + focus.column + '"]'
          : 'tbody input[data-row="' + focus.row + '"][data-column="' + focus.column + '"]';
      const target = table.querySelector(selector);
      if (target) target.focus();
    }
  }

  return {
    render,
    addRow() {
      model.rows.push(model.names.map(() => ""));
      render({ row: model.rows.length - 1, column: 0 });
      onChange();
    },
    addColumn() {
      model.names.push("column " + (model.names.length + 1));
      model.rows.forEach((row) => row.push(""));
      render({ row: -1, column: model.names.length - 1 });
      onChange();
    },
    hasData: () => model.rows.some((row) => row.some((cell) => cell.trim() !== "")),
    text: () => [model.names, ...model.rows].map(csvLine).join(""),
  };
}

/**
 * The data step inside `root`. `onChange(findings)` hears of every new reading of the data:
 * null when there is none (the demo chart), `{checking: true}` while it is read, then the
 * findings (header, preview rows, columns and their types, errors, and the CSV to upload).
 */
export function createDataStep(root, { onChange }) {
  const part = (selector) => root.querySelector(selector);
  const sources = root.querySelectorAll('input[name="data-source"]');
  const panels = root.querySelectorAll("[data-source-panel]");
  const paste = part("#data-paste");
  const fileInput = part("#data-file");
  const fileName = part("#data-file-name");
  const separatorSelect = part("#data-separator");
  const preview = part("#data-preview");
  const summary = part("#data-summary");
  const previewTable = part("#preview-table");
  const errorList = part("#data-errors");
  const serverError = part("#data-server-error");

  let file = null;
  let generation = 0;
  let findings = null;
  let reading = Promise.resolve(null);
  let pasteTimer = null;

  const editor = createTableEditor(part("#data-table"), { onChange: () => refresh() });
  editor.render();

  function source() {
    const chosen = [...sources].find((radio) => radio.checked);
    return chosen ? chosen.value : "paste";
  }

  function input() {
    const chosen = source();
    if (chosen === "paste" && paste.value.trim() !== "") return { text: paste.value.replace(/^\uFEFF/, "") };
    if (chosen === "file" && file !== null) return { file };
    if (chosen === "table" && editor.hasData()) return { text: editor.text(), separator: "," };
    return null;
  }

  async function read(given, id, progress) {
    const sample = given.file ? await given.file.slice(0, 64 * 1024).text() : given.text.slice(0, 64 * 1024);
    const separator = given.separator || separatorSelect.value || detectSeparator(sample, given.file ? given.file.name : "");
    const check = new TableCheck({ convert: separator !== "," });
    const reader = new CsvReader(separator, {
      onRecord: (fields, line) => check.record(fields, line),
      onError: (line, message) => check.parseError(line, message),
    });
    let size;
    if (given.file) {
      size = given.file.size;
      const decoder = new TextDecoder("utf-8", { fatal: true });
      for (let offset = 0; offset < size; offset += SLICE_BYTES) {
        const bytes = await given.file.slice(offset, offset + SLICE_BYTES).arrayBuffer();
        if (id !== generation) return null;
        let text;
        try {
          text = decoder.decode(bytes, { stream: offset + SLICE_BYTES < size });
        } catch (error) {
          check.parseError(null, "the file is not UTF-8 text (somewhere after byte " + offset.toLocaleString("en") + "); save it as UTF-8 CSV");
          break;
        }
        reader.feed(text);
        progress(Math.min(1, (offset + SLICE_BYTES) / size));
        await yieldToPage();
        if (id !== generation) return null;
      }
    } else {
      size = given.text.length;
      for (let offset = 0; offset < size; offset += TEXT_SLICE) {
        reader.feed(given.text.slice(offset, offset + TEXT_SLICE));
        if (size > TEXT_SLICE) {
          progress(Math.min(1, (offset + TEXT_SLICE) / size));
          await yieldToPage();
          if (id !== generation) return null;
        }
      }
    }
    reader.end();
    const result = check.result();
    result.separator = separator;
    result.size = size;
    result.fileName = given.file ? given.file.name : null;
    // The API reads CSV: other separators are sent as the CSV written while reading.
    if (separator !== ",") result.csv = new Blob(check.csv(), { type: "text/csv" });
    else result.csv = given.file ? given.file : new Blob([given.text], { type: "text/csv" });
    return result;
  }

  function refresh() {
    clearServerError();
    const id = ++generation;
    const given = input();
    if (given === null) {
      findings = null;
      reading = Promise.resolve(null);
      showPreview(null);
      onChange(null);
      return;
    }
    summary.textContent = "Reading the data…";
    preview.hidden = false;
    onChange({ checking: true });
    reading = read(given, id, (fraction) => {
      if (id === generation) summary.textContent = "Reading the data… " + Math.round(fraction * 100) + "%";
    }).then(
      (result) => {
        if (id !== generation || result === null) return findings;
        findings = result;
        showPreview(result);
        onChange(result);
        return result;
      },
      (error) => {
        if (id !== generation) return findings;
        findings = null;
        showPreview(null);
        summary.textContent = "The data could not be read: " + error.message;
        preview.hidden = false;
        onChange(null);
        return null;
      }
    );
  }

  function previewRow(entry, width) {
    const row = element("tr", { attributes: { "data-row": String(entry.row), "data-line": String(entry.line) } });
    row.appendChild(element("th", { text: entry.row.toLocaleString("en"), attributes: { scope: "row" } }));
    for (let column = 0; column < width; column += 1) {
      const value = entry.cells[column];
      row.appendChild(element("td", { text: value === undefined ? "" : value, className: value === undefined ? "missing" : "" }));
    }
    return row;
  }

  function errorRow(message, width) {
    const row = element("tr", { className: "row-error" });
    const cell = element("td", { text: message, attributes: { colspan: String(width + 1) } });
    row.appendChild(cell);
    return row;
  }

  function showPreview(result) {
    previewTable.replaceChildren();
    errorList.replaceChildren();
    if (result === null) {
      preview.hidden = true;
      summary.textContent = "";
      return;
    }
    preview.hidden = false;
    const width = result.header.length;
    const bits = [plural(result.rowCount, "row"), plural(width, "column"), SEPARATOR_NAMES[result.separator] || "separated by " + JSON.stringify(result.separator)];
    if (result.fileName) bits.unshift(result.fileName);
    if (result.errorCount) bits.push(plural(result.errorCount, "error"));
    summary.textContent = bits.join(" · ");
    const head = previewTable.createTHead().insertRow();
    head.appendChild(element("th", { text: "Row", attributes: { scope: "col" } }));
    result.columns.forEach((column, position) => {
      const cell = element("th", { attributes: { scope: "col", "data-column": String(position) } });
      cell.append(element("span", { className: "column-name", text: column.name || "(no name)" }), " ");
      cell.appendChild(element("span", { className: "type type-" + column.type, text: column.type }));
      head.appendChild(cell);
    });
    const body = previewTable.createTBody();
    const rowErrors = new Map();
    for (const entry of result.errors) {
      if (entry.row === null) continue;
      if (!rowErrors.has(entry.row)) rowErrors.set(entry.row, []);
      rowErrors.get(entry.row).push(entry);
    }
    const headerErrors = rowErrors.get(0) || [];
    for (const entry of headerErrors) {
      const cell = head.querySelector('[data-column="' + entry.column + '"]');
      if (cell) cell.classList.add("invalid");
      body.appendChild(errorRow(where(entry, result.header) + ": " + entry.message, width));
    }
    let last = 0;
    for (const entry of [...result.rows, ...result.errorRows]) {
      if (entry.row > last + 1) {
        const gap = element("tr", { className: "row-gap" });
        gap.appendChild(element("td", { text: "⋯ " + plural(entry.row - last - 1, "more row"), attributes: { colspan: String(width + 1) } }));
        body.appendChild(gap);
      }
      const row = previewRow(entry, width);
      body.appendChild(row);
      for (const error of rowErrors.get(entry.row) || []) {
        row.classList.add("invalid");
        body.appendChild(errorRow(where(error, result.header) + ": " + error.message, width));
      }
      last = entry.row;
    }
    if (result.rowCount > last) {
      const rest = element("tr", { className: "row-gap" });
      rest.appendChild(element("td", { text: "⋯ " + plural(result.rowCount - last, "more row"), attributes: { colspan: String(width + 1) } }));
      body.appendChild(rest);
    }
    // Every error is listed too, with where it is, whether or not its row is in the preview.
    for (const entry of result.errors) {
      const place = where(entry, result.header);
      errorList.appendChild(element("li", { text: (place ? place + ": " : "") + entry.message }));
    }
    if (result.errorCount > result.errors.length) {
      errorList.appendChild(element("li", { text: "… and " + plural(result.errorCount - result.errors.length, "more error") }));
    }
  }

  function clearServerError() {
    serverError.hidden = true;
    serverError.textContent = "";
    for (const row of previewTable.querySelectorAll(".server-error")) row.remove();
    for (const row of previewTable.querySelectorAll("tr.refused")) row.classList.remove("refused");
  }

  /** Show the server's word on the data (a 422 naming `csv`, or a 413) next to the row it names. */
  function showServerError(message) {
    clearServerError();
    const place = placeServerMessage(message);
    const header = findings ? findings.header : [];
    const described = where({ row: place.row, line: place.line, column: place.column }, header);
    serverError.textContent = "The server refused the data" + (described ? " (" + described + ")" : "") + ": " + message;
    serverError.hidden = false;
    let row = null;
    if (place.row !== null) row = previewTable.querySelector('tbody tr[data-row="' + place.row + '"]');
    else if (place.line !== null) row = previewTable.querySelector('tbody tr[data-line="' + place.line + '"]');
    if (row) {
      row.classList.add("refused");
      const width = findings ? findings.header.length : 1;
      const note = errorRow("Refused by the server: " + message, width);
      note.classList.add("server-error");
      let last = row;
      while (last.nextElementSibling && last.nextElementSibling.classList.contains("row-error")) last = last.nextElementSibling;
      last.after(note);
    }
    preview.hidden = false;
  }

  function showSource() {
    const chosen = source();
    for (const panel of panels) panel.hidden = panel.dataset.sourcePanel !== chosen;
    // A typed table is always read as comma-separated: nothing to choose.
    separatorSelect.disabled = chosen === "table";
    separatorSelect.parentElement.hidden = chosen === "table";
  }

  function chooseSource(value) {
    for (const radio of sources) radio.checked = radio.value === value;
    showSource();
  }

  function takeFile(chosen) {
    file = chosen || null;
    fileName.textContent = file ? file.name + " (" + plural(file.size, "byte") + ")" : "No file chosen yet.";
    chooseSource("file");
    refresh();
  }

  for (const radio of sources) {
    radio.addEventListener("change", () => {
      showSource();
      refresh();
    });
  }
  paste.addEventListener("input", () => {
    if (pasteTimer !== null) clearTimeout(pasteTimer);
    // Checked once typing pauses; a paste is one input event and is read at once.
    pasteTimer = setTimeout(() => {
      pasteTimer = null;
      refresh();
    }, PASTE_SETTLE_MS);
  });
  fileInput.addEventListener("change", () => takeFile(fileInput.files[0]));
  separatorSelect.addEventListener("change", refresh);
  part("#add-row").addEventListener("click", () => editor.addRow());
  part("#add-column").addEventListener("click", () => editor.addColumn());

  // A file dropped anywhere on the step is taken as the upload.
  root.addEventListener("dragover", (event) => {
    if (!event.dataTransfer || ![...event.dataTransfer.types].includes("Files")) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    root.classList.add("dragging");
  });
  root.addEventListener("dragleave", (event) => {
    if (!root.contains(event.relatedTarget)) root.classList.remove("dragging");
  });
  root.addEventListener("drop", (event) => {
    root.classList.remove("dragging");
    if (!event.dataTransfer || event.dataTransfer.files.length === 0) return;
    event.preventDefault();
    // The file input shows the dropped file too, as if it had been chosen there.
    fileInput.files = event.dataTransfer.files;
    takeFile(event.dataTransfer.files[0]);
  });

  showSource();
  if (input() !== null) refresh();

  return {
    /** The findings for the data as it is now, once read (null: no data, the demo chart). */
    async settled() {
      if (pasteTimer !== null) {
        clearTimeout(pasteTimer);
        pasteTimer = null;
        refresh();
      }
      // A newer reading may start while this one is awaited: wait for the latest.
      let awaited;
      let result;
      do {
        awaited = reading;
        result = await awaited;
      } while (awaited !== reading);
      return result;
    },
    current: () => findings,
    showServerError,
    clearServerError,
  };
}
