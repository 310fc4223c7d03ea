import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { type Api, type Query, seg } from "./api";
import { Chart } from "./chart";
import { durationMs, type PanelData } from "./data";
import { navigate } from "./router";
import type { Tenant } from "./tenants";
import { ErrorBox, Link, useAction, useLoad } from "./ui";

export interface PanelSpec {
  id: string;
  title: string;
  sql: string;
  visualization?: string;
  materialize?: boolean;
}
export interface Variable {
  name: string;
  type?: string;
  label?: string | null;
  default?: string;
  options?: string[];
}
export interface DashboardSpec {
  tenantRef: { name: string };
  title: string;
  description?: string;
  timeRange?: { from?: string; to?: string };
  refresh?: string;
  variables?: Variable[];
  panels: PanelSpec[];
}
export interface Dashboard {
  name: string;
  tenant: string;
  spec: DashboardSpec;
  status: {
    observedGeneration?: number;
    panels?: { id: string; valid: boolean; message?: string }[];
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
  generation: number | null;
}

export const VISUALIZATIONS = ["line", "area", "bar", "pie", "stat", "table"];
export const RANGES: [string, string][] = [
  ["now-15m", "Last 15 minutes"],
  ["now-1h", "Last hour"],
  ["now-6h", "Last 6 hours"],
  ["now-24h", "Last 24 hours"],
  ["now-7d", "Last 7 days"],
  ["now-30d", "Last 30 days"],
];

export function Dashboards({ api, org }: { api: Api; org: string }): JSX.Element {
  const list = useLoad(() => api.get<Dashboard[]>(`/v1/orgs/${seg(org)}/dashboards`), [org]);
  const [creating, setCreating] = useState(false);
  return (
    <section>
      <div class="head">
        <h2>Dashboards</h2>
        <button class="primary" onClick={() => setCreating(true)}>
          New dashboard
        </button>
      </div>
      {creating ? <CreateDashboard api={api} org={org} onDone={() => setCreating(false)} /> : null}
      <ErrorBox error={list.error} />
      {list.data && list.data.length === 0 ? <p class="muted">No dashboards yet.</p> : null}
      <ul class="cards">
        {(list.data ?? []).map((d) => (
          <li key={d.name} class="card">
            <Link href={`/orgs/${seg(org)}/dashboards/${seg(d.name)}`}>{d.spec.title}</Link>
            <div class="muted">
              {d.name} · tenant {d.tenant} · {d.spec.panels.length} panels · refresh {d.spec.refresh ?? "1m"}
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}

function CreateDashboard({ api, org, onDone }: { api: Api; org: string; onDone: () => void }): JSX.Element {
  const tenants = useLoad(() => api.get<Tenant[]>(`/v1/orgs/${seg(org)}/tenants`), [org]);
  const [name, setName] = useState("");
  const [title, setTitle] = useState("");
  const [tenant, setTenant] = useState("");
  const [sql, setSql] = useState("SELECT toStartOfMinute(timestamp) AS t, count() AS events FROM events GROUP BY t ORDER BY t");
  const [viz, setViz] = useState("line");
  const [busy, error, run] = useAction();
  const chosen = tenant || tenants.data?.[0]?.name || "";
  return (
    <form
      class="card"
      aria-label="New dashboard"
      onSubmit={(e) => {
        e.preventDefault();
        void run(async () => {
          const spec: DashboardSpec = {
            tenantRef: { name: chosen },
            title,
            panels: [{ id: "p1", title, sql, visualization: viz }],
          };
          await api.post(`/v1/orgs/${seg(org)}/dashboards`, { name, spec });
          onDone();
          navigate(`/orgs/${seg(org)}/dashboards/${seg(name)}`);
        });
      }}
    >
      <h3>New dashboard</h3>
      <label>
        Name
        <input required pattern="[a-z0-9]([-a-z0-9]*[a-z0-9])?" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label>
        Title
        <input required maxLength={200} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
      </label>
      <label>
        Tenant
        <select value={chosen} onChange={(e) => setTenant(e.currentTarget.value)}>
          {(tenants.data ?? []).map((t) => (
            <option key={t.name} value={t.name}>
              {t.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        First panel's chart
        <select value={viz} onChange={(e) => setViz(e.currentTarget.value)}>
          {VISUALIZATIONS.map((v) => (
            <option key={v}>{v}</option>
          ))}
        </select>
      </label>
      <label>
        First panel's SQL
        <textarea rows={4} value={sql} onInput={(e) => setSql(e.currentTarget.value)} />
      </label>
      <div class="row">
        <button type="submit" class="primary" disabled={busy || !chosen}>
          Create dashboard
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
      <ErrorBox error={error} />
    </form>
  );
}

interface PanelState {
  data?: PanelData;
  error?: unknown;
}

/** performance marks the browser test reads: data arrived -> every panel drawn. */
export const MARK_DATA = "tenantry:dashboard-data";
export const MEASURE_DRAW = "tenantry:dashboard-draw";

export function DashboardView({ api, org, name }: { api: Api; org: string; name: string }): JSX.Element {
  const path = `/v1/orgs/${seg(org)}/dashboards/${seg(name)}`;
  const dash = useLoad(() => api.get<Dashboard>(path), [org, name]);
  const d = dash.data;
  const [from, setFrom] = useState<string | null>(null);
  const [vars, setVars] = useState<Record<string, string>>({});
  const [panels, setPanels] = useState<Record<string, PanelState>>({});
  const [round, setRound] = useState(0);
  const drawn = useRef<Set<string>>(new Set());
  const expected = useRef(0);
  const range = from ?? d?.spec.timeRange?.from ?? "now-24h";

  // Fetch every panel's data (again at the dashboard's refresh interval).
  useEffect(() => {
    if (!d) return;
    let live = true;
    const query: Query = { from: range, to: d.spec.timeRange?.to ?? "now" };
    for (const v of d.spec.variables ?? []) {
      const value = vars[v.name] ?? v.default ?? "";
      if (value !== "") query[`var.${v.name}`] = value;
    }
    const work = d.spec.panels.map((p) =>
      api.get<PanelData>(`${path}/panels/${seg(p.id)}/data`, query).then(
        (data): [string, PanelState] => [p.id, { data }],
        (error: unknown): [string, PanelState] => [p.id, { error }],
      ),
    );
    void Promise.all(work).then((results) => {
      if (!live) return;
      drawn.current = new Set();
      expected.current = results.filter(([, s]) => s.data).length;
      performance.clearMarks(MARK_DATA);
      performance.clearMeasures(MEASURE_DRAW);
      performance.mark(MARK_DATA);
      setPanels(Object.fromEntries(results));
    });
    return () => {
      live = false;
    };
  }, [d, range, vars, round, api, path]);

  useEffect(() => {
    const ms = durationMs(d?.spec.refresh ?? "");
    if (!ms) return;
    const id = setInterval(() => setRound((r) => r + 1), ms);
    return () => clearInterval(id);
  }, [d?.spec.refresh]);

  const onDrawn = (id: string): void => {
    drawn.current.add(id);
    if (drawn.current.size === expected.current) {
      performance.clearMeasures(MEASURE_DRAW);
      performance.measure(MEASURE_DRAW, MARK_DATA);
    }
  };

  if (!d) return <section>{dash.error ? <ErrorBox error={dash.error} /> : <p>Loading…</p>}</section>;
  const validation = Object.fromEntries((d.status.panels ?? []).map((p) => [p.id, p]));
  return (
    <section>
      <p>
        <Link href={`/orgs/${seg(org)}/dashboards`}>← Dashboards</Link>
      </p>
      <div class="head">
        <h2>{d.spec.title}</h2>
        <div class="row controls">
          <label>
            Time range
            <select value={range} onChange={(e) => setFrom(e.currentTarget.value)}>
              {RANGES.some(([v]) => v === range) ? null : <option value={range}>{range}</option>}
              {RANGES.map(([v, label]) => (
                <option key={v} value={v}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          {(d.spec.variables ?? []).map((v) => (
            <label key={v.name}>
              {v.label ?? v.name}
              {v.options && v.options.length > 0 ? (
                <select aria-label={v.label ?? v.name} value={vars[v.name] ?? v.default ?? ""} onChange={(e) => setVars({ ...vars, [v.name]: e.currentTarget.value })}>
                  {v.options.map((o) => (
                    <option key={o}>{o}</option>
                  ))}
                </select>
              ) : (
                <input aria-label={v.label ?? v.name} value={vars[v.name] ?? v.default ?? ""} onChange={(e) => setVars({ ...vars, [v.name]: e.currentTarget.value })} />
              )}
            </label>
          ))}
          <button onClick={() => setRound((r) => r + 1)}>Refresh</button>
          <span class="muted">auto-refresh every {d.spec.refresh ?? "1m"}</span>
        </div>
      </div>
      {d.spec.description ? <p>{d.spec.description}</p> : null}
      <div class="grid">
        {d.spec.panels.map((p) => (
          <PanelCard
            key={p.id}
            api={api}
            path={path}
            dashboard={d}
            panel={p}
            state={panels[p.id]}
            validation={validation[p.id]}
            onDrawn={() => onDrawn(p.id)}
            onSaved={() => dash.reload()}
          />
        ))}
      </div>
    </section>
  );
}

function PanelCard(props: {
  api: Api;
  path: string;
  dashboard: Dashboard;
  panel: PanelSpec;
  state: PanelState | undefined;
  validation: { valid: boolean; message?: string } | undefined;
  onDrawn: () => void;
  onSaved: () => void;
}): JSX.Element {
  const { panel, state, validation } = props;
  const [editing, setEditing] = useState(false);
  const [sql, setSql] = useState(panel.sql);
  const [busy, error, run] = useAction();
  const [checking, setChecking] = useState(false);
  const headingId = `panel-${panel.id}`;
  const refused = validation !== undefined && !validation.valid;
  const save = (): Promise<void> =>
    run(async () => {
      const spec = {
        ...props.dashboard.spec,
        panels: props.dashboard.spec.panels.map((p) => (p.id === panel.id ? { ...p, sql } : p)),
      };
      const saved = await props.api.put<Dashboard>(props.path, { spec });
      // The operator validates the panels of the new generation: wait for its verdict.
      setChecking(true);
      for (let i = 0; i < 60; i++) {
        const now = await props.api.get<Dashboard>(props.path);
        if ((now.status.observedGeneration ?? 0) >= (saved.generation ?? 0)) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      setChecking(false);
      setEditing(false);
      props.onSaved();
    });
  return (
    <article class="panel card" aria-labelledby={headingId}>
      <div class="head">
        <h3 id={headingId}>{panel.title}</h3>
        <button
          onClick={() => {
            setSql(panel.sql);
            setEditing(!editing);
          }}
        >
          {editing ? "Close editor" : "Edit SQL"}
        </button>
      </div>
      {refused ? (
        <div class="error" role="alert" data-testid="panel-invalid">
          <strong>The operator refused this panel's SQL.</strong>
          <div class="detail">{validation.message}</div>
        </div>
      ) : null}
      {editing ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
        >
          <label>
            SQL of {panel.title}
            <textarea rows={5} value={sql} onInput={(e) => setSql(e.currentTarget.value)} />
          </label>
          <button type="submit" class="primary" disabled={busy}>
            {checking ? "Validating…" : "Save SQL"}
          </button>
          <ErrorBox error={error} />
        </form>
      ) : null}
      {state?.error && !refused ? <ErrorBox error={state.error} /> : null}
      {state?.data && !refused ? (
        <Chart kind={panel.visualization ?? "table"} data={state.data} title={panel.title} onDrawn={props.onDrawn} />
      ) : state ? null : (
        <p class="muted">Loading…</p>
      )}
    </article>
  );
}
