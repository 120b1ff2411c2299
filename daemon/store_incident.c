/*
 * store_incident.c - incidents: recording observations (dedup, reopen,
 * retire), reading and listing incidents, and applying transitions (the
 * table of allowed ones is in store_state.c).
 *
 * An incident is found by its fingerprint among live incidents. Recording an
 * observation is one transaction that stores the observation, creates or
 * updates the incident and, only when the incident is new or reopened,
 * enqueues the outbox message announcing it: 200 identical CrashLoopBackOff
 * events make one incident with count 200 and one notification.
 */
#include "store_internal.h"

#include "alloc.h"

#include <inttypes.h>
#include <string.h>

/* A state column: TR_ENOMEM when SQLite could not produce the text. */
static int column_state(sqlite3_stmt *stmt, int col, int *state)
{
    const unsigned char *text = sqlite3_column_text(stmt, col);

    if (text == NULL)
        return TR_ENOMEM;
    *state = tr_store_state_parse((const char *)text);
    return TR_OK;
}

/* ------------------------------------------------------------ reading */

#define INCIDENT_COLUMNS                                                                   \
    "id, fingerprint, source, cluster, namespace, kind, name, failure_class, title, "      \
    "message, state, error, facts_json, observation_count, reopen_count, first_seen_ms, " \
    "last_seen_ms, updated_ms, resolved_at_ms, live"

static const char sql_get[] = "SELECT " INCIDENT_COLUMNS " FROM incidents WHERE id = ?1";
static const char sql_find[] =
    "SELECT " INCIDENT_COLUMNS " FROM incidents WHERE fingerprint = ?1 AND live = 1";
static const char sql_list[] =
    "SELECT " INCIDENT_COLUMNS " FROM incidents"
    " WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR source = ?2)"
    " AND (?3 IS NULL OR namespace = ?3) AND (?4 <= 0 OR id < ?4)"
    " ORDER BY id DESC LIMIT ?5";
static const char sql_counts[] = "SELECT state, COUNT(*) FROM incidents GROUP BY state";

static void incident_clear(tr_store_incident *incident)
{
    store_free_str(incident->fingerprint);
    store_free_str(incident->source);
    store_free_str(incident->cluster);
    store_free_str(incident->namespace);
    store_free_str(incident->kind);
    store_free_str(incident->name);
    store_free_str(incident->failure_class);
    store_free_str(incident->title);
    store_free_str(incident->message);
    store_free_str(incident->error);
    store_free_str(incident->facts_json);
    memset(incident, 0, sizeof(*incident));
}

void tr_store_incident_free(tr_store_incident *incident)
{
    if (incident == NULL)
        return;
    incident_clear(incident);
    tr_free(incident);
}

void tr_store_incident_list_free(tr_store_incident_list *list)
{
    size_t i;

    if (list == NULL)
        return;
    for (i = 0; i < list->count; i++)
        incident_clear(&list->items[i]);
    tr_free(list->items);
    tr_free(list);
}

/* On failure the half-filled incident is for incident_clear(). */
static int read_incident(sqlite3_stmt *stmt, tr_store_incident *incident)
{
    const char *state = NULL;
    int rc = TR_OK;

    memset(incident, 0, sizeof(*incident));
    incident->id = sqlite3_column_int64(stmt, 0);
    store_column_str(stmt, 1, &incident->fingerprint, &rc);
    store_column_str(stmt, 2, &incident->source, &rc);
    store_column_str(stmt, 3, &incident->cluster, &rc);
    store_column_str(stmt, 4, &incident->namespace, &rc);
    store_column_str(stmt, 5, &incident->kind, &rc);
    store_column_str(stmt, 6, &incident->name, &rc);
    store_column_str(stmt, 7, &incident->failure_class, &rc);
    store_column_str(stmt, 8, &incident->title, &rc);
    store_column_str(stmt, 9, &incident->message, &rc);
    store_column_str(stmt, 10, &state, &rc);
    store_column_str(stmt, 11, &incident->error, &rc);
    store_column_str(stmt, 12, &incident->facts_json, &rc);
    incident->state = tr_store_state_parse(state);
    store_free_str(state);
    incident->observation_count = sqlite3_column_int64(stmt, 13);
    incident->reopen_count = sqlite3_column_int64(stmt, 14);
    incident->first_seen_ms = sqlite3_column_int64(stmt, 15);
    incident->last_seen_ms = sqlite3_column_int64(stmt, 16);
    incident->updated_ms = sqlite3_column_int64(stmt, 17);
    incident->resolved_at_ms = sqlite3_column_int64(stmt, 18);
    incident->live = sqlite3_column_int(stmt, 19);
    return rc;
}

