import { describe, expect, it } from "vitest";
import { ApiError, customerWords, describe as describeError, parseError } from "../src/errors";

describe("parseError", () => {
  it("reads the API's one error shape with its request id", () => {
    const e = parseError(403, { error: { code: "plan_limit_exceeded", message: "max 1 tenant", requestId: "rid-1" } }, null);
    expect(e).toBeInstanceOf(ApiError);
    expect([e.status, e.code, e.detail, e.requestId]).toEqual([403, "plan_limit_exceeded", "max 1 tenant", "rid-1"]);
    expect(customerWords(e)).toMatch(/plan's limit/);
  });

  it("lists the fields of a validation error, without the 'body' prefix", () => {
    const e = parseError(
      422,
      { error: { code: "invalid_input", message: "request validation failed", requestId: "r", details: [{ loc: ["body", "name"], msg: "too long" }] } },
      null,
    );
    expect(describeError(e)).toEqual({
      words: "Some of what you entered is not valid.",
      detail: "request validation failed · name: too long",
      requestId: "r",
    });
  });

  it("reads OAuth's shape and takes the request id from the header", () => {
    const e = parseError(400, { error: "invalid_grant", error_description: "used" }, "hdr-id");
    expect([e.code, e.detail, e.requestId]).toEqual(["invalid_grant", "used", "hdr-id"]);
    expect(customerWords(e)).toMatch(/session has ended/);
  });

  it("falls back to the status for a body it cannot read", () => {
    expect(customerWords(parseError(502, "<html>", null))).toBe("Something went wrong on our side.");
    expect(parseError(418, null, null).code).toBe("bad_request");
  });
});
