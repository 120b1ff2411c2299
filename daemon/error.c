#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *tr_strerror(int code)
{
    switch (code) {
    case TR_OK: return "success";
    case TR_ERROR: return "error";
    case TR_ENOMEM: return "out of memory";
    case TR_EINVAL: return "invalid argument";
    case TR_ENOTFOUND: return "not found";
    case TR_EEXISTS: return "already exists";
    case TR_EIO: return "I/O error";
    case TR_EPARSE: return "parse error";
    case TR_ECONFIG: return "configuration error";
    case TR_ETIMEOUT: return "timed out";
    case TR_ECANCELLED: return "cancelled";
    case TR_ETOOBIG: return "too big";
    case TR_EAUTH: return "authentication failed";
    case TR_EHTTP: return "HTTP transport error";
    case TR_ESTORE: return "state store error";
    case TR_EBUSY: return "busy";
    case TR_EUNAVAILABLE: return "unavailable";
    case TR_ELIMIT: return "limit reached";
    case TR_ECONFLICT: return "conflict";
    }
    return "unknown error";
}

static void mark_truncated(tr_error *err, int written)
{
    if (written >= TR_ERROR_MSG_MAX)
        memcpy(err->message + TR_ERROR_MSG_MAX - 4, "...", 4);
}

int tr_error_set(tr_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    int written;

    if (err == NULL)
        return code;
    err->code = code;
    va_start(ap, fmt);
    written = vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    if (written < 0)
        err->message[0] = '\0';
    else
        mark_truncated(err, written);
    return code;
}

void tr_error_prefix(tr_error *err, const char *fmt, ...)
{
    char prefix[TR_ERROR_MSG_MAX];
    char old[TR_ERROR_MSG_MAX];
    va_list ap;
    int written;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    written = vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (written < 0)
        return;
    memcpy(old, err->message, sizeof(old));
    written = snprintf(err->message, sizeof(err->message), "%s%s", prefix, old);
    mark_truncated(err, written);
}

void tr_error_clear(tr_error *err)
{
    if (err == NULL)
        return;
    err->code = TR_OK;
    err->message[0] = '\0';
}
