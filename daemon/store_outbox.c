/*
 * store_outbox.c - the notification outbox.
 *
 * A message (event name + JSON payload) is written once, in the same
 * transaction as the state change it announces, so a crash can never leave
 * a change without its announcement or the other way round.
 *
 * Sinks come from the config and are known only when the notifiers run, so
 * deliveries are per sink and created lazily: each registered sink has a
 * cursor (the newest message it has seen), and asking for due work first
 * turns messages past the cursor into delivery rows for that sink, then
 * advances the cursor, in one transaction. A delivery row carries its own
 * attempts, backoff and state (pending → delivered | dead) and a random
 * delivery id, fixed when the row is created, which receivers can use to
 * drop duplicates. Delivered rows are never handed out again, so after a
 * crash every sink gets each message it had not confirmed, and only those.
 *
 * The cursor relies on message ids growing in commit order, which holds for
 * SQLite's single writer. A PostgreSQL backend (concurrent writers, sequence
 * gaps) would instead create the delivery rows for registered sinks at
 * enqueue time.
 */
#include "store_internal.h"

#include "alloc.h"

#include <inttypes.h>
#include <string.h>

/* Messages turned into one sink's delivery rows per call, so one call stays short. */
#define OUTBOX_MATERIALISE_BATCH 512
#define OUTBOX_EVENT_MAX 128

static const char sql_add[] =
    "INSERT INTO outbox_messages (incident_id, event, payload_json, created_ms)"
    " VALUES (?1, ?2, ?3, ?4)";
static const char sql_register[] =
    "INSERT OR IGNORE INTO outbox_sinks (name, cursor_id, registered_ms)"
    " VALUES (?1, (SELECT COALESCE(MAX(id), 0) FROM outbox_messages), ?2)";
static const char sql_forget[] = "DELETE FROM outbox_sinks WHERE name = ?1";
static const char sql_cursor[] = "SELECT cursor_id FROM outbox_sinks WHERE name = ?1";
static const char sql_batch_end[] =
    "SELECT MAX(id) FROM (SELECT id FROM outbox_messages WHERE id > ?1 ORDER BY id LIMIT ?2)";
static const char sql_materialise[] =
    "INSERT OR IGNORE INTO outbox_deliveries (message_id, sink, delivery_id, state, attempts,"
    " next_attempt_ms, created_ms, updated_ms)"
    " SELECT id, ?1, lower(hex(randomblob(16))), 'pending', 0, ?4, ?4, ?4"
    " FROM outbox_messages WHERE id > ?2 AND id <= ?3";
static const char sql_advance[] = "UPDATE outbox_sinks SET cursor_id = ?2 WHERE name = ?1";

#define DELIVERY_COLUMNS                                                                   \
    "d.id, d.delivery_id, d.message_id, m.incident_id, d.sink, m.event, m.payload_json,"  \
    " d.state, d.attempts, d.next_attempt_ms, d.last_error, m.created_ms"                  \
    " FROM outbox_deliveries d JOIN outbox_messages m ON m.id = d.message_id"

static const char sql_due[] =
    "SELECT " DELIVERY_COLUMNS
    " WHERE d.sink = ?1 AND d.state = 'pending' AND d.next_attempt_ms <= ?2"
    " ORDER BY d.next_attempt_ms, d.id LIMIT ?3";
static const char sql_lease[] =
    "UPDATE outbox_deliveries SET next_attempt_ms = ?2, updated_ms = ?3 WHERE id = ?1";
static const char sql_dead_letters[] =
    "SELECT " DELIVERY_COLUMNS
    " WHERE d.state = 'dead' AND (?1 IS NULL OR d.sink = ?1) AND d.id > ?2"
    " ORDER BY d.id LIMIT ?3";
static const char sql_delivery_state[] =
    "SELECT state, attempts FROM outbox_deliveries WHERE id = ?1";
static const char sql_delivered[] =
    "UPDATE outbox_deliveries SET state = 'delivered', delivered_ms = ?2, updated_ms = ?2"
    " WHERE id = ?1";
static const char sql_failed[] =
    "UPDATE outbox_deliveries SET attempts = ?2, state = ?3, next_attempt_ms = ?4,"
    " last_error = ?5, updated_ms = ?6 WHERE id = ?1";
