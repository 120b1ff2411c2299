/*
 * locate_find.c - kustomize identities and the ranked query of locate.h.
 *
 * Kustomize renders a document of a base once per overlay that reaches it,
 * each time under another name and namespace. For every kustomization K
 * (taken as the root of a build, as Argo/Flux do with their `path`) the
 * resources are followed down through nested kustomizations, and each
 * document reached gets a view: K's and every inner level's namePrefix
 * and nameSuffix around its name (outer prefixes first, outer suffixes
 * last) and the namespace of the outermost level that sets one. Remote
 * resources (URLs) are not followed; cycles and depth are capped.
 */
#include "locate_internal.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"

#define KUST_DEPTH_MAX 16
#define VIEWS_MAX 200000

int tr_locate_str_eq(const char *a, const char *b)
{
    if (a == NULL || a[0] == '\0')
        return b == NULL || b[0] == '\0';
    return b != NULL && strcmp(a, b) == 0;
}

int tr_locate_path_under(const char *path, const char *dir)
{
    size_t len = strlen(dir);

    if (len == 0)
        return 1;
    return strncmp(path, dir, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

int tr_locate_normalize(tr_buf *out, const char *dir, const char *rel)
{
    tr_buf all = TR_BUF_INIT(4096);
    char *save = NULL, *part;
    int rc = -1;

    tr_buf_clear(out);
    if (tr_buf_printf(&all, "%s/%s", dir, rel) != 0)
        goto cleanup;
    for (part = strtok_r(all.ptr, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
        if (strcmp(part, ".") == 0)
            continue;
        if (strcmp(part, "..") == 0) {
            char *slash;

            if (out->len == 0)
                goto cleanup;
            slash = strrchr(out->ptr, '/');
            out->len = slash ? (size_t)(slash - out->ptr) : 0;
            out->ptr[out->len] = '\0';
            continue;
        }
        if ((out->len && tr_buf_putc(out, '/') != 0) || tr_buf_puts(out, part) != 0)
            goto cleanup;
    }
    rc = 0;
cleanup:
    tr_buf_dispose(&all);
    return rc;
}

static int cluster_scoped(const char *kind)
{
    static const char *const kinds[] = {
        "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
        "PersistentVolume", "StorageClass", "PriorityClass", "IngressClass",
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService",
    };
    size_t i;

    for (i = 0; kind && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kind, kinds[i]) == 0)
            return 1;
    return 0;
}

typedef struct render {
    tr_locate_index *index;
    size_t outer;
    size_t chain[KUST_DEPTH_MAX];
    size_t depth;
} render;

static int add_view(render *r, size_t doc, const char *prefix, const char *suffix,
                    const char *ns)
{
    tr_locate_index *index = r->index;
    tr_locate_doc_rec *rec = &index->docs[doc];
    tr_locate_view *view;
    tr_buf name = TR_BUF_INIT(1024);

    if (rec->pub.name == NULL || index->view_count >= VIEWS_MAX)
        return 0;
    if (tr_locate_grow((void **)&index->views, &index->view_cap, index->view_count,
                       sizeof(*view)) != 0)
        return TR_ENOMEM;
    if (tr_buf_printf(&name, "%s%s%s", prefix, rec->pub.name, suffix) != 0) {
        tr_buf_dispose(&name);
        return 0; /* an over-long rendered name cannot match a live object */
    }
    view = &index->views[index->view_count++];
    view->doc = doc;
    view->kust = r->outer;
    view->name = tr_buf_detach(&name);
    view->ns = cluster_scoped(rec->pub.kind) ? NULL : ns ? ns : rec->pub.namespace_;
    tr_buf_dispose(&name);
    return view->name ? 0 : TR_ENOMEM;
}

static int render_kust(render *r, size_t k, const char *prefix, const char *suffix,
                       const char *ns);

static int render_resource(render *r, const tr_locate_kust *k, const char *resource,
                           const char *prefix, const char *suffix, const char *ns)
{
    tr_buf path = TR_BUF_INIT(4096);
    size_t i;
    int rc = 0, found = 0;

    if (strstr(resource, "://") != NULL || strncmp(resource, "github.com/", 11) == 0 ||
        tr_locate_normalize(&path, k->dir, resource) != 0 || path.ptr == NULL)
        goto cleanup;
    for (i = 0; i < r->index->doc_count && rc == 0; i++) {
        const tr_locate_doc_rec *rec = &r->index->docs[i];

        if (strcmp(rec->pub.file, path.ptr) != 0)
            continue;
        found = 1;
        rc = add_view(r, i, prefix, suffix, ns);
    }
    for (i = 0; !found && i < r->index->kust_count && rc == 0; i++)
        if (strcmp(r->index->kusts[i].dir, path.ptr) == 0) {
            rc = render_kust(r, i, prefix, suffix, ns);
            break;
        }
cleanup:
    tr_buf_dispose(&path);
    return rc;
}

static int render_kust(render *r, size_t k, const char *prefix, const char *suffix,
                       const char *ns)
{
    const tr_locate_kust *kust = &r->index->kusts[k];
    tr_buf inner_prefix = TR_BUF_INIT(1024), inner_suffix = TR_BUF_INIT(1024);
    size_t i;
    int rc = 0;

    if (r->depth >= KUST_DEPTH_MAX)
        return 0;
    for (i = 0; i < r->depth; i++)
        if (r->chain[i] == k)
            return 0; /* a resource cycle: kustomize refuses it too */
    r->chain[r->depth++] = k;
    if (tr_buf_printf(&inner_prefix, "%s%s", prefix, kust->name_prefix ? kust->name_prefix
                                                                       : "") != 0 ||
        tr_buf_printf(&inner_suffix, "%s%s", kust->name_suffix ? kust->name_suffix : "",
                      suffix) != 0)
        goto cleanup;
    if (ns == NULL)
        ns = kust->namespace_;
    for (i = 0; i < kust->resource_count && rc == 0; i++)
        rc = render_resource(r, kust, kust->resources[i], tr_buf_cstr(&inner_prefix),
                             tr_buf_cstr(&inner_suffix), ns);
cleanup:
    r->depth--;
    tr_buf_dispose(&inner_prefix);
    tr_buf_dispose(&inner_suffix);
    return rc;
}

int tr_locate_views_build(tr_locate_index *index)
{
    render r;
    size_t k;
    int rc = 0;

    for (k = 0; k < index->kust_count && rc == 0; k++) {
        memset(&r, 0, sizeof(r));
        r.index = index;
        r.outer = k;
        rc = render_kust(&r, k, "", "", NULL);
    }
    return rc;
}

/* ------------------------------------------------------------- find */

static int score(const char *doc_kind, const char *doc_name, const char *doc_ns,
                 const char *kind, const char *name, const char *ns)
{
    int kind_ok = kind == NULL || (doc_kind != NULL && strcmp(doc_kind, kind) == 0);

    if (doc_name == NULL || strcmp(doc_name, name) != 0)
        return 0;
    if (kind_ok && tr_locate_str_eq(doc_ns, ns))
        return TR_LOCATE_SCORE_EXACT;
    if (kind_ok && (doc_ns == NULL || doc_ns[0] == '\0'))
        return TR_LOCATE_SCORE_DEFAULT_NS;
    return TR_LOCATE_SCORE_NAME;
}

static int cmp_match(const void *pa, const void *pb)
{
    const tr_locate_match *a = pa, *b = pb;
    int c;

    if (a->score != b->score)
        return b->score - a->score;
    if ((c = strcmp(a->file, b->file)) != 0)
        return c;
    return a->doc_index - b->doc_index;
}

size_t tr_locate_find(const tr_locate_index *index, const char *subpath, const char *kind,
                      const char *name, const char *namespace_, tr_locate_match *matches,
                      size_t max)
{
    tr_locate_match *best;
    tr_buf sub = TR_BUF_INIT(4096);
    size_t i, count = 0;

    if (index == NULL || name == NULL || max == 0 || index->doc_count == 0)
        return 0;
    if (subpath != NULL && (tr_locate_normalize(&sub, "", subpath) != 0))
        return 0;
    if ((best = tr_calloc(index->doc_count, sizeof(*best))) == NULL) {
        tr_buf_dispose(&sub);
        return 0;
    }
    for (i = 0; i < index->doc_count; i++) {
        const tr_locate_doc *d = &index->docs[i].pub;

        if (subpath != NULL && !tr_locate_path_under(d->file, tr_buf_cstr(&sub)))
            continue;
        best[i].score = score(d->kind, d->name, d->namespace_, kind, name, namespace_);
    }
    for (i = 0; i < index->view_count; i++) {
        const tr_locate_view *v = &index->views[i];
        const tr_locate_kust *k = &index->kusts[v->kust];
        const tr_locate_doc *d = &index->docs[v->doc].pub;
        int s;

        if (subpath != NULL && !tr_locate_path_under(k->dir, tr_buf_cstr(&sub)))
            continue;
        s = score(d->kind, v->name, v->ns, kind, name, namespace_);
        /* On a tie the document's own identity stays: that overlay renamed nothing. */
        if (s > best[v->doc].score) {
            best[v->doc].score = s;
            best[v->doc].via_overlay_path = k->file;
        }
    }
    for (i = 0; i < index->doc_count; i++) {
        const tr_locate_doc *d = &index->docs[i].pub;

        if (best[i].score == 0)
            continue;
        best[count] = best[i];
        best[count].file = d->file;
        best[count].doc_index = d->doc_index;
        best[count].start_line = d->start_line;
        best[count].end_line = d->end_line;
        count++;
    }
    qsort(best, count, sizeof(*best), cmp_match);
    if (count > max)
        count = max;
    memcpy(matches, best, count * sizeof(*best));
    tr_free(best);
    tr_buf_dispose(&sub);
    return count;
}