/* Run a one-row incident query whose ?1 is bound already. */
static int load_one(tr_store *store, sqlite3_stmt *stmt, const char *what,
                    tr_store_incident **out, tr_error *err)
{
    tr_store_incident *incident = NULL;
    int rc = sqlite3_step(stmt);

    if (rc == SQLITE_DONE) {
        rc = tr_error_set(err, TR_ENOTFOUND, "store: %s: no such incident", what);
        goto cleanup;
    }
    if (rc != SQLITE_ROW) {
        rc = store_fail(store, rc, what, err);
        goto cleanup;
    }
    incident = tr_malloc(sizeof(*incident));
    if (incident == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "store: %s: out of memory", what);
        goto cleanup;
    }
    rc = read_incident(stmt, incident);
    if (rc != TR_OK) {
        rc = tr_error_set(err, rc, "store: %s: out of memory", what);
        tr_store_incident_free(incident);
        incident = NULL;
    }
cleanup:
    store_done(stmt);
    *out = incident;
    return rc;
}

static int get_locked(tr_store *store, int64_t id, tr_store_incident **out, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_get, &stmt, err);

    *out = NULL;
    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, id, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, "get incident", err);
    }
    rc = load_one(store, stmt, "get incident", out, err);
    if (rc == TR_ENOTFOUND)
        rc = tr_error_set(err, rc, "store: incident %" PRId64 " not found", id);
    return rc;
}

int tr_store_incident_get(tr_store *store, int64_t id, tr_store_incident **out, tr_error *err)
{
    return get_locked(store, id, out, err);
}

int tr_store_incident_find(tr_store *store, const char *fingerprint, tr_store_incident **out,
                           tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc;

    *out = NULL;
    rc = store_check_text("fingerprint", fingerprint, TR_STORE_NAME_MAX, 1, err);
    if (rc == TR_OK)
        rc = store_stmt(store, sql_find, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, fingerprint, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, "find incident", err);
    }
    return load_one(store, stmt, "find incident", out, err);
}

int tr_store_incident_list_get(tr_store *store, const tr_store_incident_filter *filter,
                               tr_store_incident_list **out, tr_error *err)
{
    static const tr_store_incident_filter all = { 0 };
    tr_store_incident_list *list = NULL;
    sqlite3_stmt *stmt = NULL;
    size_t limit;
    int bind = SQLITE_OK;
    int rc;

    *out = NULL;
    if (filter == NULL)
        filter = &all;
    if (filter->state != TR_INCIDENT_NONE && !store_state_valid(filter->state))
        return tr_error_set(err, TR_EINVAL, "store: list: unknown state %d", filter->state);
    limit = store_clamp_limit(filter->limit);
    list = tr_calloc(1, sizeof(*list));
    if (list != NULL)
        list->items = tr_calloc(limit, sizeof(*list->items));
    if (list == NULL || list->items == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "store: list: out of memory");
        goto cleanup;
    }
    rc = store_stmt(store, sql_list, &stmt, err);
    if (rc != TR_OK)
        goto cleanup;
    store_bind_text(stmt, 1, tr_store_state_name(filter->state), &bind);
    store_bind_text(stmt, 2, filter->source, &bind);
    store_bind_text(stmt, 3, filter->namespace, &bind);
    store_bind_int(stmt, 4, filter->before_id, &bind);
    store_bind_int(stmt, 5, (int64_t)limit, &bind);
    if (bind != SQLITE_OK) {
        rc = store_fail(store, bind, "list incidents", err);
        goto cleanup;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && list->count < limit) {
        /* count first: a half-read row must be cleared with the list */
        rc = read_incident(stmt, &list->items[list->count++]);
        if (rc != TR_OK) {
            rc = tr_error_set(err, rc, "store: list incidents: out of memory");
            goto cleanup;
        }
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        rc = store_fail(store, rc, "list incidents", err);
        goto cleanup;
    }
    rc = TR_OK;
    if (list->count == limit)
        list->next_before_id = list->items[list->count - 1].id;
