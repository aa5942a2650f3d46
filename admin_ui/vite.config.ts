import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import { fileURLToPath } from "node:url";

// `npm run build` writes dist/, which `djflow serve` serves at /. In development, `npm run dev`
// proxies /api to a `djflow serve` on port 8000.
export default defineConfig({
  plugins: [react()],
  resolve: { alias: { "@rjsf/validator-ajv8": fileURLToPath(new URL("./src/no-ajv.ts", import.meta.url)) } },
  build: { outDir: "dist", chunkSizeWarningLimit: 2500, sourcemap: false },
  server: { proxy: { "/api": "http://127.0.0.1:8000" } },
});
