/* openapi.c - GET /openapi.json: docs/openapi.yaml as JSON, embedded in the
 * binary at build time (scripts/embed-openapi.sh), no auth. */
#include <stddef.h>

#include "app.h"

extern const char openapi_json[];
extern const size_t openapi_json_len;

void openapi_get(struct http_req *r, void *loop)
{
	(void)loop;
	http_reply_raw(r, 200, "application/json", openapi_json, openapi_json_len);
}
