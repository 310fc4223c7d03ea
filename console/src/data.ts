// Pure transforms of the panel data API's answer into what the charts draw.
// Rows are lists in column order; times arrive as RFC 3339 text, 64-bit and decimal
// numbers may arrive as text (JSON numbers are doubles).

export interface Column {
  name: string;
  type: string;
}
export interface PanelData {
  columns: Column[];
  rows: unknown[][];
  cached: boolean;
  generatedAt: string;
}

const TIME_TYPE = /^(Nullable\()?(LowCardinality\()?(DateTime|Date)/;
const NUMBER_TYPE = /^(Nullable\()?(U?Int|Float|Decimal)/;

export const isTimeType = (t: string): boolean => TIME_TYPE.test(t);
export const isNumberType = (t: string): boolean => NUMBER_TYPE.test(t);

export function toNumber(v: unknown): number | null {
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  if (typeof v === "string" && v.trim() !== "") {
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

/** Seconds since the epoch of an RFC 3339 (or ClickHouse "YYYY-MM-DD hh:mm:ss") time. */
export function toSeconds(v: unknown): number | null {
  if (typeof v === "number") return v;
  if (typeof v !== "string") return null;
  const text = /^\d{4}-\d{2}-\d{2} \d/.test(v) && !/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? `${v.replace(" ", "T")}Z` : v;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms / 1000;
}

export interface Series {
  /** x values: seconds (time) or 0..n-1 (categories). */
  x: number[];
  /** Category labels when x is not time. */
  labels: string[] | null;
  time: boolean;
  names: string[];
  values: (number | null)[][];
}

/** The first column is x; every numeric column after it is a series. */
export function toSeries(data: PanelData): Series {
  const [first, ...rest] = data.columns;
  if (!first) return { x: [], labels: null, time: false, names: [], values: [] };
  const time = isTimeType(first.type);
  const numeric = rest
    .map((c, i) => ({ c, i: i + 1 }))
    .filter(({ c }) => isNumberType(c.type));
  let rows = data.rows;
  if (time) {
    rows = [...rows].sort((a, b) => (toSeconds(a[0]) ?? 0) - (toSeconds(b[0]) ?? 0));
  }
  return {
    x: rows.map((r, i) => (time ? (toSeconds(r[0]) ?? 0) : i)),
    labels: time ? null : rows.map((r) => String(r[0] ?? "")),
    time,
    names: numeric.map(({ c }) => c.name),
    values: numeric.map(({ i }) => rows.map((r) => toNumber(r[i]))),
  };
}

/** A stat panel's value: the first row's last numeric column (or its first column). */
export function statValue(data: PanelData): { label: string; value: string } | null {
  const row = data.rows[0];
  if (!row || data.columns.length === 0) return null;
  let idx = -1;
  data.columns.forEach((c, i) => {
    if (isNumberType(c.type)) idx = i;
  });
  if (idx < 0) idx = 0;
  const n = toNumber(row[idx]);
  return { label: data.columns[idx].name, value: n === null ? String(row[idx] ?? "") : formatNumber(n) };
}

export function formatNumber(n: number): string {
  if (Number.isInteger(n)) return n.toLocaleString("en-US");
  return n.toLocaleString("en-US", { maximumFractionDigits: 2 });
}

export interface Slice {
  label: string;
  value: number;
  share: number;
  path: string;
}

/** Pie slices from (label, value) rows: SVG paths on a circle of radius r at (r, r). */
export function pieSlices(data: PanelData, r = 100): Slice[] {
  const valueIdx = data.columns.findIndex((c, i) => i > 0 && isNumberType(c.type));
  const vi = valueIdx < 0 ? 1 : valueIdx;
  const items = data.rows
    .map((row) => ({ label: String(row[0] ?? ""), value: toNumber(row[vi]) ?? 0 }))
    .filter((s) => s.value > 0);
  const total = items.reduce((a, s) => a + s.value, 0);
  if (total <= 0) return [];
  let angle = -Math.PI / 2;
  return items.map((s) => {
    const share = s.value / total;
    const start = angle;
    angle += share * 2 * Math.PI;
    const end = angle;
    let path: string;
    if (share >= 0.9999) {
      path = `M ${r} 0 A ${r} ${r} 0 1 1 ${r - 0.01} 0 Z`;
    } else {
      const large = share > 0.5 ? 1 : 0;
      const p = (a: number): string => `${(r + r * Math.cos(a)).toFixed(3)} ${(r + r * Math.sin(a)).toFixed(3)}`;
      path = `M ${r} ${r} L ${p(start)} A ${r} ${r} 0 ${large} 1 ${p(end)} Z`;
    }
    return { ...s, share, path };
  });
}

/** "30s", "5m", "1h" (the dashboard's refresh) in milliseconds; null when not one. */
export function durationMs(text: string): number | null {
  const m = /^([1-9][0-9]{0,4})(s|m|h)$/.exec(text);
  if (!m) return null;
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "s" | "m" | "h"];
}
