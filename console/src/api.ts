// The REST API client: the bearer token from the session, one refresh and retry on a
// 401, and every failure as an ApiError (errors.ts).

import { errorOf, type Session } from "./auth";
import { ApiError } from "./errors";

export type Query = Record<string, string | number | undefined>;

export class Api {
  constructor(
    readonly session: Session,
    private readonly fetchFn: typeof fetch = (...a) => fetch(...a),
  ) {}

  get<T>(path: string, query?: Query): Promise<T> {
    return this.call<T>("GET", path, undefined, query);
  }
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.call<T>("POST", path, body);
  }
  put<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>("PUT", path, body);
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>("PATCH", path, body);
  }
  del<T>(path: string): Promise<T> {
    return this.call<T>("DELETE", path);
  }

  /** End every session of the user at the API, this one too (DELETE /v1/auth/sessions),
   * then forget the tokens here; how many sessions ended. A refusal is thrown and this
   * session kept: the others may still be live, so the user must see it and retry. */
  async endEverySession(): Promise<number> {
    const { ended } = await this.del<{ ended: number }>("/v1/auth/sessions");
    this.session.end(
      `Every session has ended (${ended} in all, this one included). Sign in again to continue.`,
    );
    return ended;
  }

  async call<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
    let res = await this.send(method, path, body, query);
    if (res.status === 401 && (await this.session.refresh())) {
      res = await this.send(method, path, body, query);
    }
    if (res.status === 401) {
      this.session.end("Your session has ended. Please sign in again.");
    }
    if (!res.ok) throw await errorOf(res);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  private async send(method: string, path: string, body?: unknown, query?: Query): Promise<Response> {
    const qs = query
      ? new URLSearchParams(
          Object.entries(query)
            .filter(([, v]) => v !== undefined && v !== "")
            .map(([k, v]) => [k, String(v)]),
        ).toString()
      : "";
    const headers: Record<string, string> = {};
    const token = this.session.accessToken;
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try {
      return await this.fetchFn(`${this.session.base}${path}${qs ? `?${qs}` : ""}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
      });
    } catch {
      throw new ApiError(0, "network", "", null);
    }
  }
}

/** Path segment, encoded. */
export const seg = (s: string): string => encodeURIComponent(s);
