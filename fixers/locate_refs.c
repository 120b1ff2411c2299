/*
 * locate_refs.c - Secret and ConfigMap names defined and referenced, in
 * the repository (from the index) and in live objects (JSON).
 *
 * One walker serves both: it looks for the reference shapes anywhere below
 * an object, so a Pod, a Deployment's template, a CronJob's jobTemplate and
 * a Flux decryption secretRef are all covered without a per-kind table:
 *   env[].valueFrom.secretKeyRef.name / configMapKeyRef.name,
 *   envFrom[].secretRef.name / configMapRef.name,
 *   volumes[].secret.secretName / configMap.name,
 *   projected.sources[].secret.name / configMap.name,
 *   imagePullSecrets[].name.
 * Only names are copied; a Secret's data is never looked at (the index
 * does not even read it, see locate_index.c).
 */
#include "locate_internal.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "buf.h"

#define WALK_DEPTH_MAX 64

static int add_ref(char **refs, size_t *count, size_t max, char type, const cJSON *name)
{
    size_t i, len;
    char *ref;

    if (!cJSON_IsString(name) || name->valuestring[0] == '\0')
        return 0;
    len = strlen(name->valuestring);
    for (i = 0; i < *count; i++)
        if (refs[i][0] == type && strcmp(refs[i] + 1, name->valuestring) == 0)
            return 0;
    if (*count >= max)
        return 0;
    if ((ref = tr_malloc(len + 2)) == NULL)
        return TR_ENOMEM;
    ref[0] = type;
    memcpy(ref + 1, name->valuestring, len + 1);
    refs[(*count)++] = ref;
    return 0;
}

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static int walk(const cJSON *node, char **refs, size_t *count, size_t max, int depth)
{
    const cJSON *child, *item;
    int rc = 0;

    if (depth > WALK_DEPTH_MAX || !(cJSON_IsObject(node) || cJSON_IsArray(node)))
        return 0;
    cJSON_ArrayForEach(child, node) {
        const char *key = cJSON_IsObject(node) ? child->string : NULL;

        if (key != NULL && cJSON_IsObject(child)) {
            if (strcmp(key, "secretKeyRef") == 0 || strcmp(key, "secretRef") == 0)
                rc = add_ref(refs, count, max, 'S', get(child, "name"));
            else if (strcmp(key, "configMapKeyRef") == 0 || strcmp(key, "configMapRef") == 0 ||
                     strcmp(key, "configMap") == 0)
                rc = add_ref(refs, count, max, 'C', get(child, "name"));
            else if (strcmp(key, "secret") == 0)
                rc = add_ref(refs, count, max, 'S', get(child, "secretName") ? get(child,
                             "secretName") : get(child, "name"));
        } else if (key != NULL && strcmp(key, "imagePullSecrets") == 0) {
            cJSON_ArrayForEach(item, child) {
                if ((rc = add_ref(refs, count, max, 'S', get(item, "name"))) != 0)
                    break;
            }
        }
        if (rc == 0)
            rc = walk(child, refs, count, max, depth + 1);
        if (rc != 0)
            break;
    }
    return rc;
}

int tr_locate_refs_collect(const cJSON *obj, char **refs, size_t *count, size_t max)
{
    return walk(obj, refs, count, max, 0);
}

void tr_locate_names_dispose(tr_locate_names *names)
{
    size_t i;

    if (names == NULL)
        return;
    for (i = 0; i < names->count; i++) {
        tr_free(names->items[i].name);
        tr_free(names->items[i].where);
    }
    names->count = 0;
    names->truncated = 0;
}

static int names_add(tr_locate_names *names, const char *name, const char *where)
{
    size_t i;
    tr_locate_name *item;

    for (i = 0; i < names->count; i++)
        if (strcmp(names->items[i].name, name) == 0 && strcmp(names->items[i].where, where) == 0)
            return 0;
    if (names->count >= TR_LOCATE_MAX_NAMES) {
        names->truncated = 1;
        return 0;
    }
    item = &names->items[names->count];
    item->name = tr_strdup(name);
    item->where = tr_strdup(where);
    if (item->name == NULL || item->where == NULL) {
        tr_free(item->name);
        tr_free(item->where);
        return TR_ENOMEM;
    }
    names->count++;
    return 0;
}

