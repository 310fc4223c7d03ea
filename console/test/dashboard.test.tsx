import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Api } from "../src/api";
import { type Dashboard, DashboardView } from "../src/dashboards";

afterEach(cleanup);

const dashboard: Dashboard = {
  name: "d1",
  tenant: "shop",
  generation: 1,
  status: { observedGeneration: 1, panels: [{ id: "bad", valid: false, message: "unknown column nope" }] },
  spec: {
    tenantRef: { name: "shop" },
    title: "Traffic",
    refresh: "1s",
    timeRange: { from: "now-6h", to: "now" },
    variables: [{ name: "kind", type: "custom", default: "signup", options: ["signup", "click"] }],
    panels: [
      { id: "n", title: "<b>Signups</b>", sql: "SELECT 1", visualization: "stat" },
      { id: "bad", title: "Broken", sql: "SELECT nope", visualization: "table" },
    ],
  },
};

function fakeApi() {
  const get = vi.fn(async (path: string, _query?: Record<string, string>) => {
    if (path.endsWith("/data")) return { columns: [{ name: "n", type: "UInt64" }], rows: [["7"]], cached: false, generatedAt: "" };
    return dashboard;
  });
  return { get, api: { get } as unknown as Api };
}

const dataCalls = (get: ReturnType<typeof fakeApi>["get"]) =>
  get.mock.calls.filter(([p]) => p.endsWith("/panels/n/data")).map(([, q]) => q);

describe("DashboardView", () => {
  it("asks for each panel with the time range and variables, and refreshes at the dashboard's interval", async () => {
    const { get, api } = fakeApi();
    render(<DashboardView api={api} org="o1" name="d1" />);
    await screen.findByText("7");
    expect(dataCalls(get)[0]).toEqual({ from: "now-6h", to: "now", "var.kind": "signup" });
    await waitFor(() => expect(dataCalls(get).length).toBeGreaterThanOrEqual(2), { timeout: 3000 });
    fireEvent.change(screen.getByLabelText("kind"), { target: { value: "click" } });
    await waitFor(() => expect(dataCalls(get).at(-1)).toMatchObject({ "var.kind": "click" }));
    fireEvent.change(screen.getByLabelText("Time range"), { target: { value: "now-1h" } });
    await waitFor(() => expect(dataCalls(get).at(-1)).toMatchObject({ from: "now-1h" }));
  });

  it("shows a title as text and the operator's verdict on the refused panel", async () => {
    const { api } = fakeApi();
    render(<DashboardView api={api} org="o1" name="d1" />);
    const heading = await screen.findByRole("heading", { name: "<b>Signups</b>" });
    expect(heading.querySelector("b")).toBeNull();
    const refused = screen.getByTestId("panel-invalid");
    expect(refused.textContent).toContain("unknown column nope");
  });
});
