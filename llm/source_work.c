/*
 * source_work.c - the blocking half of the source section, run from a
 * repository's queued work (so never at the same time as its sync): index
 * at the head commit, find, excerpt, history, config names, Terraform
 * blocks. Text that leaves here is redacted: manifests with the YAML rules
 * (a Secret's data is masked whole), diffs, subjects and HCL with the text
 * rules, all numbered through one context so one secret keeps one number.
 */
#include "source_internal.h"

#include "alloc.h"
#include "buf.h"
#include "redact.h"

#include <stdio.h>
#include <string.h>

#define MAX_MATCHES 4
#define MAX_TF_BLOCKS 3
#define MAX_TEXT_BYTES ((size_t)64 * 1024)

typedef struct ctx {
    tr_source_work *w;
    const char *root;
    tr_redact_ctx *redact;
} ctx;

static int add_redacted(ctx *c, cJSON *obj, const char *name, const char *text, int yaml)
{
    tr_buf out = TR_BUF_INIT(MAX_TEXT_BYTES);
    int rc;

    rc = yaml ? tr_redact_yaml_ctx(c->redact, &out, text, strlen(text))
              : tr_redact_text_ctx(c->redact, &out, text, strlen(text));
    if (rc == TR_ETOOBIG)
        rc = TR_OK; /* a masked prefix is still worth showing */
    if (rc == TR_OK && cJSON_AddStringToObject(obj, name, tr_buf_cstr(&out)) == NULL)
        rc = TR_ENOMEM;
    tr_buf_dispose(&out);
    return rc;
}

static int add_lines(cJSON *obj, int start, int end)
{
    char text[48];

    snprintf(text, sizeof(text), "%d-%d", start, end);
    return cJSON_AddStringToObject(obj, "lines", text) ? TR_OK : TR_ENOMEM;
}

/* The last commits that changed path, subjects and diffs redacted. */
static int add_history(ctx *c, const char *path)
{
    cJSON *history = NULL, *item, *out;
    tr_error err = { 0 };
    int rc;

    if (tr_gitrepo_file_history(c->root, path, c->w->opt.history_count,
                                c->w->opt.diff_max_bytes, &history, &err) != TR_OK) {
        /* The excerpt stands without it; say why it is missing. */
        return cJSON_AddStringToObject(c->w->section, "history_error", err.message) ? TR_OK
                                                                                    : TR_ENOMEM;
    }
    out = cJSON_AddArrayToObject(c->w->section, "history");
    rc = out ? TR_OK : TR_ENOMEM;
    cJSON_ArrayForEach(item, history) {
        static const char *const plain[] = { "sha", "commit", "author", "date" };
        cJSON *entry = cJSON_CreateObject(), *diff, *subject, *cut;

        if (entry == NULL || rc != TR_OK) {
            cJSON_Delete(entry);
            rc = TR_ENOMEM;
            break;
        }
        cJSON_AddItemToArray(out, entry);
        for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]) && rc == TR_OK; i++) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(item, plain[i]);

            if (cJSON_IsString(v))
                rc = add_redacted(c, entry, plain[i], v->valuestring, 0);
        }
        subject = cJSON_GetObjectItemCaseSensitive(item, "subject");
        diff = cJSON_GetObjectItemCaseSensitive(item, "diff");
        cut = cJSON_GetObjectItemCaseSensitive(item, "diff_truncated");
        if (rc == TR_OK && cJSON_IsString(subject))
            rc = add_redacted(c, entry, "subject", subject->valuestring, 0);
        if (rc == TR_OK && cJSON_IsString(diff))
            rc = add_redacted(c, entry, "diff", diff->valuestring, 0);
        if (rc == TR_OK && cJSON_IsTrue(cut) && !cJSON_AddTrueToObject(entry, "diff_truncated"))
            rc = TR_ENOMEM;
    }
    cJSON_Delete(history);
    return rc;
}

static int add_names(cJSON *obj, const char *member, const tr_locate_names *names)
{
    cJSON *arr;

    if (names->count == 0)
        return TR_OK;
    if ((arr = cJSON_AddArrayToObject(obj, member)) == NULL)
        return TR_ENOMEM;
    for (size_t i = 0; i < names->count; i++) {
        cJSON *one = cJSON_CreateObject();

        if (one == NULL)
            return TR_ENOMEM;
        cJSON_AddItemToArray(arr, one);
        if (!cJSON_AddStringToObject(one, "name", names->items[i].name) ||
            !cJSON_AddStringToObject(one, "where", names->items[i].where))
            return TR_ENOMEM;
    }
    return TR_OK;
}

