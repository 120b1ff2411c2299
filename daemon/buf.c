#include "buf.h"
#include "alloc.h"
#include "error.h"

#include <stdio.h>
#include <string.h>

static size_t cap_of(const tr_buf *buf)
{
    return buf->max_len ? buf->max_len : TR_BUF_DEFAULT_MAX;
}

void tr_buf_init(tr_buf *buf, size_t max_len)
{
    buf->ptr = NULL;
    buf->len = 0;
    buf->alloc = 0;
    buf->max_len = max_len;
}

static int grow(tr_buf *buf, size_t extra)
{
    size_t need, alloc;
    char *p;

    if (extra > cap_of(buf) || buf->len > cap_of(buf) - extra)
        return TR_ETOOBIG;
    need = buf->len + extra + 1;
    if (need <= buf->alloc)
        return TR_OK;
    alloc = buf->alloc ? buf->alloc : 64;
    while (alloc < need)
        alloc = alloc < ((size_t)1 << 30) ? alloc * 2 : need;
    p = tr_realloc(buf->ptr, alloc);
    if (p == NULL)
        return TR_ENOMEM;
    buf->ptr = p;
    buf->alloc = alloc;
    return TR_OK;
}

int tr_buf_put(tr_buf *buf, const void *data, size_t len)
{
    int rc = grow(buf, len);

    if (rc != TR_OK)
        return rc;
    if (len)
        memcpy(buf->ptr + buf->len, data, len);
    buf->len += len;
    buf->ptr[buf->len] = '\0';
    return TR_OK;
}

int tr_buf_puts(tr_buf *buf, const char *s)
{
    return tr_buf_put(buf, s, strlen(s));
}

int tr_buf_putc(tr_buf *buf, char c)
{
    return tr_buf_put(buf, &c, 1);
}

int tr_buf_vprintf(tr_buf *buf, const char *fmt, va_list ap)
{
    va_list copy;
    int needed;
    int rc;

    va_copy(copy, ap);
    needed = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (needed < 0)
        return TR_EINVAL;
    rc = grow(buf, (size_t)needed);
    if (rc != TR_OK)
        return rc;
    vsnprintf(buf->ptr + buf->len, (size_t)needed + 1, fmt, ap);
    buf->len += (size_t)needed;
    return TR_OK;
}

int tr_buf_printf(tr_buf *buf, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = tr_buf_vprintf(buf, fmt, ap);
    va_end(ap);
    return rc;
}

int tr_buf_put_json_escaped(tr_buf *buf, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;
    int rc = TR_OK;

    for (i = 0; i < len && rc == TR_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': rc = tr_buf_put(buf, "\\\"", 2); break;
        case '\\': rc = tr_buf_put(buf, "\\\\", 2); break;
        case '\n': rc = tr_buf_put(buf, "\\n", 2); break;
        case '\r': rc = tr_buf_put(buf, "\\r", 2); break;
        case '\t': rc = tr_buf_put(buf, "\\t", 2); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
                rc = tr_buf_put(buf, esc, sizeof(esc));
            } else {
                rc = tr_buf_putc(buf, (char)c);
            }
        }
    }
    return rc;
}

void tr_buf_consume(tr_buf *buf, size_t n)
{
    if (n >= buf->len) {
        tr_buf_clear(buf);
        return;
    }
    memmove(buf->ptr, buf->ptr + n, buf->len - n);
    buf->len -= n;
    buf->ptr[buf->len] = '\0';
}

void tr_buf_clear(tr_buf *buf)
{
    buf->len = 0;
    if (buf->ptr)
        buf->ptr[0] = '\0';
}

const char *tr_buf_cstr(const tr_buf *buf)
{
    return buf->ptr ? buf->ptr : "";
}

char *tr_buf_detach(tr_buf *buf)
{
    char *p = buf->ptr;

    if (p == NULL)
        p = tr_strdup("");
    buf->ptr = NULL;
    buf->len = 0;
    buf->alloc = 0;
    return p;
}

void tr_buf_dispose(tr_buf *buf)
{
    if (buf == NULL)
        return;
    tr_free(buf->ptr);
    buf->ptr = NULL;
    buf->len = 0;
    buf->alloc = 0;
}

int tr_buf_put_escaped(tr_buf *buf, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = TR_OK;

    for (; *s && rc == TR_OK; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            rc = tr_buf_putc(buf, (char)c);
        else
            rc = tr_buf_printf(buf, "%%%c%c", hex[c >> 4], hex[c & 15]);
    }
    return rc;
}

int tr_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
