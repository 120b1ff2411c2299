/*
 * fuzz_llm_reply.c - libFuzzer target for llm/reply.c: arbitrary bytes as an
 * assistant message (fence and prose scanning, field validation), as a chat
 * completion body and as an error envelope.
 */
#include "llm/reply.h"

#include "alloc.h"
#include "error.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    tr_llm_reply_limits limits = {.max_patch_lines = 20, .max_items = 5};
    tr_llm_reply *reply = NULL;
    tr_llm_completion completion;
    tr_llm_error_info info;
    tr_error err;

    /* Errors are fine here; crashes, leaks and UB are what is looked for. */
    if (tr_llm_reply_parse(&reply, text, size, &limits, &err) == TR_OK)
        tr_llm_reply_free(reply);
    if (tr_llm_completion_parse(&completion, text, size, &err) == TR_OK)
        tr_llm_completion_dispose(&completion);
    (void)tr_llm_error_parse(&info, text, size);
    return 0;
}