/* For a missing Secret/ConfigMap: the names that do exist, so a typo shows. */
static int add_config_names(ctx *c, const tr_locate_index *index)
{
    tr_source_work *w = c->w;
    tr_locate_names defined, referenced;
    tr_error err = { 0 };
    cJSON *obj;
    int rc;

    memset(&defined, 0, sizeof(defined));
    memset(&referenced, 0, sizeof(referenced));
    obj = cJSON_AddObjectToObject(w->section, "config_names");
    if (obj == NULL)
        return TR_ENOMEM;
    if (!cJSON_AddStringToObject(obj, "kind", w->missing_kind) ||
        (w->missing_name && !cJSON_AddStringToObject(obj, "missing", w->missing_name)))
        return TR_ENOMEM;
    rc = tr_locate_config_refs(&defined, &referenced, index, w->ns ? w->ns : "default",
                               w->missing_kind, &err);
    if (rc == TR_OK)
        rc = add_names(obj, "defined_in_repo", &defined);
    if (rc == TR_OK)
        rc = add_names(obj, "referenced_in_repo", &referenced);
    if (rc == TR_OK && w->have_live_refs)
        rc = add_names(obj, "referenced_by_live_pods", &w->live_refs);
    tr_locate_names_dispose(&defined);
    tr_locate_names_dispose(&referenced);
    return rc;
}

static int run_kubernetes(ctx *c, const tr_locate_index *index)
{
    tr_source_work *w = c->w;
    tr_locate_match matches[MAX_MATCHES];
    const char *subpath = w->subpath && w->subpath[0] ? w->subpath : NULL;
    size_t n;
    char *excerpt = NULL;
    tr_error err = { 0 };
    int rc = TR_OK;

    n = tr_locate_find(index, subpath, w->kind, w->name, w->ns, matches, MAX_MATCHES);
    if (n == 0 && subpath != NULL) {
        /* The owner's path may be stale or templated: look in the whole repo. */
        n = tr_locate_find(index, NULL, w->kind, w->name, w->ns, matches, MAX_MATCHES);
    }
    if (w->missing_kind && (rc = add_config_names(c, index)) != TR_OK)
        return rc;
    if (n == 0) {
        snprintf(w->error, sizeof(w->error), "no manifest for %s %s/%s in the repository%s%s",
                 w->kind ? w->kind : "object", w->ns ? w->ns : "-", w->name,
                 subpath ? " under " : "", subpath ? subpath : "");
        return TR_OK;
    }
    if (!cJSON_AddStringToObject(w->section, "file", matches[0].file) ||
        !cJSON_AddNumberToObject(w->section, "document_index", matches[0].doc_index) ||
        add_lines(w->section, matches[0].start_line, matches[0].end_line) != TR_OK)
        return TR_ENOMEM;
    if (matches[0].via_overlay_path &&
        !cJSON_AddStringToObject(w->section, "via_overlay", matches[0].via_overlay_path))
        return TR_ENOMEM;
    if (subpath && !cJSON_AddStringToObject(w->section, "path", subpath))
        return TR_ENOMEM;
    if (tr_locate_excerpt(&excerpt, c->root, matches[0].file, matches[0].start_line,
                          matches[0].end_line, w->opt.context_lines, w->opt.excerpt_max_bytes,
                          &err) == TR_OK)
        rc = add_redacted(c, w->section, "excerpt", excerpt, 1);
    else if (!cJSON_AddStringToObject(w->section, "excerpt_error", err.message))
        rc = TR_ENOMEM;
    tr_free(excerpt);
    if (rc == TR_OK)
        rc = add_history(c, matches[0].file);
    return rc;
}

