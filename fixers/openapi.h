/*
 * openapi.h - Kubernetes objects in a patched YAML file checked against the cluster's own
 * schema (GET /openapi/v2, Swagger 2.0 JSON), before the fixer commits the patch.
 *
 * tr_openapi_parse() keeps only the document's "definitions" as a cJSON tree (the "paths",
 * by far the larger part, and every "description" are dropped), indexed by the
 * group/version/kind of each definition's x-kubernetes-group-version-kind. Memory: a real
 * apiserver's document is 3-5 MB; what is kept is about 1 MB of JSON, some 40k cJSON nodes of
 * 64 bytes plus their strings, i.e. a few MB per set. The set is immutable once parsed, so one
 * set may serve several threads at once.
 *
 * tr_openapi_validate_yaml() reads every YAML document of a file (libyaml, bounded) and walks
 * each object against its kind's schema following $refs: unknown fields (where the schema
 * lists properties and allows nothing more), wrong types and missing required fields are
 * reported as `apps/v1 Deployment web: spec.template.spec.containers[0].resoures: unknown
 * field`. Kinds the cluster does not know (a CRD it lacks, a Kustomization) and documents that
 * are not Kubernetes objects are skipped with a note, not failed. Types follow kubectl's
 * lenient rule where the API itself is lenient: a string field takes a number (a Quantity
 * `cpu: 1`), an integer field an integral float; int-or-string takes both.
 *
 * Nothing here logs or keeps global state.
 */
#ifndef TR_OPENAPI_H
#define TR_OPENAPI_H

#include <stddef.h>

#include "buf.h"
#include "error.h"
#include "patch.h"

#define TR_OPENAPI_MAX_DOC_BYTES ((size_t)64 * 1024 * 1024)
#define TR_OPENAPI_MAX_ERRORS 10

typedef struct tr_openapi_set tr_openapi_set;

/*
 * Parse an /openapi/v2 document. TR_EPARSE (not JSON, no "definitions" object, no kind
 * carrying x-kubernetes-group-version-kind) or TR_ETOOBIG (over TR_OPENAPI_MAX_DOC_BYTES)
 * with err saying which; TR_ENOMEM. Caller frees *out with tr_openapi_free.
 */
int tr_openapi_parse(tr_openapi_set **out, const char *json, size_t len, tr_error *err);

/* Accepts NULL. */
void tr_openapi_free(tr_openapi_set *set);

/* Distinct group/version/kind entries indexed. */
size_t tr_openapi_kind_count(const tr_openapi_set *set);

/* 1 when the set has a schema for apiVersion ("apps/v1", "v1") + kind. */
int tr_openapi_has_kind(const tr_openapi_set *set, const char *api_version, const char *kind);

/*
 * Validate every object of a YAML file. FAILED with up to TR_OPENAPI_MAX_ERRORS lines in
 * detail (one per error, then "... and N more") when an object breaks its schema or the YAML
 * does not parse; SKIPPED when no document is an object of a kind the set knows (detail
 * says why); PASSED otherwise (detail counts the objects checked and notes the skipped ones).
 * Never fails on bad input; detail is appended to (its cap bounds it).
 */
tr_patch_check_status tr_openapi_validate_yaml(const tr_openapi_set *set, const char *content,
                                               size_t len, tr_buf *detail);

/* A tr_patch_yaml_hook: ctx is a const tr_openapi_set *; path is not used. */
tr_patch_check_status tr_openapi_yaml_hook(void *ctx, const char *path, const char *content,
                                           size_t len, tr_buf *detail);

#endif
