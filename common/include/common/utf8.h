/* utf8.h - UTF-8 validation shared by the JSON writers (logs, HTTP errors). */
#ifndef COMMON_UTF8_H
#define COMMON_UTF8_H

#include <stddef.h>

/* Length (1..4) of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 if s[0] starts none.
 * s is NUL-terminated, so reading continuation bytes stops at the end. */
size_t utf8_len(const unsigned char *s);

#endif
