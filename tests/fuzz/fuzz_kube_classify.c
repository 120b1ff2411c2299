/*
 * fuzz_kube_classify.c - arbitrary JSON through the cache and every
 * classifier (as each resource in turn), with and without a cache, and the
 * findings' facts serialised: no crash, no leak, no undefined behaviour.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "kube_cache.h"
#include "kube_classify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int installed;
    tr_kube_cache_options options = { .max_pods = 64, .max_event_keys = 64 };
    tr_kube_cache *cache = NULL;
    tr_kube_result result;
    cJSON *object;

    if (!installed) {
        (void)tr_alloc_install();
        installed = 1;
    }
    object = cJSON_ParseWithLength((const char *)data, size);
    if (object == NULL)
        return 0;
    if (tr_kube_cache_new(&cache, &options, NULL) != 0) {
        cJSON_Delete(object);
        return 0;
    }
    for (int resource = 1; resource < TR_KUBE_RES_COUNT; resource++) {
        for (int with_cache = 0; with_cache < 2; with_cache++) {
            if (with_cache)
                (void)tr_kube_cache_apply(cache, resource, 0, object, 1795560000000);
            (void)tr_kube_classify(NULL, with_cache ? cache : NULL, "fuzz", resource, object,
                                   1795560000000, &result);
            for (size_t i = 0; i < result.finding_count; i++) {
                char *text = cJSON_PrintUnformatted(result.findings[i].facts);

                cJSON_free(text);
            }
            tr_kube_result_dispose(&result);
        }
    }
    tr_kube_cache_sync_begin(cache, TR_KUBE_RES_PODS);
    (void)tr_kube_cache_sync_end(cache, TR_KUBE_RES_PODS);
    for (int resource = 1; resource < TR_KUBE_RES_COUNT; resource++)
        (void)tr_kube_cache_apply(cache, resource, 1, object, 1795560000000);
    tr_kube_cache_free(cache);
    cJSON_Delete(object);
    return 0;
}
