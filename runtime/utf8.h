/* utf8.h - UTF-8 validation and decoding (strict: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
#ifndef VAMOS_UTF8_H
#define VAMOS_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid sequence at s (1-4), or 0 if it is not valid. */
int utf8_seq(const unsigned char *s, size_t n, uint32_t *cp);
bool utf8_valid(const char *s, size_t n);

#endif
