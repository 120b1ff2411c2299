#include "tf_facts.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"

/* Incident messages stay well under the store's one-line cap. */
#define MESSAGE_MAX ((size_t)16 * 1024)

const char *tr_tf_workspace(const tr_tf_meta *meta)
{
    if (meta && meta->workspace && *meta->workspace)
        return meta->workspace;
    return "default";
}

const tr_tf_diagnostic *tr_tf_first_error(const tr_tf_result *result)
{
    size_t i;

    for (i = 0; result && i < result->diagnostic_count; i++) {
        if (result->diagnostics[i].error)
            return &result->diagnostics[i];
    }
    return NULL;
}

const char *tr_tf_failure_class(const tr_tf_result *result)
{
    if (result == NULL || result->outcome != TR_TF_FAILED)
        return NULL;
    switch (result->operation) {
    case TR_TF_OP_INIT: return "TerraformInitFailed";
    case TR_TF_OP_VALIDATE: return "TerraformValidateFailed";
    case TR_TF_OP_APPLY: return "TerraformApplyFailed";
    default: return "TerraformPlanFailed";
    }
}

void tr_tf_object(const tr_tf_result *result, const tr_tf_meta *meta, const char **kind,
                  const char **name)
{
    const tr_tf_diagnostic *first = tr_tf_first_error(result);

    if (result && result->address) {
        *kind = "TerraformResource";
        *name = result->address;
    } else if (first && first->filename) {
        *kind = "TerraformConfig";
        *name = first->filename;
    } else {
        *kind = "TerraformRun";
        *name = meta && meta->run_id && *meta->run_id ? meta->run_id : tr_tf_workspace(meta);
    }
}

/* Append the first line of s, at most TR_TF_FINGERPRINT_PART_MAX bytes. */
static int put_part(tr_buf *b, const char *s)
{
    size_t len;

    if (s == NULL)
        return 0;
    len = strcspn(s, "\r\n");
    if (len > TR_TF_FINGERPRINT_PART_MAX)
        len = TR_TF_FINGERPRINT_PART_MAX;
    return tr_buf_put(b, s, len);
}

int tr_tf_fingerprint(char **out, const tr_tf_result *result, const tr_tf_meta *meta)
{
    const tr_tf_diagnostic *first = tr_tf_first_error(result);
    tr_buf b = TR_BUF_INIT(4096);
    int rc;

    *out = NULL;
    rc = tr_buf_puts(&b, "tf/");
    if (rc == 0)
        rc = put_part(&b, tr_tf_workspace(meta));
    if (rc == 0)
        rc = tr_buf_putc(&b, '/');
    if (rc == 0)
        rc = put_part(&b, result->address ? result->address : first ? first->filename : NULL);
    if (rc == 0)
        rc = tr_buf_putc(&b, '/');
    if (rc == 0)
        rc = put_part(&b, first ? first->summary : NULL);
    if (rc != 0) {
        tr_buf_dispose(&b);
        return rc;
    }
    *out = tr_buf_detach(&b);
    return *out ? 0 : TR_ENOMEM;
}

static void add_str(cJSON *obj, const char *key, const char *value)
{
    if (value && *value)
        cJSON_AddStringToObject(obj, key, value);
}

static cJSON *diagnostic_json(const tr_tf_diagnostic *d)
{
    cJSON *obj = cJSON_CreateObject(), *snippet, *values;
    size_t i;

    if (obj == NULL)
        return NULL;
    add_str(obj, "severity", d->severity);
    add_str(obj, "summary", d->summary);
    add_str(obj, "detail", d->detail);
    add_str(obj, "filename", d->filename);
    if (d->start_line > 0) {
        cJSON_AddNumberToObject(obj, "start_line", d->start_line);
        cJSON_AddNumberToObject(obj, "start_column", d->start_column);
        cJSON_AddNumberToObject(obj, "end_line", d->end_line);
        cJSON_AddNumberToObject(obj, "end_column", d->end_column);
    }
    /* "code" is the offending source line(s); "snippet" keeps the whole excerpt. */
    add_str(obj, "code", d->snippet_code);
    if (d->snippet_code || d->snippet_context) {
        snippet = cJSON_AddObjectToObject(obj, "snippet");
        add_str(snippet, "context", d->snippet_context);
        add_str(snippet, "code", d->snippet_code);
        cJSON_AddNumberToObject(snippet, "start_line", d->snippet_start_line);
        values = cJSON_AddArrayToObject(snippet, "values");
        for (i = 0; values && i < d->value_count; i++) {
            cJSON *v = cJSON_CreateObject();
            add_str(v, "traversal", d->values[i].traversal);
            add_str(v, "statement", d->values[i].statement);
            cJSON_AddItemToArray(values, v);
        }
    }
    add_str(obj, "address", d->address);
    return obj;
}