static int kind_letter(const char *kind)
{
    if (kind != NULL && strcmp(kind, "Secret") == 0)
        return 'S';
    if (kind != NULL && strcmp(kind, "ConfigMap") == 0)
        return 'C';
    return 0;
}

/* A namespace the document lands in: its own, unset, or one an overlay gives it. */
static int doc_in_namespace(const tr_locate_index *index, size_t doc, const char *ns)
{
    const char *own = index->docs[doc].pub.namespace_;
    size_t i;

    if (own == NULL || tr_locate_str_eq(own, ns))
        return 1;
    for (i = 0; i < index->view_count; i++)
        if (index->views[i].doc == doc && tr_locate_str_eq(index->views[i].ns, ns))
            return 1;
    return 0;
}

static int where_doc(tr_buf *where, const tr_locate_doc_rec *rec)
{
    tr_buf_clear(where);
    return tr_buf_printf(where, "%s:%d %s/%s", rec->pub.file, rec->ref_line,
                         rec->pub.kind ? rec->pub.kind : "?",
                         rec->pub.name ? rec->pub.name : "?");
}

int tr_locate_config_refs(tr_locate_names *defined, tr_locate_names *referenced,
                          const tr_locate_index *index, const char *namespace_,
                          const char *kind, tr_error *err)
{
    tr_buf where = TR_BUF_INIT(4096);
    int letter = kind_letter(kind), rc = 0;
    size_t i, j;

    memset(defined, 0, sizeof(*defined));
    memset(referenced, 0, sizeof(*referenced));
    if (letter == 0 || index == NULL)
        return tr_error_set(err, TR_EINVAL, "config refs: kind must be Secret or ConfigMap");
    for (i = 0; i < index->doc_count && rc == 0; i++) {
        const tr_locate_doc_rec *rec = &index->docs[i];

        if (!doc_in_namespace(index, i, namespace_))
            continue;
        if ((rc = where_doc(&where, rec)) != 0)
            break;
        if (rec->pub.kind && strcmp(rec->pub.kind, kind) == 0 && rec->pub.name)
            rc = names_add(defined, rec->pub.name, where.ptr);
        for (j = 0; j < index->view_count && rc == 0; j++) {
            const tr_locate_view *v = &index->views[j];

            if (v->doc == i && rec->pub.kind && strcmp(rec->pub.kind, kind) == 0 &&
                tr_locate_str_eq(v->ns, namespace_) && strcmp(v->name, rec->pub.name) != 0)
                rc = names_add(defined, v->name, where.ptr);
        }
        for (j = 0; j < rec->ref_count && rc == 0; j++)
            if (rec->refs[j][0] == letter)
                rc = names_add(referenced, rec->refs[j] + 1, where.ptr);
    }
    tr_buf_dispose(&where);
    if (rc != 0) {
        tr_locate_names_dispose(defined);
        tr_locate_names_dispose(referenced);
        return tr_error_set(err, rc, "config refs: %s", tr_strerror(rc));
    }
    return 0;
}

int tr_locate_config_refs_json(tr_locate_names *referenced, const cJSON *items,
                               const char *kind, tr_error *err)
{
    const char *const none = "?";
    char *refs[TR_LOCATE_DOC_REFS_MAX];
    tr_buf where = TR_BUF_INIT(1024);
    int letter = kind_letter(kind), rc = 0;
    const cJSON *item;
    size_t count, j;

    if (letter == 0)
        return tr_error_set(err, TR_EINVAL, "config refs: kind must be Secret or ConfigMap");
    cJSON_ArrayForEach(item, items) {
        const cJSON *meta = get(item, "metadata");
        const cJSON *k = get(item, "kind"), *n = get(meta, "name");

        count = 0;
        rc = tr_locate_refs_collect(item, refs, &count, TR_LOCATE_DOC_REFS_MAX);
        tr_buf_clear(&where);
        if (rc == 0)
            rc = tr_buf_printf(&where, "%s/%s", cJSON_IsString(k) ? k->valuestring : none,
                               cJSON_IsString(n) ? n->valuestring : none);
        for (j = 0; j < count; j++) {
            if (rc == 0 && refs[j][0] == letter)
                rc = names_add(referenced, refs[j] + 1, where.ptr);
            tr_free(refs[j]);
        }
        if (rc != 0)
            break;
    }
    tr_buf_dispose(&where);
    if (rc != 0)
        return tr_error_set(err, rc, "config refs: %s", tr_strerror(rc));
    return 0;
}
