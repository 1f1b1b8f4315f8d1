/* migrate.c - `rampart-api --migrate`: applies the SQL migrations embedded in
 * the binary, each in its own transaction, recorded in schema_migrations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "common/evloop.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/pgrow.h"

/* Generated from db/migrations by scripts/embed-migrations.sh. */
struct migration {
	const char *name;
	const char *sql;
};
extern const struct migration migrations[];
extern const size_t migrations_count;

/* Any two concurrent migrators serialise on this session lock ("ramp"). */
#define MIGRATE_LOCK_KEY "1919770992"

struct migrate {
	struct event_base *base;
	struct pg_pool *pg;
	size_t next;
	bool *applied;
	int rc;
	int napplied;
};

static void step(struct migrate *m);

static void finish(struct migrate *m, const char *err)
{
	if (err) {
		log_event(LOG_ERROR, "migration failed", LF_S("error", err));
		m->rc = -1;
	}
	evloop_stop(m->base);
}

static void applied_one(void *arg, const PGresult *res, const char *err)
{
	struct migrate *m = arg;
	(void)res;
	if (err) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s: %s", migrations[m->next].name, err);
		finish(m, msg);
		return;
	}
	log_event(LOG_INFO, "migration applied", LF_S("version", migrations[m->next].name));
	m->napplied++;
	m->next++;
	step(m);
}

/* Applies the next pending migration, or finishes. The script has no
 * BEGIN/COMMIT of its own: a multi-statement simple query runs as one
 * implicit transaction, so the DDL and its schema_migrations row commit
 * together or not at all. */
static void step(struct migrate *m)
{
	while (m->next < migrations_count && m->applied[m->next])
		m->next++;
	if (m->next == migrations_count) {
		log_event(LOG_INFO, "migrations up to date", LF_I("applied", m->napplied),
			  LF_I("total", (long long)migrations_count));
		finish(m, NULL);
		return;
	}
	const struct migration *mg = &migrations[m->next];
	size_t len = strlen(mg->sql) + strlen(mg->name) + 128;
	char *sql = malloc(len);
	if (!sql) {
		finish(m, "out of memory");
		return;
	}
	/* The version is our own file name ([0-9a-z_]), never user input, and a
	 * multi-statement script cannot take parameters. checksrc:allow */
	snprintf(sql, len, "%s;\nINSERT INTO schema_migrations (version) VALUES ('%s');", mg->sql,
		 mg->name);
	int rc = pg_script(m->pg, sql, applied_one, m);
	free(sql);
	if (rc != 0)
		finish(m, "database unavailable");
}

static void got_versions(void *arg, const PGresult *res, const char *err)
{
	struct migrate *m = arg;
	if (err) {
		finish(m, err);
		return;
	}
	static const char *const cols[] = {"version"};
	struct pgrow c;
	if (pgrow_map(&c, res, cols, 1) != 0) {
		finish(m, c.err);
		return;
	}
	for (int i = 0; i < pgrow_count(&c); i++)
		for (size_t k = 0; k < migrations_count; k++)
			if (strcmp(pgrow_text(&c, i, 0), migrations[k].name) == 0)
				m->applied[k] = true;
	step(m);
}

static void table_ready(void *arg, const PGresult *res, const char *err)
{
	struct migrate *m = arg;
	(void)res;
	if (err) {
		finish(m, err);
		return;
	}
	if (pg_query(m->pg, "SELECT version FROM schema_migrations", 0, NULL, got_versions, m))
		finish(m, "database unavailable");
}

static void locked(void *arg, const PGresult *res, const char *err)
{
	struct migrate *m = arg;
	(void)res;
	if (err) {
		finish(m, err);
		return;
	}
	if (pg_script(m->pg,
		      "CREATE TABLE IF NOT EXISTS schema_migrations ("
		      " version text PRIMARY KEY,"
		      " applied_at timestamptz NOT NULL DEFAULT now())",
		      table_ready, m))
		finish(m, "database unavailable");
}

int migrate_run(const char *database_url)
{
	struct migrate m = {0};
	m.applied = calloc(migrations_count + 1, sizeof(bool));
	m.base = evloop_new(false);
	if (!m.applied || !m.base) {
		free(m.applied);
		evloop_free(m.base);
		return -1;
	}
	/* One connection: the session lock, the reads and the scripts share it. */
	struct pg_pool_opts o = {.conninfo = database_url,
				 .size = 1,
				 .max_queue = 16,
				 .connect_timeout_ms = 10000,
				 .name = "migrate"};
	m.pg = pg_pool_new(m.base, &o);
	if (!m.pg) {
		log_event(LOG_ERROR, "migration failed", LF_S("error", "bad DATABASE_URL"));
		m.rc = -1;
	} else {
		const char *params[] = {MIGRATE_LOCK_KEY};
		if (pg_query(m.pg, "SELECT pg_advisory_lock($1::bigint)", 1, params, locked, &m))
			finish(&m, "database unavailable");
		else
			evloop_run(m.base);
	}
	pg_pool_free(m.pg); /* closing the session releases the advisory lock */
	evloop_free(m.base);
	free(m.applied);
	return m.rc;
}
