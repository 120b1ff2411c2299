/*
 * fuzz_tf_log.c - libFuzzer target for watchers/tf_log.c and tf_facts.c: arbitrary bytes as
 * a `terraform -json` log, fed in two chunks split where the first byte says (so partial
 * lines across feeds are exercised), with small caps so the cap paths are reached, then
 * every derived output (facts JSON, fingerprint, title, message) is built.
 */
#include "watchers/tf_facts.h"
#include "watchers/tf_log.h"

#include "alloc.h"
#include "error.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_tf_log_options opt = {.max_line_bytes = 4096, .max_diagnostics = 3,
                             .max_output_lines = 4, .max_text_bytes = 64,
                             .max_document_bytes = 8192};
    tr_tf_meta meta = {.workspace = "fuzz"};
    tr_tf_result *res = NULL;
    tr_tf_log *log = NULL;
    size_t split;
    char *text = NULL;
    tr_error err;

    if (tr_tf_log_new(&log, &opt) != 0)
        return 0;
    split = size > 0 ? data[0] % (size + 1) : 0;
    (void)tr_tf_log_feed(log, (const char *)data, split);
    (void)tr_tf_log_feed(log, (const char *)data + split, size - split);
    if (tr_tf_log_finish(log, &res, &err) == 0) {
        if (tr_tf_facts_json(&text, res, &meta) == 0)
            tr_free(text);
        if (tr_tf_fingerprint(&text, res, &meta) == 0)
            tr_free(text);
        if (tr_tf_title(&text, res) == 0)
            tr_free(text);
        if (tr_tf_message(&text, res) == 0)
            tr_free(text);
        tr_tf_result_free(res);
    }
    tr_tf_log_free(log);
    (void)tr_tf_line_is_final((const char *)data, size);
    return 0;
}
