import solid from "vite-plugin-solid";
import { defineConfig } from "vitest/config";

// Two projects: `*.solid.test.ts(x)` run with Solid's browser build (vite-plugin-solid, which
// also makes every import resolve as in a browser); the rest run as in Node, where the package's
// users run it with the `ws` package and no DOM.
const timeouts = { testTimeout: 60_000, hookTimeout: 60_000 };

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          include: ["test/**/*.test.ts"],
          exclude: ["test/**/*.solid.test.ts"],
          environment: "node",
          ...timeouts,
        },
      },
      {
        plugins: [solid()],
        test: { name: "solid", include: ["test/**/*.solid.test.{ts,tsx}"], environment: "node", ...timeouts },
      },
    ],
  },
});
