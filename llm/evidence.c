/*
 * evidence.c - bundle building, redaction and fitting to the token budget.
 *
 * Fitting runs in two passes. Gathered sections go first, lowest value
 * first: a section that is smaller than what must go is dropped whole (no
 * point halving what will be gone anyway); a bigger one is shrunk step by
 * step (longest text halved, keeping a log's tail; then oldest entries).
 * Only when every section is gone are the facts and the latest message cut.
 */
#include "evidence.h"

#include "alloc.h"
#include "api.h"
#include "buf.h"
#include "redact.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FIT_MAX_ROUNDS 512
#define MIN_TEXT_BYTES 80

int64_t tr_evidence_tokens(size_t chars)
{
    return (int64_t)((chars + 3) / 4);
}

static int add_str(cJSON *obj, const char *name, const char *value)
{
    if (value == NULL || value[0] == '\0')
        return TR_OK;
    return cJSON_AddStringToObject(obj, name, value) ? TR_OK : TR_ENOMEM;
}

static int add_time(cJSON *obj, const char *name, int64_t ms)
{
    char text[40];

    if (ms <= 0)
        return TR_OK;
    tr_api_format_time(ms, text, sizeof(text));
    return add_str(obj, name, text);
}

/* Largest string (and its member name) or, failing that, largest array. */
static void find_largest(cJSON *node, cJSON **str, size_t *str_len, cJSON **arr, int *arr_len)
{
    cJSON *child;

    if (cJSON_IsString(node) && node->valuestring) {
        size_t len = strlen(node->valuestring);

        if (len > *str_len) {
            *str_len = len;
            *str = node;
        }
        return;
    }
    if (cJSON_IsArray(node) && cJSON_GetArraySize(node) > *arr_len) {
        *arr_len = cJSON_GetArraySize(node);
        *arr = node;
    }
    cJSON_ArrayForEach(child, node)
        find_largest(child, str, str_len, arr, arr_len);
}

static int keeps_tail(const cJSON *item)
{
    const char *name = item->string;

    return name && (strcasestr(name, "log") || strcasestr(name, "output") ||
                    strcasestr(name, "stderr") || strcasestr(name, "stdout"));
}

