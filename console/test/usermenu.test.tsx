// The user menu's "End every session": confirmed first, then DELETE /v1/auth/sessions
// through the API client, and the console signed out; a refusal is shown in words.
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { afterEach, describe, expect, it } from "vitest";
import { Api } from "../src/api";
import { UserMenu } from "../src/app";
import { Session } from "../src/auth";

afterEach(cleanup);

const REDIRECT = "https://console.test/callback";
function json(status: number, body: unknown, extra: Partial<Response> = {}): Response {
  return {
    ok: status >= 200 && status < 300,
    status,
    redirected: false,
    url: "",
    headers: new Headers({ "X-Request-ID": "rid-7" }),
    json: async () => body,
    ...extra,
  } as Response;
}

/** A signed-in session whose API answers DELETE /v1/auth/sessions with `answer`. */
async function signedIn(answer: Response): Promise<{ api: Api; calls: string[] }> {
  const calls: string[] = [];
  const fetchFn = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input), "https://console.test");
    calls.push(`${init?.method ?? "GET"} ${url.pathname}`);
    if (url.pathname === "/v1/oauth/authorize") {
      const body = init?.body as URLSearchParams;
      return json(200, null, { redirected: true, url: `${REDIRECT}?code=c&state=${body.get("state")}` });
    }
    if (url.pathname === "/v1/oauth/token") return json(200, { access_token: "a1", refresh_token: "r1", expires_in: 3600 });
    if (url.pathname === "/v1/auth/sessions") return answer;
    return json(404, null);
  };
  const session = new Session("", REDIRECT, fetchFn);
  await session.signIn("a@example.com", "pw");
  return { api: new Api(session, fetchFn), calls };
}

function openAndConfirm(): void {
  fireEvent.click(screen.getByRole("button", { name: "Ada" }));
  fireEvent.click(screen.getByRole("menuitem", { name: "End every session…" }));
  expect(screen.getByRole("dialog").textContent).toContain("everywhere else");
  fireEvent.click(screen.getByRole("button", { name: "End every session" }));
}

describe("UserMenu: end every session", () => {
  it("asks first, then ends every session at the API and signs out here", async () => {
    const { api, calls } = await signedIn(json(200, { ended: 3 }));
    render(<UserMenu api={api} me={{ id: "u1", email: "ada@example.com", name: "Ada" }} />);
    openAndConfirm();
    await waitFor(() => expect(api.session.signedIn).toBe(false));
    expect(calls).toContain("DELETE /v1/auth/sessions");
    expect(location.pathname).toBe("/login");
  });

  it("shows a refusal with the request id and keeps the session", async () => {
    const refusal = json(503, { error: { code: "unavailable", message: "Redis is unreachable", requestId: "rid-7" } });
    const { api } = await signedIn(refusal);
    render(<UserMenu api={api} me={{ id: "u1", email: "ada@example.com", name: "Ada" }} />);
    openAndConfirm();
    const alert = await screen.findByRole("alert");
    expect(alert.querySelector("code")?.textContent).toBe("rid-7");
    expect(api.session.signedIn).toBe(true);
  });
});
