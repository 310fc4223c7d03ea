// The OAuth client's logic against a scripted token server (the real one is exercised by
// tests/e2e/test_console.py in a real browser).
import { beforeEach, describe, expect, it, vi } from "vitest";
import { Api } from "../src/api";
import { CLIENT_ID, Session } from "../src/auth";
import { ApiError } from "../src/errors";
import { challengeOf } from "../src/pkce";

const REDIRECT = "https://console.test/callback";

function reply(status: number, body: unknown, extra: Partial<Response> = {}): Response {
  return {
    ok: status >= 200 && status < 300,
    status,
    redirected: false,
    url: "",
    headers: new Headers({ "X-Request-ID": "req-1" }),
    json: async () => body,
    ...extra,
  } as Response;
}

/** The API's rules: a code bound to its challenge, refresh tokens used once, a reused
 * one ending the whole session. */
class Server {
  challenge = "";
  codeUsed = false;
  live = new Set<string>();
  used = new Set<string>();
  n = 0;
  revoked = false;
  endAllFails = false;
  calls: { path: string; method: string; body: URLSearchParams | null; auth: string | null }[] = [];

  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input), "https://console.test");
    const body = init?.body instanceof URLSearchParams ? init.body : null;
    const auth = new Headers(init?.headers).get("Authorization");
    this.calls.push({ path: url.pathname, method: init?.method ?? "GET", body, auth });
    if (url.pathname === "/v1/oauth/authorize" && body) {
      if (body.get("password") !== "right-password") {
        return reply(401, { error: { code: "unauthenticated", message: "invalid e-mail or password", requestId: "rid-9" } });
      }
      this.challenge = body.get("code_challenge") ?? "";
      const to = `${body.get("redirect_uri")}?code=c0de&state=${body.get("state")}`;
      return reply(200, null, { redirected: true, url: to });
    }
    if (url.pathname === "/v1/oauth/token" && body) {
      if (body.get("grant_type") === "authorization_code") {
        const ok =
          !this.codeUsed &&
          body.get("code") === "c0de" &&
          body.get("client_id") === CLIENT_ID &&
          (await challengeOf(body.get("code_verifier") ?? "")) === this.challenge;
        this.codeUsed = true;
        return ok ? reply(200, this.issue()) : reply(400, { error: "invalid_grant" });
      }
      const token = body.get("refresh_token") ?? "";
      if (this.used.has(token)) this.revoked = true;
      if (this.revoked || !this.live.has(token)) return reply(400, { error: "invalid_grant", error_description: "reused" });
      this.live.delete(token);
      this.used.add(token);
      return reply(200, this.issue());
    }
    if (url.pathname === "/v1/things") {
      return auth === `Bearer access-${this.n}` && !this.revoked ? reply(200, { ok: true }) : reply(401, { error: { code: "unauthenticated", message: "expired", requestId: "r" } });
    }
    if (url.pathname === "/v1/auth/logout") return reply(204, null);
    if (url.pathname === "/v1/auth/sessions" && init?.method === "DELETE") {
      if (this.endAllFails) return reply(503, { error: { code: "unavailable", message: "try again", requestId: "rid-5" } });
      if (auth !== `Bearer access-${this.n}` || this.revoked) return reply(401, { error: { code: "unauthenticated", message: "expired", requestId: "r" } });
      this.revoked = true; // every family of the user, this one too
      return reply(200, { ended: 2 });
    }
    return reply(404, null);
  };

  issue(): { access_token: string; refresh_token: string; expires_in: number } {
    this.n += 1;
    this.live.add(`refresh-${this.n}`);
    return { access_token: `access-${this.n}`, refresh_token: `refresh-${this.n}`, expires_in: 3600 };
  }
}

let server: Server;
let session: Session;
beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
  server = new Server();
  session = new Session("", REDIRECT, server.fetch);
});