static const char sql_retry_dead[] =
    "UPDATE outbox_deliveries SET state = 'pending', attempts = 0, next_attempt_ms = ?2,"
    " updated_ms = ?2 WHERE id = ?1 AND state = 'dead'";
static const char sql_stats[] =
    "SELECT s.name,"
    " (SELECT COUNT(*) FROM outbox_deliveries d WHERE d.sink = s.name AND d.state = 'pending')"
    " + (SELECT COUNT(*) FROM outbox_messages m WHERE m.id > s.cursor_id),"
    " (SELECT COUNT(*) FROM outbox_deliveries d WHERE d.sink = s.name"
    "  AND d.state = 'delivered'),"
    " (SELECT COUNT(*) FROM outbox_deliveries d WHERE d.sink = s.name AND d.state = 'dead')"
    " FROM outbox_sinks s ORDER BY s.name";
static const char sql_prune[] =
    "DELETE FROM outbox_messages WHERE created_ms < ?1"
    " AND NOT EXISTS (SELECT 1 FROM outbox_sinks s WHERE s.cursor_id < outbox_messages.id)"
    " AND NOT EXISTS (SELECT 1 FROM outbox_deliveries d"
    "  WHERE d.message_id = outbox_messages.id AND d.state = 'pending')";

static const char *delivery_state_name(int state)
{
    switch (state) {
    case TR_DELIVERY_PENDING: return "pending";
    case TR_DELIVERY_DELIVERED: return "delivered";
    case TR_DELIVERY_DEAD: return "dead";
    }
    return NULL;
}

static int delivery_state_parse(const unsigned char *name)
{
    if (name == NULL)
        return 0;
    if (strcmp((const char *)name, "pending") == 0)
        return TR_DELIVERY_PENDING;
    if (strcmp((const char *)name, "delivered") == 0)
        return TR_DELIVERY_DELIVERED;
    if (strcmp((const char *)name, "dead") == 0)
        return TR_DELIVERY_DEAD;
    return 0;
}

int store_check_event(const char *event, tr_error *err)
{
    size_t i, len = event ? strnlen(event, OUTBOX_EVENT_MAX + 1) : 0;

    if (len == 0 || len > OUTBOX_EVENT_MAX)
        return tr_error_set(err, TR_EINVAL, "store: event name must be 1..%d characters",
                            OUTBOX_EVENT_MAX);
    for (i = 0; i < len; i++) {
        char c = event[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return tr_error_set(err, TR_EINVAL, "store: event name \"%s\": only a-z 0-9 . _ -",
                                event);
    }
    return TR_OK;
}

static int check_sink(const char *sink, tr_error *err)
{
    return store_check_text("sink name", sink, TR_STORE_NAME_MAX, 1, err);
}

int store_outbox_add(tr_store *store, int64_t incident_id, const char *event,
                     const char *payload_json, int64_t now_ms, int64_t *id_out, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_add, &stmt, err);

    if (rc != TR_OK)
        return rc;
    if (incident_id > 0)
        store_bind_int(stmt, 1, incident_id, &bind);
    store_bind_text(stmt, 2, event, &bind);
    store_bind_str(stmt, 3, payload_json ? payload_json : "{}", &bind);
    store_bind_int(stmt, 4, now_ms, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, "enqueue", err);
    }
    rc = store_exec(store, stmt, "enqueue", err);
    if (rc == TR_OK && id_out != NULL)
        *id_out = store_last_id(store);
    return rc;
}

int tr_store_outbox_enqueue(tr_store *store, int64_t incident_id, const char *event,
                            const char *payload_json, int64_t now_ms, int64_t *id_out,
                            tr_error *err)
{
    int rc = store_check_event(event, err);

    if (rc == TR_OK)
        rc = store_check_text("payload", payload_json, TR_STORE_TEXT_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_begin(store, err);
    if (rc != TR_OK)
        return rc;
    rc = store_outbox_add(store, incident_id, event, payload_json, now_ms, id_out, err);
    return store_finish(store, rc, err);
}

/* Run sql with ?1 = sink and optionally ?2 = an integer. */
static int exec_sink(tr_store *store, const char *sql, const char *sink, int64_t value,
                     int with_value, const char *what, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql, &stmt, err);

    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, sink, &bind);
    if (with_value)
        store_bind_int(stmt, 2, value, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, what, err);
    }
    return store_exec(store, stmt, what, err);
}

