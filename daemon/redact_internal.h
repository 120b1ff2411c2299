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
 * A rule matching at in[i]. fresh: i is where the previous match ended, so
 * it counts as a token start (in the output a placeholder's '>' precedes
 * it: a second pass must see the same). A span may start on a placeholder
 * (`password=<redacted:1>`): the scan then skips it (see redact.c).
 */
int rd_match_at(const char *in, size_t len, size_t i, double entropy, int fresh, rd_match *m);

/* Same, trying every rule whatever in[i] is: the slow reference rd_match_at must agree with. */
int rd_match_at_every_rule(const char *in, size_t len, size_t i, double entropy, int fresh,
                           rd_match *m);

/*
 * The first position >= i where a placeholder or a rule can start (len when
 * none): bytes inside words and bytes no rule opens with are skipped.
 * fresh: i counts as a token start (see rd_match_at).
 */
size_t rd_next_start(const char *in, size_t len, size_t i, int fresh);

/*
 * tr_redact_text_ctx without the skipping and the dispatch: every rule at
 * every byte. For the fuzz target, which checks both give the same bytes.
 */
int rd_redact_text_reference(tr_redact_ctx *ctx, tr_buf *out, const char *in, size_t len);

/* A placeholder at in[i]: 1, *end past it, *number its N (0 for the old form). */
int rd_placeholder_at(const char *in, size_t len, size_t i, size_t *end, unsigned long *number);

tr_redact_kind rd_kind_for_name(const char *name, size_t len);

#endif
