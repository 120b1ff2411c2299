/*
 * logwin.h - cut a long log down to what explains a failure: windows of
 * context around error lines (error, exception, fatal, panic, traceback,
 * "Caused by:", Java/Python stack frames, OOM, segfault, exit code,
 * refused, denied, timeout; case-insensitive) plus the tail, in log order,
 * gaps marked `… (N lines omitted)`. Consecutive identical lines are folded
 * first: the line once, then `[last line repeated N times]` (syslog's
 * wording, N more times). \r\n endings are normalised.
 *
 * Budget: when there are error lines before the tail, the tail gets half of
 * max_bytes and the windows the rest, newest error first (a window that
 * does not fit whole is tried as its error line alone); otherwise the tail
 * gets everything. Markers count against max_bytes; the output is at most
 * max_bytes + TR_LOGWIN_SLACK_BYTES (the slack: when even the last line
 * does not fit, its tail is kept after one marker). Pure functions.
 */
#ifndef TR_LOGWIN_H
#define TR_LOGWIN_H

#include <stddef.h>

#include "buf.h"

#define TR_LOGWIN_SLACK_BYTES 32
#define TR_LOGWIN_MAX_WINDOWS 32

typedef struct tr_logwin_options {
    size_t max_bytes;      /* output cap, markers included; 0: none */
    size_t tail_lines;     /* lines in the tail (a fold marker counts); 0: by bytes only */
    size_t before_lines;   /* context before an error line [3 when 0 and after_lines 0] */
    size_t after_lines;    /* context after it [8 when both are 0] */
} tr_logwin_options;

typedef struct tr_logwin_stats {
    size_t lines_in;       /* lines of the input */
    size_t lines_omitted;  /* lines behind the omission markers */
    size_t error_lines;    /* lines that matched an error pattern */
    size_t windows;        /* error windows kept outside the tail */
} tr_logwin_stats;

/*
 * Append the cut of log[0..len) to out (opt NULL: no cap, everything).
 * *stats (may be NULL) is filled. Returns 0, TR_ENOMEM or TR_ETOOBIG.
 */
int tr_logwin_cut(tr_buf *out, const char *log, size_t len, const tr_logwin_options *opt,
                  tr_logwin_stats *stats);

/* 1 when line[0..len) matches one of the error patterns. */
int tr_logwin_is_error_line(const char *line, size_t len);

#endif
