// Built by server/build.rs into dist/<hash>/ and embedded in the mlgate binary,
// which serves index.html at / and the assets under /playground/.
// `npm run dev` serves it on :5173 against a mlgate on :8080.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  base: '/playground/',
  plugins: [react()],
  build: {
    sourcemap: false,
    // Monaco (GraphiQL's editor) is one large chunk; that is expected.
    chunkSizeWarningLimit: 8000,
  },
  // Vite's dependency pre-bundling cannot follow the `?worker` imports of
  // GraphiQL's Monaco worker setup; served unbundled, `npm run dev` works.
  optimizeDeps: {
    exclude: ['graphiql/setup-workers/vite', '@graphiql/react/setup-workers/vite'],
  },
  server: {
    proxy: {
      '/graphql': { target: 'http://127.0.0.1:8080', ws: true },
    },
  },
});
