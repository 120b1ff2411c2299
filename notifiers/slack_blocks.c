/*
 * slack_blocks.c - Block Kit for one notification, within Slack's limits.
 *
 * The block budget is fixed up front so that no content can exceed
 * TR_SLACK_MAX_BLOCKS: header, context, summary, root cause, at most
 * LIST_SECTIONS_MAX sections each for evidence and remediation, patch,
 * decision, links, actions: 1+1+1+1+8+8+1+1+1+1 = 24. Lists are packed many
 * items per section (60 evidence quotes take a few blocks, not 60), and
 * what does not fit ends in "...and N more".
 */
#include "slack_blocks.h"
#include "alloc.h"
#include "buf.h"
#include "config.h"

#include <stdio.h>
#include <string.h>

#define LIST_SECTIONS_MAX 8
#define LIST_ITEM_MAX 1500      /* one quote or step, so one item cannot fill the message */
#define NOTE_RESERVE 120        /* room kept in a text for the truncation note */
#define PATCH_SHOWN_MAX 2500

typedef struct builder {
    cJSON *blocks;
    int count;
    int64_t incident_id;
    int oom;
} builder;

static cJSON *text_object(const char *type, const char *text)
{
    cJSON *obj = cJSON_CreateObject();

    if (obj == NULL)
        return NULL;
    cJSON_AddStringToObject(obj, "type", type);
    cJSON_AddStringToObject(obj, "text", text);
    if (strcmp(type, "plain_text") == 0)
        cJSON_AddBoolToObject(obj, "emoji", 1);
    return obj;
}

static void add_block(builder *b, cJSON *block)
{
    if (block == NULL) {
        b->oom = 1;
        return;
    }
    if (b->count >= TR_SLACK_MAX_BLOCKS) { /* unreachable by the budget; kept as a guard */
        cJSON_Delete(block);
        return;
    }
    cJSON_AddItemToArray(b->blocks, block);
    b->count++;
}

static void add_section(builder *b, const char *mrkdwn)
{
    cJSON *block = cJSON_CreateObject();

    if (block) {
        cJSON_AddStringToObject(block, "type", "section");
        cJSON_AddItemToObject(block, "text", text_object("mrkdwn", mrkdwn));
    }
    add_block(b, block);
}

static void put_note(tr_buf *text, int64_t id)
{
    (void)tr_buf_printf(text, "\n_… cut to fit Slack: `triaged show %lld` has all of it_",
                        (long long)id);
}

/* "*heading*\n" + body (escaped), cut with a note to TR_SLACK_TEXT_MAX. */
static void heading_section(builder *b, const char *heading, const char *body, int code)
{
    tr_buf text = TR_BUF_INIT(4 * TR_SLACK_TEXT_MAX);
    size_t used = 0;
    int cut;

    if (body == NULL || *body == '\0')
        return;
    (void)tr_notify_put_limited(&text, heading, TR_SLACK_TEXT_MAX, &used, 0);
    (void)tr_notify_put_limited(&text, code ? "\n```" : "\n", TR_SLACK_TEXT_MAX, &used, 0);
    cut = tr_notify_put_limited(&text, body, TR_SLACK_TEXT_MAX - NOTE_RESERVE, &used, 1);
    if (code)
        (void)tr_buf_puts(&text, "```");
    if (cut == 1)
        put_note(&text, b->incident_id);
    if (cut < 0)
        b->oom = 1;
    else
        add_section(b, tr_buf_cstr(&text));
    tr_buf_dispose(&text);
}

/* The items of a JSON array packed into sections; the overflow is counted in a note. */
static void list_sections(builder *b, const char *heading, const char *json, int numbered)
{
    cJSON *arr = tr_notify_string_array(json);
    const cJSON *item;
    tr_buf text = TR_BUF_INIT(4 * TR_SLACK_TEXT_MAX);
    tr_buf line = TR_BUF_INIT(4 * TR_SLACK_TEXT_MAX);
    size_t used = 0, line_used, total = 0, shown = 0;
    int sections = 0;

    cJSON_ArrayForEach(item, arr)
        total += cJSON_IsString(item) && *item->valuestring;
    if (total > 0)
        (void)tr_notify_put_limited(&text, heading, TR_SLACK_TEXT_MAX, &used, 0);
    cJSON_ArrayForEach(item, arr) {
        if (!cJSON_IsString(item) || *item->valuestring == '\0')
            continue;
        tr_buf_clear(&line);
        line_used = 0;
        if (numbered)
            (void)tr_buf_printf(&line, "\n%zu. ", shown + 1);
        else
            (void)tr_buf_puts(&line, "\n• ");
        line_used = line.len;
        if (tr_notify_put_limited(&line, item->valuestring, LIST_ITEM_MAX, &line_used, 1) == 1) {
            (void)tr_buf_puts(&line, " …");
            line_used += 2;
        }
        if (used + line_used > TR_SLACK_TEXT_MAX - NOTE_RESERVE) {
            if (sections + 1 >= LIST_SECTIONS_MAX)
                break; /* the last section keeps its room for the note below */
            add_section(b, tr_buf_cstr(&text));
            sections++;
            tr_buf_clear(&text);
            used = 0;
            line_used--; /* the new section does not start with a newline */
            (void)tr_buf_put(&text, line.ptr + 1, line.len - 1);
        } else {
            (void)tr_buf_put(&text, line.ptr, line.len);
        }
        used += line_used;
        shown++;
    }
    if (shown < total)
        (void)tr_buf_printf(&text, "\n_…and %zu more: `triaged show %lld`_", total - shown,
                            (long long)b->incident_id);
    if (text.len > 0)
        add_section(b, tr_buf_cstr(&text));
    tr_buf_dispose(&line);
    tr_buf_dispose(&text);
    cJSON_Delete(arr);
}

