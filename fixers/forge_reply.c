/*
 * forge_reply.c - the pure half of the forges: reading their replies (a PR,
 * a list of PRs, an error's message, "already exists") and the small JSON and
 * URL helpers the request builders of forge_github.c, forge_gitlab.c and
 * forge_gitea.c share. No I/O here: this is what fuzz_forge_reply exercises.
 */
#include "forge_reply.h"

#include "alloc.h"

#include <ctype.h>
#include <string.h>

#define FORGE_MAX_LIST_ITEMS 100

/* ------------------------------------------------------------ helpers */

void tr_forge_pr_clear(tr_forge_pr *pr)
{
    if (pr == NULL)
        return;
    tr_free(pr->html_url);
    tr_free(pr->head_branch);
    tr_free(pr->merge_commit_sha);
    tr_free(pr->etag);
    memset(pr, 0, sizeof(*pr));
}

int tr_forge_put_escaped(tr_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = TR_OK;

    for (; *s && rc == TR_OK; s++) {
        unsigned char c = (unsigned char)*s;

        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            rc = tr_buf_putc(b, (char)c);
        } else {
            char enc[3] = {'%', hex[c >> 4], hex[c & 15]};

            rc = tr_buf_put(b, enc, 3);
        }
    }
    return rc;
}

int tr_forge_call_json(tr_forge_call *out, cJSON *obj)
{
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    int rc = text ? tr_buf_puts(&out->body, text) : TR_ENOMEM;

    cJSON_free(text);
    cJSON_Delete(obj);
    return rc;
}

cJSON *tr_forge_json_strings(const char *const *items, size_t count)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; arr && i < count; i++) {
        cJSON *s = cJSON_CreateString(items[i]);

        if (s == NULL || !cJSON_AddItemToArray(arr, s)) {
            cJSON_Delete(s);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

int tr_forge_take_string(const cJSON *obj, const char *name, bool required, const char *what,
                         char **out, tr_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (cJSON_IsString(item))
        *out = tr_strdup(item->valuestring);
    else if (!required && (item == NULL || cJSON_IsNull(item)))
        *out = tr_strdup("");
    else
        return tr_error_set(err, TR_EPARSE, "%s: field '%s' is %s", what, name,
                            item ? "not a string" : "missing");
    return *out ? TR_OK : tr_error_set(err, TR_ENOMEM, "out of memory");
}

int tr_forge_take_number(const cJSON *obj, const char *name, const char *what, int64_t *out,
                         tr_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (!cJSON_IsNumber(item) || item->valuedouble < 1 || item->valuedouble > 9.0e15 ||
        item->valuedouble != (double)(int64_t)item->valuedouble)
        return tr_error_set(err, TR_EPARSE, "%s: field '%s' is %s", what, name,
                            item ? "not a positive integer" : "missing");
    *out = (int64_t)item->valuedouble;
    return TR_OK;
}

const tr_forge_vtable *tr_forge_vtable_of(tr_config_forge_kind kind)
{
    switch (kind) {
    case TR_CONFIG_FORGE_GITHUB:
        return &tr_forge_github;
    case TR_CONFIG_FORGE_GITLAB:
        return &tr_forge_gitlab;
    case TR_CONFIG_FORGE_GITEA:
        return &tr_forge_gitea;
    default:
        return NULL;
    }
}

/* --------------------------------------------------------- reply parsers */

static void put_clean(char *out, size_t size, size_t *used, const char *s)
{
    for (; *s && *used + 1 < size; s++)
        out[(*used)++] = (*s >= 0x20 && *s < 0x7f) ? *s : ' ';
    out[*used] = '\0';
}

/* GitHub's errors[]: {"message": ...} or {"field","code"}. */
static void put_error_items(char *out, size_t size, size_t *used, const cJSON *errors)
{
    const cJSON *e;
    bool first = true;

    cJSON_ArrayForEach(e, errors) {
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
        const char *field = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "field"));
        const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "code"));

        if (msg == NULL && field == NULL && code == NULL && !cJSON_IsString(e))
            continue;
        put_clean(out, size, used, first ? "" : "; ");
        first = false;
        if (cJSON_IsString(e))
            put_clean(out, size, used, e->valuestring);
        else if (msg)
            put_clean(out, size, used, msg);
        else {
            put_clean(out, size, used, field ? field : "");
            put_clean(out, size, used, field && code ? " " : "");
            put_clean(out, size, used, code ? code : "");
        }
    }
}

