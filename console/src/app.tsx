import type { JSX } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { Api, seg } from "./api";
import { Session } from "./auth";
import { DashboardView, Dashboards } from "./dashboards";
import { SignIn, SignUp } from "./login";
import { Audit, Billing, Members } from "./org";
import { fragmentParam, match, navigate, usePath } from "./router";
import { TenantDetail, Tenants } from "./tenants";
import { ErrorBox, Field, Link, useAction, useLoad } from "./ui";

export interface Org {
  id: string;
  slug: string;
  name: string;
  plan: string;
  role: string;
}
export interface Me {
  id: string;
  email: string;
  name: string;
}

const ACCEPT_PATH = "/invitations/accept";

// An invitation token read from the fragment before anything else runs, then removed
// from the address bar (fragments never reach the server; this keeps it out of history).
let pendingInvitation: string | null = null;
export function takeInvitationFromUrl(): void {
  if (location.pathname === ACCEPT_PATH) {
    pendingInvitation = fragmentParam(location.hash, "token");
    if (location.hash) history.replaceState(null, "", ACCEPT_PATH);
  }
}

export function App({ session }: { session: Session }): JSX.Element {
  const [signedIn, setSignedIn] = useState(session.signedIn);
  const [notice, setNotice] = useState<string | undefined>();
  const path = usePath();
  const api = useMemo(() => new Api(session), [session]);
  useEffect(
    () =>
      session.subscribe((inNow, reason) => {
        setSignedIn(inNow);
        setNotice(reason);
        if (inNow && (path === "/login" || path === "/signup" || path === "/callback")) {
          navigate(pendingInvitation ? ACCEPT_PATH : "/", true);
        }
      }),
    [session, path],
  );
  if (!signedIn) {
    if (path === "/signup") return <SignUp session={session} />;
    return (
      <SignIn
        session={session}
        notice={notice ?? (path === ACCEPT_PATH && pendingInvitation ? "Sign in or create an account to accept the invitation." : undefined)}
      />
    );
  }
  return <Shell api={api} path={path} />;
}

function Shell({ api, path }: { api: Api; path: string }): JSX.Element {
  const orgs = useLoad(() => api.get<Org[]>("/v1/orgs"), []);
  const me = useLoad(() => api.get<Me>("/v1/users/me"), []);
  const orgMatch = matchPrefix(path);
  const current = orgMatch ?? orgs.data?.[0]?.id ?? null;
  useEffect(() => {
    if (path === "/" && orgs.data && orgs.data.length > 0) navigate(`/orgs/${seg(orgs.data[0].id)}/tenants`, true);
  }, [path, orgs.data]);
  let page: JSX.Element;
  let m: Record<string, string> | null;
  if (path === ACCEPT_PATH) page = <AcceptInvitation api={api} onJoined={orgs.reload} />;
  else if ((m = match("/orgs/:org/tenants", path))) page = <Tenants api={api} org={m.org} />;
  else if ((m = match("/orgs/:org/tenants/:tenant", path))) page = <TenantDetail api={api} org={m.org} name={m.tenant} />;
  else if ((m = match("/orgs/:org/dashboards", path))) page = <Dashboards api={api} org={m.org} />;
  else if ((m = match("/orgs/:org/dashboards/:dashboard", path))) page = <DashboardView api={api} org={m.org} name={m.dashboard} />;
  else if ((m = match("/orgs/:org/members", path))) page = <Members api={api} org={m.org} />;
  else if ((m = match("/orgs/:org/billing", path))) page = <Billing api={api} org={m.org} />;
  else if ((m = match("/orgs/:org/audit", path))) page = <Audit api={api} org={m.org} />;
  else if (orgs.data && orgs.data.length === 0) page = <CreateOrg api={api} first onCreated={orgs.reload} />;
  else if (path === "/orgs/new") page = <CreateOrg api={api} onCreated={orgs.reload} />;
  else page = orgs.error ? <ErrorBox error={orgs.error} /> : <p>Loading…</p>;
  return (
    <div class="shell">
      <header>
        <span class="brand">Tenantry</span>
        {orgs.data && orgs.data.length > 0 ? (
          <label class="switcher">
            Organisation
            <select
              value={current ?? ""}
              onChange={(e) => {
                const v = e.currentTarget.value;
                navigate(v === "new" ? "/orgs/new" : `/orgs/${seg(v)}/tenants`);
              }}
            >
              {orgs.data.map((o) => (
                <option key={o.id} value={o.id}>
                  {o.name} ({o.role})
                </option>
              ))}
              <option value="new">+ New organisation</option>
            </select>
          </label>
        ) : null}
        {current && orgs.data?.length ? (
          <nav aria-label="Sections">
            <Link href={`/orgs/${seg(current)}/tenants`}>Tenants</Link>
            <Link href={`/orgs/${seg(current)}/dashboards`}>Dashboards</Link>
            <Link href={`/orgs/${seg(current)}/members`}>Members</Link>
            <Link href={`/orgs/${seg(current)}/billing`}>Usage and billing</Link>
            <Link href={`/orgs/${seg(current)}/audit`}>Audit log</Link>
          </nav>
        ) : null}
        <UserMenu api={api} me={me.data} />
      </header>
      <main>{page}</main>
    </div>
  );
}

