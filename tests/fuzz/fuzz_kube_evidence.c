/*
 * fuzz_kube_evidence.c - libFuzzer target for the text kube_evidence and
 * llm/evidence take from the cluster: arbitrary bytes as a container log
 * through tr_kube_log_condense (limits taken from the first two bytes; the
 * result must respect the byte cap, allowing for the cut notice and one fold
 * marker), and as gathered evidence through tr_evidence_bundle_ex at a small
 * budget (must never crash, always fit what can be fitted).
 */
#include "evidence.h"
#include "kube_evidence.h"

#include "alloc.h"
#include "buf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_buf out = TR_BUF_INIT(0);
    tr_store_incident inc;
    int64_t lines, bytes, tokens = 0;
    char *text, *bundle = NULL;
    tr_error err;

    if (size < 2)
        return 0;
    lines = data[0] % 8;
    bytes = (int64_t)data[1] * 4;
    if (tr_kube_log_condense(&out, (const char *)data + 2, size - 2, lines, bytes) == 0 &&
        bytes > 0 && out.len > (size_t)bytes + 64 + 21)
        abort();
    tr_buf_dispose(&out);
    text = tr_strndup((const char *)data + 2, size - 2);
    if (text == NULL)
        return 0;
    memset(&inc, 0, sizeof(inc));
    inc.source = "kubernetes";
    inc.kind = "Deployment";
    inc.name = "fuzz";
    inc.failure_class = "CrashLoopBackOff";
    if (tr_evidence_bundle_ex(&inc, text, TR_EVIDENCE_MIN_TOKENS, &bundle, &tokens, NULL,
                              &err) == 0)
        tr_free(bundle);
    tr_free(text);
    return 0;
}
