/*
 * actions.h - what people do about an incident: accept or reject its
 * proposed fix, or ask for more explanation, from the HTTP API
 * (POST /v1/incidents/{id}/accept, /reject) or from Slack buttons
 * (POST /hooks/slack/actions, signature-checked).
 *
 * Every decision is one store transaction: the decision row (with who made
 * it), the state change (accept: patch_proposed → accepted, where an
 * `analyzed` or `notified` incident whose latest analysis carries a patch is
 * first marked patch_proposed; reject: any active state → rejected) and the
 * outbox message announcing it
 * (incident.accepted / incident.rejected). Opening the PR is the fixer's
 * job: an accepted incident stays `accepted` until the fixer picks it up,
 * and the replies say so.
 *
 * The context is owned by the caller and must outlive the server.
 */
#ifndef TR_ACTIONS_H
#define TR_ACTIONS_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "dispatch.h"
#include "error.h"
#include "http_client.h"
#include "http_server.h"
#include "store.h"

typedef struct tr_actions {
    tr_store *store;                  /* borrowed */
    tr_http_client *http;             /* Slack response_url follow-ups; NULL = none sent */
    const char *api_token;            /* /v1 bearer token; NULL = none required */
    const char *slack_signing_secret; /* NULL or "" = /hooks/slack/actions not registered */
    const char *response_url_prefix;  /* follow-ups only go here; NULL = https://hooks.slack.com/ */
    tr_dispatch *dispatch;            /* woken after a decision enqueued a message; may be NULL */
    int64_t (*now_ms)(void *userdata); /* NULL = the real clock */
    void *clock_userdata;
    /* Optional hooks (e.g. the fixer, a deeper analysis): after the change is committed. */
    void (*on_decision)(int64_t incident_id, int accept, void *userdata);
    /*
     * "Explain more": besides the analysis spelled out at once, the daemon
     * hooks tr_chat_explain here (explain_userdata = the tr_chat) for a
     * deeper answer posted later in the incident's thread.
     */
    void (*on_explain)(int64_t incident_id, const char *actor, void *userdata);
    void *userdata;
    void *explain_userdata;           /* for on_explain; NULL = userdata */
} tr_actions;

/*
 * Register POST /v1/incidents/{id}/accept, POST /v1/incidents/{id}/reject
 * and, when a signing secret is set, POST /hooks/slack/actions.
 */
int tr_actions_register(tr_http_server *srv, tr_actions *ctx, tr_error *err);

/*
 * Record a decision on incident id by actor ("cli", "api", "slack:U123");
 * reason may be NULL. TR_ENOTFOUND for an unknown id, TR_ECONFLICT (with a
 * message saying what state the incident is in and what would be needed)
 * when its state does not allow it.
 */
int tr_actions_decide(tr_actions *ctx, int64_t id, int accept, const char *actor,
                      const char *reason, tr_error *err);

/*
 * The latest analysis of incident id as JSON (summary, root_cause, severity,
 * confidence, evidence, remediation, patch, provider, model, ...), for
 * GET /v1/incidents/{id}; NULL when there is none yet (or on a store error,
 * which is logged). Caller owns the result (cJSON_Delete or add it to a tree).
 */
cJSON *tr_actions_analysis_json(tr_store *store, int64_t id);

/*
 * The Slack signing secret of the first [[notify]] with signing_secret_env
 * set. *out is NULL when none is configured (not an error), else owned by
 * the caller (tr_secret_free). A configured but unset variable is TR_ECONFIG.
 */
int tr_actions_slack_secret(const tr_config *cfg, char **out, tr_error *err);

#endif
