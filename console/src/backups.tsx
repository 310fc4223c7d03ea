// A tenant's backups (what the operator reports in status.backup and the BackupHealthy
// condition) and its restores (POST/GET .../restores: a Restore resource of the tenant's
// own backups, run by the operator while it holds the tenant's writers).
import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { type Api, seg } from "./api";
import type { Tenant } from "./tenants";
import { ConfirmByName, ErrorBox, Table, useAction, useLoad } from "./ui";

export interface BackupStatus {
  count?: number;
  lastBackup?: string;
  lastSuccessTime?: string;
  sizeBytes?: number;
  rows?: number;
  shards?: number;
  replicas?: number;
  lastError?: string;
}
export interface Restore {
  name: string;
  backup: string;
  overwrite: boolean;
  status: { phase?: string; message?: string; startedAt?: string; completedAt?: string };
  created: string | null;
}

const POLL_MS = 3000;
const UNFINISHED = new Set(["", "Pending", "Running"]);

/** Bytes in the largest unit that keeps a number ≥ 1 (1024-based, as the API counts). */
export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function restoreBadge(phase: string | undefined): string {
  if (phase === "Succeeded") return "ok";
  if (phase === "Failed") return "bad";
  return "wait";
}

export function Backups({ api, org, tenant }: { api: Api; org: string; tenant: Tenant }): JSX.Element {
  const path = `/v1/orgs/${seg(org)}/tenants/${seg(tenant.name)}/restores`;
  const restores = useLoad(() => api.get<Restore[]>(path), [org, tenant.name], POLL_MS);
  const b: BackupStatus = tenant.status.backup ?? {};
  const health = (tenant.status.conditions ?? []).find((c) => c.type === "BackupHealthy");
  const [backup, setBackup] = useState("latest");
  const [overwrite, setOverwrite] = useState(false);
  const [confirm, setConfirm] = useState(false);
  const [busy, error, run] = useAction();
  const running = (restores.data ?? []).some((r) => UNFINISHED.has(r.status.phase ?? ""));
  const restorable = (b.count ?? 0) > 0;
  return (
    <div class="card">
      <h3>Backups</h3>
      {restorable ? (
        <dl class="counters">
          <dt>Backups kept</dt>
          <dd>{b.count}</dd>
          <dt>Newest</dt>
          <dd>
            <code>{b.lastBackup ?? "—"}</code>
            {b.lastSuccessTime ? ` (${new Date(b.lastSuccessTime).toLocaleString()})` : null}
          </dd>
          <dt>Rows</dt>
          <dd>{b.rows ?? "—"}</dd>
          <dt>Size</dt>
          <dd>{b.sizeBytes !== undefined ? bytes(b.sizeBytes) : "—"}</dd>
          <dt>Layout</dt>
          <dd>{b.shards ? `${b.shards} shards × ${b.replicas ?? 1} replicas` : "—"}</dd>
        </dl>
      ) : (
        <p class="muted">No complete backup yet: backups run on the tenant's schedule once it is ready.</p>
      )}
      {health ? (
        <p>
          Backup health: <span class={`badge ${health.status === "True" ? "ok" : health.status === "False" ? "bad" : "wait"}`}>{health.reason ?? health.status}</span>{" "}
          {health.message ?? ""}
        </p>
      ) : null}
      {b.lastError ? (
        <p class="error">
          The latest backup failed: <span>{b.lastError}</span>
        </p>
      ) : null}
      <h3>Restore</h3>
      <form
        class="row"
        aria-label="Restore"
        onSubmit={(e) => {
          e.preventDefault();
          setConfirm(true);
        }}
      >
        <label>
          Backup
          <select value={backup} onChange={(e) => setBackup(e.currentTarget.value)}>
            <option value="latest">the newest complete backup</option>
            {b.lastBackup ? <option value={b.lastBackup}>{b.lastBackup}</option> : null}
          </select>
        </label>
        <label class="choice">
          <input type="checkbox" checked={overwrite} onChange={(e) => setOverwrite(e.currentTarget.checked)} />
          Replace the rows the tenant holds now (otherwise the restore fails if it holds any)
        </label>
        <button type="submit" class="danger" disabled={!restorable || running || busy}>
          Restore…
        </button>
      </form>
      {running ? <p class="muted">A restore is running: events sent meanwhile are kept and written once it ends.</p> : null}
      {confirm ? (
        <ConfirmByName
          name={tenant.name}
          what="tenant"
          verb="Restore"
          consequence={
            overwrite
              ? "The rows the tenant holds now are replaced by the backup's and cannot be recovered."
              : "The backup's rows are brought back into the tenant."
          }
          busy={busy}
          onCancel={() => setConfirm(false)}
          onConfirm={() =>
            void run(async () => {
              await api.post<Restore>(path, { backup, overwrite });
              setConfirm(false);
              restores.reload();
            })
          }
        />
      ) : null}
      <ErrorBox error={restores.error ?? error} />
      {restores.data && restores.data.length === 0 ? <p class="muted">No restores yet.</p> : null}
      {restores.data && restores.data.length > 0 ? (
        <Table caption="Restores" columns={["Requested", "Backup", "Replace rows", "Phase", "Message"]}>
          {restores.data.map((r) => (
              <tr key={r.name}>
                <td>{r.created ? new Date(r.created).toLocaleString() : "—"}</td>
                <td>
                  <code>{r.backup}</code>
                </td>
                <td>{r.overwrite ? "yes" : "no"}</td>
                <td>
                  <span class={`badge ${restoreBadge(r.status.phase)}`}>{r.status.phase ?? "Pending"}</span>
                </td>
                <td>{r.status.message ?? ""}</td>
              </tr>
            ))}
        </Table>
      ) : null}
    </div>
  );
}