/* A link in mrkdwn, only for URLs that cannot break out of <url|label>. */
static void put_link(tr_buf *text, const char *url, const char *label)
{
    if (url == NULL || strpbrk(url, "<>| \n\t") != NULL || strlen(url) > 1000)
        return;
    (void)tr_buf_printf(text, "%s<%s|%s>", text->len ? "  ·  " : "", url, label);
}

static void header_block(builder *b, const tr_notify_message *msg)
{
    tr_buf raw = TR_BUF_INIT(8192), text = TR_BUF_INIT(1024);
    const char *ev = msg->event;
    cJSON *block = cJSON_CreateObject();
    size_t used = 0;

    if (strcmp(ev, "incident.opened") != 0 && strcmp(ev, "incident.analyzed") != 0)
        (void)tr_buf_printf(&raw, "%s · ", tr_notify_event_title(ev));
    (void)tr_notify_headline(&raw, msg);
    if (tr_notify_put_limited(&text, tr_buf_cstr(&raw), TR_SLACK_HEADER_MAX - 1, &used, 0) == 1)
        (void)tr_buf_puts(&text, "…");
    if (block) {
        cJSON_AddStringToObject(block, "type", "header");
        cJSON_AddItemToObject(block, "text", text_object("plain_text", tr_buf_cstr(&text)));
    }
    add_block(b, block);
    tr_buf_dispose(&raw);
    tr_buf_dispose(&text);
}

static void context_block(builder *b, const tr_notify_message *msg)
{
    const tr_store_incident *inc = msg->incident;
    const char *state = tr_store_state_name(inc->state);
    tr_buf raw = TR_BUF_INIT(8192), text = TR_BUF_INIT(4 * TR_SLACK_TEXT_MAX);
    cJSON *block = cJSON_CreateObject(), *elements;
    size_t used = 0;

    (void)tr_buf_printf(&raw, "%s · incident #%lld · state %s · %s",
                        tr_notify_event_title(msg->event),
                        (long long)msg->incident_id, state ? state : "?",
                        inc->source ? inc->source : "?");
    if (inc->cluster && *inc->cluster)
        (void)tr_buf_printf(&raw, " · cluster %s", inc->cluster);
    if (msg->analysis)
        (void)tr_buf_printf(&raw, " · confidence %.0f%% (%s)", msg->analysis->confidence * 100,
                            msg->analysis->provider ? msg->analysis->provider : "?");
    if (inc->observation_count > 1)
        (void)tr_buf_printf(&raw, " · seen %lld times", (long long)inc->observation_count);
    (void)tr_notify_put_limited(&text, tr_buf_cstr(&raw), TR_SLACK_TEXT_MAX, &used, 1);
    if (block) {
        cJSON_AddStringToObject(block, "type", "context");
        elements = cJSON_AddArrayToObject(block, "elements");
        cJSON_AddItemToArray(elements, text_object("mrkdwn", tr_buf_cstr(&text)));
    }
    add_block(b, block);
    tr_buf_dispose(&raw);
    tr_buf_dispose(&text);
}

static cJSON *button(const char *label, const char *action_id, const char *value,
                     const char *style)
{
    cJSON *btn = cJSON_CreateObject();

    if (btn == NULL)
        return NULL;
    cJSON_AddStringToObject(btn, "type", "button");
    cJSON_AddItemToObject(btn, "text", text_object("plain_text", label));
    cJSON_AddStringToObject(btn, "action_id", action_id);
    cJSON_AddStringToObject(btn, "value", value);
    if (style)
        cJSON_AddStringToObject(btn, "style", style);
    return btn;
}

static void actions_block(builder *b, const tr_notify_message *msg)
{
    const tr_store_analysis *a = msg->analysis;
    int state = msg->incident->state;
    int patch = a && a->patch && *a->patch &&
                (state == TR_INCIDENT_ANALYZED || state == TR_INCIDENT_NOTIFIED ||
                 state == TR_INCIDENT_PATCH_PROPOSED);
    cJSON *block = cJSON_CreateObject(), *elements;
    char value[32], block_id[48];

    snprintf(value, sizeof(value), "%lld", (long long)msg->incident_id);
    snprintf(block_id, sizeof(block_id), "triaged-%lld", (long long)msg->incident_id);
    if (block) {
        cJSON_AddStringToObject(block, "type", "actions");
        cJSON_AddStringToObject(block, "block_id", block_id);
        elements = cJSON_AddArrayToObject(block, "elements");
        if (patch) {
            cJSON_AddItemToArray(elements,
                                 button("Open fix PR", TR_SLACK_ACTION_ACCEPT, value, "primary"));
            cJSON_AddItemToArray(elements,
                                 button("Reject", TR_SLACK_ACTION_REJECT, value, "danger"));
        }
        cJSON_AddItemToArray(elements,
                             button("Explain more", TR_SLACK_ACTION_EXPLAIN, value, NULL));
    }
    add_block(b, block);
}