describe("sign in", () => {
  it("sends S256 PKCE with the code request and proves the verifier at the token endpoint", async () => {
    await session.signIn("a@example.com", "right-password");
    expect(session.signedIn).toBe(true);
    expect(session.accessToken).toBe("access-1");
    const authorize = server.calls[0].body!;
    expect(authorize.get("code_challenge_method")).toBe("S256");
    expect(authorize.get("response_type")).toBe("code");
    expect(authorize.get("client_id")).toBe(CLIENT_ID);
    expect(authorize.get("redirect_uri")).toBe(REDIRECT);
    expect(authorize.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const token = server.calls[1].body!;
    expect(token.get("code_verifier")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(token.get("code_verifier")).not.toBe(authorize.get("code_challenge"));
  });

  it("reports wrong credentials with the API's request id and stays signed out", async () => {
    const err = await session.signIn("a@example.com", "wrong").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).requestId).toBe("rid-9");
    expect(session.signedIn).toBe(false);
  });

  it("refuses an answer whose state is not its own", async () => {
    const forged = async (i: RequestInfo | URL, init?: RequestInit): Promise<Response> =>
      String(i).endsWith("/authorize") ? reply(200, null, { redirected: true, url: `${REDIRECT}?code=c0de&state=other` }) : server.fetch(i, init);
    const s = new Session("", REDIRECT, forged);
    await expect(s.signIn("a@example.com", "right-password")).rejects.toMatchObject({ code: "invalid_request" });
    expect(s.signedIn).toBe(false);
  });

  it("keeps no token in web storage", async () => {
    await session.signIn("a@example.com", "right-password");
    expect(localStorage.length + sessionStorage.length).toBe(0);
    expect(document.cookie).toBe("");
  });
});

describe("refresh", () => {
  it("rotates: each refresh token is sent once and replaced, one request at a time", async () => {
    await session.signIn("a@example.com", "right-password");
    const [a, b] = await Promise.all([session.refresh(), session.refresh()]);
    expect([a, b]).toEqual([true, true]);
    expect(server.calls.filter((c) => c.body?.get("grant_type") === "refresh_token")).toHaveLength(1);
    expect(session.accessToken).toBe("access-2");
    await session.refresh();
    const sent = server.calls.filter((c) => c.body?.get("grant_type") === "refresh_token").map((c) => c.body!.get("refresh_token"));
    expect(sent).toEqual(["refresh-1", "refresh-2"]);
  });

  it("signs out when the API refuses the refresh token (reuse revokes the session)", async () => {
    await session.signIn("a@example.com", "right-password");
    const events: [boolean, string | undefined][] = [];
    session.subscribe((inNow, reason) => events.push([inNow, reason]));
    server.used.add("refresh-1"); // a thief used it first
    expect(await session.refresh()).toBe(false);
    expect(session.signedIn).toBe(false);
    expect(events).toEqual([[false, "Your session has ended. Please sign in again."]]);
  });

  it("refreshes shortly before the access token expires", async () => {
    await session.signIn("a@example.com", "right-password");
    await vi.advanceTimersByTimeAsync((3600 - 60) * 1000 + 10);
    expect(session.accessToken).toBe("access-2");
  });
});

describe("the API client", () => {
  it("refreshes once on a 401 and retries with the new token", async () => {
    await session.signIn("a@example.com", "right-password");
    server.issue(); // the server moved on: access-1 is no longer accepted
    server.n = 2;
    const api = new Api(session, server.fetch);
    await expect(api.get("/v1/things")).resolves.toEqual({ ok: true });
    expect(session.accessToken).toBe("access-3");
  });

  it("ends the session when the retry is refused too", async () => {
    await session.signIn("a@example.com", "right-password");
    server.revoked = true;
    const api = new Api(session, server.fetch);
    await expect(api.get("/v1/things")).rejects.toBeInstanceOf(ApiError);
    expect(session.signedIn).toBe(false);
  });

  it("logout revokes at the API and forgets the tokens", async () => {
    await session.signIn("a@example.com", "right-password");
    await session.logout();
    const call = server.calls.at(-1)!;
    expect([call.path, call.auth]).toEqual(["/v1/auth/logout", "Bearer access-1"]);
    expect(session.signedIn).toBe(false);
    expect(session.accessToken).toBeNull();
  });

  it("ending every session revokes them all at the API, then signs out saying so", async () => {
    await session.signIn("a@example.com", "right-password");
    const events: [boolean, string | undefined][] = [];
    session.subscribe((inNow, reason) => events.push([inNow, reason]));
    const api = new Api(session, server.fetch);
    await expect(api.endEverySession()).resolves.toBe(2);
    const call = server.calls.at(-1)!;
    expect([call.method, call.path, call.auth]).toEqual(["DELETE", "/v1/auth/sessions", "Bearer access-1"]);
    expect(session.signedIn).toBe(false);
    expect(events).toEqual([[false, "Every session has ended (2 in all, this one included). Sign in again to continue."]]);
    expect(await session.refresh()).toBe(false); // no token left to rotate
  });

  it("a refused end of every session is shown and this session kept (the others may live)", async () => {
    await session.signIn("a@example.com", "right-password");
    server.endAllFails = true;
    const api = new Api(session, server.fetch);
    const err = await api.endEverySession().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).requestId).toBe("rid-5");
    expect(session.signedIn).toBe(true);
  });
});
