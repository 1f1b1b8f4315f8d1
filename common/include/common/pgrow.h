/* pgrow.h - typed access to a query result's columns by name: the names are
 * resolved to indexes once per result (PQfnumber), so a reordered SELECT or a
 * renamed column cannot silently read the wrong value, and a missing column
 * is a clear error instead of an empty string.
 *
 *   enum { Q_ID, Q_AMOUNT, Q_NCOLS };
 *   static const char *const q_cols[Q_NCOLS] = {"id", "amount"};
 *   struct pgrow c;
 *   if (pgrow_map(&c, res, q_cols, Q_NCOLS) != 0)
 *           log ... c.err;                      // column "amount" is not in the result
 *   const char *id = pgrow_text(&c, 0, Q_ID);
 *   int64_t amount;
 *   if (!pgrow_int64(&c, 0, Q_AMOUNT, &amount)) ...   // NULL or not an integer
 *
 * Pure (no I/O): the result is only read. Names are matched as PQfnumber
 * does: case-folded unless double-quoted. */
#ifndef COMMON_PGROW_H
#define COMMON_PGROW_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#define PGROW_MAX_COLS 32

struct pgrow {
	const PGresult *res;	 /* borrowed: valid while the result is */
	int idx[PGROW_MAX_COLS]; /* the caller's column i is result column idx[i] */
	int ncols;
	char err[128]; /* why pgrow_map failed; "" otherwise */
};

/* Resolves names[0..n) in res. Returns 0, or -1 with c->err naming the first
 * missing column (or saying that n exceeds PGROW_MAX_COLS). res and names
 * are borrowed for the call; res must outlive c. */
int pgrow_map(struct pgrow *c, const PGresult *res, const char *const *names, int n)
	__attribute__((warn_unused_result));

/* Rows in the result. */
int pgrow_count(const struct pgrow *c);

/* True when the value is SQL NULL. */
bool pgrow_isnull(const struct pgrow *c, int row, int col);

/* The value as text, borrowed from the result; "" for NULL (as PQgetvalue). */
const char *pgrow_text(const struct pgrow *c, int row, int col);

/* The value as text, or NULL when it is SQL NULL. */
const char *pgrow_text_or_null(const struct pgrow *c, int row, int col);

/* A base-10 integer column (int2/int4/int8 text form). False when NULL, not
 * an integer, or out of range (*out untouched). */
bool pgrow_int64(const struct pgrow *c, int row, int col, int64_t *out)
	__attribute__((warn_unused_result));

/* A boolean column ("t"/"f"). False when NULL or neither (*out untouched). */
bool pgrow_bool(const struct pgrow *c, int row, int col, bool *out)
	__attribute__((warn_unused_result));

#endif
