/*
 * buf.h - a small growable byte buffer with a size cap (libgit2's git_str,
 * curl's dynbuf). The content is always NUL-terminated, so ptr can be used
 * as a C string when the data has no NUL of its own.
 *
 * A buffer is a value: `tr_buf b = TR_BUF_INIT(cap);` ... `tr_buf_dispose(&b)`.
 * Appending past the cap fails with TR_ETOOBIG and leaves the content as it
 * was; running out of memory fails with TR_ENOMEM. Either way the buffer
 * stays valid.
 */
#ifndef TR_BUF_H
#define TR_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct tr_buf {
    char *ptr;       /* NULL until something is added; owned by the buffer */
    size_t len;      /* bytes in use, not counting the trailing NUL */
    size_t alloc;    /* bytes allocated */
    size_t max_len;  /* cap on len; 0 means TR_BUF_DEFAULT_MAX */
} tr_buf;

#define TR_BUF_DEFAULT_MAX ((size_t)64 * 1024 * 1024)
#define TR_BUF_INIT(max) { NULL, 0, 0, (max) }

void tr_buf_init(tr_buf *buf, size_t max_len);
int tr_buf_put(tr_buf *buf, const void *data, size_t len);
int tr_buf_puts(tr_buf *buf, const char *s);
int tr_buf_putc(tr_buf *buf, char c);
int tr_buf_printf(tr_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s percent-encoded for a URL query value or path segment (RFC 3986 unreserved kept). */
int tr_buf_put_escaped(tr_buf *buf, const char *s);
int tr_buf_vprintf(tr_buf *buf, const char *fmt, va_list ap);
/* Append s as the inside of a JSON string (quotes not included). */
int tr_buf_put_json_escaped(tr_buf *buf, const char *s, size_t len);
/* Drop the first n bytes (consumed input), keeping the rest. */
void tr_buf_consume(tr_buf *buf, size_t n);
void tr_buf_clear(tr_buf *buf);
/* The content as a C string ("" when empty); borrowed from the buffer. */
const char *tr_buf_cstr(const tr_buf *buf);
/* Hand the content to the caller (frees with tr_free); the buffer is emptied. */
char *tr_buf_detach(tr_buf *buf);
void tr_buf_dispose(tr_buf *buf);

/* The value of one hexadecimal digit (0-9, a-f, A-F): 0..15, or -1 for any other byte. */
int tr_hex_value(int c);

#endif