int tr_store_outbox_register_sink(tr_store *store, const char *sink, int64_t now_ms,
                                  tr_error *err)
{
    int rc = check_sink(sink, err);

    if (rc == TR_OK)
        rc = store_begin(store, err);
    if (rc != TR_OK)
        return rc;
    rc = exec_sink(store, sql_register, sink, now_ms, 1, "register sink", err);
    return store_finish(store, rc, err);
}

int tr_store_outbox_forget_sink(tr_store *store, const char *sink, tr_error *err)
{
    int rc = check_sink(sink, err);

    if (rc == TR_OK)
        rc = store_begin(store, err);
    if (rc != TR_OK)
        return rc;
    rc = exec_sink(store, sql_forget, sink, 0, 0, "forget sink", err);
    return store_finish(store, rc, err);
}

/* A one-row, one-integer query; *found = 0 when it returns no row or NULL. */
static int query_int(tr_store *store, sqlite3_stmt *stmt, const char *what, int64_t *value,
                     int *found, tr_error *err)
{
    int rc = sqlite3_step(stmt);

    *found = 0;
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
            *value = sqlite3_column_int64(stmt, 0);
            *found = 1;
        }
        rc = TR_OK;
    } else if (rc == SQLITE_DONE) {
        rc = TR_OK;
    } else {
        rc = store_fail(store, rc, what, err);
    }
    store_done(stmt);
    return rc;
}

/* Give the sink delivery rows for the next batch of messages past its cursor. */
static int materialise(tr_store *store, const char *sink, int64_t now_ms, tr_error *err)
{
    sqlite3_stmt *stmt;
    int64_t cursor = 0, batch_end = 0;
    int bind = SQLITE_OK;
    int found = 0;
    int rc = store_stmt(store, sql_cursor, &stmt, err);

    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, sink, &bind);
    rc = bind == SQLITE_OK ? query_int(store, stmt, "read sink cursor", &cursor, &found, err)
                           : store_fail(store, bind, "read sink cursor", err);
    if (rc != TR_OK)
        return rc;
    if (!found)
        return tr_error_set(err, TR_ENOTFOUND, "store: sink \"%s\" is not registered", sink);
    rc = store_stmt(store, sql_batch_end, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, cursor, &bind);
    store_bind_int(stmt, 2, OUTBOX_MATERIALISE_BATCH, &bind);
    rc = bind == SQLITE_OK ? query_int(store, stmt, "outbox batch", &batch_end, &found, err)
                           : store_fail(store, bind, "outbox batch", err);
    if (rc != TR_OK || !found)
        return rc;
    rc = store_stmt(store, sql_materialise, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, sink, &bind);
    store_bind_int(stmt, 2, cursor, &bind);
    store_bind_int(stmt, 3, batch_end, &bind);
    store_bind_int(stmt, 4, now_ms, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, "create deliveries", err);
    }
    rc = store_exec(store, stmt, "create deliveries", err);
    if (rc == TR_OK)
        rc = exec_sink(store, sql_advance, sink, batch_end, 1, "advance sink cursor", err);
    return rc;
}

static void delivery_clear(tr_store_delivery *delivery)
{
    store_free_str(delivery->delivery_id);
    store_free_str(delivery->sink);
    store_free_str(delivery->event);
    store_free_str(delivery->payload_json);
    store_free_str(delivery->last_error);
    memset(delivery, 0, sizeof(*delivery));
}

void tr_store_delivery_list_free(tr_store_delivery_list *list)
{
    size_t i;

    if (list == NULL)
        return;
    for (i = 0; i < list->count; i++)
        delivery_clear(&list->items[i]);
    tr_free(list->items);
    tr_free(list);
}

