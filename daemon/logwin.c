/*
 * logwin.c - error-line windows plus tail over a folded log. Lines are
 * folded into spans first (each span: one distinct line and how many times
 * it repeated in a row), every decision is taken on spans, and omission
 * markers count the original lines behind them.
 */
#include "logwin.h"

#include "alloc.h"
#include "error.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_BEFORE 3
#define DEFAULT_AFTER 8
#define MARKER_RESERVE 32 /* "… (N lines omitted)\n" for any N a size_t holds in practice */

typedef struct span {
    const char *p;
    size_t len;
    size_t repeats; /* extra identical lines folded into this one */
    int error;
    int keep;
} span;

static const char *const patterns[] = {
    "error", "exception", "fatal", "panic", "traceback", "caused by:", "at java.", "file \"",
    "out of memory", "oomkill", "segfault", "segmentation fault", "exit code", "exited with",
    "refused", "denied", "timeout", "timed out", "deadline exceeded",
};

int tr_logwin_is_error_line(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = (char)tolower((unsigned char)line[i]);

        if (!strchr("eftpcasoxrdk", c) || c == '\0')
            continue;
        for (size_t k = 0; k < sizeof(patterns) / sizeof(patterns[0]); k++) {
            size_t n = strlen(patterns[k]);

            if (patterns[k][0] == c && len - i >= n && strncasecmp(line + i, patterns[k], n) == 0)
                return 1;
        }
        /* OOMKilled, "oom-kill", but not "room" */
        if (c == 'o' && len - i >= 3 && strncasecmp(line + i, "oom", 3) == 0 &&
            (i == 0 || !isalpha((unsigned char)line[i - 1])))
            return 1;
    }
    return 0;
}

static size_t span_bytes(const span *s)
{
    char tmp[64];

    return s->len + 1 +
           (s->repeats ? (size_t)snprintf(tmp, sizeof(tmp), "[last line repeated %zu times]\n",
                                          s->repeats)
                       : 0);
}

static int emit_span(tr_buf *out, const span *s)
{
    int rc = tr_buf_put(out, s->p, s->len);

    if (rc == TR_OK)
        rc = tr_buf_putc(out, '\n');
    if (rc == TR_OK && s->repeats > 0)
        rc = tr_buf_printf(out, "[last line repeated %zu times]\n", s->repeats);
    return rc;
}

static int emit_marker(tr_buf *out, size_t lines)
{
    return tr_buf_printf(out, "\xe2\x80\xa6 (%zu line%s omitted)\n", lines, lines == 1 ? "" : "s");
}

static int fold(const char *log, size_t len, span **out, size_t *count)
{
    const char *p = log, *end = log + len;
    span *lines = NULL;
    size_t n = 0, cap = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t line_len = nl ? (size_t)(nl - p) : (size_t)(end - p);

        if (line_len > 0 && p[line_len - 1] == '\r')
            line_len--;
        if (n > 0 && lines[n - 1].len == line_len && memcmp(lines[n - 1].p, p, line_len) == 0) {
            lines[n - 1].repeats++;
        } else {
            if (n == cap) {
                size_t next = cap ? cap * 2 : 64;
                span *grown = tr_realloc(lines, next * sizeof(*lines));

                if (grown == NULL) {
                    tr_free(lines);
                    return TR_ENOMEM;
                }
                lines = grown;
                cap = next;
            }
            lines[n++] = (span){ p, line_len, 0, tr_logwin_is_error_line(p, line_len), 0 };
        }
        p = nl ? nl + 1 : end;
    }
    *out = lines;
    *count = n;
    return TR_OK;
}

/* First span of the tail that fits budget bytes and tail_lines lines. */
static size_t tail_start(const span *lines, size_t count, size_t budget, size_t tail_lines)
{
    size_t bytes = 0, shown = 0, i;

    for (i = count; i > 0; i--) {
        size_t size = span_bytes(&lines[i - 1]), n = 1 + (lines[i - 1].repeats > 0);

        if ((tail_lines > 0 && shown + n > tail_lines) || bytes + size > budget)
            break;
        bytes += size;
        shown += n;
    }
    return i;
}

/*
 * Mark windows around error lines before `tail`, newest first, within
 * budget. Errors whose windows touch are one window (a stack trace is one
 * run of error lines); a window too big for what is left keeps its head,
 * where the exception and its first frames are.
 */
