/*
 * slack_payload.c - Slack request signatures and block_actions payloads.
 *
 * The signature covers the raw body exactly as received, before any form
 * decoding, so verification runs on the bytes the server handed us and the
 * parser only ever sees verified input in production (the fuzzer feeds it
 * anything).
 */
#include "slack_payload.h"
#include "alloc.h"
#include "buf.h"
#include "http_parse.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_digits(const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL || *s == '\0')
        return 0;
    for (; *s; s++, n++)
        if (*s < '0' || *s > '9' || n >= max)
            return 0;
    return 1;
}

int tr_slack_verify(const char *secret, const char *timestamp, const char *signature,
                    const char *body, size_t len, int64_t now_s, tr_error *err)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0, i;
    char want[2 * EVP_MAX_MD_SIZE + 1], got[2 * EVP_MAX_MD_SIZE + 1];
    tr_buf base = TR_BUF_INIT(len + 64);
    long long ts;
    size_t sig_len;
    int rc = TR_EAUTH;

    if (secret == NULL || *secret == '\0')
        return tr_error_set(err, TR_EAUTH, "no Slack signing secret is configured");
    if (!is_digits(timestamp, 12))
        return tr_error_set(err, TR_EAUTH, "X-Slack-Request-Timestamp is missing or not a "
                                           "number");
    ts = strtoll(timestamp, NULL, 10);
    if (ts < now_s - TR_SLACK_MAX_SKEW_S || ts > now_s + TR_SLACK_MAX_SKEW_S)
        return tr_error_set(err, TR_EAUTH, "X-Slack-Request-Timestamp is more than %d s away "
                            "from now (replayed or clock skew)", TR_SLACK_MAX_SKEW_S);
    if (signature == NULL || strncmp(signature, "v0=", 3) != 0)
        return tr_error_set(err, TR_EAUTH, "X-Slack-Signature is missing or not v0=<hex>");
    if (tr_buf_printf(&base, "v0:%s:", timestamp) != TR_OK || tr_buf_put(&base, body, len) != TR_OK)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)base.ptr,
             base.len, mac, &mac_len) == NULL) {
        rc = tr_error_set(err, TR_ERROR, "cannot compute the HMAC");
        goto cleanup;
    }
    for (i = 0; i < mac_len; i++)
        snprintf(want + 2 * i, 3, "%02x", mac[i]);
    sig_len = strlen(signature + 3);
    if (sig_len != 2 * (size_t)mac_len) {
        rc = tr_error_set(err, TR_EAUTH, "X-Slack-Signature does not match the request");
        goto cleanup;
    }
    for (i = 0; i < sig_len; i++) {
        char c = signature[3 + i];
        got[i] = (char)(c >= 'A' && c <= 'F' ? c + 32 : c);
    }
    if (CRYPTO_memcmp(got, want, sig_len) != 0) {
        rc = tr_error_set(err, TR_EAUTH, "X-Slack-Signature does not match the request");
        goto cleanup;
    }
    rc = TR_OK;
cleanup:
    OPENSSL_cleanse(want, sizeof(want));
    tr_buf_dispose(&base);
    return rc;
}

void tr_slack_action_free(tr_slack_action *a)
{
    if (a == NULL)
        return;
    tr_free(a->type);
    tr_free(a->user_id);
    tr_free(a->user_name);
    tr_free(a->action_id);
    tr_free(a->value);
    tr_free(a->response_url);
    tr_free(a->channel_id);
    tr_free(a->message_ts);
    tr_free(a);
}

/* The decoded value of field name in a form body; NULL with err set when absent. */
static int form_field(char **out, const char *body, size_t len, const char *name,
                      tr_error *err)
{
    size_t name_len = strlen(name), pos = 0, end;

    *out = NULL;
    while (pos <= len) {
        const char *amp = memchr(body + pos, '&', len - pos);

        end = amp ? (size_t)(amp - body) : len;
        if (end - pos > name_len && memcmp(body + pos, name, name_len) == 0 &&
            body[pos + name_len] == '=') {
            if (tr_http_url_decode(out, body + pos + name_len + 1, end - pos - name_len - 1,
                                   1) != TR_OK)
                return tr_error_set(err, TR_EPARSE, "form field %s: bad percent-encoding",
                                    name);
            return TR_OK;
        }
        if (amp == NULL)
            break;
        pos = end + 1;
    }
    return tr_error_set(err, TR_EPARSE, "the form has no %s field", name);
}

/* Copy a string member (obj.name), "" when absent; TR_EPARSE when too long or not a string. */
static int take(char **out, const cJSON *obj, const char *name, int required, tr_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (item == NULL || cJSON_IsNull(item)) {
        if (required)
            return tr_error_set(err, TR_EPARSE, "payload: %s is missing", name);
        *out = tr_strdup("");
    } else if (!cJSON_IsString(item) || strlen(item->valuestring) > TR_SLACK_FIELD_MAX) {
        return tr_error_set(err, TR_EPARSE, "payload: %s must be a string of at most %d bytes",
                            name, TR_SLACK_FIELD_MAX);
    } else if (required && *item->valuestring == '\0') {
        return tr_error_set(err, TR_EPARSE, "payload: %s is empty", name);
    } else {
        *out = tr_strdup(item->valuestring);
    }
    return *out ? TR_OK : tr_error_set(err, TR_ENOMEM, "out of memory");
}

int tr_slack_action_parse(tr_slack_action **out, const char *body, size_t len, tr_error *err)
{
    tr_slack_action *a = NULL;
    char *json = NULL;
    cJSON *root = NULL;
    const cJSON *user, *actions, *first, *container, *channel;
    int rc;

    *out = NULL;
    rc = form_field(&json, body ? body : "", body ? len : 0, "payload", err);
    if (rc != TR_OK)
        return rc;
    root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        rc = tr_error_set(err, TR_EPARSE, "payload is not a JSON object");
        goto cleanup;
    }
    a = tr_calloc(1, sizeof(*a));
    if (a == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    user = cJSON_GetObjectItemCaseSensitive(root, "user");
    actions = cJSON_GetObjectItemCaseSensitive(root, "actions");
    first = cJSON_IsArray(actions) ? cJSON_GetArrayItem(actions, 0) : NULL;
    container = cJSON_GetObjectItemCaseSensitive(root, "container");
    channel = cJSON_GetObjectItemCaseSensitive(root, "channel");
    if (!cJSON_IsObject(user) || !cJSON_IsObject(first)) {
        rc = tr_error_set(err, TR_EPARSE, "payload: needs a user object and an actions array");
        goto cleanup;
    }
    if ((rc = take(&a->type, root, "type", 1, err)) != TR_OK ||
        (rc = take(&a->user_id, user, "id", 1, err)) != TR_OK ||
        (rc = take(&a->user_name, user, "username", 0, err)) != TR_OK ||
        (rc = take(&a->action_id, first, "action_id", 1, err)) != TR_OK ||
        (rc = take(&a->value, first, "value", 0, err)) != TR_OK ||
        (rc = take(&a->response_url, root, "response_url", 0, err)) != TR_OK ||
        (rc = take(&a->channel_id, cJSON_IsObject(channel) ? channel : NULL, "id", 0, err)) !=
            TR_OK ||
        (rc = take(&a->message_ts, cJSON_IsObject(container) ? container : NULL, "message_ts", 0,
                   err)) != TR_OK)
        goto cleanup;
    *out = a;
    a = NULL;
cleanup:
    tr_slack_action_free(a);
    cJSON_Delete(root);
    tr_free(json);
    return rc;
}
