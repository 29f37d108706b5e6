// The chart's mapping step: which columns of the data fill x, y, a histogram's values or a pie.
"use strict";

const ROW_NUMBERS = "";

function option(value, text) {
  const node = document.createElement("option");
  node.value = value;
  node.textContent = text;
  return node;
}

function columnText(column) {
  return column.name + " (" + column.type + ")";
}

/**
 * The mapping controls inside `root`. `update(findings)` offers the data's columns (keeping
 * choices whose column is still there); `fill(spec, kind)` gives the spec its series naming
 * them, one per y column; `showError(field, message)` places a 422 about the series.
 */
export function createChartMapping(root) {
  const xSelect = root.querySelector("#map-x");
  const yBox = root.querySelector("#map-y");
  const labelsSelect = root.querySelector("#map-labels");
  const valuesSelect = root.querySelector("#map-values");
  const hint = root.querySelector("#mapping-hint");
  const errorSlot = root.querySelector("#error-mapping");
  let columns = [];
  let lastSeries = [];

  function firstOf(type, except = null) {
    const found = columns.find((column) => column.type === type && column.name !== except);
    return found ? found.name : null;
  }

  function fillSelect(select, { rowNumbers = null, preferred }) {
    const kept = select.value;
    select.replaceChildren();
    if (rowNumbers) select.appendChild(option(ROW_NUMBERS, rowNumbers));
    for (const column of columns) select.appendChild(option(column.name, columnText(column)));
    const names = columns.map((column) => column.name);
    if (names.includes(kept) || (rowNumbers && kept === ROW_NUMBERS && select.dataset.chosen)) select.value = kept;
    else if (preferred !== null && preferred !== undefined) select.value = preferred;
  }

  function update(findings) {
    const before = new Set([...yBox.querySelectorAll("input:checked")].map((box) => box.value));
    const hadColumns = columns.length > 0;
    columns = findings ? findings.columns.filter((column) => column.name) : [];
    const x = columns.length > 1 ? columns[0].name : ROW_NUMBERS;
    fillSelect(xSelect, { rowNumbers: "Row number (0, 1, 2, …)", preferred: x });
    fillSelect(labelsSelect, { rowNumbers: "None (wedges numbered)", preferred: firstOf("text") ?? firstOf("date") ?? ROW_NUMBERS });
    fillSelect(valuesSelect, { preferred: firstOf("number") });
    yBox.replaceChildren();
    const stillThere = columns.some((column) => before.has(column.name));
    const firstY = firstOf("number", xSelect.value);
    columns.forEach((column, position) => {
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = "y-column";
      box.value = column.name;
      box.id = "map-y-" + position;
      box.checked = hadColumns && stillThere ? before.has(column.name) : column.name === firstY;
      const label = document.createElement("label");
      label.htmlFor = box.id;
      label.textContent = column.name + " ";
      const type = document.createElement("span");
      type.className = "type type-" + column.type;
      type.textContent = column.type;
      label.appendChild(type);
      const item = document.createElement("div");
      item.className = "check";
      item.append(box, label);
      yBox.appendChild(item);
    });
    checkChoice();
  }

  function chosenY() {
    return [...yBox.querySelectorAll("input:checked")].map((box) => box.value);
  }

  /** The series of `kind` as the spec names them: columns of the uploaded CSV. */
  function fill(spec, kind) {
    if (kind === "histogram") {
      lastSeries = valuesSelect.value ? [{ values_column: valuesSelect.value }] : [];
    } else if (kind === "pie") {
      const wedge = labelsSelect.value ? { x_column: labelsSelect.value } : {};
      lastSeries = valuesSelect.value ? [{ ...wedge, y_column: valuesSelect.value }] : [];
    } else {
      const x = xSelect.value ? { x_column: xSelect.value } : {};
      lastSeries = chosenY().map((name) => ({ ...x, y_column: name }));
    }
    spec.series = lastSeries;
  }

  function column(name) {
    return columns.find((candidate) => candidate.name === name);
  }

  /** What the choice of columns already tells about the chart, before it is sent. */
  function problems(kind) {
    const found = [];
    const numeric = kind === "histogram" || kind === "pie" ? (valuesSelect.value ? [valuesSelect.value] : []) : chosenY();
    if (numeric.length === 0) {
      found.push(kind === "histogram" || kind === "pie" ? "Choose the values column." : "Choose at least one y column.");
    }
    for (const name of numeric) {
      const chosen = column(name);
      const bad = chosen && chosen.firstNotNumber;
      if (bad) {
        const value = bad.value === "" ? "an empty cell" : "“" + bad.value + "”";
        found.push("Column " + name + " holds " + value + " in row " + bad.row + ": it needs numbers.");
      }
    }
    return found;
  }

  let currentKind = null;

  function checkChoice(kind = currentKind) {
    currentKind = kind;
    const found = columns.length && kind ? problems(kind) : [];
    hint.textContent = found.join(" ");
    hint.hidden = found.length === 0;
  }

  function clearError() {
    errorSlot.hidden = true;
    errorSlot.textContent = "";
  }

  /** Show a 422 about `series…` (or the spec as a whole) here; false when the field is not ours. */
  function showError(field, message) {
    const match = /^series(?:\.(\d+))?/.exec(field);
    if (!match && field !== "spec") return false;
    let subject = "";
    if (match && match[1] !== undefined) {
      const entry = lastSeries[Number(match[1])] || {};
      const name = entry.y_column || entry.values_column || "";
      if (name) subject = "Series " + name + ": ";
    }
    const text = subject + message;
    errorSlot.textContent = errorSlot.hidden ? text : errorSlot.textContent + " " + text;
    errorSlot.hidden = false;
    return true;
  }

  xSelect.addEventListener("change", () => {
    xSelect.dataset.chosen = "1";
    checkChoice();
  });
  labelsSelect.addEventListener("change", () => {
    labelsSelect.dataset.chosen = "1";
  });
  valuesSelect.addEventListener("change", () => checkChoice());
  yBox.addEventListener("change", () => checkChoice());

  return { update, fill, showError, clearError, checkChoice };
}
