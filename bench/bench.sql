-- The suite's helper for the PostGraphile servers: the open cases of a tenant in
-- casefile's default list order (most recently updated first, then by number), which
-- PostGraphile's equality-only conditions cannot say. Exposed as `openCases(tenant:)`.
CREATE SCHEMA IF NOT EXISTS bench;
CREATE OR REPLACE FUNCTION bench.open_cases(tenant uuid) RETURNS SETOF public.cases
LANGUAGE sql STABLE AS $$
  SELECT * FROM public.cases
  WHERE tenant_id = tenant AND status_rank < 4
  ORDER BY updated_at DESC, number DESC
$$;
