// Reading CSV and TSV text as the server does (plotjobs/spec/table.py), one chunk at a time.
"use strict";

export const PREVIEW_ROWS = 10;
export const LISTED_ERRORS = 50;
export const MAX_NAME = 100;
// Numbers as the server's float() reads them, bar the rare forms (1_000, inf) it also takes.
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
// The server's own test for a date-like x value.
const DATE = /^\d{4}-\d{2}-\d{2}/;

const START = 0; // at the start of a field
const UNQUOTED = 1;
const QUOTED = 2;
const QUOTE_IN_QUOTED = 3; // a quote seen inside a quoted field: closes it, or doubles it
const AFTER_QUOTED = 4; // after a closing quote: only a separator or the line's end may follow

/**
 * A CSV reader fed text in chunks of any size. It calls `onRecord(fields, line)` for every
 * record (`line` is the file line the record ends on, as Python's csv module counts them)
 * and `onError(line, message)` where Python's strict reader would stop.
 */
export class CsvReader {
  constructor(separator, { onRecord, onError }) {
    this.separator = separator;
    this.onRecord = onRecord;
    this.onError = onError;
    this.state = START;
    this.fields = [];
    this.field = "";
    this.line = 1;
    this.quoteLine = 0;
    this.open = false; // whether a record has begun
    this.pendingCR = false;
    this.endsAtNewline = false;
  }

  endField() {
    this.fields.push(this.field);
    this.field = "";
    this.state = START;
  }

  endRecord() {
    this.endField();
    this.onRecord(this.fields, this.line);
    this.fields = [];
    this.open = false;
  }

  /** Read the next chunk of text. */
  feed(text) {
    const separator = this.separator;
    const length = text.length;
    if (length > 0) this.endsAtNewline = text.endsWith("\n") || text.endsWith("\r");
    let index = 0;
    if (this.pendingCR) {
      this.pendingCR = false;
      if (text.charCodeAt(0) === 10) index = 1;
    }
    while (index < length) {
      const state = this.state;
      if (state === QUOTED) {
        const quote = text.indexOf('"', index);
        const end = quote === -1 ? length : quote;
        const part = text.slice(index, end);
        this.field += part;
        for (let at = part.indexOf("\n"); at !== -1; at = part.indexOf("\n", at + 1)) this.line += 1;
        index = end;
        if (quote !== -1) {
          this.state = QUOTE_IN_QUOTED;
          index += 1;
        }
        continue;
      }
      const char = text[index];
      if (state === QUOTE_IN_QUOTED) {
        if (char === '"') {
          this.field += '"';
          this.state = QUOTED;
          index += 1;
          continue;
        }
        this.state = AFTER_QUOTED;
      }
      if (char === separator) {
        this.open = true;
        this.endField();
        index += 1;
        continue;
      }
      if (char === "\r" || char === "\n") {
        if (this.open || this.field !== "" || this.state !== START) this.endRecord();
        else this.onRecord([], this.line);
        this.line += 1;
        this.state = START;
        index += 1;
        if (char === "\r") {
          if (index === length) this.pendingCR = true;
          else if (text.charCodeAt(index) === 10) index += 1;
        }
        continue;
      }
      this.open = true;
      if (this.state === START && char === '"') {
        this.state = QUOTED;
        this.quoteLine = this.line;
        index += 1;
        continue;
      }
      if (this.state === AFTER_QUOTED) {
        this.onError(this.line, "a quoted field must be followed by the separator or the end of the line");
      }
      // Up to the next separator or line end in one slice: most of a file is read here.
      let end = index + 1;
      while (end < length) {
        const next = text[end];
        if (next === separator || next === "\r" || next === "\n") break;
        end += 1;
      }
      this.field += text.slice(index, end);
      this.state = UNQUOTED;
      index = end;
    }
  }

  /** The text has ended. */
  end() {
    if (this.state === QUOTED) {
      const lastLine = this.endsAtNewline ? this.line - 1 : this.line;
      this.onError(lastLine, "the quoted field opened on line " + this.quoteLine + " is never closed");
    }
    if (this.open || this.field !== "" || this.state !== START) this.endRecord();
  }
}

/** The separator a sample of the text most likely uses: a tab if its first line has one, as a spreadsheet copies. */
export function detectSeparator(sample, fileName = "") {
  if (/\.(tsv|tab)$/i.test(fileName)) return "\t";
  const newline = sample.search(/[\r\n]/);
  const first = newline === -1 ? sample : sample.slice(0, newline);
  const count = (char) => first.split(char).length - 1;
  if (count("\t") > 0) return "\t";
  if (count(";") > count(",")) return ";";
  return ",";
}

