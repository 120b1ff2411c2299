/*
 * reply.c - parsing of completions, error envelopes and the analysis object.
 *
 * Finding the object: models wrap JSON in ```json fences, precede it with
 * "Here is the analysis:" or follow it with remarks, even when asked not to
 * (and json_object mode is not reliable on every server: llama.cpp's output
 * ran to the token limit in the recorded fixture). So the parser tries a
 * fenced block first, then each '{' in turn, and keeps the first object that
 * validates; the first validation error is reported when none does. The
 * number of candidates is capped, so a hostile reply costs bounded work.
 */
#include "reply.h"

#include "alloc.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_CANDIDATES 16

static const char reply_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"summary\",\"root_cause\",\"severity\",\"confidence\",\"evidence\","
    "\"remediation\",\"patch\"],"
    "\"properties\":{"
    "\"summary\":{\"type\":\"string\"},"
    "\"root_cause\":{\"type\":\"string\"},"
    "\"severity\":{\"type\":\"string\",\"enum\":[\"info\",\"warning\",\"error\",\"critical\"]},"
    "\"confidence\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"
    "\"evidence\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"remediation\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"patch\":{\"type\":\"string\"}}}";

const char *tr_llm_reply_schema(void)
{
    return reply_schema;
}

void tr_llm_reply_free(tr_llm_reply *reply)
{
    if (reply == NULL)
        return;
    tr_free(reply->summary);
    tr_free(reply->root_cause);
    tr_free(reply->severity);
    tr_free(reply->evidence_json);
    tr_free(reply->remediation_json);
    tr_free(reply->patch);
    tr_free(reply);
}

static void limits_fill(tr_llm_reply_limits *l, const tr_llm_reply_limits *given)
{
    if (given)
        *l = *given;
    else
        memset(l, 0, sizeof(*l));
    if (l->max_patch_lines == 0)
        l->max_patch_lines = 200;
    if (l->max_patch_bytes == 0)
        l->max_patch_bytes = 65536;
    if (l->max_items == 0)
        l->max_items = 20;
    if (l->max_item_bytes == 0)
        l->max_item_bytes = 2000;
    if (l->max_text_bytes == 0)
        l->max_text_bytes = 8192;
}

static int text_field(const cJSON *obj, const char *name, size_t max, int allow_empty,
                      char **out, tr_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    size_t len;

    if (item == NULL)
        return tr_error_set(err, TR_EINVAL, "field \"%s\" is missing", name);
    if (allow_empty && cJSON_IsNull(item)) {
        *out = tr_strdup("");
        return *out ? TR_OK : TR_ENOMEM;
    }
    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return tr_error_set(err, TR_EINVAL, "field \"%s\": must be a string", name);
    len = strlen(item->valuestring);
    if (!allow_empty && strspn(item->valuestring, " \t\r\n") == len)
        return tr_error_set(err, TR_EINVAL, "field \"%s\": must not be empty", name);
    if (len > max)
        return tr_error_set(err, TR_EINVAL, "field \"%s\": %zu bytes, at most %zu allowed",
                            name, len, max);
    *out = tr_strdup(item->valuestring);
    return *out ? TR_OK : TR_ENOMEM;
}

static int list_field(const cJSON *obj, const char *name, const tr_llm_reply_limits *l,
                      char **json_out, size_t *count_out, tr_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name), *entry;
    tr_buf out = TR_BUF_INIT(0);
    size_t count = 0;
    int rc = TR_OK;

    if (item == NULL)
        return tr_error_set(err, TR_EINVAL, "field \"%s\" is missing", name);
    if (!cJSON_IsArray(item))
        return tr_error_set(err, TR_EINVAL, "field \"%s\": must be an array of strings", name);
    rc = tr_buf_putc(&out, '[');
    cJSON_ArrayForEach(entry, item)
    {
        if (rc != TR_OK)
            break;
        if (!cJSON_IsString(entry) || entry->valuestring == NULL) {
            rc = tr_error_set(err, TR_EINVAL, "field \"%s\"[%zu]: must be a string", name,
                              count);
            break;
        }
        if (strlen(entry->valuestring) > l->max_item_bytes) {
            rc = tr_error_set(err, TR_EINVAL, "field \"%s\"[%zu]: %zu bytes, at most %zu allowed",
                              name, count, strlen(entry->valuestring), l->max_item_bytes);
            break;
        }
        if (++count > l->max_items) {
            rc = tr_error_set(err, TR_EINVAL, "field \"%s\": more than %zu entries", name,
                              l->max_items);
            break;
        }
        if (count > 1)
            rc = tr_buf_putc(&out, ',');
        if (rc == TR_OK)
            rc = tr_buf_putc(&out, '"');
        if (rc == TR_OK)
            rc = tr_buf_put_json_escaped(&out, entry->valuestring, strlen(entry->valuestring));
        if (rc == TR_OK)
            rc = tr_buf_putc(&out, '"');
    }
    if (rc == TR_OK)
        rc = tr_buf_putc(&out, ']');
    if (rc == TR_OK) {
        *json_out = tr_buf_detach(&out);
        *count_out = count;
    }
    tr_buf_dispose(&out);
    return rc;
}

