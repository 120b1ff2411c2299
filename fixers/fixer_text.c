/*
 * fixer_text.c - the words of a fix: the commit message (naming the incident
 * and its root cause) and the pull request's title and body (summary, root
 * cause, evidence quotes, the validation checks, a link back to the incident).
 * Texts come from a model and from the cluster: they are bounded here, and
 * the forge escapes them as JSON.
 */
#include "fixer_internal.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"

#define TITLE_MAX 120
#define FIELD_MAX 4000     /* summary, root cause in a body */
#define QUOTES_MAX 10
#define QUOTE_MAX 500
#define BODY_MAX ((size_t)60000) /* GitHub refuses bodies over 65536 characters */

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* Append at most max bytes of s, cut at a UTF-8 boundary, with "…" when cut. */
static int put_cut(tr_buf *b, const char *s, size_t max)
{
    size_t len = strlen(or_empty(s));

    if (len <= max)
        return tr_buf_puts(b, or_empty(s));
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    if (tr_buf_put(b, s, max) != TR_OK)
        return TR_ENOMEM;
    return tr_buf_puts(b, "…");
}

/* The first line of s, at most max bytes. */
static int put_first_line(tr_buf *b, const char *s, size_t max)
{
    size_t len = strcspn(or_empty(s), "\r\n");
    char *line = tr_strndup(or_empty(s), len);
    int rc;

    if (line == NULL)
        return TR_ENOMEM;
    rc = put_cut(b, line, max);
    tr_free(line);
    return rc;
}

static int put_link(tr_buf *b, const char *public_url, int64_t id)
{
    size_t len = strlen(or_empty(public_url));

    while (len > 0 && public_url[len - 1] == '/')
        len--;
    if (len == 0)
        return TR_OK;
    return tr_buf_printf(b, "%.*s/v1/incidents/%lld", (int)len, public_url, (long long)id);
}

static const char *what(const tr_store_incident *inc)
{
    return inc->title && *inc->title ? inc->title : or_empty(inc->failure_class);
}

char *fixer_commit_message(const tr_store_incident *inc, const tr_store_analysis *an,
                           const char *public_url)
{
    tr_buf b = TR_BUF_INIT(FIELD_MAX * 2);
    int rc;

    rc = tr_buf_printf(&b, "triaged: fix incident %lld (", (long long)inc->id);
    if (rc == TR_OK)
        rc = put_first_line(&b, what(inc), TITLE_MAX);
    if (rc == TR_OK)
        rc = tr_buf_printf(&b, ")\n\nIncident %lld: %s/%s %s in %s.\n\nRoot cause: ",
                           (long long)inc->id, or_empty(inc->kind), or_empty(inc->name),
                           or_empty(inc->failure_class), or_empty(inc->namespace));
    if (rc == TR_OK)
        rc = put_cut(&b, an->root_cause && *an->root_cause ? an->root_cause : an->summary,
                     FIELD_MAX);
    if (rc == TR_OK)
        rc = tr_buf_puts(&b, "\n");
    if (rc == TR_OK && public_url && *public_url) {
        rc = tr_buf_puts(&b, "\nIncident: ");
        if (rc == TR_OK)
            rc = put_link(&b, public_url, inc->id);
        if (rc == TR_OK)
            rc = tr_buf_puts(&b, "\n");
    }
    if (rc != TR_OK) {
        tr_buf_dispose(&b);
        return NULL;
    }
    return tr_buf_detach(&b);
}

char *fixer_pr_title(const tr_store_incident *inc, const tr_store_analysis *an)
{
    tr_buf b = TR_BUF_INIT(TITLE_MAX * 2);
    int rc;

    (void)an;
    rc = tr_buf_printf(&b, "triaged: fix %s/%s (", or_empty(inc->kind), or_empty(inc->name));
    if (rc == TR_OK)
        rc = put_first_line(&b, what(inc), TITLE_MAX / 2);
    if (rc == TR_OK)
        rc = tr_buf_printf(&b, ", incident %lld)", (long long)inc->id);
    if (rc != TR_OK) {
        tr_buf_dispose(&b);
        return NULL;
    }
    return tr_buf_detach(&b);
}

