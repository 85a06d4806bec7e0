import { defineConfig } from "vitest/config";
import solid from "vite-plugin-solid";

// The build goes into the Python package, which serves it at `/` (never committed).
export default defineConfig({
  plugins: [solid()],
  base: "./",
  // `npm run dev` serves the UI with hot reload and passes the API to a running `sessionwire serve`.
  server: {
    // The server takes state-changing requests and WebSockets from its own origin only: the
    // proxy presents them as the server's (the dev page's origin is another port).
    proxy: {
      "/v1": {
        target: process.env.SESSIONWIRE_URL ?? "http://127.0.0.1:8765",
        ws: true,
        headers: { origin: process.env.SESSIONWIRE_URL ?? "http://127.0.0.1:8765" },
      },
    },
  },
  build: {
    outDir: "../src/sessionwire/static",
    emptyOutDir: true,
    target: "es2022",
  },
  test: {
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    environment: "node",
  },
});
