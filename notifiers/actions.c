/*
 * actions.c - accept / reject / explain, from the API and from Slack.
 *
 * Slack wants an HTTP 200 within 3 seconds whatever happened (anything else
 * shows the user a generic failure), so the Slack route answers 200 for
 * every verified request and tells the user the outcome through the
 * interaction's response_url. Only a request whose signature or timestamp
 * fails gets 401, and a malformed payload 400. Follow-ups go only to URLs
 * under response_url_prefix, so a payload cannot make the daemon POST
 * elsewhere even if a signing secret leaked.
 */
#include "actions.h"
#include "alloc.h"
#include "api.h"
#include "buf.h"
#include "content.h"
#include "log.h"
#include "notifier.h"
#include "slack_blocks.h"
#include "slack_payload.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_TYPE "application/json"
#define REASON_MAX 4096
#define SLACK_HOOKS_PREFIX "https://hooks.slack.com/"

static int64_t now_ms(const tr_actions *ctx)
{
    return ctx->now_ms ? ctx->now_ms(ctx->clock_userdata) : tr_notify_now_ms();
}

/*
 * An analysis with a patch is a proposal even before the fixer's scan marked
 * it so (the Slack button shows on analysed incidents): move it to
 * patch_proposed first. TR_ENOTFOUND when there is no patch to accept.
 */
static int propose_first(tr_actions *ctx, int64_t id, int state, tr_error *err)
{
    tr_store_analysis *a = NULL;
    tr_store_transition t;
    int has_patch, rc = tr_store_analysis_latest(ctx->store, id, &a, err);

    if (rc != TR_OK)
        return rc;
    has_patch = a->patch != NULL && *a->patch != '\0';
    tr_store_analysis_free(a);
    if (!has_patch)
        return TR_ENOTFOUND;
    memset(&t, 0, sizeof(t));
    t.expect_from = state;
    t.to = TR_INCIDENT_PATCH_PROPOSED;
    return tr_store_incident_transition(ctx->store, id, &t, now_ms(ctx), err);
}

int tr_actions_decide(tr_actions *ctx, int64_t id, int accept, const char *actor,
                      const char *reason, tr_error *err)
{
    tr_store_incident *inc = NULL;
    tr_store_decision decision;
    tr_store_transition t;
    int rc, state;

    rc = tr_store_incident_get(ctx->store, id, &inc, err);
    if (rc == TR_ENOTFOUND)
        return tr_error_set(err, TR_ENOTFOUND, "no incident %lld", (long long)id);
    if (rc != TR_OK)
        return rc;
    state = inc->state;
    tr_store_incident_free(inc);
    if (accept && (state == TR_INCIDENT_ANALYZED || state == TR_INCIDENT_NOTIFIED)) {
        rc = propose_first(ctx, id, state, err);
        if (rc == TR_OK)
            state = TR_INCIDENT_PATCH_PROPOSED;
        else if (rc != TR_ENOTFOUND)
            return rc;
    }
    if (accept && state != TR_INCIDENT_PATCH_PROPOSED)
        return tr_error_set(err, TR_ECONFLICT,
                            "incident %lld is %s: only a proposed patch can be accepted "
                            "(state patch_proposed)%s", (long long)id,
                            tr_store_state_name(state),
                            state == TR_INCIDENT_ACCEPTED ? "; it was already accepted" : "");
    if (!accept && !tr_store_state_allowed(state, TR_INCIDENT_REJECTED))
        return tr_error_set(err, TR_ECONFLICT, "incident %lld is %s: it cannot be rejected now",
                            (long long)id, tr_store_state_name(state));
    memset(&decision, 0, sizeof(decision));
    decision.incident_id = id;
    decision.accept = accept;
    decision.actor = actor;
    decision.reason = reason && *reason ? reason : NULL;
    memset(&t, 0, sizeof(t));
    t.expect_from = state; /* a concurrent change in between turns into a conflict */
    t.to = accept ? TR_INCIDENT_ACCEPTED : TR_INCIDENT_REJECTED;
    t.event = accept ? "incident.accepted" : "incident.rejected";
    rc = tr_store_decision_put(ctx->store, &decision, &t, now_ms(ctx), NULL, err);
    if (rc != TR_OK)
        return rc;
    tr_log_info("actions", "incident %lld %s by %s", (long long)id,
                accept ? "accepted" : "rejected", actor);
    tr_dispatch_notify(ctx->dispatch);
    if (ctx->on_decision)
        ctx->on_decision(id, accept, ctx->userdata);
    return TR_OK;
}

