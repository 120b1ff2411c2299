/*
 * forge_gitea.c - Gitea and Forgejo pull requests over /api/v1.
 *
 * Gitea's quirks: no draft flag in the API (a "WIP: " title prefix is its
 * work-in-progress marker); create takes label ids only, so labels are added
 * by name afterwards through the issue (Gitea >= 1.20 accepts names there);
 * an existing PR is a 409 "pull request already exists for these targets
 * [...]" (some versions 422); the PR list has no head filter, so the newest
 * 50 are listed and filtered here by head.ref.
 */
#include "forge_reply.h"

#include <string.h>

static const char *const gitea_headers[] = {"Accept: application/json", NULL};

static int gitea_open_pr(const tr_forge_site *site, const tr_forge_pr_request *req,
                         tr_forge_call *out)
{
    cJSON *obj = cJSON_CreateObject();
    tr_buf title = TR_BUF_INIT(0);
    int rc;

    out->method = TR_HTTP_POST;
    rc = tr_forge_put_repos_url(&out->url, site);
    if (rc == TR_OK)
        rc = tr_buf_puts(&out->url, "/pulls");
    if (rc == TR_OK)
        rc = tr_buf_printf(&title, "%s%s", req->draft ? "WIP: " : "", req->title);
    if (obj == NULL || !cJSON_AddStringToObject(obj, "head", req->head) ||
        !cJSON_AddStringToObject(obj, "base", req->base) ||
        !cJSON_AddStringToObject(obj, "title", tr_buf_cstr(&title)) ||
        !cJSON_AddStringToObject(obj, "body", req->body))
        rc = rc == TR_OK ? TR_ENOMEM : rc;
    tr_buf_dispose(&title);
    return rc == TR_OK ? tr_forge_call_json(out, obj) : (cJSON_Delete(obj), rc);
}

static int gitea_get_pr(const tr_forge_site *site, int64_t number, tr_forge_call *out)
{
    int rc = tr_forge_put_repos_url(&out->url, site);

    out->method = TR_HTTP_GET;
    return rc == TR_OK ? tr_buf_printf(&out->url, "/pulls/%lld", (long long)number) : rc;
}

static int gitea_find_pr(const tr_forge_site *site, const char *head, bool open_only,
                         tr_forge_call *out)
{
    int rc = tr_forge_put_repos_url(&out->url, site);

    (void)head; /* filtered on the reply: the API has no head filter */
    out->method = TR_HTTP_GET;
    if (rc == TR_OK)
        rc = tr_buf_printf(&out->url, "/pulls?state=%s&sort=recentupdate&limit=50",
                           open_only ? "open" : "all");
    return rc;
}

static int gitea_add_labels(const tr_forge_site *site, int64_t number,
                            const char *const *labels, size_t count, tr_forge_call *out)
{
    cJSON *obj = cJSON_CreateObject(), *arr = tr_forge_json_strings(labels, count);
    int rc = tr_forge_put_repos_url(&out->url, site);

    out->method = TR_HTTP_POST;
    if (rc == TR_OK)
        rc = tr_buf_printf(&out->url, "/issues/%lld/labels", (long long)number);
    if (obj == NULL || arr == NULL || !cJSON_AddItemToObject(obj, "labels", arr)) {
        cJSON_Delete(arr);
        rc = rc == TR_OK ? TR_ENOMEM : rc;
    }
    return rc == TR_OK ? tr_forge_call_json(out, obj) : (cJSON_Delete(obj), rc);
}

static bool gitea_is_duplicate(long status, const char *message)
{
    return (status == 409 || status == 422) && strcasestr(message, "already exists") != NULL;
}

static int gitea_parse_pr(const cJSON *obj, tr_forge_pr *out, tr_error *err)
{
    static const char *const open_states[] = {"open", NULL};
    static const tr_forge_pr_shape shape = {
        .what = "Gitea pull request",
        .number_field = "number",
        .url_field = "html_url",
        .open_states = open_states,
        .closed_state = "closed",
    };

    return tr_forge_parse_pr_shape(obj, &shape, out, err);
}

const tr_forge_vtable tr_forge_gitea = {
    .kind = "gitea",
    .display = "Gitea",
    .default_api_url = "",
    .api_path = "/api/v1",
    .auth_format = "Authorization: token %s",
    .headers = gitea_headers,
    .nested_repo = false,
    .labels_on_open = false,
    .open_pr = gitea_open_pr,
    .get_pr = gitea_get_pr,
    .find_pr_for_branch = gitea_find_pr,
    .add_labels = gitea_add_labels,
    .is_duplicate = gitea_is_duplicate,
    .parse_pr = gitea_parse_pr,
};
