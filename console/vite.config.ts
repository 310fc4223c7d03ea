import preact from "@preact/preset-vite";
import { defineConfig } from "vitest/config";

// The built console goes to dist/, which the control plane serves (TENANTRY_CP_CONSOLE_DIR).
// No inline script or style in the output: the control plane's Content-Security-Policy
// allows scripts and styles from its own origin only.
export default defineConfig({
  plugins: [preact()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["test/**/*.test.ts", "test/**/*.test.tsx"],
  },
});