cJSON *tr_actions_analysis_json(tr_store *store, int64_t id)
{
    tr_store_analysis *a = NULL;
    tr_error err = { 0 };
    cJSON *json;
    int rc = tr_store_analysis_latest(store, id, &a, &err);

    if (rc != TR_OK) {
        if (rc != TR_ENOTFOUND)
            tr_log_warn("actions", "incident %lld: reading its analysis: %s", (long long)id,
                        err.message);
        return NULL;
    }
    json = tr_notify_analysis_json(a);
    tr_store_analysis_free(a);
    return json;
}

int tr_actions_slack_secret(const tr_config *cfg, char **out, tr_error *err)
{
    size_t i;
    int rc;

    *out = NULL;
    for (i = 0; i < cfg->notify_count; i++) {
        const tr_config_notify *n = &cfg->notify[i];

        if (n->kind != TR_CONFIG_NOTIFY_SLACK || n->signing_secret_env == NULL ||
            *n->signing_secret_env == '\0')
            continue;
        rc = tr_config_secret_resolve(n->signing_secret_env, NULL, out, err);
        if (rc != TR_OK) {
            tr_error_prefix(err, "notify %s: signing_secret_env: ", n->name);
            return TR_ECONFIG;
        }
        return TR_OK;
    }
    return TR_OK;
}

/* ------------------------------------------------------------ /v1 API */

static void answer_decision(tr_actions *ctx, tr_http_req *req, int64_t id, int rc,
                            const tr_error *err)
{
    tr_store_incident *inc = NULL;
    tr_error get_err = { 0 };
    cJSON *root;

    if (rc == TR_ENOTFOUND) {
        (void)tr_http_respond_error(req, 404, "no such incident", err->message);
        return;
    }
    if (rc == TR_ECONFLICT) {
        (void)tr_http_respond_error(req, 409, "state does not allow this", err->message);
        return;
    }
    if (rc != TR_OK) {
        (void)tr_http_respond_error(req, 500, "store error", err->message);
        return;
    }
    root = cJSON_CreateObject();
    if (tr_store_incident_get(ctx->store, id, &inc, &get_err) == TR_OK)
        cJSON_AddItemToObject(root, "incident", tr_notify_incident_json(inc));
    if (inc && inc->state == TR_INCIDENT_ACCEPTED)
        cJSON_AddStringToObject(root, "message", "accepted: the fixer opens the pull request; "
                                                 "the incident stays accepted until it does");
    else
        cJSON_AddStringToObject(root, "message", "rejected");
    tr_store_incident_free(inc);
    tr_api_respond_json(req, 200, root);
}

static void on_accept(tr_http_req *req, void *userdata)
{
    tr_actions *ctx = userdata;
    int64_t id = tr_api_parse_id(tr_http_req_param(req, "id"));
    tr_error err = { 0 };

    if (!tr_api_authorized(req, ctx->api_token))
        return;
    if (id == 0) {
        (void)tr_http_respond_error(req, 400, "bad incident id", "a positive number");
        return;
    }
    answer_decision(ctx, req, id, tr_actions_decide(ctx, id, 1, "api", NULL, &err), &err);
}

static void on_reject(tr_http_req *req, void *userdata)
{
    tr_actions *ctx = userdata;
    int64_t id = tr_api_parse_id(tr_http_req_param(req, "id"));
    tr_error err = { 0 };
    size_t len = 0;
    const char *body = tr_http_req_body(req, &len);
    cJSON *root = NULL;
    const cJSON *reason = NULL;
    int rc;

    if (!tr_api_authorized(req, ctx->api_token))
        return;
    if (id == 0) {
        (void)tr_http_respond_error(req, 400, "bad incident id", "a positive number");
        return;
    }
    if (len > 0) {
        root = cJSON_ParseWithLength(body, len);
        reason = cJSON_GetObjectItemCaseSensitive(root, "reason");
        if (!cJSON_IsObject(root) || (reason && !cJSON_IsString(reason) && !cJSON_IsNull(reason)) ||
            (cJSON_GetStringValue(reason) && strlen(cJSON_GetStringValue(reason)) > REASON_MAX)) {
            cJSON_Delete(root);
            (void)tr_http_respond_error(req, 400, "bad body",
                                        "expected {\"reason\": \"...\"} (at most 4096 bytes)");
            return;
        }
    }
    rc = tr_actions_decide(ctx, id, 0, "api", cJSON_GetStringValue(reason),
                           &err);
    cJSON_Delete(root);
    answer_decision(ctx, req, id, rc, &err);
}

