/*
 * forge_github.c - GitHub (and GitHub Enterprise Server at
 * https://HOST/api/v3) pull requests over REST v3, API version 2022-11-28.
 *
 * GitHub's quirks: an existing PR for the branch is a 422 "Validation Failed"
 * whose errors[0].message is "A pull request already exists for OWNER:BRANCH.";
 * the list filter wants head=OWNER:BRANCH; a PR's labels are its issue's, set
 * with a second call; merge_commit_sha holds a test merge while the PR is
 * open, so only a merged PR's is kept.
 */
#include "forge_reply.h"

#include <string.h>

static const char *const github_headers[] = {
    "Accept: application/vnd.github+json",
    "X-GitHub-Api-Version: 2022-11-28",
    NULL,
};

static int github_open_pr(const tr_forge_site *site, const tr_forge_pr_request *req,
                          tr_forge_call *out)
{
    cJSON *obj = cJSON_CreateObject();
    int rc;

    out->method = TR_HTTP_POST;
    rc = tr_forge_put_repos_url(&out->url, site);
    if (rc == TR_OK)
        rc = tr_buf_puts(&out->url, "/pulls");
    if (obj == NULL || !cJSON_AddStringToObject(obj, "title", req->title) ||
        !cJSON_AddStringToObject(obj, "head", req->head) ||
        !cJSON_AddStringToObject(obj, "base", req->base) ||
        !cJSON_AddStringToObject(obj, "body", req->body) ||
        !cJSON_AddBoolToObject(obj, "draft", req->draft) ||
        !cJSON_AddBoolToObject(obj, "maintainer_can_modify", 0))
        rc = rc == TR_OK ? TR_ENOMEM : rc;
    return rc == TR_OK ? tr_forge_call_json(out, obj) : (cJSON_Delete(obj), rc);
}

static int github_get_pr(const tr_forge_site *site, int64_t number, tr_forge_call *out)
{
    int rc = tr_forge_put_repos_url(&out->url, site);

    out->method = TR_HTTP_GET;
    return rc == TR_OK ? tr_buf_printf(&out->url, "/pulls/%lld", (long long)number) : rc;
}

static int github_find_pr(const tr_forge_site *site, const char *head, bool open_only,
                          tr_forge_call *out)
{
    int rc = tr_forge_put_repos_url(&out->url, site);

    out->method = TR_HTTP_GET;
    if (rc == TR_OK)
        rc = tr_buf_puts(&out->url, "/pulls?head=");
    if (rc == TR_OK)
        rc = tr_forge_put_escaped(&out->url, site->owner);
    if (rc == TR_OK)
        rc = tr_buf_puts(&out->url, "%3A");
    if (rc == TR_OK)
        rc = tr_forge_put_escaped(&out->url, head);
    if (rc == TR_OK)
        rc = tr_buf_printf(&out->url, "&state=%s&per_page=100", open_only ? "open" : "all");
    return rc;
}

static int github_add_labels(const tr_forge_site *site, int64_t number,
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

static bool github_is_duplicate(long status, const char *message)
{
    return status == 422 && strcasestr(message, "pull request already exists") != NULL;
}

static int github_parse_pr(const cJSON *obj, tr_forge_pr *out, tr_error *err)
{
    static const char *const open_states[] = {"open", NULL};
    static const tr_forge_pr_shape shape = {
        .what = "GitHub pull request",
        .number_field = "number",
        .url_field = "html_url",
        .open_states = open_states,
        .closed_state = "closed",
    };

    return tr_forge_parse_pr_shape(obj, &shape, out, err);
}

const tr_forge_vtable tr_forge_github = {
    .kind = "github",
    .display = "GitHub",
    .default_api_url = "https://api.github.com",
    .api_path = "",
    .auth_format = "Authorization: Bearer %s",
    .headers = github_headers,
    .nested_repo = false,
    .labels_on_open = false,
    .open_pr = github_open_pr,
    .get_pr = github_get_pr,
    .find_pr_for_branch = github_find_pr,
    .add_labels = github_add_labels,
    .is_duplicate = github_is_duplicate,
    .parse_pr = github_parse_pr,
};