cleanup:
    store_done(stmt);
    if (rc != TR_OK) {
        tr_store_incident_list_free(list);
        return rc;
    }
    *out = list;
    return TR_OK;
}

int tr_store_incident_counts(tr_store *store, int64_t counts[TR_INCIDENT_STATE_COUNT],
                             tr_error *err)
{
    sqlite3_stmt *stmt;
    int rc;

    memset(counts, 0, sizeof(int64_t) * TR_INCIDENT_STATE_COUNT);
    rc = store_stmt(store, sql_counts, &stmt, err);
    if (rc != TR_OK)
        return rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(stmt, 0);
        int state = tr_store_state_parse((const char *)name);

        if (state != TR_INCIDENT_NONE)
            counts[state] = sqlite3_column_int64(stmt, 1);
    }
    rc = rc == SQLITE_DONE ? TR_OK : store_fail(store, rc, "count incidents", err);
    store_done(stmt);
    return rc;
}

/* ------------------------------------------------------------ payloads */

static int json_str(tr_buf *buf, const char *key, const char *value)
{
    int rc = tr_buf_printf(buf, ",\"%s\":", key);

    if (rc != TR_OK)
        return rc;
    if (value == NULL)
        return tr_buf_puts(buf, "null");
    rc = tr_buf_putc(buf, '"');
    if (rc == TR_OK)
        rc = tr_buf_put_json_escaped(buf, value, strlen(value));
    if (rc == TR_OK)
        rc = tr_buf_putc(buf, '"');
    return rc;
}

static int json_int(tr_buf *buf, const char *key, int64_t value)
{
    return tr_buf_printf(buf, ",\"%s\":%" PRId64, key, value);
}

/* The default payload: what a notifier needs to say which incident and why. */
static int incident_payload(tr_store *store, int64_t id, const char *event, int previous,
                            char **out, tr_error *err)
{
    tr_buf buf = TR_BUF_INIT(2 * TR_STORE_TEXT_MAX);
    tr_store_incident *incident = NULL;
    int rc;

    *out = NULL;
    rc = get_locked(store, id, &incident, err);
    if (rc != TR_OK || incident == NULL) /* the NULL test is for static analysers */
        return rc != TR_OK ? rc : TR_ESTORE;
    rc = tr_buf_puts(&buf, "{\"event\":\"");
    if (rc == TR_OK)
        rc = tr_buf_put_json_escaped(&buf, event, strlen(event));
    if (rc == TR_OK)
        rc = tr_buf_putc(&buf, '"');
    if (rc == TR_OK)
        rc = json_int(&buf, "incident_id", incident->id);
    if (rc == TR_OK)
        rc = json_str(&buf, "state", tr_store_state_name(incident->state));
    if (rc == TR_OK)
        rc = json_str(&buf, "previous_state", tr_store_state_name(previous));
    if (rc == TR_OK)
        rc = json_str(&buf, "fingerprint", incident->fingerprint);
    if (rc == TR_OK)
        rc = json_str(&buf, "source", incident->source);
    if (rc == TR_OK)
        rc = json_str(&buf, "cluster", incident->cluster);
    if (rc == TR_OK)
        rc = json_str(&buf, "namespace", incident->namespace);
    if (rc == TR_OK)
        rc = json_str(&buf, "kind", incident->kind);
    if (rc == TR_OK)
        rc = json_str(&buf, "name", incident->name);
    if (rc == TR_OK)
        rc = json_str(&buf, "failure_class", incident->failure_class);
    if (rc == TR_OK)
        rc = json_str(&buf, "title", incident->title);
    if (rc == TR_OK)
        rc = json_str(&buf, "message", incident->message);
    if (rc == TR_OK)
        rc = json_str(&buf, "error", incident->error);
    if (rc == TR_OK)
        rc = json_int(&buf, "observation_count", incident->observation_count);
    if (rc == TR_OK)
        rc = json_int(&buf, "reopen_count", incident->reopen_count);
    if (rc == TR_OK)
        rc = json_int(&buf, "first_seen_ms", incident->first_seen_ms);
    if (rc == TR_OK)
        rc = json_int(&buf, "last_seen_ms", incident->last_seen_ms);
    if (rc == TR_OK)
        rc = tr_buf_putc(&buf, '}');
    if (rc != TR_OK) {
        rc = tr_error_set(err, rc, "store: payload for incident %" PRId64 ": %s", id,
                          tr_strerror(rc));
        goto cleanup;
    }
    *out = tr_buf_detach(&buf);
    if (*out == NULL)
        rc = tr_error_set(err, TR_ENOMEM, "store: payload: out of memory");
cleanup:
    tr_buf_dispose(&buf);
    tr_store_incident_free(incident);
    return rc;
}

