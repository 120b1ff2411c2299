/*
 * dispatch.c - outbox rows to sinks.
 *
 * Why one message at a time per sink: Slack and Teams rate-limit per
 * webhook (about one message a second), a thread must exist before its
 * replies, and a 429 must hold back the messages behind it. So each sink is
 * a tiny state machine: idle → (due row, routed) → in flight → marked →
 * idle, driven by one uv_timer shared by all sinks. A done callback never
 * calls the next send directly: it re-arms the timer at 0, so a sink whose
 * send completes inside send() (the log sink) cannot recurse.
 *
 * Rate-limit state lives in the store's kv table ("notify/<sink>/rate/<id>"
 * = "<last sent ms> <analysis sent 0|1>") so a restart does not flood a
 * channel; the key is dropped when the incident resolves, which bounds the
 * table by the number of live incidents.
 */
#include "dispatch.h"
#include "alloc.h"
#include "content.h"
#include "log.h"
#include "notifier.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Skipped (filtered) rows handled per sink per tick, so one tick stays short. */
#define SKIPS_PER_TICK 64
#define KEY_MAX 600

typedef struct sink {
    tr_dispatch *d;
    const tr_config_notify *cfg;
    const tr_notifier_vtable *vt;
    void *state;
    int busy;
    int64_t paused_until_ms;
    /* the delivery in flight */
    int64_t delivery;
    int64_t incident_id;
    int64_t attempts; /* failed attempts before this one */
    char event[128];
} sink;

struct tr_dispatch {
    uv_loop_t *loop;
    const char *public_url; /* [daemon] public_url: links back to the API; "" = none */
    tr_store *store;
    uv_timer_t timer;
    tr_dispatch_options opt;
    sink *sinks;
    size_t sink_count;
    tr_metric_family *deliveries;
    tr_metric_family *dead_letters;
    int closing;
    tr_dispatch_closed_cb on_closed;
    void *closed_userdata;
};

static const struct {
    tr_config_notify_kind kind;
    const tr_notifier_vtable *vt;
} registry[] = {
    { TR_CONFIG_NOTIFY_SLACK, &tr_notifier_slack },
    { TR_CONFIG_NOTIFY_TEAMS, &tr_notifier_teams },
    { TR_CONFIG_NOTIFY_WEBHOOK, &tr_notifier_webhook },
    { TR_CONFIG_NOTIFY_LOG, &tr_notifier_log },
};

static void on_tick(uv_timer_t *timer);

static int64_t now_ms(const tr_dispatch *d)
{
    return d->opt.now_ms ? d->opt.now_ms(d->opt.clock_userdata) : tr_notify_now_ms();
}

static void count(sink *s, const char *outcome)
{
    (void)tr_metric_inc(s->d->deliveries, 1, s->cfg->name, outcome);
}

static void wake(tr_dispatch *d)
{
    if (!d->closing)
        (void)uv_timer_start(&d->timer, on_tick, 0, d->opt.poll_interval_ms);
}

void tr_dispatch_notify(tr_dispatch *d)
{
    if (d)
        wake(d);
}

int tr_dispatch_in_flight(const tr_dispatch *d)
{
    size_t i;
    int n = 0;

    for (i = 0; d && i < d->sink_count; i++)
        n += d->sinks[i].busy;
    return n;
}

/* ------------------------------------------------------------ routing */

static int source_bit(const char *source)
{
    if (source && strcmp(source, "kubernetes") == 0)
        return TR_CONFIG_SOURCE_KUBERNETES;
    if (source && strcmp(source, "terraform") == 0)
        return TR_CONFIG_SOURCE_TERRAFORM;
    return 0;
}

/* NULL when the sink takes msg, else why not (for the debug log). */
static const char *filtered(const sink *s, const tr_notify_message *msg)
{
    const tr_config_notify *cfg = s->cfg;
    const char *ns = msg->incident->namespace ? msg->incident->namespace : "";
    unsigned bit = (unsigned)source_bit(msg->incident->source);
    size_t i;

    if (bit && (cfg->sources & bit) == 0)
        return "source";
    if (msg->severity < (int)cfg->min_severity)
        return "severity";
    if (cfg->namespaces.count == 0)
        return NULL;
    for (i = 0; i < cfg->namespaces.count; i++)
        if (strcmp(cfg->namespaces.items[i], ns) == 0)
            return NULL;
    return "namespace";
}

static void rate_key(char *out, size_t size, const sink *s, int64_t incident_id)
{
    snprintf(out, size, "notify/%s/rate/%" PRId64, s->cfg->name, incident_id);
}

