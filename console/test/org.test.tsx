import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Api } from "../src/api";
import { ApiError } from "../src/errors";
import { AUDIT_PAGE_SIZE, Audit, Subscriptions, acceptLink, money } from "../src/org";

afterEach(cleanup);

const event = (seq: number) => ({
  seq,
  at: "2026-12-06T10:00:00Z",
  actor: "u1",
  action: "tenant.create",
  target: `tenant/t${seq}`,
  outcome: "success",
  request_id: `r${seq}`,
});

describe("org helpers", () => {
  it("puts the invitation token in the fragment", () => {
    expect(acceptLink("https://app.example.com", "tok_en-1")).toBe("https://app.example.com/invitations/accept#token=tok_en-1");
  });
  it("formats cents as money", () => {
    expect(money(123456, "usd")).toBe("$1,234.56");
  });
});

describe("Audit", () => {
  it("pages forward by the API's cursor and back, and filters from the first page", async () => {
    const get = vi.fn(async (_path: string, q?: Record<string, unknown>) =>
      q?.after === 0 ? { events: [event(1), event(2)], next_after: 2 } : { events: [event(3)], next_after: null },
    );
    render(<Audit api={{ get } as unknown as Api} org="o1" />);
    await screen.findByText("tenant/t1");
    expect(get).toHaveBeenLastCalledWith("/v1/orgs/o1/audit", { action: "", actor: "", outcome: "", after: 0, limit: AUDIT_PAGE_SIZE });
    fireEvent.click(screen.getByRole("button", { name: "Next page" }));
    await screen.findByText("tenant/t3");
    expect(get.mock.calls.at(-1)?.[1]).toMatchObject({ after: 2 });
    expect((screen.getByRole("button", { name: "Next page" }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole("button", { name: "Previous page" }));
    await screen.findByText("tenant/t1");
    fireEvent.input(screen.getByLabelText("Action"), { target: { value: "auth.login" } });
    fireEvent.change(screen.getByLabelText("Outcome"), { target: { value: "denied" } });
    fireEvent.click(screen.getByRole("button", { name: "Filter" }));
    await waitFor(() => expect(get.mock.calls.at(-1)?.[1]).toMatchObject({ action: "auth.login", outcome: "denied", after: 0 }));
  });

  it("shows a refusal in customer words with the request id", async () => {
    const get = vi.fn(async () => {
      throw new ApiError(403, "forbidden", "audit:read is required", "rid-7");
    });
    render(<Audit api={{ get } as unknown as Api} org="o1" />);
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Your role in this organisation does not allow this.");
    expect(alert.textContent).toContain("rid-7");
  });
});

describe("Subscriptions", () => {
  it("starts, switches and cancels through the billing API", async () => {
    const limits = { max_tenants: 1, max_dashboards: 5, max_shards: 1, retention_days: 30, events_per_month: 1000000 };
    const plans = [
      { key: "starter", name: "Starter", currency: "usd", base_fee: 0, limits },
      { key: "growth", name: "Growth", currency: "usd", base_fee: 4900, limits },
    ];
    let sub: { plan: string; status: string; current_period_end: string } | null = null;
    const get = vi.fn(async (path: string) => {
      if (path.endsWith("/plans")) return plans;
      if (sub === null) throw new ApiError(404, "not_found", "the organisation has no subscription", "r");
      return sub;
    });
    const post = vi.fn(async (path: string, body?: { plan: string }) => {
      sub = path.endsWith("/cancel") ? { ...sub!, status: "canceling" } : { plan: body!.plan, status: "active", current_period_end: "2027-01-01T00:00:00Z" };
      return sub;
    });
    const patch = vi.fn(async (_path: string, body: { plan: string }) => {
      sub = { ...sub!, plan: body.plan };
      return sub;
    });
    const onChanged = vi.fn();
    render(<Subscriptions api={{ get, post, patch } as unknown as Api} org="o1" onChanged={onChanged} />);
    await screen.findByText("No subscription yet: choose a plan.");
    expect(screen.getByText("$49.00")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Subscribe to Growth" }));
    await screen.findByText("current plan");
    expect(post).toHaveBeenCalledWith("/v1/orgs/o1/billing/subscription", { plan: "growth" });
    fireEvent.click(screen.getByRole("button", { name: "Switch to Starter" }));
    await waitFor(() => expect(patch).toHaveBeenCalledWith("/v1/orgs/o1/billing/subscription", { plan: "starter" }));
    fireEvent.click(await screen.findByRole("button", { name: /Cancel the subscription/ }));
    await waitFor(() => expect(post).toHaveBeenLastCalledWith("/v1/orgs/o1/billing/subscription/cancel"));
    await screen.findByText(/\(canceling\)/);
    expect(onChanged).toHaveBeenCalledTimes(3);
    expect(screen.queryByRole("alert")).toBeNull();
  });
});