static int enqueue_event(tr_store *store, int64_t id, const char *event, const char *payload,
                         int previous, int64_t now_ms, tr_error *err)
{
    char *built = NULL;
    int rc;

    if (payload == NULL) {
        rc = incident_payload(store, id, event, previous, &built, err);
        if (rc != TR_OK)
            return rc;
        payload = built;
    }
    rc = store_outbox_add(store, id, event, payload, now_ms, NULL, err);
    tr_free(built);
    return rc;
}

/* ------------------------------------------------------------ transitions */

static const char sql_state[] = "SELECT state FROM incidents WHERE id = ?1";
static const char sql_set_state[] =
    "UPDATE incidents SET state = ?2, error = ?3, updated_ms = ?4,"
    " resolved_at_ms = CASE WHEN ?2 = 'resolved' THEN ?4"
    "   WHEN ?2 = 'open' THEN NULL ELSE resolved_at_ms END,"
    " reopen_count = reopen_count + (CASE WHEN ?5 = 'resolved' AND ?2 = 'open'"
    "   THEN 1 ELSE 0 END)"
    " WHERE id = ?1";

int store_check_transition(const tr_store_transition *t, tr_error *err)
{
    int rc;

    if (t == NULL)
        return TR_OK;
    if (t->expect_from != TR_INCIDENT_NONE && !store_state_valid(t->expect_from))
        return tr_error_set(err, TR_EINVAL, "store: unknown state %d", t->expect_from);
    if (t->to != TR_INCIDENT_NONE && !store_state_valid(t->to))
        return tr_error_set(err, TR_EINVAL, "store: unknown state %d", t->to);
    rc = store_check_text("error text", t->error_text, TR_STORE_MESSAGE_MAX, 0, err);
    if (rc == TR_OK && t->event != NULL)
        rc = store_check_event(t->event, err);
    if (rc == TR_OK)
        rc = store_check_text("payload", t->payload_json, TR_STORE_TEXT_MAX, 0, err);
    return rc;
}

static int read_state(tr_store *store, int64_t id, int *state, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_state, &stmt, err);

    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, id, &bind);
    rc = bind == SQLITE_OK ? sqlite3_step(stmt) : bind;
    if (rc == SQLITE_ROW) {
        rc = column_state(stmt, 0, state);
        if (rc != TR_OK)
            rc = tr_error_set(err, rc, "store: read incident state: out of memory");
    } else if (rc == SQLITE_DONE) {
        rc = tr_error_set(err, TR_ENOTFOUND, "store: incident %" PRId64 " not found", id);
    } else {
        rc = store_fail(store, rc, "read incident state", err);
    }
    store_done(stmt);
    return rc;
}