/** One record as a CSV line, quoted where it has to be. */
export function csvLine(fields) {
  return (
    fields.map((field) => (/[",\r\n]/.test(field) ? '"' + field.replaceAll('"', '""') + '"' : field)).join(",") +
    "\r\n"
  );
}

function newColumn(name) {
  return { name, numbers: 0, dates: 0, cells: 0, empty: 0, firstNotNumber: null };
}

/** The type a column's cells share: number, date or text. */
export function columnType(column) {
  if (column.cells === 0) return "empty";
  if (column.numbers === column.cells) return "number";
  if (column.dates === column.cells) return "date";
  return "text";
}

/**
 * Checks a table record by record as the server will: the header's names, each row's width,
 * and what each column holds. Keeps only the preview rows, the first errors and the counts.
 * With `convert`, also writes the records as CSV text (for data that is not comma-separated).
 */
export class TableCheck {
  constructor({ convert = false } = {}) {
    this.header = null;
    this.headerLine = 0;
    this.columns = [];
    this.rows = [];
    this.errorRows = [];
    this.rowCount = 0;
    this.errors = [];
    this.errorCount = 0;
    this.csvParts = convert ? [] : null;
    this.pending = "";
  }

  error(entry) {
    this.errorCount += 1;
    if (this.errors.length < LISTED_ERRORS) this.errors.push(entry);
  }

  write(fields) {
    if (this.csvParts === null) return;
    this.pending += csvLine(fields);
    if (this.pending.length > 1 << 20) {
      this.csvParts.push(this.pending);
      this.pending = "";
    }
  }

  /** The CSV text written so far, as parts of a Blob. */
  csv() {
    if (this.pending) this.csvParts.push(this.pending);
    this.pending = "";
    return this.csvParts;
  }

  record(fields, line) {
    const cells = fields.map((field) => field.trim());
    if (!cells.some((cell) => cell !== "")) return;
    this.write(fields);
    if (this.header === null) {
      this.readHeader(cells, line);
      return;
    }
    this.rowCount += 1;
    const row = this.rowCount;
    if (this.rows.length < PREVIEW_ROWS) this.rows.push({ row, line, cells });
    if (cells.length !== this.header.length) {
      const message = cells.length + " fields; the header has " + this.header.length;
      this.error({ row, line, column: null, message });
      this.keepRow(row, line, cells);
    }
    const width = Math.min(cells.length, this.columns.length);
    for (let position = 0; position < width; position += 1) {
      const column = this.columns[position];
      const cell = cells[position];
      column.cells += 1;
      if (cell === "") column.empty += 1;
      if (NUMBER.test(cell)) column.numbers += 1;
      else if (column.firstNotNumber === null) {
        column.firstNotNumber = { row, line, value: cell };
        // Shown in the preview too, in case the column is chosen where numbers are needed.
        this.keepRow(row, line, cells);
      }
      if (DATE.test(cell)) column.dates += 1;
    }
  }

  /** Past the preview, a row worth seeing is kept too, so the preview can show it in its place. */
  keepRow(row, line, cells) {
    if (row <= PREVIEW_ROWS || this.errorRows.length >= LISTED_ERRORS) return;
    const last = this.errorRows[this.errorRows.length - 1];
    if (!last || last.row !== row) this.errorRows.push({ row, line, cells });
  }

  readHeader(names, line) {
    this.header = names;
    this.headerLine = line;
    this.columns = names.map(newColumn);
    const seen = new Set();
    names.forEach((name, position) => {
      const where = { row: 0, line, column: position };
      if (!name) this.error({ ...where, message: "column " + (position + 1) + " of the header row has no name" });
      else if (name.length > MAX_NAME) this.error({ ...where, message: "the name is longer than " + MAX_NAME + " characters" });
      else if (seen.has(name)) this.error({ ...where, message: "the header names the column " + name + " twice" });
      seen.add(name);
    });
  }

  parseError(line, message) {
    this.error({ row: null, line, column: null, message });
  }

  /** The findings: header, preview rows, row count, columns with their types, errors. */
  result() {
    const errors = [...this.errors];
    if (this.header === null) errors.push({ row: null, line: 1, column: null, message: "no data: the first row must hold the column names" });
    else if (this.rowCount === 0) errors.push({ row: null, line: this.headerLine, column: null, message: "a header but no rows of data" });
    return {
      header: this.header || [],
      rows: this.rows,
      errorRows: this.errorRows,
      rowCount: this.rowCount,
      columns: this.columns.map((column) => ({ ...column, type: columnType(column) })),
      errors,
      errorCount: this.errorCount + (errors.length - this.errors.length),
    };
  }
}
