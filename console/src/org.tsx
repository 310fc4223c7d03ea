// Organisation pages: members and roles, invitations, usage and billing, the audit log.
import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { type Api, seg } from "./api";
import { formatNumber } from "./data";
import { ApiError } from "./errors";
import { ActionButton, ErrorBox, Field, RowForm, ShownOnce, Table, useAction, useLoad } from "./ui";

interface Member {
  user_id: string;
  email: string;
  name: string;
  role: string;
}
interface Role {
  name: string;
  builtin: boolean;
  description: string;
  permissions: string[];
}
interface Invitation {
  id: string;
  email: string;
  role: string;
  expires_at: string;
}
interface InvitationCreated extends Invitation {
  token: string;
  email_delivery: "sent" | "failed" | "not_configured";
}

/** The accept link the invitee opens (the token in the fragment never reaches a server log). */
export function acceptLink(origin: string, token: string): string {
  return `${origin}/invitations/accept#token=${encodeURIComponent(token)}`;
}

export function Members({ api, org }: { api: Api; org: string }): JSX.Element {
  const base = `/v1/orgs/${seg(org)}`;
  const members = useLoad(() => api.get<Member[]>(`${base}/members`), [org]);
  const roles = useLoad(() => api.get<Role[]>(`${base}/roles`), [org]);
  const invitations = useLoad(() => api.get<Invitation[]>(`${base}/invitations`), [org]);
  const [email, setEmail] = useState("");
  const [role, setRole] = useState("viewer");
  const [created, setCreated] = useState<InvitationCreated | null>(null);
  const [busy, error, run] = useAction();
  const roleNames = (roles.data ?? []).map((r) => r.name);
  return (
    <section>
      <h2>Members</h2>
      <ErrorBox error={members.error ?? error} />
      <Table columns={["Name", "E-mail", "Role", { hidden: "Actions" }]}>
        {(members.data ?? []).map((m) => (
            <tr key={m.user_id}>
              <td>{m.name}</td>
              <td>{m.email}</td>
              <td>
                <select
                  aria-label={`Role of ${m.email}`}
                  value={m.role}
                  disabled={busy}
                  onChange={(e) => {
                    const next = e.currentTarget.value;
                    void run(async () => {
                      await api.patch(`${base}/members/${seg(m.user_id)}`, { role: next });
                      members.reload();
                    });
                  }}
                >
                  {(roleNames.includes(m.role) ? roleNames : [m.role, ...roleNames]).map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>
              </td>
              <td>
                <ActionButton
                  run={run}
                  busy={busy}
                  action={async () => {
                    await api.del(`${base}/members/${seg(m.user_id)}`);
                    members.reload();
                  }}
                >
                  Remove {m.email}
                </ActionButton>
              </td>
            </tr>
          ))}
      </Table>

      <h3>Invite someone</h3>
      <RowForm
        submit="Send invitation"
        primary
        busy={busy}
        onSubmit={() =>
          void run(async () => {
            setCreated(await api.post<InvitationCreated>(`${base}/invitations`, { email, role }));
            setEmail("");
            invitations.reload();
          })
        }
      >
        <label>
          E-mail
          <input type="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Role
          <select aria-label="Invitation role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            {roleNames.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
      </RowForm>
      {created ? (
        <ShownOnce done="Done" onDone={() => setCreated(null)}>
          {created.email_delivery === "sent" ? (
            <p>We e-mailed the invitation to {created.email}.</p>
          ) : (
            <>
              <p>
                <strong>No e-mail was sent: give {created.email} this link. It is shown only once.</strong>
              </p>
              <code data-testid="invitation-link">{acceptLink(location.origin, created.token)}</code>
            </>
          )}
        </ShownOnce>
      ) : null}
      <h3>Pending invitations</h3>
      {invitations.data && invitations.data.length === 0 ? <p class="muted">None.</p> : null}
      <ul>
        {(invitations.data ?? []).map((i) => (
          <li key={i.id}>
            {i.email} as {i.role}, until {new Date(i.expires_at).toLocaleDateString()}{" "}
            <ActionButton
              run={run}
              busy={busy}
              action={async () => {
                await api.del(`${base}/invitations/${seg(i.id)}`);
                invitations.reload();
              }}
            >
              Revoke invitation of {i.email}
            </ActionButton>
          </li>
        ))}
      </ul>
      <Roles api={api} org={org} roles={roles.data ?? []} reload={roles.reload} />
    </section>
  );
}

function Roles({ api, org, roles, reload }: { api: Api; org: string; roles: Role[]; reload: () => void }): JSX.Element {
  const [name, setName] = useState("");
  const [permissions, setPermissions] = useState("dashboards:read, tenants:read");
  const [busy, error, run] = useAction();
  const base = `/v1/orgs/${seg(org)}/roles`;
  return (
    <>
      <h3>Roles</h3>
      <Table columns={["Role", "Permissions", { hidden: "Actions" }]}>
        {roles.map((r) => (
            <tr key={r.name}>
              <td>
                {r.name} {r.builtin ? <span class="muted">(built in)</span> : null}
                {r.description ? <div class="muted">{r.description}</div> : null}
              </td>
              <td>{r.permissions.join(", ")}</td>
              <td>
                {r.builtin ? null : (
                  <ActionButton
                    run={run}
                    busy={busy}
                    action={async () => {
                      await api.del(`${base}/${seg(r.name)}`);
                      reload();
                    }}
                  >
                    Delete role {r.name}
                  </ActionButton>
                )}
              </td>
            </tr>
          ))}
      </Table>
      <RowForm
        submit="Save role"
        busy={busy}
        onSubmit={() =>
          void run(async () => {
            const list = permissions.split(",").map((p) => p.trim()).filter(Boolean);
            await api.put(`${base}/${seg(name)}`, { permissions: list });
            setName("");
            reload();
          })
        }
      >
        <Field label="Custom role name" required value={name} onValue={setName} />
        <Field label="Permissions (comma-separated)" required value={permissions} onValue={setPermissions} />
      </RowForm>
      <ErrorBox error={error} />
    </>
  );
}

interface MetricUsage {
  metric: string;
  unit: string;
  quantity: number;
  by_tenant: Record<string, number>;
}
interface Usage {
  period: string;
  metrics: MetricUsage[];
  plan: string;
  events_per_month: number;
  events_over_limit: boolean;
}
interface Invoice {
  id: string | null;
  number: string | null;
  status: string;
  period: string;
  currency: string;
  total: number;
}
interface Subscription {
  plan: string | null;
  status: string;
  current_period_end: string;
}

export function money(cents: number, currency: string): string {
  return new Intl.NumberFormat("en-US", { style: "currency", currency: currency.toUpperCase() }).format(cents / 100);
}

interface Plan {
  key: string;
  name: string;
  currency: string;
  base_fee: number;
  limits: { max_tenants: number; max_dashboards: number; max_shards: number; retention_days: number; events_per_month: number };
}

/** The plans, the subscription, and starting, changing or cancelling it. */
export function Subscriptions({ api, org, onChanged }: { api: Api; org: string; onChanged: () => void }): JSX.Element {
  const base = `/v1/orgs/${seg(org)}/billing`;
  const plans = useLoad(() => api.get<Plan[]>(`${base}/plans`), [org]);
  // No subscription yet is a 404: the page offers to start one.
  const sub = useLoad(
    () =>
      api.get<Subscription>(`${base}/subscription`).catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }),
    [org],
  );
  const [busy, error, run] = useAction();
  const current = sub.data?.status === "ended" ? null : sub.data;
  const act = (fn: () => Promise<unknown>): void =>
    void run(async () => {
      await fn();
      sub.reload();
      onChanged();
    });
  return (
    <div class="card">
      <h3>Plan</h3>
      <ErrorBox error={plans.error ?? sub.error ?? error} />
      {current ? (
        <p>
          Subscribed to <strong>{current.plan}</strong> ({current.status}), current period until{" "}
          {new Date(current.current_period_end).toLocaleDateString()}.
        </p>
      ) : sub.data !== undefined ? (
        <p>No subscription yet: choose a plan.</p>
      ) : null}
      <Table columns={["Plan", "Monthly fee", "Limits", { hidden: "Actions" }]}>
        {(plans.data ?? []).map((p) => (
            <tr key={p.key}>
              <td>{p.name}</td>
              <td>{money(p.base_fee, p.currency)}</td>
              <td>
                {p.limits.max_tenants} tenants, {p.limits.max_dashboards} dashboards, up to {p.limits.max_shards} shards,{" "}
                {p.limits.retention_days} days of retention, {formatNumber(p.limits.events_per_month)} events a month
              </td>
              <td>
                {current?.plan === p.key ? (
                  <em>current plan</em>
                ) : (
                  <button
                    disabled={busy || sub.data === undefined}
                    onClick={() =>
                      act(() => (current ? api.patch(`${base}/subscription`, { plan: p.key }) : api.post(`${base}/subscription`, { plan: p.key })))
                    }
                  >
                    {current ? `Switch to ${p.name}` : `Subscribe to ${p.name}`}
                  </button>
                )}
              </td>
            </tr>
          ))}
      </Table>
      {current && current.status === "active" ? (
        <button class="danger" disabled={busy} onClick={() => act(() => api.post(`${base}/subscription/cancel`))}>
          Cancel the subscription at the end of the period
        </button>
      ) : null}
    </div>
  );
}