static int read_delivery(sqlite3_stmt *stmt, tr_store_delivery *delivery)
{
    int rc = TR_OK;

    memset(delivery, 0, sizeof(*delivery));
    delivery->id = sqlite3_column_int64(stmt, 0);
    store_column_str(stmt, 1, &delivery->delivery_id, &rc);
    delivery->message_id = sqlite3_column_int64(stmt, 2);
    delivery->incident_id = sqlite3_column_int64(stmt, 3);
    store_column_str(stmt, 4, &delivery->sink, &rc);
    store_column_str(stmt, 5, &delivery->event, &rc);
    store_column_str(stmt, 6, &delivery->payload_json, &rc);
    delivery->state = delivery_state_parse(sqlite3_column_text(stmt, 7));
    delivery->attempts = sqlite3_column_int64(stmt, 8);
    delivery->next_attempt_ms = sqlite3_column_int64(stmt, 9);
    store_column_str(stmt, 10, &delivery->last_error, &rc);
    delivery->created_ms = sqlite3_column_int64(stmt, 11);
    return rc;
}

/* Read every row of a bound delivery query into a new list of at most limit. */
static int read_deliveries(tr_store *store, sqlite3_stmt *stmt, size_t limit, const char *what,
                           tr_store_delivery_list **out, tr_error *err)
{
    tr_store_delivery_list *list = tr_calloc(1, sizeof(*list));
    int rc = TR_OK;

    *out = NULL;
    if (list != NULL)
        list->items = tr_calloc(limit, sizeof(*list->items));
    if (list == NULL || list->items == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "store: %s: out of memory", what);
        goto cleanup;
    }
    while (list->count < limit && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        rc = read_delivery(stmt, &list->items[list->count++]);
        if (rc != TR_OK) {
            rc = tr_error_set(err, rc, "store: %s: out of memory", what);
            goto cleanup;
        }
    }
    if (list->count < limit && rc != SQLITE_DONE) {
        rc = store_fail(store, rc, what, err);
        goto cleanup;
    }
    rc = TR_OK;
cleanup:
    store_done(stmt);
    if (rc != TR_OK) {
        tr_store_delivery_list_free(list);
        return rc;
    }
    *out = list;
    return TR_OK;
}

static int due_locked(tr_store *store, const char *sink, int64_t now_ms, int64_t lease_ms,
                      size_t limit, tr_store_delivery_list **out, tr_error *err)
{
    tr_store_delivery_list *list = NULL;
    sqlite3_stmt *stmt;
    size_t i;
    int bind = SQLITE_OK;
    int rc = materialise(store, sink, now_ms, err);

    if (rc == TR_OK)
        rc = store_stmt(store, sql_due, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, sink, &bind);
    store_bind_int(stmt, 2, now_ms, &bind);
    store_bind_int(stmt, 3, (int64_t)limit, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, "due deliveries", err);
    }
    rc = read_deliveries(store, stmt, limit, "due deliveries", &list, err);
    for (i = 0; rc == TR_OK && lease_ms > 0 && i < list->count; i++) {
        rc = store_stmt(store, sql_lease, &stmt, err);
        if (rc != TR_OK)
            break;
        store_bind_int(stmt, 1, list->items[i].id, &bind);
        store_bind_int(stmt, 2, now_ms + lease_ms, &bind);
        store_bind_int(stmt, 3, now_ms, &bind);
        if (bind != SQLITE_OK) {
            store_done(stmt);
            rc = store_fail(store, bind, "lease delivery", err);
            break;
        }
        rc = store_exec(store, stmt, "lease delivery", err);
        list->items[i].next_attempt_ms = now_ms + lease_ms;
    }
    if (rc != TR_OK) {
        tr_store_delivery_list_free(list);
        return rc;
    }
    *out = list;
    return TR_OK;
}

int tr_store_outbox_due(tr_store *store, const char *sink, int64_t now_ms, int64_t lease_ms,
                        size_t limit, tr_store_delivery_list **out, tr_error *err)
{
    int rc = check_sink(sink, err);

    *out = NULL;
    if (rc == TR_OK)
        rc = store_begin(store, err);
    if (rc != TR_OK)
        return rc;
    rc = due_locked(store, sink, now_ms, lease_ms, store_clamp_limit(limit), out, err);
    rc = store_finish(store, rc, err);
    if (rc != TR_OK) {
        tr_store_delivery_list_free(*out);
        *out = NULL;
    }
    return rc;
}