static int validate(const cJSON *obj, const tr_llm_reply_limits *l, tr_llm_reply **out,
                    tr_error *err)
{
    static const char *const severities[] = {"info", "warning", "error", "critical"};
    tr_llm_reply *r;
    const cJSON *item;
    size_t lines = 0;
    int rc;

    if (!cJSON_IsObject(obj))
        return tr_error_set(err, TR_EINVAL, "the reply is not a JSON object");
    r = tr_calloc(1, sizeof(*r));
    if (r == NULL)
        return TR_ENOMEM;
    rc = text_field(obj, "summary", l->max_text_bytes, 0, &r->summary, err);
    if (rc == TR_OK)
        rc = text_field(obj, "root_cause", l->max_text_bytes, 0, &r->root_cause, err);
    if (rc == TR_OK)
        rc = text_field(obj, "severity", 32, 0, &r->severity, err);
    if (rc == TR_OK) {
        size_t i;

        for (i = 0; i < 4; i++)
            if (strcasecmp(r->severity, severities[i]) == 0)
                break;
        if (i == 4)
            rc = tr_error_set(err, TR_EINVAL,
                              "field \"severity\": must be one of info, warning, error, "
                              "critical (got \"%.32s\")",
                              r->severity);
        else
            memcpy(r->severity, severities[i], strlen(severities[i]) + 1);
    }
    if (rc == TR_OK) {
        item = cJSON_GetObjectItemCaseSensitive(obj, "confidence");
        if (item == NULL)
            rc = tr_error_set(err, TR_EINVAL, "field \"confidence\" is missing");
        else if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble) ||
                 item->valuedouble < 0.0 || item->valuedouble > 1.0)
            rc = tr_error_set(err, TR_EINVAL,
                              "field \"confidence\": must be a number from 0 to 1%s",
                              cJSON_IsNumber(item) ? " (out of range)" : "");
        else
            r->confidence = item->valuedouble;
    }
    if (rc == TR_OK)
        rc = list_field(obj, "evidence", l, &r->evidence_json, &r->evidence_count, err);
    if (rc == TR_OK)
        rc = list_field(obj, "remediation", l, &r->remediation_json, &r->remediation_count,
                        err);
    if (rc == TR_OK)
        rc = text_field(obj, "patch", l->max_patch_bytes, 1, &r->patch, err);
    if (rc == TR_OK) {
        for (const char *p = r->patch; *p; p++)
            if (*p == '\n')
                lines++;
        if (r->patch[0] != '\0' && r->patch[strlen(r->patch) - 1] != '\n')
            lines++;
        if (lines > l->max_patch_lines)
            rc = tr_error_set(err, TR_EINVAL, "field \"patch\": %zu lines, at most %zu allowed",
                              lines, l->max_patch_lines);
    }
    if (rc == TR_ENOMEM)
        tr_error_set(err, TR_ENOMEM, "reply: out of memory");
    if (rc != TR_OK) {
        tr_llm_reply_free(r);
        return rc;
    }
    *out = r;
    return TR_OK;
}

/* Try the object starting at text[0..len); 1 = parsed (valid or not), 0 = not JSON. */
static int try_candidate(const char *text, size_t len, const tr_llm_reply_limits *l,
                         tr_llm_reply **out, int *rc, tr_error *first_err)
{
    cJSON *obj = cJSON_ParseWithLengthOpts(text, len, NULL, 0);
    tr_error err;

    if (obj == NULL)
        return 0;
    tr_error_clear(&err);
    *rc = validate(obj, l, out, &err);
    cJSON_Delete(obj);
    if (*rc != TR_OK && first_err->code == TR_OK)
        *first_err = err;
    return 1;
}

int tr_llm_reply_parse(tr_llm_reply **out, const char *content, size_t len,
                       const tr_llm_reply_limits *limits, tr_error *err)
{
    tr_llm_reply_limits l;
    tr_error first;
    const char *fence, *end = content + len;
    int rc = TR_EPARSE, tries = 0;

    *out = NULL;
    limits_fill(&l, limits);
    tr_error_clear(&first);
    if (content == NULL || len == 0)
        return tr_error_set(err, TR_EPARSE, "the reply is empty");
    /* A fenced block first: ```json\n{...}\n``` */
    fence = memmem(content, len, "```", 3);
    if (fence != NULL) {
        const char *body = memchr(fence + 3, '\n', (size_t)(end - fence - 3));
        const char *close = body ? memmem(body, (size_t)(end - body), "```", 3) : NULL;

        if (body && close && try_candidate(body, (size_t)(close - body), &l, out, &rc, &first) &&
            rc == TR_OK)
            return TR_OK;
    }
    for (const char *p = content; p < end && tries < MAX_CANDIDATES; p++) {
        p = memchr(p, '{', (size_t)(end - p));
        if (p == NULL)
            break;
        tries++;
        /* cJSON stops at the end of the value, so prose after it is fine. */
        {
            cJSON *obj;
            const char *stop = NULL;

            obj = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &stop, 0);
            if (obj == NULL)
                continue;
            tr_error e;

            tr_error_clear(&e);
            rc = validate(obj, &l, out, &e);
            cJSON_Delete(obj);
            if (rc == TR_OK)
                return TR_OK;
            if (rc == TR_ENOMEM)
                return tr_error_set(err, TR_ENOMEM, "reply: out of memory");
            if (first.code == TR_OK)
                first = e;
            if (stop != NULL && stop > p)
                p = stop - 1;
        }
    }
    if (first.code != TR_OK) {
        if (err)
            *err = first;
        return first.code;
    }
    return tr_error_set(err, TR_EPARSE, "the reply holds no JSON object");
}

