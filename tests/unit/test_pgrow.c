/* test_pgrow.c - unit tests for common/pgrow: columns by name on results made
 * in memory (PQmakeEmptyPGresult, PQsetResultAttrs, PQsetvalue; no server). */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "common/pgrow.h"

/* A result with columns id, amount, ok, note and the rows given (NULL: SQL
 * NULL), as a SELECT would return them. */
static PGresult *make_result(int nrows, const char *const rows[][4])
{
	static char n_id[] = "id", n_amount[] = "amount", n_ok[] = "ok", n_note[] = "Note";
	PGresAttDesc attrs[4] = {
		{.name = n_id, .typid = 25, .typlen = -1, .atttypmod = -1},
		{.name = n_amount, .typid = 20, .typlen = 8, .atttypmod = -1},
		{.name = n_ok, .typid = 16, .typlen = 1, .atttypmod = -1},
		{.name = n_note, .typid = 25, .typlen = -1, .atttypmod = -1},
	};
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	assert_non_null(res);
	assert_int_equal(PQsetResultAttrs(res, 4, attrs), 1);
	for (int r = 0; r < nrows; r++)
		for (int c = 0; c < 4; c++) {
			const char *v = rows[r][c];
			assert_int_equal(PQsetvalue(res, r, c, (char *)(uintptr_t)v,
						    v ? (int)strlen(v) : -1),
					 1);
		}
	return res;
}

enum { C_AMOUNT, C_ID, C_OK, C_NOTE, C_N };
/* In another order than the SELECT's, on purpose. */
static const char *const cols[C_N] = {"amount", "id", "ok", "\"Note\""};

static void test_reads_by_name(void **state)
{
	(void)state;
	const char *rows[][4] = {
		{"quote_1", "12345", "t", "hello"},
		{"quote_2", "-9223372036854775808", "f", NULL},
	};
	PGresult *res = make_result(2, rows);
	struct pgrow c;
	assert_int_equal(pgrow_map(&c, res, cols, C_N), 0);
	assert_string_equal(c.err, "");
	assert_int_equal(pgrow_count(&c), 2);

	int64_t v = 0;
	bool b = false;
	assert_string_equal(pgrow_text(&c, 0, C_ID), "quote_1");
	assert_true(pgrow_int64(&c, 0, C_AMOUNT, &v));
	assert_int_equal(v, 12345);
	assert_true(pgrow_bool(&c, 0, C_OK, &b));
	assert_true(b);
	assert_string_equal(pgrow_text_or_null(&c, 0, C_NOTE), "hello");
	assert_false(pgrow_isnull(&c, 0, C_NOTE));

	assert_string_equal(pgrow_text(&c, 1, C_ID), "quote_2");
	assert_true(pgrow_int64(&c, 1, C_AMOUNT, &v));
	assert_true(v == INT64_MIN);
	assert_true(pgrow_bool(&c, 1, C_OK, &b));
	assert_false(b);
	assert_true(pgrow_isnull(&c, 1, C_NOTE));
	assert_null(pgrow_text_or_null(&c, 1, C_NOTE));
	assert_string_equal(pgrow_text(&c, 1, C_NOTE), "");
	PQclear(res);
}

static void test_missing_column_is_an_error(void **state)
{
	(void)state;
	const char *rows[][4] = {{"quote_1", "1", "t", "x"}};
	PGresult *res = make_result(1, rows);
	static const char *const bad[] = {"id", "amount_minor"};
	struct pgrow c;
	assert_int_equal(pgrow_map(&c, res, bad, 2), -1);
	assert_string_equal(c.err, "column \"amount_minor\" is not in the result");
	/* Unquoted names fold to lower case, as in SQL: "Note" needs quotes. */
	static const char *const unquoted[] = {"Note"};
	assert_int_equal(pgrow_map(&c, res, unquoted, 1), -1);
	assert_int_equal(pgrow_map(&c, res, cols, PGROW_MAX_COLS + 1), -1);
	assert_int_equal(pgrow_map(&c, NULL, cols, 1), -1);
	PQclear(res);
}

static void test_bad_values_are_refused(void **state)
{
	(void)state;
	const char *rows[][4] = {
		{"a", "12abc", "yes", NULL},
		{"b", "", "", NULL},
		{"c", "99999999999999999999", NULL, NULL},
		{"d", NULL, "t", NULL},
	};
	PGresult *res = make_result(4, rows);
	struct pgrow c;
	assert_int_equal(pgrow_map(&c, res, cols, C_N), 0);
	for (int r = 0; r < 4; r++) {
		int64_t v = 7;
		assert_false(pgrow_int64(&c, r, C_AMOUNT, &v));
		assert_int_equal(v, 7);
	}
	bool b = true;
	assert_false(pgrow_bool(&c, 0, C_OK, &b));
	assert_false(pgrow_bool(&c, 1, C_OK, &b));
	assert_false(pgrow_bool(&c, 2, C_OK, &b));
	assert_true(b);
	PQclear(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_by_name),
		cmocka_unit_test(test_missing_column_is_an_error),
		cmocka_unit_test(test_bad_values_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