static int tf_block(ctx *c, cJSON *into, const cJSON *diag, char **path_out, tr_error *err)
{
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(diag, "filename");
    const cJSON *start = cJSON_GetObjectItemCaseSensitive(diag, "start_line");
    const cJSON *end = cJSON_GetObjectItemCaseSensitive(diag, "end_line");
    tr_locate_tf tf;
    int rc, first, last;

    memset(&tf, 0, sizeof(tf));
    if (!cJSON_IsString(file) || !cJSON_IsNumber(start))
        return TR_ENOTFOUND;
    first = start->valueint;
    last = cJSON_IsNumber(end) ? end->valueint : first;
    rc = tr_locate_terraform(&tf, c->root, c->w->repo_path ? c->w->repo_path : "",
                             file->valuestring, first, last, 0, c->w->opt.excerpt_max_bytes, err);
    if (rc != TR_OK)
        return rc;
    if (!cJSON_AddStringToObject(into, "file", tf.path) ||
        add_lines(into, tf.block_start, tf.block_end) != TR_OK)
        rc = TR_ENOMEM;
    if (rc == TR_OK)
        rc = add_redacted(c, into, "excerpt", tf.excerpt, 0);
    if (rc == TR_OK && path_out && (*path_out = tr_strdup(tf.path)) == NULL)
        rc = TR_ENOMEM;
    tr_locate_tf_dispose(&tf);
    return rc;
}

static int run_terraform(ctx *c)
{
    tr_source_work *w = c->w;
    const cJSON *diag;
    cJSON *more = NULL;
    char *first_path = NULL;
    size_t blocks = 0;
    tr_error err = { 0 }, first_err = { 0 };
    int rc = TR_OK;

    cJSON_ArrayForEach(diag, w->diagnostics) {
        cJSON *into = w->section;

        if (blocks >= MAX_TF_BLOCKS)
            break;
        if (blocks > 0) {
            if (more == NULL && (more = cJSON_AddArrayToObject(w->section, "more_blocks")) == NULL)
                return TR_ENOMEM;
            if ((into = cJSON_CreateObject()) == NULL)
                return TR_ENOMEM;
            cJSON_AddItemToArray(more, into);
        }
        rc = tf_block(c, into, diag, blocks == 0 ? &first_path : NULL, &err);
        if (rc == TR_ENOMEM)
            break;
        if (rc != TR_OK) {
            if (first_err.message[0] == '\0' && err.message[0])
                first_err = err;
            if (blocks > 0)
                cJSON_DeleteItemFromArray(more, cJSON_GetArraySize(more) - 1);
            rc = TR_OK;
            continue;
        }
        blocks++;
    }
    if (rc == TR_OK && blocks == 0)
        snprintf(w->error, sizeof(w->error), "no Terraform file for the diagnostics%s%.900s",
                 first_err.message[0] ? ": " : "", first_err.message);
    if (rc == TR_OK && first_path)
        rc = add_history(c, first_path);
    tr_free(first_path);
    return rc;
}

int tr_source_work_run(const tr_gitrepo_spec *spec, tr_source_work *w)
{
    const tr_locate_index *index = NULL;
    tr_error err = { 0 };
    ctx c;
    int rc;

    memset(&c, 0, sizeof(c));
    c.w = w;
    c.root = spec->work_dir;
    if ((w->section = cJSON_CreateObject()) == NULL || (c.redact = tr_redact_ctx_new()) == NULL) {
        rc = TR_ENOMEM;
        goto cleanup;
    }
    if (w->terraform) {
        rc = run_terraform(&c);
        goto cleanup;
    }
    rc = tr_repos_index(w->repos, w->repo, w->commit, &index, &err);
    if (rc != TR_OK) {
        snprintf(w->error, sizeof(w->error), "cannot index the work tree: %.900s", err.message);
        rc = rc == TR_ENOMEM ? rc : TR_OK;
        goto cleanup;
    }
    rc = run_kubernetes(&c, index);
cleanup:
    tr_redact_ctx_free(c.redact);
    return rc;
}

void tr_source_work_free(tr_source_work *w)
{
    if (w == NULL)
        return;
    tr_free(w->subpath);
    tr_free(w->kind);
    tr_free(w->name);
    tr_free(w->ns);
    tr_free(w->missing_kind);
    tr_free(w->missing_name);
    tr_free(w->repo_path);
    tr_locate_names_dispose(&w->live_refs);
    cJSON_Delete(w->diagnostics);
    cJSON_Delete(w->section);
    tr_free(w);
}