/* 1 when the per-incident rate limit holds msg back. */
static int rate_limited(sink *s, const tr_notify_message *msg, int64_t now)
{
    char key[KEY_MAX], *value = NULL;
    long long last = 0;
    int analysis_sent = 0, limited = 0;
    tr_error err = { 0 };

    if (s->cfg->rate_limit_ms == 0 || msg->incident_id <= 0 ||
        tr_notify_is_state_change(msg->event))
        return 0;
    rate_key(key, sizeof(key), s, msg->incident_id);
    if (tr_store_kv_get(s->d->store, key, &value, &err) != TR_OK)
        return 0;
    if (sscanf(value, "%lld %d", &last, &analysis_sent) < 1)
        last = 0;
    tr_free(value);
    if (strcmp(msg->event, "incident.analyzed") == 0 && !analysis_sent)
        return 0; /* the first analysis is what people wait for */
    limited = now - (int64_t)last < (int64_t)s->cfg->rate_limit_ms;
    return limited;
}

/* After a delivery: remember when, or forget the incident once it resolved. */
static void rate_record(sink *s, int64_t incident_id, const char *event, int64_t now)
{
    char key[KEY_MAX], *old = NULL, value[64];
    long long last = 0;
    int analysis_sent = 0;
    tr_error err = { 0 };

    if (incident_id <= 0)
        return;
    rate_key(key, sizeof(key), s, incident_id);
    if (strcmp(event, "incident.resolved") == 0) {
        (void)tr_store_kv_delete(s->d->store, key, &err);
        return;
    }
    if (tr_store_kv_get(s->d->store, key, &old, &err) == TR_OK)
        (void)sscanf(old, "%lld %d", &last, &analysis_sent);
    tr_free(old);
    if (strcmp(event, "incident.opened") == 0 || strcmp(event, "incident.reopened") == 0)
        analysis_sent = 0;
    if (strcmp(event, "incident.analyzed") == 0)
        analysis_sent = 1;
    snprintf(value, sizeof(value), "%" PRId64 " %d", now, analysis_sent);
    if (tr_store_kv_put(s->d->store, key, value, now, &err) != TR_OK)
        tr_log_warn("notify", "%s: rate-limit state not kept: %s", s->cfg->name, err.message);
}

/* ------------------------------------------------------------ outcomes */

static void refresh_dead_gauge(tr_dispatch *d)
{
    tr_store_outbox_stats *stats = NULL;
    tr_error err = { 0 };
    size_t i;

    if (d->dead_letters == NULL || tr_store_outbox_stats_get(d->store, &stats, &err) != TR_OK)
        return;
    for (i = 0; i < stats->count; i++)
        (void)tr_metric_set(d->dead_letters, (double)stats->items[i].dead, stats->items[i].sink);
    tr_store_outbox_stats_free(stats);
}

static int64_t backoff_ms(const tr_dispatch *d, int64_t attempts)
{
    uint64_t delay = d->opt.backoff_base_ms;
    int64_t i;

    for (i = 0; i < attempts && delay < d->opt.backoff_max_ms; i++)
        delay *= 2;
    if (delay > d->opt.backoff_max_ms)
        delay = d->opt.backoff_max_ms;
    /* ±20% so that sinks failing together do not retry together. */
    return (int64_t)(delay * 4 / 5 + (uint64_t)rand() % (delay * 2 / 5 + 1));
}

static void mark_failed(sink *s, int64_t delivery, int64_t attempts, const char *why,
                        int64_t retry_after_ms, int drop)
{
    tr_dispatch *d = s->d;
    int64_t now = now_ms(d), wait;
    int dead = 0;
    tr_error err = { 0 };

    wait = retry_after_ms > 0 ? retry_after_ms : backoff_ms(d, attempts);
    if (wait > (int64_t)d->opt.backoff_max_ms)
        wait = (int64_t)d->opt.backoff_max_ms;
    if (tr_store_outbox_failed(d->store, delivery, why, now + wait,
                               drop ? 0 : s->cfg->max_attempts, now, &dead, &err) != TR_OK) {
        tr_log_error("notify", "%s: cannot record a failed delivery: %s", s->cfg->name,
                     err.message);
        return;
    }
    if (retry_after_ms > 0)
        s->paused_until_ms = now + wait;
    if (dead) {
        count(s, drop ? "dropped" : "dead");
        tr_log_warn("notify", "%s: delivery dead-lettered after %" PRId64 " attempt(s): %s",
                    s->cfg->name, attempts + 1, why);
        refresh_dead_gauge(d);
    } else {
        count(s, "retry");
        tr_log_info("notify", "%s: delivery failed (%s); retry in %" PRId64 " ms", s->cfg->name,
                    why, wait);
    }
}

