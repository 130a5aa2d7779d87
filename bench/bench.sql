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

-- PostGraphile exposes a backward relation (Case.caseDetectionsByTenantIdAndCaseId) only
-- when an index leads with the foreign key's columns; casefile's link indexes lead with
-- case_id alone. This index lets PostGraphile serve the case page at all; the planner
-- still reads the page through case_detections_case_observed_idx.
CREATE INDEX IF NOT EXISTS bench_case_detections_tenant_case_idx
    ON public.case_detections (tenant_id, case_id);
