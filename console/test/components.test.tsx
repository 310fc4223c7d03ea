import { cleanup, fireEvent, render, screen } from "@testing-library/preact";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Chart } from "../src/chart";
import type { PanelData } from "../src/data";
import { ApiError } from "../src/errors";
import { phaseClass } from "../src/tenants";
import { ActionButton, ConfirmByName, ErrorBox, Field, RowForm, ShownOnce, Table } from "../src/ui";

afterEach(cleanup);

const data = (columns: [string, string][], rows: unknown[][]): PanelData => ({
  columns: columns.map(([name, type]) => ({ name, type })),
  rows,
  cached: false,
  generatedAt: "",
});

describe("ErrorBox", () => {
  it("shows the customer's words, the API's detail and the request id", () => {
    render(<ErrorBox error={new ApiError(409, "conflict", "a tenant named shop exists", "rid-42")} />);
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toContain("This clashes with something that already exists.");
    expect(alert.textContent).toContain("a tenant named shop exists");
    expect(alert.querySelector("code")?.textContent).toBe("rid-42");
  });
  it("renders nothing without an error", () => {
    const { container } = render(<ErrorBox error={null} />);
    expect(container.innerHTML).toBe("");
  });
});

describe("ConfirmByName", () => {
  it("enables the delete button only once the exact name is typed", () => {
    const onConfirm = vi.fn();
    render(<ConfirmByName name="shop" what="tenant" onConfirm={onConfirm} onCancel={() => undefined} />);
    const button = screen.getByRole("button", { name: "Delete tenant" }) as HTMLButtonElement;
    const input = screen.getByLabelText("Name");
    expect(button.disabled).toBe(true);
    fireEvent.input(input, { target: { value: "sho" } });
    expect(button.disabled).toBe(true);
    fireEvent.input(input, { target: { value: "shop" } });
    expect(button.disabled).toBe(false);
    fireEvent.click(button);
    expect(onConfirm).toHaveBeenCalledTimes(1);
  });
});

describe("Chart", () => {
  it("draws a stat and says when it is on screen", async () => {
    const drawn = vi.fn();
    render(<Chart kind="stat" title="Signups" data={data([["n", "UInt64"]], [["25"]])} onDrawn={drawn} />);
    expect(document.querySelector(".stat-value")?.textContent).toBe("25");
    await vi.waitFor(() => expect(drawn).toHaveBeenCalled());
  });

  it("draws a table whose cells are text, never markup", () => {
    render(<Chart kind="table" title="t" data={data([["<b>c</b>", "String"]], [["<img src=x onerror=alert(1)>"]])} />);
    expect(document.querySelector("img")).toBeNull();
    expect(screen.getByRole("columnheader").textContent).toBe("<b>c</b>");
    expect(screen.getByRole("cell").textContent).toBe("<img src=x onerror=alert(1)>");
  });

  it("draws a pie with the hovered slice's value", () => {
    render(<Chart kind="pie" title="Events" data={data([["event", "String"], ["n", "UInt64"]], [["signup", 3], ["click", 1]])} />);
    const paths = document.querySelectorAll("svg path");
    expect(paths).toHaveLength(2);
    expect(paths[0].querySelector("title")?.textContent).toBe("signup: 3 (75.0%)");
    fireEvent.mouseEnter(paths[1]);
    expect(document.querySelector(".hover-value")?.textContent).toBe("click: 1 (25.0%)");
  });
});

describe("tenant phase badge", () => {
  it("maps phases to their colour class", () => {
    expect(phaseClass("Ready")).toBe("ok");
    expect(phaseClass("Failed")).toBe("bad");
    expect(phaseClass(undefined)).toBe("wait");
  });
});

describe("the shared building blocks", () => {
  it("Table heads every column, hidden ones for screen readers only", () => {
    render(
      <Table caption="Keys" columns={["Name", { hidden: "Actions" }]}>
        <tr>
          <td>k1</td>
          <td>x</td>
        </tr>
      </Table>,
    );
    const heads = screen.getAllByRole("columnheader");
    expect(heads.map((h) => [h.getAttribute("scope"), h.textContent])).toEqual([
      ["col", "Name"],
      ["col", "Actions"],
    ]);
    expect(heads[1].querySelector(".sr-only")).not.toBeNull();
    expect(screen.getByRole("table", { name: "Keys" })).toBeTruthy();
  });

  it("RowForm submits its Fields without a page load, and waits while busy", () => {
    const submitted = vi.fn();
    let value = "";
    const { rerender } = render(
      <RowForm submit="Create key" busy={false} onSubmit={submitted}>
        <Field label="Key name" required value={value} onValue={(v) => (value = v)} />
      </RowForm>,
    );
    fireEvent.input(screen.getByLabelText("Key name"), { target: { value: "producer" } });
    expect(value).toBe("producer");
    fireEvent.submit(screen.getByRole("button", { name: "Create key" }).closest("form")!);
    expect(submitted).toHaveBeenCalledTimes(1);
    rerender(
      <RowForm submit="Create key" busy onSubmit={submitted}>
        <Field label="Key name" value={value} onValue={(v) => (value = v)} />
      </RowForm>,
    );
    expect((screen.getByRole("button", { name: "Create key" }) as HTMLButtonElement).disabled).toBe(true);
  });

  it("ActionButton hands its action to the component's runner", async () => {
    const action = vi.fn(async () => undefined);
    const run = vi.fn(async (fn: () => Promise<void>) => fn());
    render(
      <ActionButton run={run} busy={false} action={action}>
        Revoke k1
      </ActionButton>,
    );
    fireEvent.click(screen.getByRole("button", { name: "Revoke k1" }));
    await vi.waitFor(() => expect(action).toHaveBeenCalledTimes(1));
    expect(run).toHaveBeenCalledWith(action);
  });

  it("ShownOnce shows its content until the user is done", () => {
    const done = vi.fn();
    render(
      <ShownOnce done="I have copied it" onDone={done}>
        <code>secret</code>
      </ShownOnce>,
    );
    expect(screen.getByRole("status").textContent).toContain("secret");
    fireEvent.click(screen.getByRole("button", { name: "I have copied it" }));
    expect(done).toHaveBeenCalledTimes(1);
  });
});