function matchPrefix(path: string): string | null {
  const m = /^\/orgs\/([^/]+)\//.exec(path);
  return m && m[1] !== "new" ? decodeURIComponent(m[1]) : null;
}

export function UserMenu({ api, me }: { api: Api; me: Me | undefined }): JSX.Element {
  const [open, setOpen] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [busy, error, run] = useAction();
  return (
    <div class="user-menu">
      <button aria-expanded={open} aria-haspopup="true" onClick={() => setOpen(!open)}>
        {me ? me.name || me.email : "Account"}
      </button>
      {open ? (
        <div class="menu" role="menu">
          {me ? <p class="muted">{me.email}</p> : null}
          <button
            role="menuitem"
            onClick={() => {
              void api.session.logout();
              navigate("/login", true);
            }}
          >
            Sign out
          </button>
          <button
            role="menuitem"
            onClick={() => {
              setOpen(false); // the question is a dialog of its own, not part of the menu
              setConfirming(true);
            }}
          >
            End every session…
          </button>
        </div>
      ) : null}
      {confirming ? (
        <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="end-all-title">
          <h3 id="end-all-title">End every session?</h3>
          <p>This signs you out here and everywhere else: every browser, and every app signed in as you.</p>
          <div class="row">
            <button
              class="danger"
              disabled={busy}
              onClick={() =>
                void run(async () => {
                  await api.endEverySession();
                  navigate("/login", true);
                })
              }
            >
              End every session
            </button>
            <button onClick={() => setConfirming(false)}>Cancel</button>
          </div>
          <ErrorBox error={error} />
        </div>
      ) : null}
    </div>
  );
}

function CreateOrg({ api, first, onCreated }: { api: Api; first?: boolean; onCreated: () => void }): JSX.Element {
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [busy, error, run] = useAction();
  return (
    <section>
      <h2>{first ? "Create your first organisation" : "New organisation"}</h2>
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            const org = await api.post<Org>("/v1/orgs", { name, slug });
            onCreated();
            navigate(`/orgs/${seg(org.id)}/tenants`);
          });
        }}
      >
        <Field label="Name" required value={name} onValue={setName} />
        <Field
          label="Short name (lower-case letters, digits and “-”, used in resource names)"
          required
          pattern="[a-z0-9]([-a-z0-9]*[a-z0-9])?"
          maxLength={20}
          value={slug}
          onValue={setSlug}
        />
        <button type="submit" class="primary" disabled={busy}>
          Create organisation
        </button>
        <ErrorBox error={error} />
      </form>
    </section>
  );
}

function AcceptInvitation({ api, onJoined }: { api: Api; onJoined: () => void }): JSX.Element {
  const [busy, error, run] = useAction();
  const [done, setDone] = useState(false);
  const token = pendingInvitation;
  if (!token) return <p class="error">This invitation link is incomplete: it carries no token.</p>;
  return (
    <section class="card">
      <h2>Accept the invitation</h2>
      {done ? (
        <p role="status">You joined the organisation.</p>
      ) : (
        <button
          class="primary"
          disabled={busy}
          onClick={() =>
            void run(async () => {
              const joined = await api.post<Org>("/v1/invitations/accept", { token });
              pendingInvitation = null;
              setDone(true);
              onJoined();
              navigate(`/orgs/${seg(joined.id)}/tenants`);
            })
          }
        >
          Join the organisation
        </button>
      )}
      <ErrorBox error={error} />
    </section>
  );
}
