/*
 * slack.c - the Slack sink, in one of two modes:
 *
 * - incoming webhook (webhook_url_env): POST {"text","blocks"} to the URL;
 *   Slack answers 200 "ok" or a plain-text error (PROTOCOLS.md §3.1). Each
 *   notification is its own message naming the incident.
 * - bot token (bot_token_env + channel): chat.postMessage. The first message
 *   of an incident starts a thread; its channel and ts are kept in the
 *   store's kv table under "slack/<sink>/thread/<incident id>", so later
 *   updates (analysis, PR, resolved) go into that thread, across restarts.
 *   chat.postMessage answers HTTP 200 even for errors: the JSON `ok` field
 *   decides (§3.2); `ratelimited` retries, every other error drops.
 *
 * With signing_secret_env set, messages carry the action buttons handled by
 * actions.c. The webhook URL and the bot token are secrets: kept here only,
 * never logged, zeroed on destroy.
 */
#include "notifier.h"
#include "alloc.h"
#include "buf.h"
#include "log.h"
#include "slack_blocks.h"

#include <stdio.h>
#include <string.h>

#define SLACK_API_URL "https://slack.com/api"
#define SLACK_RESPONSE_MAX ((size_t)256 * 1024)

typedef struct slack_sink {
    tr_http_client *http;
    tr_store *store;
    char *name;
    char *webhook_url; /* secret */
    char *bot_token;   /* secret */
    char *channel;
    char *api_url;
    int buttons;
    long timeout_ms;
    /* the send in flight */
    tr_notify_post post;
    int64_t incident_id;
    int starts_thread;
    int ends_thread;
} slack_sink;

static void slack_destroy(void *state)
{
    slack_sink *s = state;

    if (s == NULL)
        return;
    tr_secret_free(s->webhook_url);
    tr_secret_free(s->bot_token);
    tr_free(s->name);
    tr_free(s->channel);
    tr_free(s->api_url);
    tr_free(s);
}

