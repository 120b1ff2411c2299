/*
 * fuzz_redact.c - libFuzzer target for daemon/redact.c: arbitrary bytes
 * through the text scanner and the YAML walk (must never read out of
 * bounds; masking the text scanner's own output must not unmask anything,
 * and neither output may hold a new value under a number the input used), and,
 * when they parse as JSON, through the tree redaction in one context with
 * the text (same value, same number). The fast scan (first-byte dispatch,
 * words skipped) must give the same bytes and counts as the reference scan
 * that tries every rule at every byte.
 */
#include "redact.h"
#include "redact_internal.h"

#include "alloc.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fast_scan_equals_reference(const uint8_t *data, size_t size)
{
    tr_buf fast = TR_BUF_INIT(0), slow = TR_BUF_INIT(0);
    tr_redact_ctx *fast_ctx = tr_redact_ctx_new(), *slow_ctx = tr_redact_ctx_new();
    int fast_rc, slow_rc;

    if (fast_ctx != NULL && slow_ctx != NULL) {
        fast_rc = tr_redact_text_ctx(fast_ctx, &fast, (const char *)data, size);
        slow_rc = rd_redact_text_reference(slow_ctx, &slow, (const char *)data, size);
        if (fast_rc != slow_rc || fast.len != slow.len ||
            (fast.len && memcmp(fast.ptr, slow.ptr, fast.len) != 0) ||
            memcmp(tr_redact_ctx_stats(fast_ctx), tr_redact_ctx_stats(slow_ctx),
                   sizeof(tr_redact_stats)) != 0)
            abort();
    }
    tr_buf_dispose(&fast);
    tr_buf_dispose(&slow);
    tr_redact_ctx_free(fast_ctx);
    tr_redact_ctx_free(slow_ctx);
}

/* Length of a placeholder `<redacted:N>` at p (digits, then '>'), else 0. */
static size_t placeholder_at(const char *p, const char *end)
{
    const char *q = p + 10;

    if ((size_t)(end - p) < 12 || memcmp(p, "<redacted:", 10) != 0)
        return 0;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    return q > p + 10 && q < end && *q == '>' ? (size_t)(q + 1 - p) : 0;
}

/*
 * 1 when every stretch of `after` between its placeholders is text of `before`: a second
 * pass may mask more (a look-back that now sees a placeholder where a value was:
 * over-masking, the safe side) but never brings back a byte the first pass hid.
 */
static int only_masks_more(const char *before, size_t blen, const char *after, size_t alen)
{
    const char *p = after, *end = after + alen, *start = after;
    size_t ph;

    while (p <= end) {
        ph = p < end ? placeholder_at(p, end) : 0;
        if (p == end || ph > 0) {
            if (p > start && (blen == 0 || memmem(before, blen, start, (size_t)(p - start)) ==
                                               NULL))
                return 0;
            if (p == end)
                break;
            p += ph;
            start = p;
            continue;
        }
        p++;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_buf once = TR_BUF_INIT(0), twice = TR_BUF_INIT(0), yaml = TR_BUF_INIT(0);
    tr_redact_ctx *ctx = tr_redact_ctx_new();
    size_t count = 0;
    cJSON *tree;

    if (ctx == NULL)
        return 0;
    check_fast_scan_equals_reference(data, size);
    if (tr_redact_text_ctx(ctx, &once, (const char *)data, size) == 0) {
        size_t again = 0;

        if (tr_redact_text(&twice, once.ptr ? once.ptr : "", once.len, &again) == 0 &&
            !only_masks_more(once.ptr ? once.ptr : "", once.len, twice.ptr ? twice.ptr : "",
                             twice.len))
            abort();
        if (tr_redact_ctx_stats(ctx)->total > 0 && !tr_redact_has_placeholder(once.ptr, once.len))
            abort();
    }
    (void)tr_redact_yaml_ctx(ctx, &yaml, (const char *)data, size);
    tr_buf_dispose(&once);
    tr_buf_dispose(&twice);
    tr_buf_dispose(&yaml);
    tree = cJSON_ParseWithLength((const char *)data, size);
    if (tree != NULL) {
        (void)tr_redact_json_ctx(ctx, tree);
        (void)tr_redact_json(tree, &count);
        cJSON_Delete(tree);
    }
    tr_redact_ctx_free(ctx);
    return 0;
}
