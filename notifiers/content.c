/*
 * content.c - loading an outbox delivery into what a notification says.
 *
 * The outbox payload written by the store names the incident; the incident
 * row, its analysis, PR and decision are read fresh at delivery time, so a
 * message delivered late (after a retry or a restart) shows the newest
 * analysis rather than whatever existed when the event was enqueued. When
 * the incident row is gone (or the message is about no incident) the
 * payload's own fields stand in.
 */
#include "content.h"
#include "alloc.h"
#include "api.h"
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The message with its owned parts; the public struct is the first member. */
typedef struct message_owned {
    tr_notify_message pub;
    tr_store_incident *incident;    /* from the store */
    tr_store_incident synth;        /* from the payload: strings owned here */
    tr_store_analysis *analysis;
    tr_store_decision *decision;
    tr_store_pr *pr;
    char *delivery_id, *sink, *event, *run_url, *incident_url, *explanation;
} message_owned;

static const char *const severity_names[] = { "info", "warning", "error", "critical" };

int tr_notify_severity_parse(const char *name)
{
    size_t i;

    if (name == NULL)
        return -1;
    for (i = 0; i < sizeof(severity_names) / sizeof(severity_names[0]); i++)
        if (strcasecmp(name, severity_names[i]) == 0)
            return (int)i;
    /* Models trained on other scales answer these; map them rather than lose the message. */
    if (strcasecmp(name, "low") == 0)
        return TR_CONFIG_SEVERITY_INFO;
    if (strcasecmp(name, "medium") == 0 || strcasecmp(name, "moderate") == 0)
        return TR_CONFIG_SEVERITY_WARNING;
    if (strcasecmp(name, "high") == 0)
        return TR_CONFIG_SEVERITY_ERROR;
    return -1;
}

const char *tr_notify_severity_name(int level)
{
    if (level < 0 || level > TR_CONFIG_SEVERITY_CRITICAL)
        return "unknown";
    return severity_names[level];
}

int tr_notify_class_severity(const char *source, const char *failure_class)
{
    static const struct {
        const char *cls;
        int level;
    } table[] = {
        { "NodeNotReady", TR_CONFIG_SEVERITY_CRITICAL },
        { "CrashLoopBackOff", TR_CONFIG_SEVERITY_ERROR },
        { "OOMKilled", TR_CONFIG_SEVERITY_ERROR },
        { "ImagePullBackOff", TR_CONFIG_SEVERITY_ERROR },
        { "CreateContainerConfigError", TR_CONFIG_SEVERITY_ERROR },
        { "ProgressDeadlineExceeded", TR_CONFIG_SEVERITY_ERROR },
        { "BackoffLimitExceeded", TR_CONFIG_SEVERITY_ERROR },
        { "DeadlineExceeded", TR_CONFIG_SEVERITY_ERROR },
        { "ArgoSyncFailed", TR_CONFIG_SEVERITY_ERROR },
        { "ArgoDegraded", TR_CONFIG_SEVERITY_ERROR },
        { "FluxNotReady", TR_CONFIG_SEVERITY_ERROR },
        { "FailedMount", TR_CONFIG_SEVERITY_ERROR },
        { "FailedScheduling", TR_CONFIG_SEVERITY_WARNING },
        { "Unhealthy", TR_CONFIG_SEVERITY_WARNING },
        { "ProvisioningFailed", TR_CONFIG_SEVERITY_WARNING },
        { "TerraformValidateFailed", TR_CONFIG_SEVERITY_WARNING },
    };
    size_t i;

    for (i = 0; failure_class && i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(failure_class, table[i].cls) == 0)
            return table[i].level;
    /* A failed plan or apply blocks a delivery pipeline: an error, like unknown classes. */
    (void)source;
    return TR_CONFIG_SEVERITY_ERROR;
}

