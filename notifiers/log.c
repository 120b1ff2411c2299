/*
 * log.c - the `log` sink: one readable block per message on stdout (the
 * default config uses it, so a fresh install shows what it would send).
 *
 *   == triaged: New incident #12 ==========================================
 *   ERROR · CrashLoopBackOff · prod/Deployment/api
 *   state: open   source: kubernetes   delivery: 3f2a...
 *   summary: ...
 *
 * The block is built whole and written with one fwrite, so blocks never
 * interleave with other output lines.
 */
#include "notifier.h"
#include "alloc.h"
#include "buf.h"

#include <string.h>

#define LOG_BLOCK_MAX ((size_t)256 * 1024)
#define LOG_FIELD_MAX 2000

typedef struct log_sink {
    FILE *out;
} log_sink;

static int log_init(void **state, const tr_notifier_env *env, tr_error *err)
{
    log_sink *s = tr_calloc(1, sizeof(*s));

    if (s == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    s->out = env->out ? env->out : stdout;
    *state = s;
    return TR_OK;
}

/* "<prefix>text" with long texts cut visibly; lines after the first are indented. */
static void put_text(tr_buf *b, const char *prefix, const char *text)
{
    size_t len, i;

    len = strlen(text);
    (void)tr_buf_puts(b, prefix);
    for (i = 0; i < len && i < LOG_FIELD_MAX; i++) {
        (void)tr_buf_putc(b, text[i]);
        if (text[i] == '\n')
            (void)tr_buf_puts(b, "    ");
    }
    if (len > LOG_FIELD_MAX)
        (void)tr_buf_printf(b, " ... (%zu more bytes)", len - LOG_FIELD_MAX);
    (void)tr_buf_putc(b, '\n');
}

/* "  label: text" */
static void put_field(tr_buf *b, const char *label, const char *text)
{
    tr_buf prefix = TR_BUF_INIT(256);

    if (text == NULL || *text == '\0')
        return;
    (void)tr_buf_printf(&prefix, "  %s: ", label);
    put_text(b, tr_buf_cstr(&prefix), text);
    tr_buf_dispose(&prefix);
}

static void put_list(tr_buf *b, const char *label, const char *json_text)
{
    cJSON *arr = tr_notify_string_array(json_text);
    const cJSON *item;
    int n = 0;

    cJSON_ArrayForEach(item, arr) {
        if (!cJSON_IsString(item))
            continue;
        if (n++ == 0)
            (void)tr_buf_printf(b, "  %s:\n", label);
        put_text(b, "    - ", item->valuestring);
    }
    cJSON_Delete(arr);
}

static int log_send(void *state, const tr_notify_message *msg, tr_notify_done_cb done,
                    void *userdata, tr_error *err)
{
    log_sink *s = state;
    const tr_store_incident *inc = msg->incident;
    const tr_store_analysis *a = msg->analysis;
    tr_buf b = TR_BUF_INIT(LOG_BLOCK_MAX);
    tr_notify_result result = { 0 };
    const char *state_name = tr_store_state_name(inc->state);

    (void)tr_buf_printf(&b, "== triaged: %s #%lld (%s) ==\n", tr_notify_event_title(msg->event),
                        (long long)msg->incident_id, msg->event);
    (void)tr_buf_puts(&b, "  ");
    (void)tr_notify_headline(&b, msg);
    (void)tr_buf_printf(&b, "\n  state: %s   source: %s   delivery: %s\n",
                        state_name ? state_name : "?", inc->source ? inc->source : "?",
                        msg->delivery_id);
    put_field(&b, "title", inc->title);
    put_field(&b, "message", inc->message);
    put_field(&b, "explanation", msg->explanation);
    if (a && msg->explanation == NULL) {
        put_field(&b, "summary", a->summary);
        put_field(&b, "root cause", a->root_cause);
        put_list(&b, "evidence", a->evidence_json);
        put_list(&b, "remediation", a->remediation_json);
        if (a->patch && *a->patch)
            (void)tr_buf_printf(&b, "  patch: %zu bytes (triaged show %lld)\n", strlen(a->patch),
                                (long long)msg->incident_id);
    }
    if (msg->decision && (strcmp(msg->event, "incident.accepted") == 0 ||
                          strcmp(msg->event, "incident.rejected") == 0)) {
        put_field(&b, "by", msg->decision->actor);
        put_field(&b, "reason", msg->decision->reason);
    }
    put_field(&b, "pull request", msg->pr_url);
    put_field(&b, "run", msg->run_url);
    put_field(&b, "link", msg->incident_url);
    (void)tr_buf_putc(&b, '\n');
    result.error = "";
    if (fwrite(b.ptr ? b.ptr : "", 1, b.len, s->out) != b.len || fflush(s->out) != 0) {
        result.outcome = TR_NOTIFY_RETRY;
        result.error = "cannot write to the log sink's output";
    }
    tr_buf_dispose(&b);
    (void)err;
    done(&result, userdata);
    return TR_OK;
}

static void log_cancel(void *state)
{
    (void)state; /* log sends finish inside send */
}

static void log_destroy(void *state)
{
    tr_free(state);
}

const tr_notifier_vtable tr_notifier_log = {
    "log", log_init, log_send, log_cancel, log_destroy,
};
