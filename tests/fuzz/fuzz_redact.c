/*
 * fuzz_redact.c - libFuzzer target for daemon/redact.c: arbitrary bytes
 * through the text scanner (must never read out of bounds, and masking its
 * own output must change nothing: redaction is idempotent) and, when they
 * parse as JSON, through the tree redaction.
 */
#include "redact.h"

#include "alloc.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_buf once = TR_BUF_INIT(0), twice = TR_BUF_INIT(0);
    size_t count = 0;
    cJSON *tree;

    if (tr_redact_text(&once, (const char *)data, size, &count) == 0) {
        size_t again = 0;

        if (tr_redact_text(&twice, once.ptr ? once.ptr : "", once.len, &again) == 0 &&
            (again != 0 || twice.len != once.len ||
             (once.len && memcmp(once.ptr, twice.ptr, once.len) != 0)))
            abort();
    }
    tr_buf_dispose(&once);
    tr_buf_dispose(&twice);
    tree = cJSON_ParseWithLength((const char *)data, size);
    if (tree != NULL) {
        (void)tr_redact_json(tree, &count);
        cJSON_Delete(tree);
    }
    return 0;
}