static size_t keep_windows(span *lines, size_t tail, size_t before, size_t after,
                           size_t budget, size_t *windows)
{
    size_t used = 0, e = tail;

    *windows = 0;
    while (*windows < TR_LOGWIN_MAX_WINDOWS && used + MARKER_RESERVE < budget) {
        size_t err, lo, hi, take = 0;

        while (e > 0 && !lines[e - 1].error)
            e--;
        if (e == 0)
            break;
        err = e - 1;
        hi = err + after < tail ? err + after : tail - 1;
        lo = err > before ? err - before : 0;
        for (size_t k = err; k-- > 0 && k + after + 1 >= lo;)
            if (lines[k].error)
                lo = k > before ? k - before : 0;
        for (size_t i = lo; i <= hi; i++) {
            size_t size = lines[i].keep ? 0 : span_bytes(&lines[i]);

            if (used + size + MARKER_RESERVE > budget)
                break;
            lines[i].keep = 1;
            used += size;
            take++;
        }
        if (take > 0) {
            used += MARKER_RESERVE;
            (*windows)++;
        }
        e = lo;
    }
    return used;
}

/* Even the last line is over the cap: a marker and its tail, at a UTF-8 boundary. */
static int emit_last_tail(tr_buf *out, const span *lines, size_t count, size_t max_bytes,
                          tr_logwin_stats *st)
{
    span last;
    size_t keep, skip;
    size_t omitted = 0;

    if (lines == NULL || count == 0)
        return TR_OK;
    last = lines[count - 1];
    keep = max_bytes < last.len ? max_bytes : last.len;
    skip = last.len - keep;
    int rc;

    for (size_t i = 0; i + 1 < count; i++)
        omitted += 1 + lines[i].repeats;
    omitted += last.repeats;
    last.repeats = 0;
    while (skip < last.len && ((unsigned char)last.p[skip] & 0xC0) == 0x80)
        skip++;
    last.p += skip;
    last.len -= skip;
    st->lines_omitted = omitted;
    rc = omitted ? emit_marker(out, omitted) : TR_OK;
    if (rc == TR_OK && skip > 0)
        rc = tr_buf_puts(out, "\xe2\x80\xa6"); /* the line itself was cut */
    return rc == TR_OK ? emit_span(out, &last) : rc;
}

int tr_logwin_cut(tr_buf *out, const char *log, size_t len, const tr_logwin_options *opt,
                  tr_logwin_stats *stats)
{
    tr_logwin_stats local = { 0 }, *st = stats ? stats : &local;
    size_t max_bytes = opt && opt->max_bytes ? opt->max_bytes : SIZE_MAX;
    size_t tail_lines = opt ? opt->tail_lines : 0;
    size_t before = DEFAULT_BEFORE, after = DEFAULT_AFTER, count = 0, tail, gap = 0, used;
    span *lines = NULL;
    int rc;

    memset(st, 0, sizeof(*st));
    if (opt && (opt->before_lines || opt->after_lines)) {
        before = opt->before_lines;
        after = opt->after_lines;
    }
    if (log == NULL || len == 0)
        return TR_OK;
    if ((rc = fold(log, len, &lines, &count)) != TR_OK)
        return rc;
    for (size_t i = 0; i < count; i++) {
        st->lines_in += 1 + lines[i].repeats;
        st->error_lines += lines[i].error ? 1 + lines[i].repeats : 0;
    }
    tail = tail_start(lines, count, max_bytes, tail_lines);
    if (tail > 0) {
        int errors_before = 0;
        size_t reserve = max_bytes > MARKER_RESERVE ? max_bytes - MARKER_RESERVE : 0;

        tail = tail_start(lines, count, reserve, tail_lines);
        for (size_t i = 0; i < tail && !errors_before; i++)
            errors_before = lines[i].error;
        if (errors_before)
            tail = tail_start(lines, count, reserve / 2, tail_lines);
    }
    if (tail == count) {
        rc = emit_last_tail(out, lines, count, max_bytes, st);
        goto cleanup;
    }
    used = 0;
    for (size_t i = tail; i < count; i++) {
        lines[i].keep = 1;
        used += span_bytes(&lines[i]);
    }
    if (tail > 0) {
        used += MARKER_RESERVE;
        used += keep_windows(lines, tail, before, after, max_bytes > used ? max_bytes - used : 0,
                             &st->windows);
        /* What the windows left over goes back to the tail. */
        size_t shown = 0;

        for (size_t i = tail; i < count; i++)
            shown += 1 + (lines[i].repeats > 0);
        for (; tail > 0 && !lines[tail - 1].keep; tail--) {
            shown += 1 + (lines[tail - 1].repeats > 0);
            if ((tail_lines > 0 && shown > tail_lines) ||
                used + span_bytes(&lines[tail - 1]) > max_bytes)
                break;
            lines[tail - 1].keep = 1;
            used += span_bytes(&lines[tail - 1]);
        }
    }
    rc = TR_OK;
    for (size_t i = 0; i < count && rc == TR_OK; i++) {
        if (!lines[i].keep) {
            gap += 1 + lines[i].repeats;
            continue;
        }
        if (gap > 0) {
            rc = emit_marker(out, gap);
            st->lines_omitted += gap;
            gap = 0;
        }
        if (rc == TR_OK)
            rc = emit_span(out, &lines[i]);
    }
cleanup:
    tr_free(lines);
    return rc;
}
