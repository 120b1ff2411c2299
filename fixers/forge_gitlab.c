/*
 * forge_gitlab.c - GitLab merge requests over REST v4 (gitlab.com or a
 * self-managed https://HOST/api/v4).
 *
 * GitLab's quirks: the project is its URL-encoded path ("group%2Fsub%2Fname")
 * or numeric id; the MR number in URLs is iid, not id; labels are one
 * comma-joined string and go with the create call; "draft" is a "Draft: "
 * title prefix; an existing MR is a 409 whose "message" is an ARRAY; states
 * are opened|closed|locked|merged ("locked" is a merge in progress).
 */
#include "forge_reply.h"

#include <string.h>

static const char *const gitlab_headers[] = {"Accept: application/json", NULL};

static int gitlab_project_url(tr_buf *url, const tr_forge_site *site)
{
    int rc = tr_buf_printf(url, "%s/projects/", site->api_url);

    return rc == TR_OK ? tr_forge_put_escaped(url, site->repo) : rc;
}

static int gitlab_open_pr(const tr_forge_site *site, const tr_forge_pr_request *req,
                          tr_forge_call *out)
{
    cJSON *obj = cJSON_CreateObject();
    tr_buf title = TR_BUF_INIT(0), labels = TR_BUF_INIT(0);
    int rc;

    out->method = TR_HTTP_POST;
    rc = gitlab_project_url(&out->url, site);
    if (rc == TR_OK)
        rc = tr_buf_puts(&out->url, "/merge_requests");
    if (rc == TR_OK)
        rc = tr_buf_printf(&title, "%s%s", req->draft ? "Draft: " : "", req->title);
    if (rc == TR_OK)
        rc = tr_forge_put_joined(&labels, req->labels, req->label_count);
    if (obj == NULL || !cJSON_AddStringToObject(obj, "source_branch", req->head) ||
        !cJSON_AddStringToObject(obj, "target_branch", req->base) ||
        !cJSON_AddStringToObject(obj, "title", tr_buf_cstr(&title)) ||
        !cJSON_AddStringToObject(obj, "description", req->body) ||
        (req->label_count > 0 && !cJSON_AddStringToObject(obj, "labels", tr_buf_cstr(&labels))) ||
        !cJSON_AddBoolToObject(obj, "remove_source_branch", 1))
        rc = rc == TR_OK ? TR_ENOMEM : rc;
    tr_buf_dispose(&title);
    tr_buf_dispose(&labels);
    return rc == TR_OK ? tr_forge_call_json(out, obj) : (cJSON_Delete(obj), rc);
}

static int gitlab_get_pr(const tr_forge_site *site, int64_t number, tr_forge_call *out)
{
    int rc = gitlab_project_url(&out->url, site);

    out->method = TR_HTTP_GET;
    return rc == TR_OK ? tr_buf_printf(&out->url, "/merge_requests/%lld", (long long)number)
                       : rc;
}

static int gitlab_find_pr(const tr_forge_site *site, const char *head, bool open_only,
                          tr_forge_call *out)
{
    int rc = gitlab_project_url(&out->url, site);

    out->method = TR_HTTP_GET;
    if (rc == TR_OK)
        rc = tr_buf_puts(&out->url, "/merge_requests?source_branch=");
    if (rc == TR_OK)
        rc = tr_forge_put_escaped(&out->url, head);
    if (rc == TR_OK)
        rc = tr_buf_printf(&out->url, "&state=%s&per_page=100", open_only ? "opened" : "all");
    return rc;
}

static int gitlab_add_labels(const tr_forge_site *site, int64_t number,
                             const char *const *labels, size_t count, tr_forge_call *out)
{
    cJSON *obj = cJSON_CreateObject();
    tr_buf joined = TR_BUF_INIT(0);
    int rc = gitlab_project_url(&out->url, site);

    out->method = TR_HTTP_PUT;
    if (rc == TR_OK)
        rc = tr_buf_printf(&out->url, "/merge_requests/%lld", (long long)number);
    if (rc == TR_OK)
        rc = tr_forge_put_joined(&joined, labels, count);
    if (obj == NULL || !cJSON_AddStringToObject(obj, "add_labels", tr_buf_cstr(&joined)))
        rc = rc == TR_OK ? TR_ENOMEM : rc;
    tr_buf_dispose(&joined);
    return rc == TR_OK ? tr_forge_call_json(out, obj) : (cJSON_Delete(obj), rc);
}

static bool gitlab_is_duplicate(long status, const char *message)
{
    (void)message; /* a 409 on create has one meaning; its text changed across versions */
    return status == 409;
}

static int gitlab_parse_pr(const cJSON *obj, tr_forge_pr *out, tr_error *err)
{
    static const char *const open_states[] = {"opened", "locked", NULL};
    static const tr_forge_pr_shape shape = {
        .what = "GitLab merge request",
        .number_field = "iid",
        .url_field = "web_url",
        .branch_field = "source_branch",
        .open_states = open_states,
        .merged_state = "merged",
        .closed_state = "closed",
    };

    return tr_forge_parse_pr_shape(obj, &shape, out, err);
}

const tr_forge_vtable tr_forge_gitlab = {
    .kind = "gitlab",
    .display = "GitLab",
    .default_api_url = "https://gitlab.com/api/v4",
    .api_path = "/api/v4",
    .auth_format = "PRIVATE-TOKEN: %s",
    .headers = gitlab_headers,
    .nested_repo = true,
    .labels_on_open = true,
    .open_pr = gitlab_open_pr,
    .get_pr = gitlab_get_pr,
    .find_pr_for_branch = gitlab_find_pr,
    .add_labels = gitlab_add_labels,
    .is_duplicate = gitlab_is_duplicate,
    .parse_pr = gitlab_parse_pr,
};
