// A panel's data drawn as a chart. uPlot (line, area, bar; hover values in its legend)
// loads on first use, so it is not part of the first-load JavaScript; pie, stat and
// table are plain SVG/HTML.

import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type uPlot from "uplot";
import { formatNumber, type PanelData, pieSlices, statValue, toSeries } from "./data";

const PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4d7c0f"];

let uplotModule: Promise<typeof uPlot> | null = null;
function loadUplot(): Promise<typeof uPlot> {
  uplotModule ??= Promise.all([import("uplot"), import("uplot/dist/uPlot.min.css")]).then(([m]) => m.default);
  return uplotModule;
}

export interface ChartProps {
  kind: string;
  data: PanelData;
  title: string;
  /** Called once the data is on screen. */
  onDrawn?: () => void;
}

export function Chart(props: ChartProps): JSX.Element {
  switch (props.kind) {
    case "stat":
      return <Stat {...props} />;
    case "pie":
      return <Pie {...props} />;
    case "line":
    case "area":
    case "bar":
      return <Plot {...props} />;
    default:
      return <Table {...props} />;
  }
}

function useDrawn(onDrawn: (() => void) | undefined, deps: unknown[]): void {
  useEffect(() => {
    if (!onDrawn) return;
    const id = requestAnimationFrame(() => onDrawn());
    return () => cancelAnimationFrame(id);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
}

function Stat({ data, onDrawn }: ChartProps): JSX.Element {
  const v = statValue(data);
  useDrawn(onDrawn, [data]);
  return (
    <div class="stat">
      <div class="stat-value">{v ? v.value : "—"}</div>
      <div class="stat-label">{v ? v.label : "no data"}</div>
    </div>
  );
}

function Table({ data, title, onDrawn }: ChartProps): JSX.Element {
  useDrawn(onDrawn, [data]);
  return (
    // Scrollable, so focusable: keyboard users can scroll it too.
    <div class="table-wrap" tabIndex={0} role="region" aria-label={`${title}: table`}>
      <table>
        <thead>
          <tr>
            {data.columns.map((c) => (
              <th scope="col" key={c.name}>
                {c.name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {data.rows.slice(0, 500).map((r, i) => (
            <tr key={i}>
              {r.map((v, j) => (
                <td key={j}>{v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {data.rows.length > 500 ? <p class="muted">First 500 of {data.rows.length} rows.</p> : null}
    </div>
  );
}

function Pie({ data, title, onDrawn }: ChartProps): JSX.Element {
  const slices = pieSlices(data);
  const [hover, setHover] = useState<number | null>(null);
  useDrawn(onDrawn, [data]);
  if (slices.length === 0) return <p class="muted">No data</p>;
  const h = hover === null ? null : slices[hover];
  return (
    <div class="pie">
      <svg viewBox="0 0 200 200" role="img" aria-label={`${title}: pie chart`}>
        {slices.map((s, i) => (
          <path
            key={s.label}
            d={s.path}
            fill={PALETTE[i % PALETTE.length]}
            stroke="#fff"
            onMouseEnter={() => setHover(i)}
            onMouseLeave={() => setHover(null)}
          >
            <title>{`${s.label}: ${formatNumber(s.value)} (${(s.share * 100).toFixed(1)}%)`}</title>
          </path>
        ))}
      </svg>
      <ul class="legend">
        {slices.map((s, i) => (
          <li key={s.label} class={hover === i ? "on" : ""}>
            <span class="swatch" data-color={i % PALETTE.length} />
            {s.label}: {formatNumber(s.value)}
          </li>
        ))}
      </ul>
      <div class="hover-value" aria-live="polite">
        {h ? `${h.label}: ${formatNumber(h.value)} (${(h.share * 100).toFixed(1)}%)` : ""}
      </div>
    </div>
  );
}

function Plot({ kind, data, onDrawn }: ChartProps): JSX.Element {
  const box = useRef<HTMLDivElement>(null);
  const [failed, setFailed] = useState<unknown>(null);
  useEffect(() => {
    let plot: uPlot | null = null;
    let live = true;
    loadUplot().then(
      (UPlot) => {
        if (!live || !box.current) return;
        const s = toSeries(data);
        const labels = s.labels;
        const width = Math.max(280, box.current.clientWidth || 0);
        let first = true;
        const opts: uPlot.Options = {
          width,
          height: 220,
          scales: {
            // categories: one slot per row, bars never cut at the edges
            x: labels ? { time: false, range: () => [-0.5, s.x.length - 0.5] } : { time: s.time },
            // areas and bars stand on zero
            y: kind === "line" ? {} : { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
          },
          axes: [
            labels ? { splits: () => s.x, values: (_u, splits) => splits.map((v) => labels[v] ?? "") } : {},
            {},
          ],
          series: [
            { label: s.time ? "time" : "x", value: labels ? (_u, v) => labels[v] ?? "" : undefined },
            ...s.names.map((name, i) => ({
              label: name,
              stroke: PALETTE[i % PALETTE.length],
              width: 2,
              fill: kind === "line" ? undefined : `${PALETTE[i % PALETTE.length]}55`,
              paths: kind === "bar" ? UPlot.paths.bars?.({ size: [0.6, 60] }) : undefined,
              value: (_u: uPlot, v: number | null) => (v === null ? "—" : formatNumber(v)),
            })),
          ],
          hooks: {
            draw: [
              () => {
                if (first && onDrawn) {
                  first = false;
                  onDrawn();
                }
              },
            ],
          },
        };
        plot = new UPlot(opts, [s.x, ...s.values] as uPlot.AlignedData, box.current);
      },
      (e: unknown) => setFailed(e),
    );
    return () => {
      live = false;
      plot?.destroy();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [data, kind]);
  if (failed) return <p class="muted">The chart could not be drawn.</p>;
  return <div class="plot" ref={box} />;
}