/* ------------------------------------------------------------ Slack */

static void on_followup_done(const tr_http_response *resp, void *userdata)
{
    (void)userdata;
    if (resp->result != TR_OK || resp->status < 200 || resp->status >= 300)
        tr_log_warn("actions", "Slack follow-up not delivered: %s (HTTP %ld)",
                    resp->result != TR_OK ? resp->message : "refused", resp->status);
}

/* POST text to the interaction's response_url (only under the allowed prefix). */
static void follow_up(tr_actions *ctx, const char *url, const char *text, int in_channel)
{
    const char *prefix = ctx->response_url_prefix ? ctx->response_url_prefix : SLACK_HOOKS_PREFIX;
    const char *headers[] = { "Content-Type: application/json; charset=utf-8", NULL };
    tr_http_request req;
    tr_error err = { 0 };
    cJSON *root;
    char *body;

    if (ctx->http == NULL || url == NULL || *url == '\0')
        return;
    if (strncmp(url, prefix, strlen(prefix)) != 0 || strpbrk(url, " \r\n") != NULL) {
        tr_log_warn("actions", "Slack response_url is not under %s: no follow-up sent", prefix);
        return;
    }
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "response_type", in_channel ? "in_channel" : "ephemeral");
    cJSON_AddBoolToObject(root, "replace_original", 0);
    cJSON_AddStringToObject(root, "text", text);
    body = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (body == NULL)
        return;
    memset(&req, 0, sizeof(req));
    req.method = TR_HTTP_POST;
    req.url = url;
    req.headers = headers;
    req.body = body;
    req.body_len = strlen(body);
    req.timeout_ms = 10000;
    req.max_response_bytes = 64 * 1024;
    req.on_done = on_followup_done;
    if (tr_http_client_send(ctx->http, &req, NULL, &err) != TR_OK)
        tr_log_warn("actions", "Slack follow-up not sent: %s", err.message);
    cJSON_free(body);
}

/* The analysis spelled out for "Explain more" (mrkdwn, within Slack's text limit). */
static void explain_text(tr_actions *ctx, int64_t id, tr_buf *out)
{
    tr_store_analysis *a = NULL;
    tr_error err = { 0 };
    tr_buf raw = TR_BUF_INIT(256 * 1024);
    cJSON *list;
    const cJSON *item;
    size_t used = 0;

    if (tr_store_analysis_latest(ctx->store, id, &a, &err) != TR_OK) {
        (void)tr_buf_printf(out, "Incident #%lld has no analysis yet; it is posted here when "
                            "ready.", (long long)id);
        return;
    }
    (void)tr_buf_printf(&raw, "Incident #%lld (confidence %.0f%%, %s)\nRoot cause: %s\n",
                        (long long)id, a->confidence * 100, a->provider ? a->provider : "?",
                        a->root_cause ? a->root_cause : "");
    list = tr_notify_string_array(a->evidence_json);
    if (cJSON_GetArraySize(list) > 0)
        (void)tr_buf_puts(&raw, "Evidence:\n");
    cJSON_ArrayForEach(item, list)
        if (cJSON_IsString(item))
            (void)tr_buf_printf(&raw, "• %s\n", item->valuestring);
    cJSON_Delete(list);
    list = tr_notify_string_array(a->remediation_json);
    if (cJSON_GetArraySize(list) > 0)
        (void)tr_buf_puts(&raw, "Remediation:\n");
    cJSON_ArrayForEach(item, list)
        if (cJSON_IsString(item))
            (void)tr_buf_printf(&raw, "• %s\n", item->valuestring);
    cJSON_Delete(list);
    if (tr_notify_put_limited(out, tr_buf_cstr(&raw), TR_SLACK_TEXT_MAX - 80, &used, 1) == 1)
        (void)tr_buf_printf(out, "\n… more with `triaged show %lld`", (long long)id);
    tr_buf_dispose(&raw);
    tr_store_analysis_free(a);
}

