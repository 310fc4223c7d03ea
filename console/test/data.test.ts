import { describe, expect, it } from "vitest";
import { durationMs, formatNumber, pieSlices, statValue, toSeconds, toSeries, type PanelData } from "../src/data";

const panel = (columns: [string, string][], rows: unknown[][]): PanelData => ({
  columns: columns.map(([name, type]) => ({ name, type })),
  rows,
  cached: false,
  generatedAt: "2026-12-06T10:00:00Z",
});

describe("toSeries", () => {
  it("reads a time column as seconds, sorted, and numeric columns (also text) as series", () => {
    const s = toSeries(
      panel(
        [["t", "DateTime"], ["n", "UInt64"], ["label", "String"], ["avg", "Float64"]],
        [
          ["2026-12-06T10:01:00Z", "7", "b", 1.5],
          ["2026-12-06 10:00:00", 3, "a", null],
        ],
      ),
    );
    expect(s.time).toBe(true);
    expect(s.x).toEqual([Date.UTC(2026, 11, 6, 10, 0) / 1000, Date.UTC(2026, 11, 6, 10, 1) / 1000]);
    expect(s.names).toEqual(["n", "avg"]);
    expect(s.values).toEqual([[3, 7], [null, 1.5]]);
    expect(s.labels).toBeNull();
  });

  it("uses categories as labels when the first column is not a time", () => {
    const s = toSeries(panel([["event", "String"], ["n", "UInt64"]], [["signup", 4], ["click", 2]]));
    expect(s.time).toBe(false);
    expect(s.x).toEqual([0, 1]);
    expect(s.labels).toEqual(["signup", "click"]);
    expect(s.values).toEqual([[4, 2]]);
  });

  it("is empty without columns", () => {
    expect(toSeries(panel([], [])).x).toEqual([]);
  });
});

describe("statValue", () => {
  it("takes the first row's last numeric column, formatted", () => {
    expect(statValue(panel([["name", "String"], ["n", "UInt64"]], [["x", "1234567"]]))).toEqual({ label: "n", value: "1,234,567" });
  });
  it("is null without rows", () => {
    expect(statValue(panel([["n", "UInt64"]], []))).toBeNull();
  });
});

describe("pieSlices", () => {
  it("splits the circle by share and drops zero slices", () => {
    const slices = pieSlices(panel([["k", "String"], ["v", "UInt64"]], [["a", 3], ["b", 1], ["c", 0]]));
    expect(slices.map((s) => [s.label, s.share])).toEqual([["a", 0.75], ["b", 0.25]]);
    expect(slices[0].path).toMatch(/^M 100 100 L 100.000 0.000 A 100 100 0 1 1 /);
  });
  it("draws one full slice as a closed arc", () => {
    const [only] = pieSlices(panel([["k", "String"], ["v", "UInt64"]], [["a", 5]]));
    expect(only.share).toBe(1);
    expect(only.path.startsWith("M 100 0 A")).toBe(true);
  });
});

describe("small helpers", () => {
  it("parses durations of the dashboard's refresh", () => {
    expect(durationMs("30s")).toBe(30_000);
    expect(durationMs("5m")).toBe(300_000);
    expect(durationMs("1h")).toBe(3_600_000);
    expect(durationMs("0s")).toBeNull();
    expect(durationMs("1d")).toBeNull();
  });
  it("formats numbers and parses times", () => {
    expect(formatNumber(2.3456)).toBe("2.35");
    expect(toSeconds("nope")).toBeNull();
    expect(toSeconds("2026-12-06T00:00:00+01:00")).toBe(Date.UTC(2026, 11, 5, 23) / 1000);
  });
});
