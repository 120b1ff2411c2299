/*
 * error.h - the one error enum of triaged, and the error record that carries
 * a human message (with file, line and key where they apply) up to the
 * caller that decides what to do with it.
 *
 * Functions that can fail return int: 0 (TR_OK) on success, a negative
 * TR_E* code on failure, and, when they take a tr_error *, fill it in.
 */
#ifndef TR_ERROR_H
#define TR_ERROR_H

#include <stddef.h>

typedef enum tr_errcode {
    TR_OK = 0,
    TR_ERROR = -1,        /* generic failure; the message says more */
    TR_ENOMEM = -2,
    TR_EINVAL = -3,       /* bad argument or bad input */
    TR_ENOTFOUND = -4,
    TR_EEXISTS = -5,
    TR_EIO = -6,          /* file or socket I/O */
    TR_EPARSE = -7,       /* malformed input (TOML, JSON, HTTP, ...) */
    TR_ECONFIG = -8,      /* configuration is wrong */
    TR_ETIMEOUT = -9,
    TR_ECANCELLED = -10,  /* the operation was cancelled (shutdown) */
    TR_ETOOBIG = -11,     /* a size cap was hit */
    TR_EAUTH = -12,       /* authentication or signature failed */
    TR_EHTTP = -13,       /* transport-level HTTP failure */
    TR_ESTORE = -14,      /* the state store failed */
    TR_EBUSY = -15,
    TR_EUNAVAILABLE = -16, /* a dependency (cluster, LLM) is not reachable */
    TR_ELIMIT = -17,      /* a rate limit or budget is exhausted */
    TR_ECONFLICT = -18,   /* a state transition that is not allowed */
} tr_errcode;

/*
 * An error record. The message is formatted into a fixed buffer: messages
 * longer than TR_ERROR_MSG_MAX are cut and end with "...", so a truncation
 * is visible, never silent.
 */
#define TR_ERROR_MSG_MAX 1024

typedef struct tr_error {
    int code;
    char message[TR_ERROR_MSG_MAX];
} tr_error;

/* A static description of a code ("out of memory"); never NULL. */
const char *tr_strerror(int code);

/*
 * Record an error in err (which may be NULL) and return code, so a failing
 * path can read `return tr_error_set(err, TR_EINVAL, "...", ...);`.
 */
int tr_error_set(tr_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the message already in err with more context ("file.toml:3: "). */
void tr_error_prefix(tr_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void tr_error_clear(tr_error *err);

#endif
