/*
 * fuzz_kube_lease.c - libFuzzer target for the Lease reader of kube_lease.h:
 * the input is read as a Lease object (as the apiserver answers a GET) and,
 * when it parses, decided on and turned into the takeover, renewal and
 * release bodies, each of which must read back as a Lease with the same
 * resourceVersion. The input's text is also tried as a MicroTime.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "kube_lease.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_body(const tr_kube_lease_record *rec, tr_kube_lease_action action,
                       const char *json, size_t size)
{
    tr_kube_lease_record back;
    tr_error err = { 0 };
    char *body = NULL;

    if (tr_kube_lease_build_update(&body, json, size, action, "fuzz_1", 1714557600123456, 15,
                                   &err) != TR_OK)
        return;
    if (tr_kube_lease_record_parse(&back, body, strlen(body), &err) != TR_OK ||
        strcmp(back.resource_version, rec->resource_version) != 0 ||
        strcmp(back.holder, action == TR_KUBE_LEASE_RELEASE ? "" : "fuzz_1") != 0)
        abort();
    tr_kube_lease_record_dispose(&back);
    tr_free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_kube_lease_record rec;
    tr_error err = { 0 };
    char *text = tr_strndup((const char *)data, size);
    int64_t us = 0;

    if (text == NULL)
        return 0;
    (void)tr_kube_lease_parse_time(text, &us);
    if (tr_kube_lease_record_parse(&rec, (const char *)data, size, &err) == TR_OK) {
        (void)tr_kube_lease_decide(&rec, "fuzz_1", 1714557600123456);
        (void)tr_kube_lease_record_expired(&rec, 0);
        check_body(&rec, TR_KUBE_LEASE_ACQUIRE, (const char *)data, size);
        check_body(&rec, TR_KUBE_LEASE_RENEW, (const char *)data, size);
        check_body(&rec, TR_KUBE_LEASE_RELEASE, (const char *)data, size);
        tr_kube_lease_record_dispose(&rec);
    }
    tr_free(text);
    return 0;
}