static void on_sent(const tr_notify_result *result, void *userdata)
{
    sink *s = userdata;
    tr_dispatch *d = s->d;
    tr_error err = { 0 };
    int64_t now = now_ms(d);

    s->busy = 0;
    if (result->cancelled) {
        /* Shutdown: the row stays leased and comes back after the restart. */
    } else if (result->outcome == TR_NOTIFY_DELIVERED) {
        if (tr_store_outbox_delivered(d->store, s->delivery, now, &err) != TR_OK)
            tr_log_error("notify", "%s: delivered but not marked (it may repeat): %s",
                         s->cfg->name, err.message);
        count(s, "delivered");
        rate_record(s, s->incident_id, s->event, now);
    } else {
        mark_failed(s, s->delivery, s->attempts, result->error ? result->error : "failed",
                    result->retry_after_ms, result->outcome == TR_NOTIFY_DROP);
    }
    if (d->closing) {
        if (tr_dispatch_in_flight(d) == 0)
            tr_dispatch_close(d, d->on_closed, d->closed_userdata);
        return;
    }
    wake(d);
}

/* ------------------------------------------------------------ the pump */

static void skip(sink *s, const tr_store_delivery *row, const char *outcome)
{
    tr_error err = { 0 };

    if (tr_store_outbox_delivered(s->d->store, row->id, now_ms(s->d), &err) != TR_OK)
        tr_log_error("notify", "%s: cannot mark a skipped delivery: %s", s->cfg->name,
                     err.message);
    count(s, outcome);
}

/* Take due rows until one is in flight, none is due, or the tick's budget is spent. */
static void pump(sink *s)
{
    tr_dispatch *d = s->d;
    tr_store_delivery_list *list = NULL;
    tr_notify_message *msg = NULL;
    const tr_store_delivery *row;
    const char *why;
    tr_error err = { 0 };
    int64_t now = now_ms(d);
    int i, rc;

    if (s->busy || d->closing || now < s->paused_until_ms)
        return;
    for (i = 0; i < SKIPS_PER_TICK && !s->busy; i++) {
        tr_store_delivery_list_free(list);
        list = NULL;
        tr_notify_message_free(msg);
        msg = NULL;
        rc = tr_store_outbox_due(d->store, s->cfg->name, now, d->opt.lease_ms, 1, &list, &err);
        if (rc != TR_OK) {
            tr_log_error("notify", "%s: reading the outbox: %s", s->cfg->name, err.message);
            break;
        }
        if (list->count == 0)
            break;
        row = &list->items[0];
        rc = tr_notify_message_load(&msg, d->store, row, &err);
        if (rc == TR_EPARSE) {
            mark_failed(s, row->id, row->attempts, err.message, 0, 1);
            continue;
        }
        if (rc != TR_OK) {
            tr_log_error("notify", "%s: loading delivery %s: %s", s->cfg->name,
                         row->delivery_id, err.message);
            break; /* the lease brings it back */
        }
        if (tr_notify_message_set_link(msg, d->public_url) != TR_OK) {
            tr_log_error("notify", "%s: out of memory", s->cfg->name);
            break; /* the lease brings it back */
        }
        if ((why = filtered(s, msg)) != NULL) {
            tr_log_debug("notify", "%s: %s of incident %" PRId64 " filtered out by %s",
                         s->cfg->name, row->event, row->incident_id, why);
            skip(s, row, "skipped");
            continue;
        }
        if (rate_limited(s, msg, now)) {
            tr_log_debug("notify", "%s: %s of incident %" PRId64 " held back by rate_limit",
                         s->cfg->name, row->event, row->incident_id);
            skip(s, row, "rate_limited");
            continue;
        }
        s->busy = 1;
        s->delivery = row->id;
        s->incident_id = row->incident_id;
        snprintf(s->event, sizeof(s->event), "%s", row->event);
        s->attempts = row->attempts;
        rc = s->vt->send(s->state, msg, on_sent, s, &err);
        if (rc != TR_OK) {
            s->busy = 0;
            mark_failed(s, row->id, row->attempts, err.message, 0, 0);
        }
        break;
    }
    tr_store_delivery_list_free(list);
    tr_notify_message_free(msg);
    if (i == SKIPS_PER_TICK)
        wake(d); /* more rows may be waiting: come back on the next loop turn */
}

static void on_tick(uv_timer_t *timer)
{
    tr_dispatch *d = timer->data;
    size_t i;

    for (i = 0; i < d->sink_count && !d->closing; i++)
        pump(&d->sinks[i]);
}

/* ------------------------------------------------------------ lifecycle */

static void destroy_sinks(tr_dispatch *d)
{
    size_t i;

    for (i = 0; i < d->sink_count; i++)
        if (d->sinks[i].vt && d->sinks[i].state)
            d->sinks[i].vt->destroy(d->sinks[i].state);
    tr_free(d->sinks);
    d->sinks = NULL;
    d->sink_count = 0;
}

