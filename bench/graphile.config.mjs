// PostGraphile 5 for the benchmark suite: the amber preset, production mode (NODE_ENV),
// no GraphiQL, no explain, the tables of the `public` schema plus the suite's
// `bench` schema (the open-case list as a function: PostGraphile's conditions test
// equality only, and casefile's default list is "status_rank < 4").
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";

export default {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({
      connectionString: process.env.DATABASE_URL,
      schemas: ["public", "bench"],
      poolConfig: { max: Number(process.env.PG_POOL_SIZE || 16) },
    }),
  ],
  grafserv: {
    host: "127.0.0.1",
    port: Number(process.env.PORT || 5005),
    graphiql: false,
    watch: false,
    maxRequestLength: 1000000,
  },
  grafast: { explain: false },
};
