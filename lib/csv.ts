/**
 * CSV that spreadsheets open safely. Cells are quoted per RFC 4180 (a cell with a comma, a double
 * quote, CR or LF is wrapped in double quotes, inner quotes doubled; records end with CRLF), and
 * neutralised against formula injection (OWASP "CSV Injection"): a cell starting with `=`, `+`,
 * `-`, `@`, tab or CR would be evaluated by Excel, LibreOffice or Sheets, so it gets a leading
 * single quote, which those programs show as text. Audit details are attacker-influenced (project
 * ids, error messages, queue bodies), so every cell goes through this, numbers included.
 */
const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One cell: `null`/`undefined` → empty, numbers and booleans as text, the rest as given. */
export function csvCell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return "";
  let text = String(value);
  if (FORMULA_START.test(text)) text = `'${text}`;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One record, CRLF-terminated. */
export function csvRow(cells: readonly (string | number | boolean | null | undefined)[]): string {
  return `${cells.map(csvCell).join(",")}\r\n`;
}
