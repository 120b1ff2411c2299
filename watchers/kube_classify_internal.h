/*
 * kube_classify_internal.h - what the kube_classify*.c files share: the
 * classification context, result builders and message parsers. Not part of
 * the module's public surface (kube_classify.h is).
 */
#ifndef TR_KUBE_CLASSIFY_INTERNAL_H
#define TR_KUBE_CLASSIFY_INTERNAL_H

#include "kube_classify.h"

typedef struct kc_ctx {
    const tr_kube_classify_options *opt;
    const tr_kube_cache *cache;
    const char *cluster;
    int64_t now_ms;
    tr_kube_result *out;
    int rc; /* first TR_ENOMEM met while building; findings after it are skipped */
} kc_ctx;

/*
 * Add a finding (strings copied; message cut to message_max_bytes). Returns
 * the finding to add facts to, or NULL when the result is full, the same
 * owner already has a finding of this class in it (the first one wins), or
 * memory ran out (ctx->rc is set).
 */
tr_kube_finding *kc_add(kc_ctx *ctx, int failure_class, const char *ns, const char *object_kind,
                        const char *object_name, const tr_kube_owner *owner,
                        const char *message);
void kc_health(kc_ctx *ctx, const char *ns, const char *owner_kind, const char *owner_name,
               uint32_t classes, int healthy);

/* Facts setters: a NULL value is not added; strings are cut to message_max_bytes. */
void kc_fact_str(kc_ctx *ctx, tr_kube_finding *f, const char *key, const char *value);
void kc_fact_int(kc_ctx *ctx, tr_kube_finding *f, const char *key, int64_t value);
void kc_fact_bool(kc_ctx *ctx, tr_kube_finding *f, const char *key, int value);

/*
 * The quoted text after marker in message (`secret "db-pass" not found` with
 * marker `secret "` → db-pass), copied into buf; NULL when absent or too long.
 */
const char *kc_quoted_after(const char *message, const char *marker, char *buf, size_t size);
/* Parse a missing Secret/ConfigMap reference out of a kubelet message; 1 when found. */
int kc_missing_ref(const char *message, char *kind, size_t kind_size, char *name,
                   size_t name_size, char *key, size_t key_size);
/* FNV-1a mixing for detail hashes. */
uint32_t kc_mix(uint32_t hash, const char *s);
uint32_t kc_mix_int(uint32_t hash, int64_t v);

int kc_classify_event(kc_ctx *ctx, const cJSON *event);
int kc_classify_pod(kc_ctx *ctx, const cJSON *pod);
int kc_classify_deployment(kc_ctx *ctx, const cJSON *deployment);
int kc_classify_job(kc_ctx *ctx, const cJSON *job);
int kc_classify_node(kc_ctx *ctx, const cJSON *node);
int kc_classify_pvc(kc_ctx *ctx, const cJSON *pvc);
int kc_classify_argo_app(kc_ctx *ctx, const cJSON *app);
int kc_classify_flux(kc_ctx *ctx, const cJSON *object, const char *kind);

#endif