int tr_notify_is_state_change(const char *event)
{
    static const char *const events[] = { "incident.opened",   "incident.reopened",
                                          "incident.resolved", "incident.accepted",
                                          "incident.rejected", "incident.explained" };
    size_t i;

    if (event == NULL)
        return 0;
    if (strncmp(event, "pr.", 3) == 0)
        return 1;
    for (i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        if (strcmp(event, events[i]) == 0)
            return 1;
    return 0;
}

const char *tr_notify_event_title(const char *event)
{
    static const struct {
        const char *event;
        const char *title;
    } table[] = {
        { "incident.opened", "New incident" },     { "incident.reopened", "Incident reopened" },
        { "incident.analyzed", "Analysis" },       { "incident.resolved", "Resolved" },
        { "incident.accepted", "Fix accepted" },   { "incident.rejected", "Fix rejected" },
        { "incident.failed", "Incident failed" },  { "pr.opened", "Fix PR opened" },
        { "pr.merged", "Fix PR merged" },          { "pr.closed", "Fix PR closed" },
        { "incident.explained", "Explanation" },
    };
    size_t i;

    for (i = 0; event && i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(event, table[i].event) == 0)
            return table[i].title;
    return "Update";
}

int tr_notify_object_text(tr_buf *out, const tr_store_incident *inc)
{
    const char *ns = inc->namespace ? inc->namespace : "";

    return tr_buf_printf(out, "%s%s%s/%s", ns, *ns ? "/" : "", inc->kind ? inc->kind : "object",
                         inc->name ? inc->name : "?");
}

int tr_notify_headline(tr_buf *out, const tr_notify_message *msg)
{
    const char *sev = tr_notify_severity_name(msg->severity);
    const char *cls = msg->incident->failure_class ? msg->incident->failure_class : "Incident";
    char upper[16];
    size_t i;
    int rc;

    for (i = 0; i < sizeof(upper) - 1 && sev[i]; i++)
        upper[i] = (char)(sev[i] >= 'a' && sev[i] <= 'z' ? sev[i] - 32 : sev[i]);
    upper[i] = '\0';
    rc = tr_buf_printf(out, "%s · %s · ", upper, cls);
    if (rc == TR_OK)
        rc = tr_notify_object_text(out, msg->incident);
    return rc;
}

static void add_string(cJSON *obj, const char *name, const char *value)
{
    if (value)
        cJSON_AddStringToObject(obj, name, value);
    else
        cJSON_AddNullToObject(obj, name);
}

static void add_time(cJSON *obj, const char *name, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char text[96];

    if (ms <= 0 || gmtime_r(&secs, &tm) == NULL) {
        cJSON_AddNullToObject(obj, name);
        return;
    }
    snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    cJSON_AddStringToObject(obj, name, text);
}

cJSON *tr_notify_incident_json(const tr_store_incident *inc)
{
    /* Receivers see an incident exactly as the API shows it. */
    return tr_api_incident_json(inc);
}

cJSON *tr_notify_string_array(const char *json_text)
{
    cJSON *arr = json_text ? cJSON_Parse(json_text) : NULL;

    if (cJSON_IsArray(arr))
        return arr;
    cJSON_Delete(arr);
    return cJSON_CreateArray();
}

cJSON *tr_notify_analysis_json(const tr_store_analysis *a)
{
    cJSON *obj = cJSON_CreateObject();

    if (obj == NULL)
        return NULL;
    cJSON_AddNumberToObject(obj, "id", (double)a->id);
    add_string(obj, "summary", a->summary);
    add_string(obj, "root_cause", a->root_cause);
    add_string(obj, "severity", a->severity);
    cJSON_AddNumberToObject(obj, "confidence", a->confidence);
    cJSON_AddItemToObject(obj, "evidence", tr_notify_string_array(a->evidence_json));
    cJSON_AddItemToObject(obj, "remediation", tr_notify_string_array(a->remediation_json));
    add_string(obj, "patch", a->patch);
    add_string(obj, "provider", a->provider);
    add_string(obj, "model", a->model);
    add_string(obj, "fallback_reason", a->fallback_reason);
    add_time(obj, "created", a->created_ms);
    return obj;
}

/* ------------------------------------------------------------ loading */

static char *json_dup(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsString(item) ? tr_strdup(item->valuestring) : NULL;
}

static void synth_clear(tr_store_incident *inc)
{
    tr_free((void *)inc->fingerprint);
    tr_free((void *)inc->source);
    tr_free((void *)inc->cluster);
    tr_free((void *)inc->namespace);
    tr_free((void *)inc->kind);
    tr_free((void *)inc->name);
    tr_free((void *)inc->failure_class);
    tr_free((void *)inc->title);
    tr_free((void *)inc->message);
    tr_free((void *)inc->error);
}

/* The incident as the payload described it (the row is gone or there is none). */
static void synth_from_payload(tr_store_incident *inc, const cJSON *payload, int64_t id)
{
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(payload, "state");

    memset(inc, 0, sizeof(*inc));
    inc->id = id;
    inc->fingerprint = json_dup(payload, "fingerprint");
    inc->source = json_dup(payload, "source");
    inc->cluster = json_dup(payload, "cluster");
    inc->namespace = json_dup(payload, "namespace");
    inc->kind = json_dup(payload, "kind");
    inc->name = json_dup(payload, "name");
    inc->failure_class = json_dup(payload, "failure_class");
    inc->title = json_dup(payload, "title");
    inc->message = json_dup(payload, "message");
    inc->error = json_dup(payload, "error");
    inc->state = cJSON_IsString(state) ? tr_store_state_parse(state->valuestring) : 0;
    inc->live = 1;
}

static int load_related(message_owned *m, tr_store *store, int64_t id, tr_error *err)
{
    int rc = tr_store_incident_get(store, id, &m->incident, err);

    if (rc != TR_OK)
        return rc;
    rc = tr_store_analysis_latest(store, id, &m->analysis, err);
    if (rc == TR_OK || rc == TR_ENOTFOUND)
        rc = tr_store_pr_latest(store, id, &m->pr, err);
    if (rc == TR_OK || rc == TR_ENOTFOUND)
        rc = tr_store_decision_latest(store, id, &m->decision, err);
    return rc == TR_ENOTFOUND ? TR_OK : rc;
}

static char *run_url_of(const char *facts_json)
{
    cJSON *facts = facts_json ? cJSON_Parse(facts_json) : NULL;
    char *url = json_dup(facts, "run_url");

    cJSON_Delete(facts);
    if (url && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        tr_free(url); /* only web links become buttons */
        url = NULL;
    }
    return url;
}

int tr_notify_message_load(tr_notify_message **out, tr_store *store,
                           const tr_store_delivery *d, tr_error *err)
{
    message_owned *m;
    cJSON *payload;
    int rc = TR_OK, level = -1;

    *out = NULL;
    payload = cJSON_Parse(d->payload_json ? d->payload_json : "");
    if (!cJSON_IsObject(payload)) {
        cJSON_Delete(payload);
        return tr_error_set(err, TR_EPARSE, "delivery %s: payload is not a JSON object",
                            d->delivery_id);
    }
    m = tr_calloc(1, sizeof(*m));
    if (m == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (d->incident_id > 0) {
        rc = load_related(m, store, d->incident_id, err);
        if (rc != TR_OK && rc != TR_ENOTFOUND)
            goto cleanup;
        rc = TR_OK;
    }
    if (m->incident == NULL)
        synth_from_payload(&m->synth, payload, d->incident_id);
    m->pub.incident = m->incident ? m->incident : &m->synth;
    m->pub.analysis = m->analysis;
    m->pub.decision = m->decision;
    m->pub.pr_url = m->pr ? m->pr->url : NULL;
    m->pub.incident_id = d->incident_id;
    m->pub.created_ms = d->created_ms;
    m->delivery_id = tr_strdup(d->delivery_id);
    m->sink = tr_strdup(d->sink);
    m->event = tr_strdup(d->event);
    m->run_url = run_url_of(m->pub.incident->facts_json);
    if (strcmp(d->event, "incident.explained") == 0) {
        m->explanation = json_dup(payload, "answer");
        m->pub.explanation = m->explanation;
    }
    if (m->delivery_id == NULL || m->sink == NULL || m->event == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    m->pub.delivery_id = m->delivery_id;
    m->pub.sink = m->sink;
    m->pub.event = m->event;
    m->pub.run_url = m->run_url;
    if (m->analysis)
        level = tr_notify_severity_parse(m->analysis->severity);
    if (level < 0)
        level = tr_notify_class_severity(m->pub.incident->source, m->pub.incident->failure_class);
    m->pub.severity = level;
    *out = &m->pub;
    m = NULL;
cleanup:
    cJSON_Delete(payload);
    tr_notify_message_free(m ? &m->pub : NULL);
    return rc;
}

void tr_notify_message_free(tr_notify_message *msg)
{
    message_owned *m = (message_owned *)msg;

    if (m == NULL)
        return;
    tr_store_incident_free(m->incident);
    synth_clear(&m->synth);
    tr_store_analysis_free(m->analysis);
    tr_store_decision_free(m->decision);
    tr_store_pr_free(m->pr);
    tr_free(m->delivery_id);
    tr_free(m->sink);
    tr_free(m->event);
    tr_free(m->run_url);
    tr_free(m->incident_url);
    tr_free(m->explanation);
    tr_free(m);
}

int tr_notify_message_set_link(tr_notify_message *msg, const char *public_url)
{
    message_owned *m = (message_owned *)msg;
    tr_buf url = TR_BUF_INIT(4096);
    size_t len = public_url ? strlen(public_url) : 0;

    if (len == 0 || msg->incident_id <= 0 ||
        (strncmp(public_url, "https://", 8) != 0 && strncmp(public_url, "http://", 7) != 0))
        return TR_OK;
    while (len > 0 && public_url[len - 1] == '/')
        len--;
    if (tr_buf_put(&url, public_url, len) != TR_OK ||
        tr_buf_printf(&url, "/v1/incidents/%lld", (long long)msg->incident_id) != TR_OK) {
        tr_buf_dispose(&url);
        return TR_ENOMEM;
    }
    tr_free(m->incident_url);
    m->incident_url = tr_buf_detach(&url);
    m->pub.incident_url = m->incident_url;
    return TR_OK;
}

/* ------------------------------------------------------------ bounded text */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not valid. */
static size_t utf8_seq(const unsigned char *s)
{
    size_t n, i;
    unsigned cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        cp = s[0] & 0x1fu;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        cp = s[0] & 0x0fu;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0; /* also stops at the terminating NUL */
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

int tr_notify_put_limited(tr_buf *out, const char *text, size_t limit, size_t *used,
                          int mrkdwn)
{
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    const char *piece;
    size_t n, piece_len, units;
    int rc;

    while (*s) {
        n = utf8_seq(s);
        piece = (const char *)s;
        piece_len = n;
        units = n == 4 ? 2 : 1;
        if (n == 0) {
            piece = "?";
            piece_len = 1;
            n = 1;
        } else if (mrkdwn && *s == '&') {
            piece = "&amp;";
            piece_len = units = 5;
        } else if (mrkdwn && *s == '<') {
            piece = "&lt;";
            piece_len = units = 4;
        } else if (mrkdwn && *s == '>') {
            piece = "&gt;";
            piece_len = units = 4;
        }
        if (*used + units > limit)
            return 1;
        rc = tr_buf_put(out, piece, piece_len);
        if (rc != TR_OK)
            return rc;
        *used += units;
        s += n;
    }
    return 0;
}

size_t tr_notify_text_units(const char *text)
{
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    size_t units = 0, n;

    while (*s) {
        n = utf8_seq(s);
        units += n == 4 ? 2 : 1;
        s += n ? n : 1;
    }
    return units;
}