static int read_delivery_state(tr_store *store, int64_t delivery, int *state, int64_t *attempts,
                               tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_delivery_state, &stmt, err);

    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, delivery, &bind);
    rc = bind == SQLITE_OK ? sqlite3_step(stmt) : bind;
    if (rc == SQLITE_ROW) {
        *state = delivery_state_parse(sqlite3_column_text(stmt, 0));
        *attempts = sqlite3_column_int64(stmt, 1);
        /* 0: SQLite could not produce the text; never guess a delivered row is pending */
        rc = *state ? TR_OK
                    : tr_error_set(err, TR_ENOMEM, "store: read delivery: out of memory");
    } else if (rc == SQLITE_DONE) {
        rc = tr_error_set(err, TR_ENOTFOUND, "store: delivery %" PRId64 " not found", delivery);
    } else {
        rc = store_fail(store, rc, "read delivery", err);
    }
    store_done(stmt);
    return rc;
}

static int delivered_locked(tr_store *store, int64_t delivery, int64_t now_ms, tr_error *err)
{
    sqlite3_stmt *stmt;
    int64_t attempts = 0;
    int state = 0;
    int bind = SQLITE_OK;
    int rc = read_delivery_state(store, delivery, &state, &attempts, err);

    if (rc != TR_OK || state == TR_DELIVERY_DELIVERED)
        return rc;
    rc = store_stmt(store, sql_delivered, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, delivery, &bind);
    store_bind_int(stmt, 2, now_ms, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, "mark delivered", err);
    }
    return store_exec(store, stmt, "mark delivered", err);
}

int tr_store_outbox_delivered(tr_store *store, int64_t delivery, int64_t now_ms, tr_error *err)
{
    int rc = store_begin(store, err);

    if (rc != TR_OK)
        return rc;
    rc = delivered_locked(store, delivery, now_ms, err);
    return store_finish(store, rc, err);
}

static int failed_locked(tr_store *store, int64_t delivery, const char *error_text,
                         int64_t next_attempt_ms, int64_t max_attempts, int64_t now_ms,
                         int *dead, tr_error *err)
{
    sqlite3_stmt *stmt;
    int64_t attempts = 0;
    int state = 0;
    int bind = SQLITE_OK;
    int rc = read_delivery_state(store, delivery, &state, &attempts, err);

    if (rc != TR_OK)
        return rc;
    if (state == TR_DELIVERY_DELIVERED)
        return tr_error_set(err, TR_ECONFLICT, "store: delivery %" PRId64 " was delivered",
                            delivery);
    attempts++;
    *dead = state == TR_DELIVERY_DEAD || attempts >= max_attempts;
    rc = store_stmt(store, sql_failed, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, delivery, &bind);
    store_bind_int(stmt, 2, attempts, &bind);
    store_bind_text(stmt, 3, delivery_state_name(*dead ? TR_DELIVERY_DEAD : TR_DELIVERY_PENDING),
                    &bind);
    store_bind_int(stmt, 4, next_attempt_ms, &bind);
    store_bind_text(stmt, 5, error_text, &bind);
    store_bind_int(stmt, 6, now_ms, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, "mark failed", err);
    }
    return store_exec(store, stmt, "mark failed", err);
}

int tr_store_outbox_failed(tr_store *store, int64_t delivery, const char *error_text,
                           int64_t next_attempt_ms, int64_t max_attempts, int64_t now_ms,
                           int *dead, tr_error *err)
{
    int dead_letter = 0;
    int rc = store_check_text("delivery error", error_text, TR_STORE_MESSAGE_MAX, 0, err);

    if (rc == TR_OK)
        rc = store_begin(store, err);
    if (rc != TR_OK)
        return rc;
    rc = failed_locked(store, delivery, error_text, next_attempt_ms, max_attempts, now_ms,
                       &dead_letter, err);
    rc = store_finish(store, rc, err);
    if (rc == TR_OK && dead != NULL)
        *dead = dead_letter;
    return rc;
}