static void on_timer_closed(uv_handle_t *handle)
{
    tr_dispatch *d = handle->data;
    tr_dispatch_closed_cb cb = d->on_closed;
    void *userdata = d->closed_userdata;

    destroy_sinks(d);
    tr_free(d);
    if (cb)
        cb(userdata);
}

static const tr_notifier_vtable *vtable_for(tr_config_notify_kind kind)
{
    size_t i;

    for (i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
        if (registry[i].kind == kind)
            return registry[i].vt;
    return NULL;
}

static int start_sinks(tr_dispatch *d, const tr_config *cfg, tr_http_client *http,
                       tr_error *err)
{
    tr_notifier_env env;
    size_t i;
    int rc;

    d->sinks = tr_calloc(cfg->notify_count ? cfg->notify_count : 1, sizeof(*d->sinks));
    if (d->sinks == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    for (i = 0; i < cfg->notify_count; i++) {
        sink *s = &d->sinks[i];

        s->d = d;
        s->cfg = &cfg->notify[i];
        s->vt = vtable_for(s->cfg->kind);
        d->sink_count = i + 1;
        if (s->vt == NULL)
            return tr_error_set(err, TR_ECONFIG, "notify %s: unknown kind", s->cfg->name);
        memset(&env, 0, sizeof(env));
        env.cfg = s->cfg;
        env.loop = d->loop;
        env.http = http;
        env.store = d->store;
        env.slack_api_url = d->opt.slack_api_url;
        env.out = d->opt.log_out;
        env.timeout_ms = d->opt.send_timeout_ms;
        rc = s->vt->init(&s->state, &env, err);
        if (rc == TR_OK)
            rc = tr_store_outbox_register_sink(d->store, s->cfg->name, now_ms(d), err);
        if (rc != TR_OK)
            return rc == TR_ENOTFOUND || rc == TR_EINVAL ? TR_ECONFIG : rc;
    }
    return TR_OK;
}

int tr_dispatch_new_with(tr_dispatch **out, uv_loop_t *loop, tr_store *store,
                         tr_http_client *http, const tr_config *cfg, tr_metrics *metrics,
                         const tr_dispatch_options *options, tr_error *err)
{
    tr_dispatch *d = tr_calloc(1, sizeof(*d));
    int rc;

    *out = NULL;
    if (d == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    if (options)
        d->opt = *options;
    if (d->opt.poll_interval_ms == 0)
        d->opt.poll_interval_ms = 2000;
    if (d->opt.backoff_base_ms == 0)
        d->opt.backoff_base_ms = 1000;
    if (d->opt.backoff_max_ms == 0)
        d->opt.backoff_max_ms = 3600 * 1000;
    if (d->opt.send_timeout_ms == 0)
        d->opt.send_timeout_ms = TR_NOTIFY_DEFAULT_TIMEOUT_MS;
    if (d->opt.lease_ms == 0)
        d->opt.lease_ms = d->opt.send_timeout_ms + 5000;
    d->loop = loop;
    d->store = store;
    d->public_url = cfg->daemon.public_url;
    if (metrics) {
        d->deliveries = tr_metrics_counter(metrics, "triaged_notify_deliveries",
                                           "Notification delivery attempts by sink and outcome.",
                                           "sink", "outcome", NULL);
        d->dead_letters = tr_metrics_gauge(metrics, "triaged_notify_dead_letters",
                                           "Notifications given up on, by sink.", "sink", NULL);
    }
    rc = start_sinks(d, cfg, http, err);
    if (rc != TR_OK) {
        destroy_sinks(d);
        tr_free(d);
        return rc;
    }
    refresh_dead_gauge(d);
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    wake(d);
    *out = d;
    return TR_OK;
}

int tr_dispatch_new(tr_dispatch **out, uv_loop_t *loop, tr_store *store, tr_http_client *http,
                    const tr_config *cfg, tr_metrics *metrics, tr_error *err)
{
    return tr_dispatch_new_with(out, loop, store, http, cfg, metrics, NULL, err);
}

void tr_dispatch_close(tr_dispatch *d, tr_dispatch_closed_cb on_closed, void *userdata)
{
    size_t i;

    if (d == NULL)
        return;
    d->on_closed = on_closed;
    d->closed_userdata = userdata;
    if (!d->closing) {
        d->closing = 1;
        (void)uv_timer_stop(&d->timer);
        for (i = 0; i < d->sink_count; i++)
            if (d->sinks[i].busy)
                d->sinks[i].vt->cancel(d->sinks[i].state);
    }
    if (tr_dispatch_in_flight(d) > 0 || uv_is_closing((uv_handle_t *)&d->timer))
        return; /* on_sent calls back here once the last send has ended */
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}
