/*
 * content.h - what a notification says, independent of where it goes: one
 * outbox delivery loaded with the incident it is about, the incident's
 * latest analysis (when there is one yet), its pull request and its latest
 * decision, plus the effective severity used by routing and headers.
 *
 * Every sink formats a tr_notify_message its own way (Block Kit, Adaptive
 * Card, JSON, text); the helpers here keep the words the same across them.
 * A message owns everything it points to and is freed with
 * tr_notify_message_free.
 */
#ifndef TR_NOTIFY_CONTENT_H
#define TR_NOTIFY_CONTENT_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "error.h"
#include "store.h"

typedef struct tr_notify_message {
    const char *delivery_id;            /* stable per (message, sink): the idempotency key */
    const char *sink;
    const char *event;                  /* "incident.opened", "incident.analyzed", "pr.opened" */
    int64_t incident_id;                /* 0 for a message about no incident */
    const tr_store_incident *incident;  /* never NULL: from the payload when the row is gone */
    const tr_store_analysis *analysis;  /* NULL until the incident was analyzed */
    const tr_store_decision *decision;  /* the latest decision, or NULL */
    const char *pr_url;                 /* the incident's latest PR, or NULL */
    const char *run_url;                /* a Terraform run's URL from the facts, or NULL */
    const char *incident_url;           /* <public_url>/v1/incidents/<id>, or NULL */
    const char *explanation;            /* incident.explained: the answer, else NULL */
    int severity;                       /* TR_CONFIG_SEVERITY_*: analysis, else per class */
    int64_t created_ms;                 /* when the message was enqueued */
} tr_notify_message;

/*
 * Load what delivery d announces from the store. A payload that is not a
 * JSON object is TR_EPARSE (the caller drops the message). On success *out
 * is owned by the caller (tr_notify_message_free); d may be freed first.
 */
int tr_notify_message_load(tr_notify_message **out, tr_store *store,
                           const tr_store_delivery *d, tr_error *err);
void tr_notify_message_free(tr_notify_message *msg);

/*
 * Set msg->incident_url to <public_url>/v1/incidents/<id> ([daemon]
 * public_url; trailing slashes dropped). Nothing is set for an empty or
 * non-http(s) public_url or a message about no incident. TR_ENOMEM only.
 */
int tr_notify_message_set_link(tr_notify_message *msg, const char *public_url);

/* "info" | "warning" | "error" | "critical" (also "low", "medium", "high") → level; -1. */
int tr_notify_severity_parse(const char *name);
/* The name of a TR_CONFIG_SEVERITY_* level; "unknown" when out of range. */
const char *tr_notify_severity_name(int level);
/* The severity of a failure class when no analysis says otherwise. */
int tr_notify_class_severity(const char *source, const char *failure_class);

/*
 * 1 for events exempt from the per-incident rate limit: those that announce
 * a state change, and incident.explained (a person asked for it).
 */
int tr_notify_is_state_change(const char *event);
/* A short human title for an event ("New incident", "Analysis", "Resolved"). */
const char *tr_notify_event_title(const char *event);

/* Append "namespace/Kind/name" (or "Kind/name") of the incident's object. */
int tr_notify_object_text(tr_buf *out, const tr_store_incident *inc);
/* Append "CRITICAL · CrashLoopBackOff · prod/Deployment/api". */
int tr_notify_headline(tr_buf *out, const tr_notify_message *msg);

/* JSON forms for webhooks and the API; caller owns the result (cJSON_Delete); NULL = no memory. */
cJSON *tr_notify_incident_json(const tr_store_incident *inc);
cJSON *tr_notify_analysis_json(const tr_store_analysis *analysis);

/*
 * Append text to out so that *used (a running count of characters, as
 * Slack and Teams count them: UTF-16 units) stays within limit. Invalid
 * UTF-8 becomes '?'. With mrkdwn set, & < > are written as Slack's
 * entities (&amp; &lt; &gt;), which count as what they are on the wire.
 * Returns 1 when text was cut short, 0 when all of it went in, or a TR_E*.
 */
int tr_notify_put_limited(tr_buf *out, const char *text, size_t limit, size_t *used,
                          int mrkdwn);
/* Characters (UTF-16 units) of a NUL-terminated UTF-8 text. */
size_t tr_notify_text_units(const char *text);

/*
 * The strings of a JSON array text (evidence, remediation), parsed: caller
 * frees the array with cJSON_Delete. Non-arrays give an empty array;
 * non-string items are skipped by the callers. NULL only without memory.
 */
cJSON *tr_notify_string_array(const char *json_text);

#endif
