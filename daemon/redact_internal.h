/*
 * redact_internal.h - between redact.c (contexts, numbering, JSON and YAML
 * walks) and redact_rules.c (the detectors). Not for other modules.
 */
#ifndef TR_REDACT_INTERNAL_H
#define TR_REDACT_INTERNAL_H

#include "redact.h"

#include <stddef.h>

typedef struct rd_match {
    size_t start; /* first masked byte */
    size_t end;   /* one past the last masked byte; scanning resumes here */
    tr_redact_kind kind;
} rd_match;

/*
 * A rule matching at in[i] (spans never start on a placeholder). fresh: i
 * is where the previous match ended, so it counts as a token start (in the
 * output a placeholder's '>' precedes it: a second pass must see the same).
 */
int rd_match_at(const char *in, size_t len, size_t i, double entropy, int fresh, rd_match *m);

/* A placeholder at in[i]: 1, *end past it, *number its N (0 for the old form). */
int rd_placeholder_at(const char *in, size_t len, size_t i, size_t *end, unsigned long *number);

tr_redact_kind rd_kind_for_name(const char *name, size_t len);

#endif
