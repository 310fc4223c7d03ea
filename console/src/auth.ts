// The console is a public OAuth 2.0 client: authorization code + PKCE (S256).
// Tokens live in this object only (memory): never in storage or cookies, so a reload
// signs the user out. Refresh follows the API's rotation: each refresh token is used
// once and replaced; the API revokes the whole session when a used one comes back, and
// any refusal of a refresh (invalid_grant) ends the session here.

import { ApiError, parseError } from "./errors";
import { challengeOf, newState, newVerifier } from "./pkce";

export const CLIENT_ID = "tenantry-console";

export interface TokenResponse {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

type Fetch = typeof fetch;
export type Listener = (signedIn: boolean, reason?: string) => void;

/** Refresh this many seconds before the access token expires. */
const EARLY_SECONDS = 60;

export class Session {
  private access: string | null = null;
  private refreshToken: string | null = null;
  private expiresAt = 0;
  private inFlight: Promise<boolean> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private listeners = new Set<Listener>();

  constructor(
    readonly base: string,
    readonly redirectUri: string,
    private readonly fetchFn: Fetch = (...a) => fetch(...a),
    private readonly now: () => number = () => Date.now(),
  ) {}

  get signedIn(): boolean {
    return this.access !== null;
  }

  get accessToken(): string | null {
    return this.access;
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Sign in: the credentials go to the authorize endpoint with a fresh PKCE pair; the
   * 303 it answers is followed to the redirect URI, whose query carries the code; the
   * code and the verifier are exchanged for tokens. */
  async signIn(email: string, password: string): Promise<void> {
    const verifier = newVerifier();
    const state = newState();
    const form = new URLSearchParams({
      client_id: CLIENT_ID,
      redirect_uri: this.redirectUri,
      response_type: "code",
      code_challenge: await challengeOf(verifier),
      code_challenge_method: "S256",
      state,
      email,
      password,
    });
    const res = await this.post("/v1/oauth/authorize", form);
    const landed = new URL(res.url || this.redirectUri, this.base || location.origin);
    if (!res.redirected || landed.origin + landed.pathname !== this.redirectUri) {
      throw await errorOf(res);
    }
    const q = landed.searchParams;
    if (q.get("error")) {
      throw new ApiError(400, q.get("error") ?? "invalid_request", q.get("error_description") ?? "", null);
    }
    if (q.get("state") !== state || !q.get("code")) {
      throw new ApiError(400, "invalid_request", "the sign-in answer did not match this request", null);
    }
    const tokens = await this.tokenRequest({
      grant_type: "authorization_code",
      client_id: CLIENT_ID,
      code: q.get("code") ?? "",
      redirect_uri: this.redirectUri,
      code_verifier: verifier,
    });
    this.accept(tokens);
    this.emit(true);
  }

  /** Rotate the refresh token (one request at a time). False: the session has ended. */
  refresh(): Promise<boolean> {
    if (!this.refreshToken) return Promise.resolve(false);
    this.inFlight ??= this.rotate().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async rotate(): Promise<boolean> {
    const used = this.refreshToken;
    if (!used) return false;
    try {
      const tokens = await this.tokenRequest({
        grant_type: "refresh_token",
        client_id: CLIENT_ID,
        refresh_token: used,
      });
      if (this.refreshToken !== used) return this.signedIn; // signed out meanwhile
      this.accept(tokens);
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status < 500 && err.code !== "rate_limited") {
        this.end("Your session has ended. Please sign in again.");
        return false;
      }
      throw err;
    }
  }

  /** Log out: the API revokes this session's tokens; memory is cleared either way. */
  async logout(): Promise<void> {
    const token = this.access;
    this.end();
    if (token) {
      await this.fetchFn(`${this.base}/v1/auth/logout`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}` },
      }).catch(() => undefined);
    }
  }

  /** Forget every token and tell the listeners (reason: shown on the sign-in page). */
  end(reason?: string): void {
    const was = this.signedIn;
    this.access = null;
    this.refreshToken = null;
    this.expiresAt = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (was || reason) this.emit(false, reason);
  }

  /** Seconds until the access token expires (negative once expired). */
  secondsLeft(): number {
    return (this.expiresAt - this.now()) / 1000;
  }

  private accept(t: TokenResponse): void {
    this.access = t.access_token;
    this.refreshToken = t.refresh_token;
    this.expiresAt = this.now() + t.expires_in * 1000;
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(5, t.expires_in - EARLY_SECONDS) * 1000;
    this.timer = setTimeout(() => void this.refresh().catch(() => undefined), wait);
  }

  private emit(signedIn: boolean, reason?: string): void {
    for (const fn of this.listeners) fn(signedIn, reason);
  }

  private async tokenRequest(params: Record<string, string>): Promise<TokenResponse> {
    const res = await this.post("/v1/oauth/token", new URLSearchParams(params));
    if (!res.ok) throw await errorOf(res);
    return (await res.json()) as TokenResponse;
  }

  private async post(path: string, body: URLSearchParams): Promise<Response> {
    try {
      return await this.fetchFn(`${this.base}${path}`, {
        method: "POST",
        body,
        redirect: "follow",
        credentials: "omit",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
      });
    } catch {
      throw new ApiError(0, "network", "", null);
    }
  }
}

export async function errorOf(res: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  return parseError(res.status, body, res.headers.get("X-Request-ID"));
}