int store_transition_locked(tr_store *store, int64_t incident_id, const tr_store_transition *t,
                            int64_t now_ms, tr_error *err)
{
    sqlite3_stmt *stmt;
    int current = TR_INCIDENT_NONE;
    int bind = SQLITE_OK;
    int rc = read_state(store, incident_id, &current, err);

    if (rc != TR_OK || t == NULL)
        return rc;
    if (t->expect_from != TR_INCIDENT_NONE && current != t->expect_from)
        return tr_error_set(err, TR_ECONFLICT, "store: incident %" PRId64 " is %s, not %s",
                            incident_id, store_state_label(current),
                            store_state_label(t->expect_from));
    if (t->to != TR_INCIDENT_NONE) {
        if (!tr_store_state_allowed(current, t->to))
            return tr_error_set(err, TR_ECONFLICT,
                                "store: incident %" PRId64 ": %s -> %s is not allowed",
                                incident_id, store_state_label(current),
                                store_state_label(t->to));
        rc = store_stmt(store, sql_set_state, &stmt, err);
        if (rc != TR_OK)
            return rc;
        store_bind_int(stmt, 1, incident_id, &bind);
        store_bind_text(stmt, 2, tr_store_state_name(t->to), &bind);
        store_bind_text(stmt, 3, t->error_text, &bind);
        store_bind_int(stmt, 4, now_ms, &bind);
        store_bind_text(stmt, 5, tr_store_state_name(current), &bind);
        if (bind != SQLITE_OK) {
            store_done(stmt);
            return store_fail(store, bind, "set incident state", err);
        }
        rc = store_exec(store, stmt, "set incident state", err);
        if (rc != TR_OK)
            return rc;
    }
    if (t->event != NULL)
        rc = enqueue_event(store, incident_id, t->event, t->payload_json, current, now_ms, err);
    return rc;
}

int tr_store_incident_transition(tr_store *store, int64_t id, const tr_store_transition *t,
                                 int64_t now_ms, tr_error *err)
{
    int rc = store_check_transition(t, err);

    if (rc == TR_OK)
        rc = store_begin(store, err);
    if (rc != TR_OK)
        return rc;
    rc = store_transition_locked(store, id, t, now_ms, err);
    return store_finish(store, rc, err);
}

/* ------------------------------------------------------------ observations */

static const char sql_find_live[] =
    "SELECT id, state, last_seen_ms FROM incidents WHERE fingerprint = ?1 AND live = 1";
static const char sql_retire[] = "UPDATE incidents SET live = 0, updated_ms = ?2 WHERE id = ?1";
/* ?6 = 1 reopens a resolved incident as part of the same update. */
static const char sql_absorb[] =
    "UPDATE incidents SET observation_count = observation_count + 1,"
    " last_seen_ms = MAX(last_seen_ms, ?2), message = COALESCE(?3, message),"
    " facts_json = COALESCE(?4, facts_json), updated_ms = ?5,"
    " state = CASE WHEN ?6 THEN 'open' ELSE state END,"
    " reopen_count = reopen_count + ?6,"
    " resolved_at_ms = CASE WHEN ?6 THEN NULL ELSE resolved_at_ms END,"
    " error = CASE WHEN ?6 THEN NULL ELSE error END"
    " WHERE id = ?1";
static const char sql_create[] =
    "INSERT INTO incidents (fingerprint, source, cluster, namespace, kind, name, failure_class,"
    " title, message, state, facts_json, observation_count, first_seen_ms, last_seen_ms,"
    " updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'open', ?10, 1, ?11, ?11, ?12)";
static const char sql_add_observation[] =
    "INSERT INTO observations (incident_id, fingerprint, source, cluster, namespace, kind, name,"
    " owner_kind, owner_name, failure_class, message, raw_ref, raw_json, facts_json,"
    " observed_ms, recorded_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
static const char sql_trim_observations[] =
    "DELETE FROM observations WHERE incident_id = ?1 AND id <= (SELECT id FROM observations"
    " WHERE incident_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)";

