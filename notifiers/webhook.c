/*
 * webhook.c - the generic webhook sink: a JSON POST per notification.
 *
 *   {"event": "incident.analyzed", "delivery_id": "9f0c...", "incident": {...},
 *    "analysis": {...} | null, "pull_request": "https://..." | null}
 *
 * Headers: X-Triaged-Event, X-Triaged-Delivery (the outbox's stable id: the
 * same on every retry and after a restart, so a receiver that remembers ids
 * sees each message once) and, when hmac_secret_env is set,
 * X-Triaged-Signature: sha256=<lowercase hex HMAC-SHA256 of the exact body>.
 * The URL comes from url or url_env (a URL with a token in it is a secret).
 */
#include "notifier.h"
#include "alloc.h"
#include "buf.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#define WEBHOOK_RESPONSE_MAX ((size_t)64 * 1024)

typedef struct webhook_sink {
    tr_http_client *http;
    char *url;    /* may be a secret */
    char *secret; /* HMAC key or NULL */
    long timeout_ms;
    tr_notify_post post; /* the POST in flight */
} webhook_sink;

static void webhook_destroy(void *state)
{
    webhook_sink *s = state;

    if (s == NULL)
        return;
    tr_secret_free(s->url);
    tr_secret_free(s->secret);
    tr_free(s);
}

static int webhook_init(void **state, const tr_notifier_env *env, tr_error *err)
{
    const tr_config_notify *cfg = env->cfg;
    webhook_sink *s = tr_calloc(1, sizeof(*s));
    int rc = TR_OK;

    if (s == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    s->http = env->http;
    s->timeout_ms = env->timeout_ms > 0 ? env->timeout_ms : TR_NOTIFY_DEFAULT_TIMEOUT_MS;
    if (cfg->url && *cfg->url) {
        s->url = tr_strdup(cfg->url);
        if (s->url == NULL) {
            tr_error_set(err, TR_ENOMEM, "out of memory");
            rc = TR_ENOMEM;
        }
    } else {
        rc = tr_config_secret_resolve(cfg->url_env, NULL, &s->url, err);
    }
    if (rc == TR_OK && (s->url == NULL || (strncmp(s->url, "https://", 8) != 0 &&
                                           strncmp(s->url, "http://", 7) != 0))) {
        tr_error_set(err, TR_ECONFIG, "the webhook URL is not an http(s) URL");
        rc = TR_ECONFIG;
    }
    if (rc == TR_OK && cfg->hmac_secret_env && *cfg->hmac_secret_env)
        rc = tr_config_secret_resolve(cfg->hmac_secret_env, NULL, &s->secret, err);
    if (rc != TR_OK) {
        tr_error_prefix(err, "notify %s: ", cfg->name);
        webhook_destroy(s);
        return rc;
    }
    *state = s;
    return TR_OK;
}

static int signature_header(tr_buf *out, const char *secret, const char *body, size_t len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    unsigned int i;
    int rc;

    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, mac,
             &mac_len) == NULL)
        return TR_ERROR;
    rc = tr_buf_puts(out, "X-Triaged-Signature: sha256=");
    for (i = 0; rc == TR_OK && i < mac_len; i++)
        rc = tr_buf_printf(out, "%02x", mac[i]);
    return rc;
}

static int webhook_send(void *state, const tr_notify_message *msg, tr_notify_done_cb done,
                        void *userdata, tr_error *err)
{
    webhook_sink *s = state;
    cJSON *root = cJSON_CreateObject();
    char *body = NULL;
    tr_buf event = TR_BUF_INIT(1024), delivery = TR_BUF_INIT(1024), sig = TR_BUF_INIT(256);
    const char *headers[5] = { "Content-Type: application/json", NULL, NULL, NULL, NULL };
    int rc = TR_OK;

    if (root == NULL)
        return tr_error_set(err, TR_ENOMEM, "webhook: out of memory");
    cJSON_AddStringToObject(root, "event", msg->event);
    cJSON_AddStringToObject(root, "delivery_id", msg->delivery_id);
    cJSON_AddItemToObject(root, "incident", tr_notify_incident_json(msg->incident));
    if (msg->analysis)
        cJSON_AddItemToObject(root, "analysis", tr_notify_analysis_json(msg->analysis));
    else
        cJSON_AddNullToObject(root, "analysis");
    cJSON_AddStringToObject(root, "severity", tr_notify_severity_name(msg->severity));
    if (msg->pr_url)
        cJSON_AddStringToObject(root, "pull_request", msg->pr_url);
    else
        cJSON_AddNullToObject(root, "pull_request");
    if (msg->incident_url)
        cJSON_AddStringToObject(root, "url", msg->incident_url);
    else
        cJSON_AddNullToObject(root, "url");
    if (msg->explanation)
        cJSON_AddStringToObject(root, "explanation", msg->explanation);
    body = cJSON_PrintUnformatted(root);
    if (body == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "webhook: out of memory");
        goto cleanup;
    }
    (void)tr_buf_printf(&event, "X-Triaged-Event: %s", msg->event);
    (void)tr_buf_printf(&delivery, "X-Triaged-Delivery: %s", msg->delivery_id);
    headers[1] = tr_buf_cstr(&event);
    headers[2] = tr_buf_cstr(&delivery);
    if (s->secret) {
        if (signature_header(&sig, s->secret, body, strlen(body)) != TR_OK) {
            rc = tr_error_set(err, TR_ERROR, "webhook: cannot compute the HMAC");
            goto cleanup;
        }
        headers[3] = tr_buf_cstr(&sig);
    }
    rc = tr_notify_post_json(&s->post, s->http, s->url, headers, body, s->timeout_ms,
                             WEBHOOK_RESPONSE_MAX, done, userdata, err);
cleanup:
    tr_buf_dispose(&event);
    tr_buf_dispose(&delivery);
    tr_buf_dispose(&sig);
    cJSON_free(body);
    cJSON_Delete(root);
    return rc;
}

static void webhook_cancel(void *state)
{
    webhook_sink *s = state;

    tr_notify_post_cancel(&s->post);
}

const tr_notifier_vtable tr_notifier_webhook = {
    "webhook", webhook_init, webhook_send, webhook_cancel, webhook_destroy,
};