/* Quotes as a markdown list; the analysis stores a JSON array of strings. */
static int put_quotes(tr_buf *b, const char *evidence_json)
{
    cJSON *arr = evidence_json ? cJSON_Parse(evidence_json) : NULL;
    const cJSON *item;
    int rc = TR_OK, n = 0;

    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) {
        cJSON_Delete(arr);
        return TR_OK;
    }
    rc = tr_buf_puts(b, "\n### Evidence\n\n");
    cJSON_ArrayForEach(item, arr) {
        const char *text = cJSON_GetStringValue(item);

        if (rc != TR_OK || n++ == QUOTES_MAX)
            break;
        if (text == NULL)
            continue;
        rc = tr_buf_puts(b, "> ");
        if (rc == TR_OK)
            rc = put_first_line(b, text, QUOTE_MAX);
        if (rc == TR_OK)
            rc = tr_buf_puts(b, "\n\n");
    }
    cJSON_Delete(arr);
    return rc;
}

static int put_checks(tr_buf *b, const tr_patch_result *res, int repaired,
                      const char *schema_skipped)
{
    size_t i;
    int rc = tr_buf_printf(b, "\n### Validation\n\n%zu file(s), +%zu -%zu lines",
                           res->file_count, res->lines_added, res->lines_removed);

    if (rc == TR_OK && res->hunks_reanchored)
        rc = tr_buf_printf(b, ", %zu hunk(s) re-anchored by their context",
                           res->hunks_reanchored);
    if (rc == TR_OK && repaired)
        rc = tr_buf_puts(b, "; the model repaired its first patch after it was refused");
    if (rc == TR_OK)
        rc = tr_buf_printf(b, "; applied to %.12s.\n\n", res->commit_id);
    for (i = 0; rc == TR_OK && i < res->check_count; i++) {
        const tr_patch_check_item *c = &res->checks[i];

        rc = tr_buf_printf(b, "- **%s** %s", or_empty(c->name),
                           tr_patch_check_status_name(c->status));
        if (rc == TR_OK && c->text && *c->text) {
            rc = tr_buf_puts(b, ": ");
            if (rc == TR_OK)
                rc = put_first_line(b, c->text, QUOTE_MAX);
        }
        if (rc == TR_OK)
            rc = tr_buf_puts(b, "\n");
    }
    if (rc == TR_OK && schema_skipped != NULL)
        rc = tr_buf_printf(b, "- schema: skipped (no cluster schema: %s)\n", schema_skipped);
    return rc;
}

char *fixer_pr_body(const tr_store_incident *inc, const tr_store_analysis *an,
                    const tr_patch_result *res, int repaired, const char *schema_skipped,
                    const char *public_url)
{
    tr_buf b = TR_BUF_INIT(BODY_MAX + 8192);
    int rc;

    rc = tr_buf_printf(&b, "Incident %lld: **%s/%s** %s in namespace `%s`.\n\n### Summary\n\n",
                       (long long)inc->id, or_empty(inc->kind), or_empty(inc->name),
                       or_empty(inc->failure_class), or_empty(inc->namespace));
    if (rc == TR_OK)
        rc = put_cut(&b, an->summary, FIELD_MAX);
    if (rc == TR_OK)
        rc = tr_buf_puts(&b, "\n\n### Root cause\n\n");
    if (rc == TR_OK)
        rc = put_cut(&b, an->root_cause, FIELD_MAX);
    if (rc == TR_OK)
        rc = tr_buf_printf(&b, "\n\nSeverity %s, confidence %.2f (%s%s%s).\n",
                           or_empty(an->severity), an->confidence, or_empty(an->provider),
                           an->model ? " " : "", or_empty(an->model));
    if (rc == TR_OK)
        rc = put_quotes(&b, an->evidence_json);
    if (rc == TR_OK)
        rc = put_checks(&b, res, repaired, schema_skipped);
    if (rc == TR_OK && public_url && *public_url) {
        rc = tr_buf_puts(&b, "\nIncident: ");
        if (rc == TR_OK)
            rc = put_link(&b, public_url, inc->id);
        if (rc == TR_OK)
            rc = tr_buf_puts(&b, "\n");
    }
    if (rc == TR_OK)
        rc = tr_buf_puts(&b, "\n---\nOpened by triaged after the fix was accepted. "
                             "Review it like any change: nothing is applied to the cluster "
                             "until this is merged.\n");
    if (rc != TR_OK) {
        tr_buf_dispose(&b);
        return NULL;
    }
    return tr_buf_detach(&b);
}