static void slack_act(tr_actions *ctx, const tr_slack_action *act, tr_buf *text, int *in_channel)
{
    int64_t id = tr_api_parse_id(act->value);
    tr_buf actor = TR_BUF_INIT(512);
    tr_error err = { 0 };
    char key[64];
    int rc, accept = strcmp(act->action_id, TR_SLACK_ACTION_ACCEPT) == 0;

    (void)tr_buf_printf(&actor, "slack:%.200s", act->user_id);
    if (id == 0) {
        (void)tr_buf_puts(text, "This button does not name an incident.");
    } else if (accept || strcmp(act->action_id, TR_SLACK_ACTION_REJECT) == 0) {
        rc = tr_actions_decide(ctx, id, accept, tr_buf_cstr(&actor),
                               accept ? NULL : "rejected in Slack", &err);
        if (rc == TR_OK && accept)
            (void)tr_buf_printf(text, "<@%s> accepted the fix for incident #%lld. It is now "
                                "`accepted`; the pull request is opened by the fixer, and the "
                                "incident stays `accepted` until then.", act->user_id,
                                (long long)id);
        else if (rc == TR_OK)
            (void)tr_buf_printf(text, "<@%s> rejected the fix for incident #%lld.", act->user_id,
                                (long long)id);
        else
            (void)tr_buf_printf(text, "Cannot %s incident #%lld: %s", accept ? "accept" : "reject",
                                (long long)id, err.message);
        *in_channel = rc == TR_OK;
    } else if (strcmp(act->action_id, TR_SLACK_ACTION_EXPLAIN) == 0) {
        snprintf(key, sizeof(key), "slack/explain/%lld", (long long)id);
        (void)tr_store_kv_put(ctx->store, key, tr_buf_cstr(&actor), now_ms(ctx), &err);
        explain_text(ctx, id, text);
        if (ctx->on_explain) {
            ctx->on_explain(id, tr_buf_cstr(&actor),
                            ctx->explain_userdata ? ctx->explain_userdata : ctx->userdata);
            (void)tr_buf_puts(text, "\n_A deeper explanation is on its way in this thread._");
        }
    }
    tr_buf_dispose(&actor);
}

static void on_slack_actions(tr_http_req *req, void *userdata)
{
    tr_actions *ctx = userdata;
    size_t len = 0;
    const char *body = tr_http_req_body(req, &len);
    tr_slack_action *act = NULL;
    tr_buf text = TR_BUF_INIT(4 * TR_SLACK_TEXT_MAX);
    tr_error err = { 0 };
    cJSON *root;
    int in_channel = 0;

    if (tr_slack_verify(ctx->slack_signing_secret,
                        tr_http_req_header(req, "X-Slack-Request-Timestamp"),
                        tr_http_req_header(req, "X-Slack-Signature"), body, len,
                        now_ms(ctx) / 1000, &err) != TR_OK) {
        tr_log_warn("actions", "Slack request refused: %s", err.message);
        (void)tr_http_respond_error(req, 401, "bad Slack signature", err.message);
        return;
    }
    if (tr_slack_action_parse(&act, body, len, &err) != TR_OK) {
        (void)tr_http_respond_error(req, 400, "bad Slack payload", err.message);
        return;
    }
    if (strcmp(act->type, "block_actions") == 0)
        slack_act(ctx, act, &text, &in_channel);
    if (text.len)
        follow_up(ctx, act->response_url, tr_buf_cstr(&text), in_channel);
    else
        tr_log_debug("actions", "Slack %s %s ignored", act->type, act->action_id);
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "response_type", in_channel ? "in_channel" : "ephemeral");
    cJSON_AddStringToObject(root, "text", tr_buf_cstr(&text));
    tr_api_respond_json(req, 200, root);
    tr_buf_dispose(&text);
    tr_slack_action_free(act);
}

int tr_actions_register(tr_http_server *srv, tr_actions *ctx, tr_error *err)
{
    int rc = tr_http_server_route(srv, "POST", "/v1/incidents/{id}/accept", on_accept, ctx);

    if (rc == TR_OK)
        rc = tr_http_server_route(srv, "POST", "/v1/incidents/{id}/reject", on_reject, ctx);
    if (rc == TR_OK && ctx->slack_signing_secret && *ctx->slack_signing_secret)
        rc = tr_http_server_route(srv, "POST", "/hooks/slack/actions", on_slack_actions, ctx);
    if (rc != TR_OK)
        return tr_error_set(err, rc, "registering the action routes: %s", tr_strerror(rc));
    return TR_OK;
}