export function Billing({ api, org }: { api: Api; org: string }): JSX.Element {
  const base = `/v1/orgs/${seg(org)}/billing`;
  const usage = useLoad(() => api.get<Usage>(`${base}/usage`), [org]);
  const upcoming = useLoad(() => api.get<Invoice>(`${base}/invoices/upcoming`).catch(() => null), [org]);
  const invoices = useLoad(() => api.get<Invoice[]>(`${base}/invoices`), [org]);
  const u = usage.data;
  const events = u?.metrics.find((m) => m.metric === "events_ingested")?.quantity ?? 0;
  return (
    <section>
      <h2>Usage and billing</h2>
      <ErrorBox error={usage.error ?? invoices.error} />
      {u ? (
        <div class="card">
          <p>
            Plan <strong>{u.plan}</strong> · period {u.period}
          </p>
          <p>
            Events this period: {formatNumber(events)} of {formatNumber(u.events_per_month)} included
            {u.events_over_limit ? <strong> — over the plan's allowance</strong> : null}
          </p>
          <meter min={0} max={u.events_per_month} value={events} aria-label="Events used of the plan's allowance" />
          <Table columns={["Metric", "Quantity", "By tenant"]}>
            {u.metrics.map((m) => (
                <tr key={m.metric}>
                  <td>{m.metric}</td>
                  <td>
                    {formatNumber(m.quantity)} {m.unit}
                  </td>
                  <td>
                    {Object.entries(m.by_tenant)
                      .map(([t, q]) => `${t}: ${formatNumber(q)}`)
                      .join(", ")}
                  </td>
                </tr>
              ))}
          </Table>
        </div>
      ) : null}
      <Subscriptions api={api} org={org} onChanged={() => (usage.reload(), upcoming.reload())} />
      <h3>Invoices</h3>
      <Table columns={["Number", "Period", "Status", "Total"]}>
        {upcoming.data ? (
            <tr>
              <td>upcoming</td>
              <td>{upcoming.data.period}</td>
              <td>{upcoming.data.status}</td>
              <td>{money(upcoming.data.total, upcoming.data.currency)}</td>
            </tr>
          ) : null}
          {(invoices.data ?? []).map((i) => (
            <tr key={i.id ?? i.period}>
              <td>{i.number ?? "draft"}</td>
              <td>{i.period}</td>
              <td>{i.status}</td>
              <td>{money(i.total, i.currency)}</td>
            </tr>
          ))}
      </Table>
    </section>
  );
}

interface AuditEvent {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  outcome: string;
  request_id: string | null;
}
interface AuditPage {
  events: AuditEvent[];
  next_after: number | null;
}

export const AUDIT_PAGE_SIZE = 50;

export function Audit({ api, org }: { api: Api; org: string }): JSX.Element {
  const [action, setAction] = useState("");
  const [actor, setActor] = useState("");
  const [outcome, setOutcome] = useState("");
  const [filters, setFilters] = useState({ action: "", actor: "", outcome: "" });
  // `after` of each page shown so far: pages go forward by the API's cursor, back by this.
  const [cursors, setCursors] = useState<number[]>([0]);
  const after = cursors[cursors.length - 1];
  const page = useLoad(
    () => api.get<AuditPage>(`/v1/orgs/${seg(org)}/audit`, { ...filters, after, limit: AUDIT_PAGE_SIZE }),
    [org, filters, after],
  );
  return (
    <section>
      <h2>Audit log</h2>
      <RowForm
        submit="Filter"
        busy={false}
        onSubmit={() => {
          setFilters({ action, actor, outcome });
          setCursors([0]);
        }}
      >
        <Field label="Action" value={action} placeholder="e.g. tenant.create" onValue={setAction} />
        <Field label="Actor (user id)" value={actor} onValue={setActor} />
        <label>
          Outcome
          <select value={outcome} onChange={(e) => setOutcome(e.currentTarget.value)}>
            <option value="">any</option>
            <option>success</option>
            <option>failure</option>
            <option>denied</option>
          </select>
        </label>
      </RowForm>
      <ErrorBox error={page.error} />
      <Table columns={["#", "When", "Actor", "Action", "Target", "Outcome", "Request id"]}>
        {(page.data?.events ?? []).map((ev) => (
            <tr key={ev.seq}>
              <td>{ev.seq}</td>
              <td>{new Date(ev.at).toLocaleString()}</td>
              <td>{ev.actor}</td>
              <td>{ev.action}</td>
              <td>{ev.target}</td>
              <td>{ev.outcome}</td>
              <td>
                <code>{ev.request_id ?? ""}</code>
              </td>
            </tr>
          ))}
      </Table>
      <div class="row">
        <button disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <button
          disabled={page.data?.next_after == null}
          onClick={() => page.data?.next_after != null && setCursors([...cursors, page.data.next_after])}
        >
          Next page
        </button>
      </div>
    </section>
  );
}