/* ------------------------------------------------------------ envelopes */

void tr_llm_completion_dispose(tr_llm_completion *c)
{
    if (c == NULL)
        return;
    tr_free(c->content);
    tr_free(c->finish_reason);
    tr_free(c->model);
    memset(c, 0, sizeof(*c));
}

static int64_t usage_int(const cJSON *usage, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, name);

    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 1e15)
        return 0;
    return (int64_t)v->valuedouble;
}

static char *dup_string(const cJSON *item)
{
    return cJSON_IsString(item) && item->valuestring ? tr_strdup(item->valuestring) : NULL;
}

int tr_llm_completion_parse(tr_llm_completion *out, const char *body, size_t len,
                            tr_error *err)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *choices, *choice, *message, *content, *refusal, *usage;
    int rc = TR_OK;

    memset(out, 0, sizeof(*out));
    if (root == NULL)
        return tr_error_set(err, TR_EPARSE, "completion: the body is not JSON");
    choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    choice = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    message = cJSON_GetObjectItemCaseSensitive(choice, "message");
    if (!cJSON_IsObject(message)) {
        rc = tr_error_set(err, TR_EPARSE, "completion: choices[0].message is missing");
        goto cleanup;
    }
    usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    out->prompt_tokens = usage_int(usage, "prompt_tokens");
    out->completion_tokens = usage_int(usage, "completion_tokens");
    out->model = dup_string(cJSON_GetObjectItemCaseSensitive(root, "model"));
    out->finish_reason = dup_string(cJSON_GetObjectItemCaseSensitive(choice, "finish_reason"));
    refusal = cJSON_GetObjectItemCaseSensitive(message, "refusal");
    content = cJSON_GetObjectItemCaseSensitive(message, "content");
    if (cJSON_IsString(refusal) && refusal->valuestring && refusal->valuestring[0]) {
        rc = tr_error_set(err, TR_EINVAL, "completion: the model refused: %.200s",
                          refusal->valuestring);
        goto cleanup;
    }
    if (!cJSON_IsString(content) || content->valuestring == NULL) {
        rc = tr_error_set(err, TR_EINVAL, "completion: choices[0].message.content is %s",
                          content == NULL ? "missing" : "not a string");
        goto cleanup;
    }
    out->content = tr_strdup(content->valuestring);
    if (out->content == NULL)
        rc = tr_error_set(err, TR_ENOMEM, "completion: out of memory");
cleanup:
    if (rc != TR_OK) {
        int64_t in = out->prompt_tokens, done = out->completion_tokens;

        tr_llm_completion_dispose(out);
        /* Usage still counts against the budget when the content is unusable. */
        out->prompt_tokens = in;
        out->completion_tokens = done;
    }
    cJSON_Delete(root);
    return rc;
}

static void copy_field(char *dst, size_t size, const cJSON *item)
{
    dst[0] = '\0';
    if (cJSON_IsString(item) && item->valuestring)
        snprintf(dst, size, "%s", item->valuestring);
    else if (cJSON_IsNumber(item))
        snprintf(dst, size, "%.0f", item->valuedouble);
}

int tr_llm_error_parse(tr_llm_error_info *out, const char *body, size_t len)
{
    cJSON *root;
    const cJSON *error;

    memset(out, 0, sizeof(*out));
    if (body == NULL || len == 0)
        return TR_EPARSE;
    root = cJSON_ParseWithLength(body, len);
    error = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (cJSON_IsString(error)) {
        /* Some gateways answer {"error": "text"}. */
        copy_field(out->message, sizeof(out->message), error);
    } else if (cJSON_IsObject(error)) {
        copy_field(out->message, sizeof(out->message),
                   cJSON_GetObjectItemCaseSensitive(error, "message"));
        copy_field(out->type, sizeof(out->type), cJSON_GetObjectItemCaseSensitive(error, "type"));
        copy_field(out->code, sizeof(out->code), cJSON_GetObjectItemCaseSensitive(error, "code"));
    } else {
        cJSON_Delete(root);
        return TR_EPARSE;
    }
    cJSON_Delete(root);
    return TR_OK;
}
