// PostGraphile v4 over the benchmark database, configured the way mlgate
// runs: every request in a transaction under the non-owner gateway role
// with the caller's tenant set locally, so the same row-level security
// policies apply. The tenant comes from the `x-tenant` header (the harness
// is the only client); mlgate takes it from a verified API key instead.
//
//   DATABASE_URL=postgres://… PORT=5678 node server.mjs
import http from "node:http";
import { postgraphile } from "postgraphile";
import PgAggregatesPlugin from "@graphile/pg-aggregates";
import ConnectionFilterPlugin from "postgraphile-plugin-connection-filter";

const port = Number(process.env.PORT ?? 5678);
const pool = Number(process.env.POOL_SIZE ?? 10);
const middleware = postgraphile(
  { connectionString: process.env.DATABASE_URL, max: pool },
  "public",
  {
    appendPlugins: [ConnectionFilterPlugin, PgAggregatesPlugin.default ?? PgAggregatesPlugin],
    disableQueryLog: true,
    graphiql: false,
    dynamicJson: true,
    setofFunctionsContainNulls: false,
    ignoreRBAC: true,
    pgSettings: (req) => ({
      role: "mlgate_gateway",
      "app.tenant_id": String(req.headers["x-tenant"] ?? ""),
    }),
  },
);
http.createServer(middleware).listen(port, "127.0.0.1", () => {
  console.log(`postgraphile listening on http://127.0.0.1:${port}/graphql`);
});
