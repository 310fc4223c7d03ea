// Every error the API returns, in words a customer understands, with its request id.
// The API has one error shape, {"error": {"code", "message", "requestId", ...}}, and the
// OAuth endpoints answer in RFC 6749's {"error", "error_description"}.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly requestId: string | null,
    readonly fields: string[] = [],
  ) {
    super(`${code}: ${detail}`);
  }
}

const WORDS: Record<string, string> = {
  bad_request: "The request could not be understood.",
  invalid_input: "Some of what you entered is not valid.",
  unauthenticated: "You are signed out or your credentials are wrong.",
  forbidden: "Your role in this organisation does not allow this.",
  not_found: "This no longer exists, or you have no access to it.",
  conflict: "This clashes with something that already exists.",
  plan_limit_exceeded: "Your plan's limit is reached. Upgrade the plan or remove something first.",
  rate_limited: "Too many requests in a short time. Wait a moment and try again.",
  unavailable: "The service is briefly unavailable. Try again in a few seconds.",
  internal: "Something went wrong on our side.",
  invalid_grant: "Your session has ended. Please sign in again.",
  invalid_client: "This console is not registered with the API.",
  invalid_request: "The sign-in request was refused.",
  network: "The service could not be reached. Check your connection and try again.",
};

/** Parse an error response body (either shape) into an ApiError. */
export function parseError(status: number, body: unknown, headerId: string | null): ApiError {
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    const err = b.error;
    if (err && typeof err === "object") {
      const e = err as Record<string, unknown>;
      const details = Array.isArray(e.details) ? e.details : [];
      const fields = details
        .map((d) => {
          const loc = (d as { loc?: unknown[] }).loc ?? [];
          const msg = (d as { msg?: string }).msg ?? "";
          const where = loc.filter((p) => p !== "body").join(".");
          return where ? `${where}: ${msg}` : msg;
        })
        .filter(Boolean);
      return new ApiError(
        status,
        String(e.code ?? "internal"),
        String(e.message ?? ""),
        (e.requestId as string | null) ?? headerId,
        fields,
      );
    }
    if (typeof err === "string") {
      return new ApiError(status, err, String(b.error_description ?? ""), headerId);
    }
  }
  return new ApiError(status, status >= 500 ? "internal" : "bad_request", "", headerId);
}

/** The sentence shown to the customer (the API's own message follows as detail). */
export function customerWords(err: ApiError): string {
  return WORDS[err.code] ?? (err.status >= 500 ? WORDS.internal : WORDS.bad_request);
}

export function describe(err: unknown): { words: string; detail: string; requestId: string | null } {
  if (err instanceof ApiError) {
    const detail = [err.detail, ...err.fields].filter(Boolean).join(" · ");
    return { words: customerWords(err), detail, requestId: err.requestId };
  }
  return { words: WORDS.internal, detail: String(err), requestId: null };
}
