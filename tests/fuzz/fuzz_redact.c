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

static size_t placeholders(const char *s, size_t len)
{
    size_t n = 0;
    const char *p = s, *end = s + len;

    while (p != NULL && p < end && (p = memmem(p, (size_t)(end - p), "<redacted:", 10)) != NULL) {
        n++;
        p += 10;
    }
    return n;
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

        /* A second pass may mask a little more (a look-back that now sees a placeholder
         * where a value was: over-masking, the safe side), never less. */
        if (tr_redact_text(&twice, once.ptr ? once.ptr : "", once.len, &again) == 0 &&
            placeholders(twice.ptr, twice.len) < placeholders(once.ptr, once.len))
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