/* Halve a string, at a UTF-8 character boundary, saying how much went. */
static int halve(cJSON *item, size_t len)
{
    const char *s = item->valuestring;
    size_t keep = len / 2, cut;
    tr_buf b = TR_BUF_INIT(0);
    int rc;

    if (keeps_tail(item)) {
        cut = len - keep;
        while (cut < len && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut++;
        rc = tr_buf_printf(&b, "[trimmed %zu bytes]...", cut);
        if (rc == TR_OK)
            rc = tr_buf_puts(&b, s + cut);
    } else {
        cut = keep;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
        rc = tr_buf_put(&b, s, cut);
        if (rc == TR_OK)
            rc = tr_buf_printf(&b, "...[trimmed %zu bytes]", len - cut);
    }
    if (rc == TR_OK && cJSON_SetValuestring(item, tr_buf_cstr(&b)) == NULL)
        rc = TR_ENOMEM;
    tr_buf_dispose(&b);
    return rc;
}

static const char *const section_order[] = { TR_EVIDENCE_SECTIONS };
#define SECTION_COUNT (sizeof(section_order) / sizeof(section_order[0]))

static int64_t printed_tokens(const cJSON *node, int *rc)
{
    char *text = cJSON_Print(node);
    int64_t tokens;

    if (text == NULL) {
        *rc = TR_ENOMEM;
        return 0;
    }
    tokens = tr_evidence_tokens(strlen(text));
    cJSON_free(text);
    return tokens;
}

/* One cut inside a section: 1 when something went, 0 when nothing is left to cut. */
static int shrink_step(cJSON *section, int *rc)
{
    cJSON *str = NULL, *arr = NULL;
    size_t str_len = 0;
    int arr_len = 1;

    find_largest(section, &str, &str_len, &arr, &arr_len);
    if (str != NULL && str_len > MIN_TEXT_BYTES && (arr == NULL || str_len > MIN_TEXT_BYTES * 4)) {
        *rc = halve(str, str_len);
        return 1;
    }
    if (arr != NULL && arr_len > 1) {
        cJSON_DeleteItemFromArray(arr, 0); /* entries are oldest first */
        return 1;
    }
    if (str != NULL && str_len > MIN_TEXT_BYTES) {
        *rc = halve(str, str_len);
        return 1;
    }
    return 0;
}

/* First pass: cut gathered sections, lowest value first, until the bundle fits. */
static int fit_gathered(cJSON *root, int64_t budget)
{
    cJSON *gathered = cJSON_GetObjectItemCaseSensitive(root, "kubernetes");
    int rc = TR_OK;

    if (gathered == NULL && cJSON_GetObjectItemCaseSensitive(root, "source") == NULL)
        return TR_OK;
    for (size_t i = SECTION_COUNT; i > 0 && rc == TR_OK; i--) {
        const char *name = section_order[i - 1];

        cJSON *parent = strcmp(name, "source") == 0 ? root : gathered;

        for (int round = 0; round < FIT_MAX_ROUNDS && rc == TR_OK; round++) {
            cJSON *section = cJSON_GetObjectItemCaseSensitive(parent, name);
            int64_t total = printed_tokens(root, &rc), excess = total - budget;

            if (rc != TR_OK || excess <= 0)
                return rc;
            if (section == NULL)
                break;
            if (printed_tokens(section, &rc) <= excess || !shrink_step(section, &rc)) {
                cJSON_DeleteItemFromObjectCaseSensitive(parent, name);
                break;
            }
        }
        /* A section that outlasted its rounds goes whole. */
        cJSON_DeleteItemFromObjectCaseSensitive(parent, name);
    }
    return rc;
}

static int fit(cJSON *root, int64_t budget, char **text)
{
    for (int round = 0; round < FIT_MAX_ROUNDS; round++) {
        cJSON *str = NULL, *arr = NULL, *facts;
        size_t str_len = 0;
        int arr_len = 1;

        *text = cJSON_Print(root);
        if (*text == NULL)
            return TR_ENOMEM;
        if (tr_evidence_tokens(strlen(*text)) <= budget)
            return TR_OK;
        cJSON_free(*text);
        *text = NULL;
        facts = cJSON_GetObjectItemCaseSensitive(root, "facts");
        find_largest(facts ? facts : root, &str, &str_len, &arr, &arr_len);
        if (str_len <= MIN_TEXT_BYTES && arr == NULL && facts != NULL) {
            /* Facts are as small as they go: the latest message is next. */
            find_largest(root, &str, &str_len, &arr, &arr_len);
        }
        if (arr != NULL && arr_len > 4 && (str == NULL || str_len <= MIN_TEXT_BYTES * 4)) {
            cJSON_DeleteItemFromArray(arr, 0); /* oldest entry first */
            continue;
        }
        if (str != NULL && str_len > MIN_TEXT_BYTES) {
            if (halve(str, str_len) != TR_OK)
                return TR_ENOMEM;
            continue;
        }
        if (arr != NULL && arr_len > 1) {
            cJSON_DeleteItemFromArray(arr, 0);
            continue;
        }
        if (facts != NULL) {
            /* Last resort: the incident row alone. */
            cJSON_DeleteItemFromObjectCaseSensitive(root, "facts");
            cJSON_DeleteItemFromObjectCaseSensitive(root, "latest_message");
            continue;
        }
        break;
    }
    *text = cJSON_Print(root);
    return *text ? TR_OK : TR_ENOMEM;
}

int tr_evidence_bundle(const tr_store_incident *inc, int64_t token_budget, char **out,
                       int64_t *token_estimate, size_t *redactions, tr_error *err)
{
    return tr_evidence_bundle_ex(inc, NULL, token_budget, out, token_estimate, redactions, err);
}

int tr_evidence_bundle_ex(const tr_store_incident *inc, const char *gathered_json,
                          int64_t token_budget, char **out, int64_t *token_estimate,
                          size_t *redactions, tr_error *err)
{
    cJSON *root = cJSON_CreateObject(), *incident, *facts = NULL;
    char *text = NULL;
    size_t masked = 0;
    tr_redact_ctx *redact = NULL;
    int rc = TR_ENOMEM;

    *out = NULL;
    if (root == NULL)
        return tr_error_set(err, TR_ENOMEM, "evidence: out of memory");
    incident = cJSON_AddObjectToObject(root, "incident");
    if (incident == NULL)
        goto cleanup;
    if (cJSON_AddNumberToObject(incident, "id", (double)inc->id) == NULL)
        goto cleanup;
    if ((rc = add_str(incident, "source", inc->source)) != TR_OK ||
        (rc = add_str(incident, "cluster", inc->cluster)) != TR_OK ||
        (rc = add_str(incident, "namespace", inc->namespace)) != TR_OK ||
        (rc = add_str(incident, "kind", inc->kind)) != TR_OK ||
        (rc = add_str(incident, "name", inc->name)) != TR_OK ||
        (rc = add_str(incident, "failure_class", inc->failure_class)) != TR_OK ||
        (rc = add_str(incident, "title", inc->title)) != TR_OK ||
        (rc = add_time(incident, "first_seen", inc->first_seen_ms)) != TR_OK ||
        (rc = add_time(incident, "last_seen", inc->last_seen_ms)) != TR_OK)
        goto cleanup;
    rc = TR_ENOMEM;
    if (cJSON_AddNumberToObject(incident, "observation_count",
                                (double)inc->observation_count) == NULL)
        goto cleanup;
    if (inc->facts_json != NULL) {
        facts = cJSON_Parse(inc->facts_json);
        if (facts == NULL && (facts = cJSON_CreateString(inc->facts_json)) == NULL)
            goto cleanup;
        cJSON_AddItemToObject(root, "facts", facts);
    }
    if ((rc = add_str(root, "latest_message", inc->message)) != TR_OK)
        goto cleanup;
    if (gathered_json != NULL) {
        cJSON *gathered = cJSON_Parse(gathered_json);

        if (gathered != NULL && !cJSON_IsObject(gathered)) {
            cJSON_Delete(gathered);
            gathered = NULL;
        }
        if (gathered == NULL && (gathered = cJSON_CreateString(gathered_json)) == NULL) {
            rc = TR_ENOMEM;
            goto cleanup;
        }
        /* The GitOps source is its own part of the bundle, for every source of incident. */
        if (cJSON_IsObject(gathered)) {
            cJSON *source = cJSON_DetachItemFromObjectCaseSensitive(gathered, "source");

            if (source)
                cJSON_AddItemToObject(root, "source", source);
        }
        if (cJSON_IsObject(gathered) && gathered->child == NULL)
            cJSON_Delete(gathered);
        else
            cJSON_AddItemToObject(root, "kubernetes", gathered);
    }
    /* Redact before fitting: a cut must never expose half a secret's shape. */
    /* One context per bundle; numbers already in the gathered part are kept. */
    if ((redact = tr_redact_ctx_new()) == NULL) {
        rc = TR_ENOMEM;
        goto cleanup;
    }
    if ((rc = tr_redact_json_ctx(redact, root)) != TR_OK)
        goto cleanup;
    masked = tr_redact_ctx_stats(redact)->total;
    if (token_budget < TR_EVIDENCE_MIN_TOKENS)
        token_budget = TR_EVIDENCE_MIN_TOKENS;
    rc = fit_gathered(root, token_budget);
    if (rc == TR_OK)
        rc = fit(root, token_budget, &text);
    if (rc != TR_OK)
        goto cleanup;
    *out = tr_strdup(text);
    if (*out == NULL) {
        rc = TR_ENOMEM;
        goto cleanup;
    }
    if (token_estimate)
        *token_estimate = tr_evidence_tokens(strlen(*out));
    if (redactions)
        *redactions = masked;
cleanup:
    if (text)
        cJSON_free(text);
    cJSON_Delete(root);
    tr_redact_ctx_free(redact);
    if (rc != TR_OK)
        return tr_error_set(err, rc, "evidence: %s", tr_strerror(rc));
    return TR_OK;
}