void tr_forge_reply_message(const char *body, size_t len, char *out, size_t size)
{
    cJSON *root;
    size_t used = 0;

    if (out == NULL || size == 0)
        return;
    out[0] = '\0';
    if (body == NULL || len == 0)
        return;
    root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        /* not JSON (a proxy's HTML page): its first words still help */
        char head[121];
        size_t n = len < sizeof(head) - 1 ? len : sizeof(head) - 1;

        memcpy(head, body, n);
        head[n] = '\0';
        put_clean(out, size, &used, head);
        cJSON_Delete(root);
        return;
    }
    {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "message");
        const char *desc =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "error_description"));
        const char *error = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "error"));

        if (cJSON_IsString(msg))
            put_clean(out, size, &used, msg->valuestring);
        else if (cJSON_IsArray(msg)) /* GitLab: "message": ["..."] */
            put_error_items(out, size, &used, msg);
        else if (cJSON_IsObject(msg)) /* GitLab validation: {"field": ["is bad"]} */
            put_clean(out, size, &used, msg->child && msg->child->string ? msg->child->string
                                                                         : "");
        if (used == 0 && (desc || error))
            put_clean(out, size, &used, desc ? desc : error);
        {
            const cJSON *errors = cJSON_GetObjectItemCaseSensitive(root, "errors");
            char items[TR_FORGE_MESSAGE_MAX];
            size_t items_used = 0;

            items[0] = '\0';
            if (cJSON_IsArray(errors))
                put_error_items(items, sizeof(items), &items_used, errors);
            if (items_used > 0) {
                put_clean(out, size, &used, used ? ": " : "");
                put_clean(out, size, &used, items);
            }
        }
    }
    cJSON_Delete(root);
}

bool tr_forge_reply_is_duplicate(tr_config_forge_kind kind, long status, const char *body,
                                 size_t len)
{
    const tr_forge_vtable *vt = tr_forge_vtable_of(kind);
    char msg[TR_FORGE_MESSAGE_MAX];

    if (vt == NULL)
        return false;
    tr_forge_reply_message(body, len, msg, sizeof(msg));
    return vt->is_duplicate(status, msg);
}

static int parse_pr_object(const tr_forge_vtable *vt, const cJSON *obj, tr_forge_pr *out,
                           tr_error *err)
{
    int rc;

    tr_forge_pr_clear(out);
    if (!cJSON_IsObject(obj))
        return tr_error_set(err, TR_EPARSE, "%s reply: a pull request is not a JSON object",
                            vt->display);
    rc = vt->parse_pr(obj, out, err);
    if (rc == TR_OK && out->etag == NULL)
        out->etag = tr_strdup("");
    if (rc == TR_OK && out->etag == NULL)
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
    if (rc != TR_OK)
        tr_forge_pr_clear(out);
    return rc;
}

int tr_forge_parse_pr(tr_config_forge_kind kind, const char *body, size_t len, tr_forge_pr *out,
                      tr_error *err)
{
    const tr_forge_vtable *vt = tr_forge_vtable_of(kind);
    cJSON *root;
    int rc;

    memset(out, 0, sizeof(*out));
    if (vt == NULL)
        return tr_error_set(err, TR_EINVAL, "no forge of kind %d", (int)kind);
    root = cJSON_ParseWithLength(body ? body : "", len);
    if (root == NULL)
        return tr_error_set(err, TR_EPARSE, "%s reply is not JSON", vt->display);
    rc = parse_pr_object(vt, root, out, err);
    cJSON_Delete(root);
    return rc;
}

int tr_forge_parse_pr_list(tr_config_forge_kind kind, const char *body, size_t len,
                           const char *head, tr_forge_pr *out, tr_error *err)
{
    const tr_forge_vtable *vt = tr_forge_vtable_of(kind);
    tr_forge_pr item = {0};
    const cJSON *el;
    cJSON *root;
    int rc = TR_OK, seen = 0;

    memset(out, 0, sizeof(*out));
    if (vt == NULL)
        return tr_error_set(err, TR_EINVAL, "no forge of kind %d", (int)kind);
    root = cJSON_ParseWithLength(body ? body : "", len);
    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return tr_error_set(err, TR_EPARSE, "%s reply: a pull request list is not a JSON array",
                            vt->display);
    }
    cJSON_ArrayForEach(el, root) {
        if (seen++ >= FORGE_MAX_LIST_ITEMS)
            break;
        rc = parse_pr_object(vt, el, &item, err);
        if (rc != TR_OK)
            break;
        if (head && item.head_branch && *item.head_branch && strcmp(item.head_branch, head) != 0)
            continue;
        if (out->html_url == NULL ||
            (out->state != TR_FORGE_PR_OPEN && item.state == TR_FORGE_PR_OPEN)) {
            tr_forge_pr_clear(out);
            *out = item;
            memset(&item, 0, sizeof(item));
            if (out->state == TR_FORGE_PR_OPEN)
                break;
        }
    }
    tr_forge_pr_clear(&item);
    cJSON_Delete(root);
    if (rc != TR_OK) {
        tr_forge_pr_clear(out);
        return rc;
    }
    if (out->html_url == NULL)
        return tr_error_set(err, TR_ENOTFOUND, "no %s pull request for branch %s", vt->display,
                            head ? head : "(any)");
    return TR_OK;
}

