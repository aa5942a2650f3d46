-- The role djflow's servers and workers connect as on PostgreSQL, separate from the owner that runs
-- `djflow init` (the migrations). It may add audit events and read them, never change or remove
-- them: UPDATE, DELETE and TRUNCATE on audit_events, audit_checkpoints and audit_keys are not
-- granted, and only the tables' owner could switch their append-only triggers off. Replace djflow_app with the role's name; run as the owner.
GRANT USAGE ON SCHEMA public TO djflow_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO djflow_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, audit_checkpoints, audit_keys FROM djflow_app;
-- Archiving (djflow audit archive) deletes archived events: the owner does it, never the application.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_archives FROM djflow_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO djflow_app;
