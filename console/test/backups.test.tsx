import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Api } from "../src/api";
import { Backups, type Restore, bytes } from "../src/backups";
import { ApiError } from "../src/errors";
import type { Tenant } from "../src/tenants";

afterEach(cleanup);

const PATH = "/v1/orgs/o1/tenants/shop/restores";

function tenant(status: Tenant["status"]): Tenant {
  return { name: "shop", resource_name: "acme-shop", spec: {}, status, created: null };
}

const backedUp = tenant({
  backup: {
    count: 3,
    lastBackup: "20261206T031500.123Z",
    lastSuccessTime: "2026-12-06T03:21:42Z",
    sizeBytes: 3 * 1024 * 1024,
    rows: 1200,
    shards: 2,
    replicas: 2,
  },
  conditions: [{ type: "BackupHealthy", status: "True", reason: "BackupSucceeded", message: "3 backups kept" }],
});

/** An API whose restores list is `listed` and whose POST adds one (or throws `refusal`). */
function fakeApi(listed: Restore[], refusal?: ApiError) {
  const post = vi.fn(async (_path: string, body: { backup: string; overwrite: boolean }) => {
    if (refusal) throw refusal;
    const made: Restore = { name: "acme-shop-1a2b3c4d", ...body, status: {}, created: "2026-12-06T10:00:00Z" };
    listed.unshift(made);
    return made;
  });
  const get = vi.fn(async () => [...listed]);
  return { api: { get, post } as unknown as Api, get, post };
}

describe("bytes", () => {
  it("says sizes in the unit that fits", () => {
    expect([bytes(512), bytes(2048), bytes(3 * 1024 ** 3)]).toEqual(["512 B", "2.0 KiB", "3.0 GiB"]);
  });
});

describe("Backups", () => {
  it("shows what the operator reports about the tenant's backups and its restores", async () => {
    const done: Restore = {
      name: "acme-shop-00000001",
      backup: "latest",
      overwrite: false,
      status: { phase: "Succeeded", message: "restored 1200 rows" },
      created: "2026-12-05T10:00:00Z",
    };
    const { api, get } = fakeApi([done]);
    render(<Backups api={api} org="o1" tenant={backedUp} />);
    expect(screen.getByText("20261206T031500.123Z", { selector: "code" })).toBeTruthy();
    expect(screen.getByText("3.0 MiB")).toBeTruthy();
    expect(screen.getByText("2 shards × 2 replicas")).toBeTruthy();
    expect(screen.getByText("BackupSucceeded").className).toContain("ok");
    await screen.findByText("restored 1200 rows");
    expect(get).toHaveBeenCalledWith(PATH);
    expect(screen.getByText("Succeeded").className).toContain("ok");
  });

  it("restores the chosen backup once the tenant's name is typed, then lists it", async () => {
    const { api, post } = fakeApi([]);
    render(<Backups api={api} org="o1" tenant={backedUp} />);
    fireEvent.change(screen.getByLabelText("Backup"), { target: { value: "20261206T031500.123Z" } });
    fireEvent.click(screen.getByRole("checkbox"));
    fireEvent.click(screen.getByRole("button", { name: "Restore…" }));
    expect(screen.getByRole("dialog").textContent).toContain("cannot be recovered");
    const go = screen.getByRole("button", { name: "Restore tenant" }) as HTMLButtonElement;
    expect(go.disabled).toBe(true);
    fireEvent.input(screen.getByLabelText("Name"), { target: { value: "shop" } });
    fireEvent.click(go);
    await waitFor(() => expect(post).toHaveBeenCalledWith(PATH, { backup: "20261206T031500.123Z", overwrite: true }));
    await screen.findByText("Pending");
    expect(screen.queryByRole("dialog")).toBeNull();
    // one restore at a time: the button waits for this one to end
    expect((screen.getByRole("button", { name: "Restore…" }) as HTMLButtonElement).disabled).toBe(true);
  });

  it("offers no restore before the first complete backup, and says a failed backup's line", async () => {
    const { api } = fakeApi([]);
    const failing = tenant({
      backup: { lastError: "backup failed: shard 1: no replica answered" },
      conditions: [{ type: "BackupHealthy", status: "False", reason: "BackupFailed" }],
    });
    render(<Backups api={api} org="o1" tenant={failing} />);
    expect(screen.getByText(/No complete backup yet/)).toBeTruthy();
    await screen.findByText("No restores yet.");
    expect((screen.getByRole("button", { name: "Restore…" }) as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByText("backup failed: shard 1: no replica answered")).toBeTruthy();
    expect(screen.getByText("BackupFailed").className).toContain("bad");
  });

  it("shows the API's refusal in words, with the request id", async () => {
    const { api } = fakeApi([], new ApiError(403, "forbidden", "tenants:restore is required", "rid-3"));
    render(<Backups api={api} org="o1" tenant={backedUp} />);
    fireEvent.click(screen.getByRole("button", { name: "Restore…" }));
    fireEvent.input(screen.getByLabelText("Name"), { target: { value: "shop" } });
    fireEvent.click(screen.getByRole("button", { name: "Restore tenant" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Your role in this organisation does not allow this.");
    expect(alert.querySelector("code")?.textContent).toBe("rid-3");
  });
});
