/*
 * fuzz_openapi.c - libFuzzer target for fixers/openapi.c: arbitrary bytes as a YAML file
 * validated against the fixed schema set of tests/unit/openapi_fixture.h (the YAML reader,
 * the scalar typing, the $ref walk and the error listing), and the same bytes as an
 * /openapi/v2 document. The verdict must be one of the three statuses and the detail bounded.
 */
#include "openapi.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/openapi_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tr_openapi_set *set;
    tr_openapi_set *other = NULL;
    tr_buf detail = TR_BUF_INIT(16384);
    tr_patch_check_status st;
    tr_error err;

    if (set == NULL && tr_openapi_parse(&set, openapi_fixture, strlen(openapi_fixture),
                                        &err) != 0)
        abort();
    st = tr_openapi_validate_yaml(set, (const char *)data, size, &detail);
    if ((st != TR_PATCH_CHECK_PASSED && st != TR_PATCH_CHECK_FAILED &&
         st != TR_PATCH_CHECK_SKIPPED) || detail.len > 16384)
        abort();
    tr_buf_dispose(&detail);
    if (tr_openapi_parse(&other, (const char *)data, size, &err) == 0) {
        tr_buf again = TR_BUF_INIT(4096);

        (void)tr_openapi_validate_yaml(other, "apiVersion: v1\nkind: Service\n", 29, &again);
        tr_buf_dispose(&again);
        tr_openapi_free(other);
    }
    return 0;
}
