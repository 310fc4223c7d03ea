import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { type Api, seg } from "./api";
import { type BackupStatus, Backups } from "./backups";
import { navigate } from "./router";
import { ActionButton, ConfirmByName, ErrorBox, Field, Link, RowForm, ShownOnce, Table, useAction, useLoad } from "./ui";

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}
export interface Tenant {
  name: string;
  resource_name: string;
  spec: { plan?: string; suspend?: boolean; retentionDays?: number } & Record<string, unknown>;
  status: {
    phase?: string;
    conditions?: Condition[];
    shards?: number;
    replicas?: number;
    hostsReady?: number;
    hostsTotal?: number;
    endpoints?: Record<string, string>;
    namespace?: string;
    schema?: { database: string; retentionDays: number };
    backup?: BackupStatus;
  };
  created: string | null;
}
interface Billing {
  plan: string;
  max_tenants: number;
  max_dashboards: number;
  max_shards: number;
  tenant_plans: string[];
}
interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
  expires_at: string | null;
}

/** What each tenant plan gives (the presets of tenantry/api/plans.py). */
export const TENANT_PLANS: Record<string, string> = {
  starter: "1 shard × 1 replica, 30 days of retention, queries up to 30 s and 1 GiB of memory",
  growth: "2 shards × 2 replicas, 90 days of retention, queries up to 60 s and 4 GiB of memory",
  enterprise: "larger shards and replicas, the longest retention and query limits",
};

const POLL_MS = 3000;

export function phaseClass(phase: string | undefined): string {
  if (phase === "Ready") return "ok";
  if (phase === "Failed" || phase === "Degraded") return "bad";
  return "wait";
}

export function Tenants({ api, org }: { api: Api; org: string }): JSX.Element {
  const base = `/v1/orgs/${seg(org)}`;
  const list = useLoad(() => api.get<Tenant[]>(`${base}/tenants`), [org], POLL_MS);
  const billing = useLoad(() => api.get<Billing>(`${base}/billing`), [org]);
  const [creating, setCreating] = useState(false);
  return (
    <section>
      <div class="head">
        <h2>Tenants</h2>
        <button class="primary" onClick={() => setCreating(true)}>
          New tenant
        </button>
      </div>
      {creating ? (
        <CreateTenant
          api={api}
          org={org}
          billing={billing.data}
          count={list.data?.length ?? 0}
          onDone={(name) => {
            setCreating(false);
            if (name) navigate(`/orgs/${seg(org)}/tenants/${seg(name)}`);
          }}
        />
      ) : null}
      <ErrorBox error={list.error} />
      {list.data && list.data.length === 0 ? <p class="muted">No tenants yet. Create one to start sending events.</p> : null}
      {list.data && list.data.length > 0 ? (
        <Table columns={["Name", "Plan", "Status", "Hosts"]}>
          {list.data.map((t) => (
              <tr key={t.name}>
                <td>
                  <Link href={`/orgs/${seg(org)}/tenants/${seg(t.name)}`}>{t.name}</Link>
                </td>
                <td>{t.spec.plan ?? "starter"}</td>
                <td>
                  <span class={`badge ${phaseClass(t.status.phase)}`}>{t.spec.suspend ? "Suspended" : (t.status.phase ?? "Pending")}</span>
                </td>
                <td>
                  {t.status.hostsReady ?? 0}/{t.status.hostsTotal ?? 0}
                </td>
              </tr>
            ))}
        </Table>
      ) : null}
    </section>
  );
}

