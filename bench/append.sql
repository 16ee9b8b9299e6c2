-- pgbench script 1: one event append. One INSERT of one ~500-byte event row
-- opening a new stream, committed on its own (one round trip).
INSERT INTO bench_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
VALUES ('BenchWallet', gen_random_uuid()::text, 1, 'Charged', '1',
        '{"Charged":{"charge_id":"0193a5b0-7c1e-7a52-9f0e-3c2d1b0a9f8e","amount":100000,"balance":100000},"user_id":"5f0c3e9a-8d7b-4c6a-9e5f-1a2b3c4d5e6f","note":"padding to a typical event row of about five hundred bytes: ................................"}',
        '{"correlation_id":"0193a5b0-7c1e-7a52-9f0e-3c2d1b0a9f8f","causation_id":"0193a5b0-7c1e-7a52-9f0e-3c2d1b0a9f90","command":"Charge","actor":"user:5f0c3e9a-8d7b-4c6a-9e5f-1a2b3c4d5e6f","recorded_at":"2026-12-01T10:00:00.123456+00:00"}');