static int slack_init(void **state, const tr_notifier_env *env, tr_error *err)
{
    const tr_config_notify *cfg = env->cfg;
    slack_sink *s = tr_calloc(1, sizeof(*s));
    int rc = TR_OK;

    if (s == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    s->http = env->http;
    s->store = env->store;
    s->timeout_ms = env->timeout_ms > 0 ? env->timeout_ms : TR_NOTIFY_DEFAULT_TIMEOUT_MS;
    s->buttons = cfg->signing_secret_env && *cfg->signing_secret_env;
    s->name = tr_strdup(cfg->name);
    s->channel = tr_strdup(cfg->channel ? cfg->channel : "");
    s->api_url = tr_strdup(env->slack_api_url ? env->slack_api_url : SLACK_API_URL);
    if (s->name == NULL || s->channel == NULL || s->api_url == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (cfg->bot_token_env && *cfg->bot_token_env) {
        if (*s->channel == '\0') {
            rc = tr_error_set(err, TR_ECONFIG, "notify %s: bot_token_env needs channel",
                              cfg->name);
            goto cleanup;
        }
        rc = tr_config_secret_resolve(cfg->bot_token_env, NULL, &s->bot_token, err);
    } else {
        rc = tr_config_secret_resolve(cfg->webhook_url_env, NULL, &s->webhook_url, err);
        if (rc == TR_OK && strncmp(s->webhook_url, "https://", 8) != 0 &&
            strncmp(s->webhook_url, "http://", 7) != 0)
            rc = tr_error_set(err, TR_ECONFIG, "notify %s: $%s is not an http(s) URL",
                              cfg->name, cfg->webhook_url_env);
    }
    if (rc != TR_OK) {
        tr_error_prefix(err, "notify %s: ", cfg->name);
        goto cleanup;
    }
    *state = s;
    s = NULL;
cleanup:
    slack_destroy(s);
    return rc;
}

static void thread_key(char *out, size_t size, const char *sink, int64_t incident_id)
{
    snprintf(out, size, "slack/%s/thread/%lld", sink, (long long)incident_id);
}

/* A bot-mode answer: {"ok":true,"channel":"C..","ts":".."} or {"ok":false,"error":".."}. */
static void bot_answer(const tr_http_response *resp, tr_notify_result *result, void *sink)
{
    slack_sink *s = sink;
    cJSON *root = cJSON_ParseWithLength(resp->body, resp->body_len);
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(root, "ok");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
    const cJSON *channel = cJSON_GetObjectItemCaseSensitive(root, "channel");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "ts");
    char key[TR_STORE_NAME_MAX / 4];
    tr_buf value = TR_BUF_INIT(1024);
    tr_error err = { 0 };

    if (!cJSON_IsBool(ok)) {
        result->outcome = TR_NOTIFY_RETRY;
        snprintf(s->post.error, sizeof(s->post.error),
                 "chat.postMessage: answer is not Slack's JSON");
    } else if (cJSON_IsFalse(ok)) {
        snprintf(s->post.error, sizeof(s->post.error), "chat.postMessage: %s",
                 cJSON_IsString(error) ? error->valuestring : "ok=false");
        result->outcome = cJSON_IsString(error) && strcmp(error->valuestring, "ratelimited") == 0
                              ? TR_NOTIFY_RETRY
                              : TR_NOTIFY_DROP;
    } else {
        thread_key(key, sizeof(key), s->name, s->incident_id);
        if (s->ends_thread) {
            (void)tr_store_kv_delete(s->store, key, &err);
        } else if (s->starts_thread && cJSON_IsString(channel) && cJSON_IsString(ts) &&
                   tr_buf_printf(&value, "%s %s", channel->valuestring, ts->valuestring) ==
                       TR_OK) {
            if (tr_store_kv_put(s->store, key, tr_buf_cstr(&value), tr_notify_now_ms(), &err) !=
                TR_OK)
                tr_log_warn("notify", "%s: incident %lld: thread not kept (updates will start "
                            "a new message): %s", s->name, (long long)s->incident_id,
                            err.message);
        }
    }
    tr_buf_dispose(&value);
    cJSON_Delete(root);
}

static int slack_send(void *state, const tr_notify_message *msg, tr_notify_done_cb done,
                      void *userdata, tr_error *err)
{
    slack_sink *s = state;
    cJSON *body = NULL;
    char *text = NULL, *thread = NULL, *space;
    char key[TR_STORE_NAME_MAX / 4];
    tr_buf url = TR_BUF_INIT(8192), auth = TR_BUF_INIT(8192);
    const char *headers[3] = { "Content-Type: application/json; charset=utf-8", NULL, NULL };
    tr_error kv_err = { 0 };
    int rc;

    rc = tr_slack_blocks_build(&body, msg, s->buttons, err);
    if (rc != TR_OK)
        return rc;
    s->starts_thread = s->ends_thread = 0;
    if (s->bot_token) {
        thread_key(key, sizeof(key), s->name, msg->incident_id);
        if (msg->incident_id > 0 && tr_store_kv_get(s->store, key, &thread, &kv_err) == TR_OK &&
            (space = strchr(thread, ' ')) != NULL) {
            *space = '\0';
            cJSON_AddStringToObject(body, "channel", thread);
            cJSON_AddStringToObject(body, "thread_ts", space + 1);
            s->ends_thread = strcmp(msg->event, "incident.resolved") == 0;
        } else {
            cJSON_AddStringToObject(body, "channel", s->channel);
            s->starts_thread = msg->incident_id > 0;
        }
        cJSON_AddBoolToObject(body, "unfurl_links", 0);
        (void)tr_buf_printf(&url, "%s/chat.postMessage", s->api_url);
        (void)tr_buf_printf(&auth, "Authorization: Bearer %s", s->bot_token);
        headers[1] = tr_buf_cstr(&auth);
    } else {
        (void)tr_buf_puts(&url, s->webhook_url);
    }
    text = cJSON_PrintUnformatted(body);
    if (text == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "slack: out of memory");
        goto cleanup;
    }
    s->incident_id = msg->incident_id;
    s->post.on_delivered = s->bot_token ? bot_answer : NULL;
    s->post.sink = s;
    rc = tr_notify_post_json(&s->post, s->http, tr_buf_cstr(&url), headers, text, s->timeout_ms,
                             SLACK_RESPONSE_MAX, done, userdata, err);
cleanup:
    if (auth.ptr)
        memset(auth.ptr, 0, auth.len);
    if (url.ptr)
        memset(url.ptr, 0, url.len); /* a webhook URL is a secret */
    tr_buf_dispose(&auth);
    tr_buf_dispose(&url);
    tr_free(thread);
    cJSON_free(text);
    cJSON_Delete(body);
    return rc;
}

static void slack_cancel(void *state)
{
    slack_sink *s = state;

    tr_notify_post_cancel(&s->post);
}

const tr_notifier_vtable tr_notifier_slack = {
    "slack", slack_init, slack_send, slack_cancel, slack_destroy,
};
