/*
 * fuzz_kubeconfig.c - libFuzzer target for watchers/kubeconfig.c: arbitrary
 * bytes as a kubeconfig (YAML tree, context/cluster/user selection, base64
 * PEM decoding, exec plugin parsing) and, since JSON is also YAML, the same
 * bytes as an exec plugin's ExecCredential output.
 *
 * Relative paths resolve under a directory that does not exist, so file
 * references in the input fail instead of reading the fuzzer's working tree.
 */
#include "watchers/kubeconfig.h"

#include "alloc.h"
#include "error.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    tr_kube_exec_cred *cred = NULL;
    tr_kube_conn *conn = NULL;
    char *request = NULL;
    tr_error err;

    if (tr_kubeconfig_load_string(&conn, text, size, "fuzz", "/nonexistent-triaged-fuzz", NULL,
                                  &err) == TR_OK && conn->exec) {
        /* Errors are fine here; crashes, leaks and UB are what is looked for. */
        (void)tr_kube_exec_request_json(&request, conn, &err);
        tr_free(request);
    }
    tr_kube_conn_free(conn);
    if (tr_kubeconfig_load_string(&conn, text, size, "fuzz", NULL, "prod", &err) == TR_OK)
        tr_kube_conn_free(conn);
    if (tr_kube_exec_parse_response(&cred, NULL, text, size, &err) == TR_OK)
        tr_kube_exec_cred_free(cred);
    return 0;
}
