import { describe, expect, it } from "vitest";
import { fragmentParam, match } from "../src/router";

describe("router", () => {
  it("matches patterns and decodes parameters", () => {
    expect(match("/orgs/:org/tenants/:tenant", "/orgs/a%20b/tenants/shop")).toEqual({ org: "a b", tenant: "shop" });
    expect(match("/orgs/:org/tenants", "/orgs/a/dashboards")).toBeNull();
    expect(match("/orgs/:org/tenants", "/orgs/a/tenants/x")).toBeNull();
  });
  it("reads the invitation token from the fragment", () => {
    expect(fragmentParam("#token=abc_DEF-1", "token")).toBe("abc_DEF-1");
    expect(fragmentParam("", "token")).toBeNull();
  });
});