function CreateTenant(props: {
  api: Api;
  org: string;
  billing: Billing | undefined;
  count: number;
  onDone: (name: string | null) => void;
}): JSX.Element {
  const allowed = props.billing?.tenant_plans ?? ["starter"];
  const [name, setName] = useState("");
  const [plan, setPlan] = useState(allowed[0] ?? "starter");
  const [busy, error, run] = useAction();
  const b = props.billing;
  return (
    <form
      class="card"
      aria-label="New tenant"
      onSubmit={(e) => {
        e.preventDefault();
        void run(async () => {
          await props.api.post(`/v1/orgs/${seg(props.org)}/tenants`, { name, spec: { plan } });
          props.onDone(name);
        });
      }}
    >
      <h3>New tenant</h3>
      <Field label="Name (lower-case letters, digits and “-”)" required pattern="[a-z0-9]([-a-z0-9]*[a-z0-9])?" maxLength={29} value={name} onValue={setName} />
      <fieldset>
        <legend>Plan</legend>
        {Object.keys(TENANT_PLANS).map((p) => (
          <label class="choice" key={p}>
            <input type="radio" name="plan" value={p} checked={plan === p} disabled={!allowed.includes(p)} onChange={() => setPlan(p)} />
            <strong>{p}</strong>: {TENANT_PLANS[p]}
            {allowed.includes(p) ? null : <em> (not in your organisation's plan)</em>}
          </label>
        ))}
      </fieldset>
      {b ? (
        <p class="muted">
          Your organisation's {b.plan} plan allows {b.max_tenants} tenants (you have {props.count}), up to {b.max_shards} shards
          each, and {b.max_dashboards} dashboards.
        </p>
      ) : null}
      <div class="row">
        <button type="submit" class="primary" disabled={busy}>
          Create tenant
        </button>
        <button type="button" onClick={() => props.onDone(null)}>
          Cancel
        </button>
      </div>
      <ErrorBox error={error} />
    </form>
  );
}

export function TenantDetail({ api, org, name }: { api: Api; org: string; name: string }): JSX.Element {
  const path = `/v1/orgs/${seg(org)}/tenants/${seg(name)}`;
  const t = useLoad(() => api.get<Tenant>(path), [org, name], POLL_MS);
  const [confirm, setConfirm] = useState(false);
  const [busy, error, run] = useAction();
  const tenant = t.data;
  const setSuspend = (suspend: boolean): Promise<void> =>
    run(async () => {
      if (!tenant) return;
      await api.put(path, { spec: { ...tenant.spec, suspend } });
      t.reload();
    });
  return (
    <section>
      <p>
        <Link href={`/orgs/${seg(org)}/tenants`}>← Tenants</Link>
      </p>
      <div class="head">
        <h2>Tenant {name}</h2>
        {tenant ? (
          <div class="row">
            {tenant.spec.suspend ? (
              <button disabled={busy} onClick={() => void setSuspend(false)}>
                Resume
              </button>
            ) : (
              <button disabled={busy} onClick={() => void setSuspend(true)}>
                Suspend
              </button>
            )}
            <button class="danger" onClick={() => setConfirm(true)}>
              Delete
            </button>
          </div>
        ) : null}
      </div>
      <ErrorBox error={t.error ?? error} />
      {confirm ? (
        <ConfirmByName
          name={name}
          what="tenant"
          busy={busy}
          onCancel={() => setConfirm(false)}
          onConfirm={() =>
            void run(async () => {
              await api.del(path);
              navigate(`/orgs/${seg(org)}/tenants`);
            })
          }
        />
      ) : null}
      {tenant ? <TenantStatus tenant={tenant} /> : t.loading ? <p>Loading…</p> : null}
      {tenant ? <ApiKeys api={api} org={org} tenant={name} /> : null}
      {tenant ? <Backups api={api} org={org} tenant={tenant} /> : null}
    </section>
  );
}

function TenantStatus({ tenant }: { tenant: Tenant }): JSX.Element {
  const s = tenant.status;
  return (
    <div class="card">
      <p>
        Status:{" "}
        <span class={`badge ${phaseClass(s.phase)}`} data-testid="phase">
          {s.phase ?? "Pending"}
        </span>
        {tenant.spec.suspend ? <span class="badge wait">Suspended</span> : null} · plan {tenant.spec.plan ?? "starter"} · updated live
      </p>
      <dl class="counters">
        <dt>Shards</dt>
        <dd>{s.shards ?? "—"}</dd>
        <dt>Replicas</dt>
        <dd>{s.replicas ?? "—"}</dd>
        <dt>Hosts ready</dt>
        <dd>
          {s.hostsReady ?? 0} of {s.hostsTotal ?? 0}
        </dd>
        <dt>Database</dt>
        <dd>{s.schema?.database ?? "—"}</dd>
        <dt>Retention</dt>
        <dd>{s.schema ? `${s.schema.retentionDays} days` : "—"}</dd>
      </dl>
      <h3>Endpoints</h3>
      {s.endpoints && Object.keys(s.endpoints).length > 0 ? (
        <dl>
          {Object.entries(s.endpoints).map(([k, v]) => (
            <>
              <dt key={`k${k}`}>{k}</dt>
              <dd key={`v${k}`}>
                <code>{v}</code>
              </dd>
            </>
          ))}
        </dl>
      ) : (
        <p class="muted">Endpoints appear once the tenant is ready.</p>
      )}
      <h3>Conditions</h3>
      <Table columns={["Type", "Status", "Reason", "Message"]}>
        {(s.conditions ?? []).map((c) => (
            <tr key={c.type}>
              <td>{c.type}</td>
              <td>{c.status}</td>
              <td>{c.reason ?? ""}</td>
              <td>{c.message ?? ""}</td>
            </tr>
          ))}
      </Table>
    </div>
  );
}

function ApiKeys({ api, org, tenant }: { api: Api; org: string; tenant: string }): JSX.Element {
  const path = `/v1/orgs/${seg(org)}/tenants/${seg(tenant)}/apikeys`;
  const keys = useLoad(() => api.get<ApiKey[]>(path), [org, tenant]);
  const [name, setName] = useState("");
  const [secret, setSecret] = useState<string | null>(null);
  const [busy, error, run] = useAction();
  return (
    <div class="card">
      <h3>API keys</h3>
      <RowForm
        submit="Create key"
        primary
        busy={busy}
        onSubmit={() =>
          void run(async () => {
            const created = await api.post<ApiKey & { key: string }>(path, { name });
            setSecret(created.key);
            setName("");
            keys.reload();
          })
        }
      >
        <Field label="Key name" required maxLength={100} value={name} onValue={setName} />
      </RowForm>
      {secret ? (
        <ShownOnce done="I have copied it" onDone={() => setSecret(null)}>
          <p>
            <strong>Copy this key now: it is shown only once.</strong>
          </p>
          <code data-testid="api-key-secret">{secret}</code>
        </ShownOnce>
      ) : null}
      <ErrorBox error={keys.error ?? error} />
      <Table columns={["Name", "Prefix", "Created", "Last used", "State"]}>
        {(keys.data ?? []).map((k) => (
            <tr key={k.id}>
              <td>{k.name}</td>
              <td>
                <code>{k.prefix}</code>
              </td>
              <td>{new Date(k.created_at).toLocaleString()}</td>
              <td>{k.last_used_at ? new Date(k.last_used_at).toLocaleString() : "never"}</td>
              <td>
                {k.revoked_at ? (
                  "revoked"
                ) : (
                  <ActionButton
                    run={run}
                    busy={busy}
                    action={async () => {
                      await api.del(`${path}/${seg(k.id)}`);
                      keys.reload();
                    }}
                  >
                    Revoke {k.name}
                  </ActionButton>
                )}
              </td>
            </tr>
          ))}
      </Table>
    </div>
  );
}
