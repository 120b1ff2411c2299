/*
 * teams.c - the Microsoft Teams sink: an incoming webhook (a Workflows or
 * legacy connector URL, read from webhook_url_env because it is a secret)
 * that receives one Adaptive Card per notification with the same content as
 * the Slack message: headline, context, summary, root cause, evidence,
 * remediation, patch and links (Action.OpenUrl).
 *
 * Teams refuses messages over about 28 KB, so every text block is capped at
 * TEAMS_TEXT_MAX characters and lists are cut with "...and N more". Legacy
 * connectors answer 200 with body "1"; Workflows answer 202: any 2xx is
 * delivered.
 */
#include "notifier.h"
#include "alloc.h"
#include "buf.h"

#include <stdio.h>
#include <string.h>

#define TEAMS_TEXT_MAX 3000
#define TEAMS_LIST_ITEM_MAX 600
#define TEAMS_RESPONSE_MAX ((size_t)64 * 1024)

typedef struct teams_sink {
    tr_http_client *http;
    char *url; /* secret */
    long timeout_ms;
    tr_notify_post post; /* the POST in flight */
} teams_sink;

static void teams_destroy(void *state)
{
    teams_sink *s = state;

    if (s == NULL)
        return;
    tr_secret_free(s->url);
    tr_free(s);
}