int tr_forge_put_repos_url(tr_buf *url, const tr_forge_site *site)
{
    int rc = tr_buf_printf(url, "%s/repos/", site->api_url);

    if (rc == TR_OK)
        rc = tr_forge_put_escaped(url, site->owner);
    if (rc == TR_OK)
        rc = tr_buf_putc(url, '/');
    return rc == TR_OK ? tr_forge_put_escaped(url, site->name) : rc;
}

int tr_forge_put_joined(tr_buf *b, const char *const *items, size_t count)
{
    int rc = TR_OK;

    for (size_t i = 0; rc == TR_OK && i < count; i++) {
        if (i > 0)
            rc = tr_buf_putc(b, ',');
        if (rc == TR_OK)
            rc = tr_buf_puts(b, items[i]);
    }
    return rc;
}

static bool in_list(const char *s, const char *const *list)
{
    for (; s != NULL && list && *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

int tr_forge_parse_pr_shape(const cJSON *obj, const tr_forge_pr_shape *shape, tr_forge_pr *out,
                            tr_error *err)
{
    const cJSON *merged = cJSON_GetObjectItemCaseSensitive(obj, "merged");
    const cJSON *merged_at = cJSON_GetObjectItemCaseSensitive(obj, "merged_at");
    const cJSON *draft = cJSON_GetObjectItemCaseSensitive(obj, "draft");
    const cJSON *branch_obj = obj;
    const char *branch_field = shape->branch_field;
    char *state = NULL;
    int rc;

    if (branch_field == NULL) { /* GitHub, Gitea: head.ref */
        branch_obj = cJSON_GetObjectItemCaseSensitive(obj, "head");
        branch_field = "ref";
        if (branch_obj != NULL && !cJSON_IsObject(branch_obj) && !cJSON_IsNull(branch_obj))
            return tr_error_set(err, TR_EPARSE, "%s: field 'head' is not an object",
                                shape->what);
    }
    rc = tr_forge_take_number(obj, shape->number_field, shape->what, &out->number, err);
    if (rc == TR_OK)
        rc = tr_forge_take_string(obj, "state", true, shape->what, &state, err);
    if (rc == TR_OK)
        rc = tr_forge_take_string(obj, shape->url_field, true, shape->what, &out->html_url, err);
    if (rc == TR_OK)
        rc = tr_forge_take_string(branch_obj, branch_field, false, shape->what,
                                  &out->head_branch, err);
    if (rc == TR_OK)
        rc = tr_forge_take_string(obj, "merge_commit_sha", false, shape->what,
                                  &out->merge_commit_sha, err);
    if (rc == TR_OK && *out->merge_commit_sha == '\0' &&
        cJSON_IsString(cJSON_GetObjectItemCaseSensitive(obj, "squash_commit_sha"))) {
        tr_free(out->merge_commit_sha); /* GitLab squash merges fill this one instead */
        rc = tr_forge_take_string(obj, "squash_commit_sha", false, shape->what,
                                  &out->merge_commit_sha, err);
    }
    if (rc == TR_OK && state == NULL)
        rc = tr_error_set(err, TR_EPARSE, "%s: field 'state' is missing", shape->what);
    if (rc != TR_OK)
        goto cleanup;
    if (in_list(state, shape->open_states))
        out->state = TR_FORGE_PR_OPEN;
    else if (shape->merged_state && strcmp(state, shape->merged_state) == 0)
        out->state = TR_FORGE_PR_MERGED;
    else if (strcmp(state, shape->closed_state) == 0)
        out->state = (shape->merged_state == NULL &&
                      (cJSON_IsTrue(merged) || cJSON_IsString(merged_at)))
                         ? TR_FORGE_PR_MERGED
                         : TR_FORGE_PR_CLOSED;
    else {
        rc = tr_error_set(err, TR_EPARSE, "%s: field 'state' has an unknown value \"%.40s\"",
                          shape->what, state);
        goto cleanup;
    }
    out->draft = cJSON_IsTrue(draft) ||
                 cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "work_in_progress"));
    if (out->state != TR_FORGE_PR_MERGED)
        out->merge_commit_sha[0] = '\0'; /* GitHub fills it with a test merge while open */
cleanup:
    tr_free(state);
    return rc;
}
