-- bench/setup.sql - the table pgbench writes to: a copy of quotes (same
-- columns, types, defaults, CHECK constraints and indexes), so one pgbench
-- transaction costs PostgreSQL what one quote insert by the api costs.
DROP TABLE IF EXISTS bench_quotes;
CREATE TABLE bench_quotes (LIKE quotes INCLUDING ALL);