static int teams_init(void **state, const tr_notifier_env *env, tr_error *err)
{
    teams_sink *s = tr_calloc(1, sizeof(*s));
    int rc;

    if (s == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    s->http = env->http;
    s->timeout_ms = env->timeout_ms > 0 ? env->timeout_ms : TR_NOTIFY_DEFAULT_TIMEOUT_MS;
    rc = tr_config_secret_resolve(env->cfg->webhook_url_env, NULL, &s->url, err);
    if (rc == TR_OK && strncmp(s->url, "https://", 8) != 0 && strncmp(s->url, "http://", 7) != 0)
        rc = tr_error_set(err, TR_ECONFIG, "$%s is not an http(s) URL",
                          env->cfg->webhook_url_env);
    if (rc != TR_OK) {
        tr_error_prefix(err, "notify %s: ", env->cfg->name);
        teams_destroy(s);
        return rc;
    }
    *state = s;
    return TR_OK;
}

static cJSON *text_block(cJSON *body, const char *text, int heading)
{
    cJSON *block = cJSON_CreateObject();

    if (block == NULL)
        return NULL;
    cJSON_AddStringToObject(block, "type", "TextBlock");
    cJSON_AddStringToObject(block, "text", text);
    cJSON_AddBoolToObject(block, "wrap", 1);
    if (heading) {
        cJSON_AddStringToObject(block, "weight", "Bolder");
        cJSON_AddStringToObject(block, "spacing", "Medium");
    }
    cJSON_AddItemToArray(body, block);
    return block;
}

static void section(cJSON *body, const char *heading, const char *text)
{
    tr_buf cut = TR_BUF_INIT(4 * TEAMS_TEXT_MAX);
    size_t used = 0;

    if (text == NULL || *text == '\0')
        return;
    if (tr_notify_put_limited(&cut, text, TEAMS_TEXT_MAX, &used, 0) == 1)
        (void)tr_buf_puts(&cut, " … (cut; see triaged show)");
    (void)text_block(body, heading, 1);
    (void)text_block(body, tr_buf_cstr(&cut), 0);
    tr_buf_dispose(&cut);
}

static void list(cJSON *body, const char *heading, const char *json, int numbered)
{
    cJSON *arr = tr_notify_string_array(json);
    const cJSON *item;
    tr_buf text = TR_BUF_INIT(8 * TEAMS_TEXT_MAX);
    size_t used = 0, n = 0, total = 0;

    cJSON_ArrayForEach(item, arr)
        total += cJSON_IsString(item);
    cJSON_ArrayForEach(item, arr) {
        size_t item_used = 0;
        tr_buf line = TR_BUF_INIT(4 * TEAMS_LIST_ITEM_MAX + 64);

        if (!cJSON_IsString(item))
            continue;
        if (numbered)
            (void)tr_buf_printf(&line, "%s%zu. ", n ? "\n" : "", n + 1);
        else
            (void)tr_buf_puts(&line, n ? "\n- " : "- ");
        if (tr_notify_put_limited(&line, item->valuestring, TEAMS_LIST_ITEM_MAX, &item_used,
                                  0) == 1)
            (void)tr_buf_puts(&line, " …");
        if (used + item_used + line.len > TEAMS_TEXT_MAX) {
            tr_buf_dispose(&line);
            break;
        }
        used += item_used + 8;
        (void)tr_buf_put(&text, line.ptr, line.len);
        tr_buf_dispose(&line);
        n++;
    }
    if (n < total)
        (void)tr_buf_printf(&text, "\n\n…and %zu more (triaged show)", total - n);
    if (text.len) {
        (void)text_block(body, heading, 1);
        (void)text_block(body, tr_buf_cstr(&text), 0);
    }
    tr_buf_dispose(&text);
    cJSON_Delete(arr);
}

static void open_url(cJSON *actions, const char *title, const char *url)
{
    cJSON *action;

    if (url == NULL || strlen(url) > 2000)
        return;
    action = cJSON_CreateObject();
    if (action == NULL)
        return;
    cJSON_AddStringToObject(action, "type", "Action.OpenUrl");
    cJSON_AddStringToObject(action, "title", title);
    cJSON_AddStringToObject(action, "url", url);
    cJSON_AddItemToArray(actions, action);
}

/* The card; NULL when memory ran out. */
static cJSON *build_card(const tr_notify_message *msg)
{
    const tr_store_incident *inc = msg->incident;
    const tr_store_analysis *a = msg->analysis;
    cJSON *root = cJSON_CreateObject(), *attachments, *att, *card, *body, *actions, *head;
    tr_buf text = TR_BUF_INIT(16384);
    const char *state = tr_store_state_name(inc->state);

    if (root == NULL)
        return NULL;
    cJSON_AddStringToObject(root, "type", "message");
    attachments = cJSON_AddArrayToObject(root, "attachments");
    att = cJSON_CreateObject();
    cJSON_AddItemToArray(attachments, att);
    cJSON_AddStringToObject(att, "contentType", "application/vnd.microsoft.card.adaptive");
    card = cJSON_AddObjectToObject(att, "content");
    cJSON_AddStringToObject(card, "$schema", "http://adaptivecards.io/schemas/adaptive-card.json");
    cJSON_AddStringToObject(card, "type", "AdaptiveCard");
    cJSON_AddStringToObject(card, "version", "1.4");
    body = cJSON_AddArrayToObject(card, "body");
    if (strcmp(msg->event, "incident.opened") != 0 && strcmp(msg->event, "incident.analyzed") != 0)
        (void)tr_buf_printf(&text, "%s · ", tr_notify_event_title(msg->event));
    (void)tr_notify_headline(&text, msg);
    head = text_block(body, tr_buf_cstr(&text), 0);
    if (head) {
        cJSON_AddStringToObject(head, "size", "Large");
        cJSON_AddStringToObject(head, "weight", "Bolder");
        cJSON_AddStringToObject(head, "color", msg->severity >= 2   ? "Attention"
                                               : msg->severity == 1 ? "Warning"
                                                                    : "Default");
    }
    tr_buf_clear(&text);
    (void)tr_buf_printf(&text, "%s · incident #%lld · state %s · %s",
                        tr_notify_event_title(msg->event), (long long)msg->incident_id,
                        state ? state : "?", inc->source ? inc->source : "?");
    if (a)
        (void)tr_buf_printf(&text, " · confidence %.0f%%", a->confidence * 100);
    head = text_block(body, tr_buf_cstr(&text), 0);
    if (head)
        cJSON_AddBoolToObject(head, "isSubtle", 1);
    if (msg->explanation) {
        section(body, "Explanation", msg->explanation);
    } else if (a) {
        section(body, "Summary", a->summary);
        section(body, "Root cause", a->root_cause);
        list(body, "Key evidence", a->evidence_json, 0);
        list(body, "Remediation", a->remediation_json, 1);
        section(body, "Proposed patch", a->patch);
    } else {
        section(body, "What happened", inc->message ? inc->message : inc->title);
    }
    if (msg->decision && (strcmp(msg->event, "incident.accepted") == 0 ||
                          strcmp(msg->event, "incident.rejected") == 0)) {
        tr_buf_clear(&text);
        (void)tr_buf_printf(&text, "%s by %s", msg->decision->accept ? "Accepted" : "Rejected",
                            msg->decision->actor ? msg->decision->actor : "?");
        section(body, "Decision", tr_buf_cstr(&text));
        section(body, "Reason", msg->decision->reason);
    }
    actions = cJSON_AddArrayToObject(card, "actions");
    open_url(actions, "Pull request", msg->pr_url);
    open_url(actions, "Terraform run", msg->run_url);
    open_url(actions, "Incident", msg->incident_url);
    tr_buf_dispose(&text);
    return root;
}

static int teams_send(void *state, const tr_notify_message *msg, tr_notify_done_cb done,
                      void *userdata, tr_error *err)
{
    teams_sink *s = state;
    cJSON *card = build_card(msg);
    char *body = card ? cJSON_PrintUnformatted(card) : NULL;
    const char *headers[] = { "Content-Type: application/json", NULL };
    int rc;

    if (body == NULL) {
        cJSON_Delete(card);
        return tr_error_set(err, TR_ENOMEM, "teams: out of memory");
    }
    rc = tr_notify_post_json(&s->post, s->http, s->url, headers, body, s->timeout_ms,
                             TEAMS_RESPONSE_MAX, done, userdata, err);
    cJSON_free(body);
    cJSON_Delete(card);
    return rc;
}

static void teams_cancel(void *state)
{
    teams_sink *s = state;

    tr_notify_post_cancel(&s->post);
}

const tr_notifier_vtable tr_notifier_teams = {
    "teams", teams_init, teams_send, teams_cancel, teams_destroy,
};
