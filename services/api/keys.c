/* keys.c - `rampart-api keys create NAME | list | revoke ID`: API key
 * management without raw SQL. One-shot CLI paths like --migrate: they run
 * before any event loop exists, so blocking libpq is fine here. Only the hex
 * SHA-256 of a key is stored (what auth.c looks up); the key itself is
 * printed once, by create, and never again. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "app.h"
#include "common/ids.h"
#include "common/pgrow.h"

#define KEY_NAME_MAX   64
#define KEY_RANDOM_LEN 24 /* bytes: 192 bits, 48 hex digits */

static void hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static void keys_usage(FILE *out)
{
	fprintf(out, "usage: rampart-api keys create NAME   create a key; prints it once\n"
		     "       rampart-api keys list          id, name, created, revoked\n"
		     "       rampart-api keys revoke ID     revoke a key (requests get 401 within\n"
		     "                                      API_KEY_CACHE_SECONDS)\n");
}

/* A name is 1..64 printable ASCII characters: it is shown by `keys list`,
 * one key per line, so no control characters. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > KEY_NAME_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

static PGconn *connect_db(const char *database_url)
{
	PGconn *c = PQconnectdb(database_url); /* checksrc:allow one-shot CLI, no event loop */
	if (!c || PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "rampart-api keys: cannot connect to PostgreSQL: %s",
			c ? PQerrorMessage(c) : "out of memory\n");
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Runs one parameterised statement; NULL (and a message) on failure. */
static PGresult *run(PGconn *c, const char *sql, int n, const char *const *params)
{
	PGresult *res;
	res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0); /* checksrc:allow CLI */
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		fprintf(stderr, "rampart-api keys: %s", PQerrorMessage(c));
		PQclear(res);
		return NULL;
	}
	return res;
}

static int keys_create(PGconn *c, const char *name)
{
	unsigned char raw[KEY_RANDOM_LEN], digest[32];
	char key[8 + 2 * KEY_RANDOM_LEN + 1], key_hash[65], id[ID_MAX];

	if (!name_ok(name)) {
		fprintf(stderr,
			"rampart-api keys create: NAME must be 1-%d printable ASCII "
			"characters\n",
			KEY_NAME_MAX);
		return 2;
	}
	if (id_random_bytes(raw, sizeof(raw)) != 0 || id_new("key", id) != 0) {
		fprintf(stderr, "rampart-api keys create: the random generator failed\n");
		return 1;
	}
	memcpy(key, "sk_live_", 8);
	hex(raw, sizeof(raw), key + 8);
	if (!EVP_Digest(key, strlen(key), digest, NULL, EVP_sha256(), NULL)) {
		fprintf(stderr, "rampart-api keys create: cannot hash the key\n");
		return 1;
	}
	hex(digest, sizeof(digest), key_hash);
	const char *params[] = {id, name, key_hash};
	PGresult *res =
		run(c, "INSERT INTO api_keys (id, name, key_hash) VALUES ($1, $2, $3)", 3, params);
	if (!res)
		return 1;
	PQclear(res);
	printf("id\t%s\nname\t%s\nkey\t%s\n", id, name, key);
	fprintf(stderr, "rampart-api keys: store the key now; only its SHA-256 is kept and it "
			"cannot be shown again\n");
	return 0;
}

static int keys_list(PGconn *c)
{
	PGresult *res =
		run(c,
		    "SELECT id, name,"
		    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
		    "  AS created,"
		    " coalesce(to_char(revoked_at AT TIME ZONE 'UTC',"
		    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-') AS revoked"
		    " FROM api_keys ORDER BY created_at, id",
		    0, NULL);
	if (!res)
		return 1;
	enum { KC_ID, KC_NAME, KC_CREATED, KC_REVOKED, KC_N };
	static const char *const cols[KC_N] = {"id", "name", "created", "revoked"};
	struct pgrow kr;
	if (pgrow_map(&kr, res, cols, KC_N) != 0) {
		fprintf(stderr, "rampart-api keys list: %s\n", kr.err);
		PQclear(res);
		return 1;
	}
	printf("id\tname\tcreated\trevoked\n");
	for (int i = 0; i < pgrow_count(&kr); i++)
		printf("%s\t%s\t%s\t%s\n", pgrow_text(&kr, i, KC_ID), pgrow_text(&kr, i, KC_NAME),
		       pgrow_text(&kr, i, KC_CREATED), pgrow_text(&kr, i, KC_REVOKED));
	PQclear(res);
	return 0;
}

static int keys_revoke(PGconn *c, const char *id)
{
	const char *params[] = {id};
	PGresult *res = run(c,
			    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
			    " WHERE id = $1 RETURNING revoked_at = now() AS revoked_now",
			    1, params);
	if (!res)
		return 1;
	static const char *const cols[] = {"revoked_now"};
	struct pgrow kr;
	if (pgrow_map(&kr, res, cols, 1) != 0) {
		fprintf(stderr, "rampart-api keys revoke: %s\n", kr.err);
		PQclear(res);
		return 1;
	}
	int found = pgrow_count(&kr);
	bool now = false;
	if (found && !pgrow_bool(&kr, 0, 0, &now))
		now = false;
	PQclear(res);
	if (!found) {
		fprintf(stderr, "rampart-api keys revoke: no key with id %s\n", id);
		return 1;
	}
	printf("%s %s\n", now ? "revoked" : "already revoked", id);
	return 0;
}

int keys_main(const char *database_url, int argc, char **argv)
{
	const char *cmd = argc > 0 ? argv[0] : "";
	int want = strcmp(cmd, "create") == 0 || strcmp(cmd, "revoke") == 0 ? 2
		   : strcmp(cmd, "list") == 0				    ? 1
									    : -1;
	if (want < 0 || argc != want) {
		keys_usage(stderr);
		return 2;
	}
	PGconn *c = connect_db(database_url);
	if (!c)
		return 1;
	int rc = strcmp(cmd, "create") == 0   ? keys_create(c, argv[1])
		 : strcmp(cmd, "revoke") == 0 ? keys_revoke(c, argv[1])
					      : keys_list(c);
	PQfinish(c);
	return rc;
}