static int check_observation(const tr_store_observation *obs, tr_error *err)
{
    int rc = store_check_text("fingerprint", obs->fingerprint, TR_STORE_NAME_MAX, 1, err);

    if (rc == TR_OK)
        rc = store_check_text("source", obs->source, TR_STORE_NAME_MAX, 1, err);
    if (rc == TR_OK)
        rc = store_check_text("cluster", obs->cluster, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("namespace", obs->namespace, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("kind", obs->kind, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("name", obs->name, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("owner kind", obs->owner_kind, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("owner name", obs->owner_name, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("failure class", obs->failure_class, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("title", obs->title, TR_STORE_MESSAGE_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("message", obs->message, TR_STORE_MESSAGE_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("raw reference", obs->raw_ref, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("raw object", obs->raw_json, TR_STORE_TEXT_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("facts", obs->facts_json, TR_STORE_TEXT_MAX, 0, err);
    return rc;
}

static int create_incident(tr_store *store, const tr_store_observation *obs, int64_t now_ms,
                           int64_t *id, tr_error *err)
{
    const char *title = obs->title ? obs->title : obs->failure_class;
    int owned = obs->owner_name != NULL;
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_create, &stmt, err);

    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, obs->fingerprint, &bind);
    store_bind_text(stmt, 2, obs->source, &bind);
    store_bind_str(stmt, 3, obs->cluster, &bind);
    store_bind_str(stmt, 4, obs->namespace, &bind);
    store_bind_str(stmt, 5, owned ? obs->owner_kind : obs->kind, &bind);
    store_bind_str(stmt, 6, owned ? obs->owner_name : obs->name, &bind);
    store_bind_str(stmt, 7, obs->failure_class, &bind);
    store_bind_str(stmt, 8, title, &bind);
    store_bind_str(stmt, 9, obs->message, &bind);
    store_bind_text(stmt, 10, obs->facts_json, &bind);
    store_bind_int(stmt, 11, obs->observed_ms, &bind);
    store_bind_int(stmt, 12, now_ms, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, "create incident", err);
    }
    rc = store_exec(store, stmt, "create incident", err);
    if (rc == TR_OK)
        *id = store_last_id(store);
    return rc;
}

static int exec_id_pair(tr_store *store, const char *sql, int64_t first, int64_t second,
                        const char *what, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql, &stmt, err);

    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, first, &bind);
    store_bind_int(stmt, 2, second, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, what, err);
    }
    return store_exec(store, stmt, what, err);
}

static int absorb(tr_store *store, int64_t id, const tr_store_observation *obs, int reopen,
                  int64_t now_ms, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_absorb, &stmt, err);

    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, id, &bind);
    store_bind_int(stmt, 2, obs->observed_ms, &bind);
    store_bind_text(stmt, 3, obs->message, &bind);
    store_bind_text(stmt, 4, obs->facts_json, &bind);
    store_bind_int(stmt, 5, now_ms, &bind);
    store_bind_int(stmt, 6, reopen ? 1 : 0, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, "update incident", err);
    }
    return store_exec(store, stmt, "update incident", err);
}

static int add_observation(tr_store *store, int64_t incident_id,
                           const tr_store_observation *obs, int64_t now_ms, int64_t *id,
                           tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_add_observation, &stmt, err);

    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, incident_id, &bind);
    store_bind_text(stmt, 2, obs->fingerprint, &bind);
    store_bind_text(stmt, 3, obs->source, &bind);
    store_bind_text(stmt, 4, obs->cluster, &bind);
    store_bind_text(stmt, 5, obs->namespace, &bind);
    store_bind_text(stmt, 6, obs->kind, &bind);
    store_bind_text(stmt, 7, obs->name, &bind);
    store_bind_text(stmt, 8, obs->owner_kind, &bind);
    store_bind_text(stmt, 9, obs->owner_name, &bind);
    store_bind_text(stmt, 10, obs->failure_class, &bind);
    store_bind_text(stmt, 11, obs->message, &bind);
    store_bind_text(stmt, 12, obs->raw_ref, &bind);
    store_bind_text(stmt, 13, obs->raw_json, &bind);
    store_bind_text(stmt, 14, obs->facts_json, &bind);
    store_bind_int(stmt, 15, obs->observed_ms, &bind);
    store_bind_int(stmt, 16, now_ms, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, "add observation", err);
    }
    rc = store_exec(store, stmt, "add observation", err);
    if (rc != TR_OK)
        return rc;
    *id = store_last_id(store);
    /* Bound the history: the count on the incident keeps the total. */
    return exec_id_pair(store, sql_trim_observations, incident_id, TR_STORE_OBSERVATIONS_KEPT,
                        "trim observations", err);
}

