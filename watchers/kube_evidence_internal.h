/*
 * kube_evidence_internal.h - what kube_evidence.c (the gathering) and
 * kube_evidence_trim.c (pure trimming of objects, events and logs) share.
 * Not part of the module's public surface (kube_evidence.h is).
 */
#ifndef TR_KUBE_EVIDENCE_INTERNAL_H
#define TR_KUBE_EVIDENCE_INTERNAL_H

#include <cjson/cJSON.h>

/* "Kind/name" lines: names are DNS subdomains (253 bytes), kinds short. */
#define TR_KE_NAME_LINE 330

const char *ke_str(const cJSON *obj, const char *key);
/* obj.a.b.c, any of b and c NULL to stop earlier; NULL when absent. */
const cJSON *ke_path(const cJSON *obj, const char *a, const char *b, const char *c);

/* New trimmed copies (caller frees with cJSON_Delete), NULL without memory. */
cJSON *ke_trim_object(const char *kind, const cJSON *object);
cJSON *ke_trim_pod_spec(const cJSON *spec);
cJSON *ke_trim_container_status(const cJSON *status);
cJSON *ke_trim_event(const cJSON *event);

/* 1 when tr_kube_object_path knows kind (alt: and an older API version of it). */
int ke_kind_known(const char *kind, int alt);

/* Append "Kind/name" of each owner reference of object to chain. */
int ke_owner_chain(cJSON *chain, const cJSON *object);

#endif