int tr_tf_facts_json(char **out, const tr_tf_result *result, const tr_tf_meta *meta)
{
    cJSON *root = cJSON_CreateObject(), *arr;
    char *text;
    size_t i;

    *out = NULL;
    if (root == NULL)
        return TR_ENOMEM;
    add_str(root, "operation", tr_tf_operation_name(result->operation));
    add_str(root, "terraform_version", result->terraform_version);
    add_str(root, "workspace", tr_tf_workspace(meta));
    if (meta) {
        add_str(root, "repo_path", meta->repo_path);
        add_str(root, "commit", meta->commit);
        add_str(root, "run_id", meta->run_id);
        add_str(root, "run_url", meta->run_url);
    }
    add_str(root, "address", result->address);
    add_str(root, "module", result->module);
    add_str(root, "provisioner", result->provisioner);
    if (result->provisioner_output_count > 0) {
        arr = cJSON_AddArrayToObject(root, "provisioner_output");
        for (i = 0; arr && i < result->provisioner_output_count; i++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(result->provisioner_output[i]));
    }
    cJSON_AddNumberToObject(root, "error_count", (double)result->error_count);
    cJSON_AddNumberToObject(root, "warning_count", (double)result->warning_count);
    arr = cJSON_AddArrayToObject(root, "diagnostics");
    for (i = 0; arr && i < result->diagnostic_count; i++)
        cJSON_AddItemToArray(arr, diagnostic_json(&result->diagnostics[i]));
    if (result->diagnostics_dropped > 0)
        cJSON_AddNumberToObject(root, "diagnostics_dropped", (double)result->diagnostics_dropped);
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (text == NULL)
        return TR_ENOMEM;
    *out = tr_strdup(text);
    cJSON_free(text);
    return *out ? 0 : TR_ENOMEM;
}

int tr_tf_title(char **out, const tr_tf_result *result)
{
    const tr_tf_diagnostic *first = tr_tf_first_error(result);
    tr_buf b = TR_BUF_INIT(1024);
    int rc;

    *out = NULL;
    /* An unknown operation is classed as a plan failure (see the class mapping): say so. */
    rc = tr_buf_printf(&b, "terraform %s failed",
                       result->operation == TR_TF_OP_UNKNOWN
                           ? "plan"
                           : tr_tf_operation_name(result->operation));
    if (rc == 0 && first && first->summary) {
        size_t len = strcspn(first->summary, "\r\n");
        rc = tr_buf_printf(&b, ": %.*s", (int)(len > 200 ? 200 : len), first->summary);
    }
    if (rc == 0 && result->address)
        rc = tr_buf_printf(&b, " (%.300s)", result->address);
    else if (rc == 0 && first && first->filename && first->start_line > 0)
        rc = tr_buf_printf(&b, " (%.300s:%d)", first->filename, first->start_line);
    if (rc != 0) {
        tr_buf_dispose(&b);
        return rc;
    }
    *out = tr_buf_detach(&b);
    return *out ? 0 : TR_ENOMEM;
}

int tr_tf_message(char **out, const tr_tf_result *result)
{
    const tr_tf_diagnostic *first = tr_tf_first_error(result);
    tr_buf b = TR_BUF_INIT(MESSAGE_MAX);
    int rc = 0;

    *out = NULL;
    if (first && first->summary)
        rc = tr_buf_puts(&b, first->summary);
    if (rc == 0 && first && first->detail && *first->detail)
        rc = tr_buf_printf(&b, ": %s", first->detail);
    if (rc == TR_ETOOBIG)
        rc = 0; /* summary alone is enough; the facts carry the whole detail */
    if (rc == 0 && b.len == 0)
        rc = tr_buf_puts(&b, "terraform run failed");
    if (rc != 0) {
        tr_buf_dispose(&b);
        return rc;
    }
    *out = tr_buf_detach(&b);
    return *out ? 0 : TR_ENOMEM;
}