static void decision_section(builder *b, const tr_notify_message *msg)
{
    const tr_store_decision *d = msg->decision;
    tr_buf raw = TR_BUF_INIT(8192);

    if (d == NULL || (strcmp(msg->event, "incident.accepted") != 0 &&
                      strcmp(msg->event, "incident.rejected") != 0))
        return;
    (void)tr_buf_printf(&raw, "%s by %s%s%s", d->accept ? "Accepted" : "Rejected",
                        d->actor ? d->actor : "?", d->reason && *d->reason ? ": " : "",
                        d->reason ? d->reason : "");
    heading_section(b, "*Decision*", tr_buf_cstr(&raw), 0);
    tr_buf_dispose(&raw);
}

static void fallback_text(cJSON *root, const tr_notify_message *msg)
{
    tr_buf raw = TR_BUF_INIT(16384), text = TR_BUF_INIT(4 * TR_SLACK_FALLBACK_MAX);
    const char *summary = msg->analysis ? msg->analysis->summary : msg->incident->title;
    size_t used = 0;

    (void)tr_buf_printf(&raw, "%s: ", tr_notify_event_title(msg->event));
    (void)tr_notify_headline(&raw, msg);
    if (summary && *summary)
        (void)tr_buf_printf(&raw, " — %s", summary);
    if (tr_notify_put_limited(&text, tr_buf_cstr(&raw), TR_SLACK_FALLBACK_MAX - 1, &used, 1) == 1)
        (void)tr_buf_puts(&text, "…");
    cJSON_AddStringToObject(root, "text", tr_buf_cstr(&text));
    tr_buf_dispose(&raw);
    tr_buf_dispose(&text);
}

int tr_slack_blocks_build(cJSON **out, const tr_notify_message *msg, int buttons,
                          tr_error *err)
{
    const tr_store_analysis *a = msg->analysis;
    const tr_store_incident *inc = msg->incident;
    cJSON *root = cJSON_CreateObject();
    builder b = { 0 };
    tr_buf links = TR_BUF_INIT(8192);
    tr_buf patch = TR_BUF_INIT(4 * PATCH_SHOWN_MAX + 64);
    size_t used = 0;

    *out = NULL;
    b.incident_id = msg->incident_id;
    b.blocks = root ? cJSON_AddArrayToObject(root, "blocks") : NULL;
    if (b.blocks == NULL) {
        cJSON_Delete(root);
        return tr_error_set(err, TR_ENOMEM, "slack: out of memory building blocks");
    }
    fallback_text(root, msg);
    header_block(&b, msg);
    context_block(&b, msg);
    if (msg->explanation) {
        /* The analysis is already in the thread: this message is the deeper answer. */
        heading_section(&b, "*Explanation*", msg->explanation, 0);
    } else if (a) {
        heading_section(&b, "*Summary*", a->summary, 0);
        heading_section(&b, "*Root cause*", a->root_cause, 0);
        list_sections(&b, "*Key evidence*", a->evidence_json, 0);
        list_sections(&b, "*Remediation*", a->remediation_json, 1);
        if (a->patch && *a->patch) {
            /* Escaping happens in heading_section; cut here so the fence stays closed. */
            if (tr_notify_put_limited(&patch, a->patch, PATCH_SHOWN_MAX, &used, 0) == 1)
                (void)tr_buf_puts(&patch, "\n…");
            heading_section(&b, "*Proposed patch*", tr_buf_cstr(&patch), 1);
        }
    } else {
        heading_section(&b, "*What happened*", inc->message ? inc->message : inc->title, 0);
        if (strcmp(msg->event, "incident.opened") == 0 ||
            strcmp(msg->event, "incident.reopened") == 0)
            heading_section(&b, "*Analysis*", "in progress: it follows in a later message", 0);
    }
    decision_section(&b, msg);
    put_link(&links, msg->pr_url, "Pull request");
    put_link(&links, msg->run_url, "Terraform run");
    put_link(&links, msg->incident_url, "Incident");
    if (links.len)
        add_section(&b, tr_buf_cstr(&links));
    if (buttons && msg->incident_id > 0)
        actions_block(&b, msg);
    tr_buf_dispose(&links);
    tr_buf_dispose(&patch);
    if (b.oom) {
        cJSON_Delete(root);
        return tr_error_set(err, TR_ENOMEM, "slack: out of memory building blocks");
    }
    *out = root;
    return TR_OK;
}