int tr_store_outbox_dead_letters(tr_store *store, const char *sink, int64_t after_id,
                                 size_t limit, tr_store_delivery_list **out, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_check_text("sink name", sink, TR_STORE_NAME_MAX, 0, err);

    *out = NULL;
    if (rc == TR_OK)
        rc = store_stmt(store, sql_dead_letters, &stmt, err);
    if (rc != TR_OK)
        return rc;
    limit = store_clamp_limit(limit);
    store_bind_text(stmt, 1, sink, &bind);
    store_bind_int(stmt, 2, after_id, &bind);
    store_bind_int(stmt, 3, (int64_t)limit, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, "dead letters", err);
    }
    return read_deliveries(store, stmt, limit, "dead letters", out, err);
}

int tr_store_outbox_retry_dead(tr_store *store, int64_t delivery, int64_t now_ms, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_begin(store, err);

    if (rc != TR_OK)
        return rc;
    rc = store_stmt(store, sql_retry_dead, &stmt, err);
    if (rc != TR_OK)
        return store_finish(store, rc, err);
    store_bind_int(stmt, 1, delivery, &bind);
    store_bind_int(stmt, 2, now_ms, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        rc = store_fail(store, bind, "retry dead letter", err);
    } else {
        rc = store_exec(store, stmt, "retry dead letter", err);
    }
    if (rc == TR_OK && store_changes(store) == 0)
        rc = tr_error_set(err, TR_ENOTFOUND, "store: no dead letter %" PRId64, delivery);
    return store_finish(store, rc, err);
}

void tr_store_outbox_stats_free(tr_store_outbox_stats *stats)
{
    size_t i;

    if (stats == NULL)
        return;
    for (i = 0; i < stats->count; i++)
        store_free_str(stats->items[i].sink);
    tr_free(stats->items);
    tr_free(stats);
}

int tr_store_outbox_stats_get(tr_store *store, tr_store_outbox_stats **out, tr_error *err)
{
    tr_store_outbox_stats *stats = tr_calloc(1, sizeof(*stats));
    sqlite3_stmt *stmt = NULL;
    size_t alloc = 0;
    int rc;

    *out = NULL;
    if (stats == NULL)
        return tr_error_set(err, TR_ENOMEM, "store: outbox stats: out of memory");
    rc = store_stmt(store, sql_stats, &stmt, err);
    if (rc != TR_OK)
        goto cleanup;
    /* One row per configured sink: a handful, bounded by the config. */
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        tr_store_outbox_stat *stat;

        if (stats->count == alloc) {
            size_t grown = alloc ? alloc * 2 : 8;
            tr_store_outbox_stat *items = tr_realloc(stats->items, grown * sizeof(*items));

            if (items == NULL) {
                rc = tr_error_set(err, TR_ENOMEM, "store: outbox stats: out of memory");
                goto cleanup;
            }
            stats->items = items;
            alloc = grown;
        }
        stat = &stats->items[stats->count++];
        memset(stat, 0, sizeof(*stat));
        rc = TR_OK;
        store_column_str(stmt, 0, &stat->sink, &rc);
        if (rc != TR_OK) {
            rc = tr_error_set(err, rc, "store: outbox stats: out of memory");
            goto cleanup;
        }
        stat->pending = sqlite3_column_int64(stmt, 1);
        stat->delivered = sqlite3_column_int64(stmt, 2);
        stat->dead = sqlite3_column_int64(stmt, 3);
    }
    rc = rc == SQLITE_DONE ? TR_OK : store_fail(store, rc, "outbox stats", err);
cleanup:
    store_done(stmt);
    if (rc != TR_OK) {
        tr_store_outbox_stats_free(stats);
        return rc;
    }
    *out = stats;
    return TR_OK;
}

int tr_store_outbox_prune(tr_store *store, int64_t before_ms, int64_t *removed, tr_error *err)
{
    sqlite3_stmt *stmt;
    int64_t count = 0;
    int bind = SQLITE_OK;
    int rc = store_begin(store, err);

    if (rc != TR_OK)
        return rc;
    rc = store_stmt(store, sql_prune, &stmt, err);
    if (rc == TR_OK) {
        store_bind_int(stmt, 1, before_ms, &bind);
        if (bind != SQLITE_OK) {
            store_done(stmt);
            rc = store_fail(store, bind, "prune outbox", err);
        } else {
            rc = store_exec(store, stmt, "prune outbox", err);
            count = store_changes(store);
        }
    }
    rc = store_finish(store, rc, err);
    if (rc == TR_OK && removed != NULL)
        *removed = count;
    return rc;
}
