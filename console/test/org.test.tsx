import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Api } from "../src/api";
import { ApiError } from "../src/errors";
import { AUDIT_PAGE_SIZE, Audit, acceptLink, money } from "../src/org";

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