/* Look up the live incident for the fingerprint; *id = 0 when there is none. */
static int find_live(tr_store *store, const char *fingerprint, int64_t *id, int *state,
                     int64_t *last_seen_ms, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_find_live, &stmt, err);

    *id = 0;
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, fingerprint, &bind);
    rc = bind == SQLITE_OK ? sqlite3_step(stmt) : bind;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(stmt, 0);
        *last_seen_ms = sqlite3_column_int64(stmt, 2);
        rc = column_state(stmt, 1, state);
        if (rc != TR_OK)
            rc = tr_error_set(err, rc, "store: find incident: out of memory");
    } else if (rc == SQLITE_DONE) {
        rc = TR_OK;
    } else {
        rc = store_fail(store, rc, "find incident", err);
    }
    store_done(stmt);
    return rc;
}

static int observe_locked(tr_store *store, const tr_store_observation *obs,
                          int64_t dedup_window_ms, int64_t now_ms, tr_store_obs_result *result,
                          tr_error *err)
{
    const char *event = NULL;
    int64_t id = 0, last_seen_ms = 0;
    int state = TR_INCIDENT_NONE;
    int rc = find_live(store, obs->fingerprint, &id, &state, &last_seen_ms, err);

    if (rc != TR_OK)
        return rc;
    if (id != 0 && (state == TR_INCIDENT_FAILED || state == TR_INCIDENT_REJECTED) &&
        obs->observed_ms - last_seen_ms > dedup_window_ms) {
        /* A finished incident firing again much later is a new episode. */
        rc = exec_id_pair(store, sql_retire, id, now_ms, "retire incident", err);
        if (rc != TR_OK)
            return rc;
        id = 0;
    }
    if (id == 0) {
        rc = create_incident(store, obs, now_ms, &id, err);
        result->outcome = TR_OBS_CREATED;
        result->state = TR_INCIDENT_OPEN;
        event = "incident.opened";
        state = TR_INCIDENT_NONE; /* a new incident has no previous state */
    } else if (state == TR_INCIDENT_RESOLVED) {
        rc = absorb(store, id, obs, 1, now_ms, err);
        result->outcome = TR_OBS_REOPENED;
        result->state = TR_INCIDENT_OPEN;
        event = "incident.reopened";
    } else {
        rc = absorb(store, id, obs, 0, now_ms, err);
        result->outcome = TR_OBS_UPDATED;
        result->state = state;
    }
    if (rc == TR_OK)
        rc = add_observation(store, id, obs, now_ms, &result->observation_id, err);
    if (rc == TR_OK && event != NULL)
        rc = enqueue_event(store, id, event, NULL, state, now_ms, err);
    result->incident_id = id;
    return rc;
}

int tr_store_observe(tr_store *store, const tr_store_observation *obs, int64_t dedup_window_ms,
                     int64_t now_ms, tr_store_obs_result *result, tr_error *err)
{
    tr_store_obs_result outcome = { 0 };
    int rc;

    if (obs == NULL)
        return tr_error_set(err, TR_EINVAL, "store: no observation");
    rc = check_observation(obs, err);
    if (rc == TR_OK)
        rc = store_begin(store, err);
    if (rc != TR_OK)
        return rc;
    rc = observe_locked(store, obs, dedup_window_ms, now_ms, &outcome, err);
    rc = store_finish(store, rc, err);
    if (rc == TR_OK && result != NULL)
        *result = outcome;
    return rc;
}
