import { cleanup, fireEvent, render, screen } from "@testing-library/preact";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Chart } from "../src/chart";
import type { PanelData } from "../src/data";
import { ApiError } from "../src/errors";
import { phaseClass } from "../src/tenants";
import { ConfirmByName, ErrorBox } from "../src/ui";

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
