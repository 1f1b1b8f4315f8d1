/* pgrow.c - typed access to a query result's columns by name (see pgrow.h). */
#include "common/pgrow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pgrow_map(struct pgrow *c, const PGresult *res, const char *const *names, int n)
{
	c->res = res;
	c->ncols = 0;
	c->err[0] = '\0';
	if (n < 0 || n > PGROW_MAX_COLS) {
		snprintf(c->err, sizeof(c->err), "%d columns asked for, at most %d", n,
			 PGROW_MAX_COLS);
		return -1;
	}
	if (!res) {
		snprintf(c->err, sizeof(c->err), "no result");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		c->idx[i] = PQfnumber(res, names[i]);
		if (c->idx[i] < 0) {
			snprintf(c->err, sizeof(c->err), "column \"%.64s\" is not in the result",
				 names[i]);
			return -1;
		}
	}
	c->ncols = n;
	return 0;
}

int pgrow_count(const struct pgrow *c)
{
	return c->res ? PQntuples(c->res) : 0;
}

bool pgrow_isnull(const struct pgrow *c, int row, int col)
{
	return PQgetisnull(c->res, row, c->idx[col]) != 0;
}

const char *pgrow_text(const struct pgrow *c, int row, int col)
{
	return PQgetvalue(c->res, row, c->idx[col]);
}

const char *pgrow_text_or_null(const struct pgrow *c, int row, int col)
{
	return pgrow_isnull(c, row, col) ? NULL : pgrow_text(c, row, col);
}

bool pgrow_int64(const struct pgrow *c, int row, int col, int64_t *out)
{
	if (pgrow_isnull(c, row, col))
		return false;
	const char *s = pgrow_text(c, row, col);
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || errno == ERANGE)
		return false;
	*out = (int64_t)v;
	return true;
}

bool pgrow_bool(const struct pgrow *c, int row, int col, bool *out)
{
	if (pgrow_isnull(c, row, col))
		return false;
	const char *s = pgrow_text(c, row, col);
	if (strcmp(s, "t") != 0 && strcmp(s, "f") != 0)
		return false;
	*out = s[0] == 't';
	return true;
}
