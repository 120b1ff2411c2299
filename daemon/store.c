/*
 * store.c - opening and closing the SQLite database, schema migrations, the
 * prepared-statement cache and the transaction helpers the other store_*.c
 * files build on.
 *
 * Connection settings, and why:
 * - journal_mode=WAL: readers (the HTTP API listing incidents) never block
 *   the writer, and a commit is one append to the WAL.
 * - synchronous=FULL: every commit is fsynced before it returns. triaged
 *   commits rarely (a few changes per incident), and most commits announce
 *   something that leaves the process (an outbox message, a PR, a delivery
 *   mark). With NORMAL a power cut may roll back the last commits: a
 *   notification already sent would be sent again, a PR opened again. The
 *   cost, one fsync per state change, is small at this rate.
 * - busy_timeout=5000: only another process (an operator's sqlite3 shell, a
 *   backup) contends for the lock; waiting a little beats failing.
 * - foreign_keys=ON: deliveries, analyses, ... cannot point at nothing.
 *
 * Migrations: PRAGMA user_version is the schema version. Each migration runs
 * in its own transaction together with the version bump, so a crash leaves
 * the database at the previous version, never half-migrated. A database
 * from a newer triaged is refused before anything is written to it.
 */
#include "store_internal.h"

#include "alloc.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define STORE_BUSY_TIMEOUT_MS 5000

/*
 * Schema v1: everything. Incident ids use AUTOINCREMENT so an id is never
 * reused, even after rows are deleted: ids appear in URLs, branch names and
 * chat threads. A fingerprint is unique among live incidents only: a retired
 * incident keeps its fingerprint for history.
 */
static const char schema_v1[] =
    "CREATE TABLE incidents ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " fingerprint TEXT NOT NULL,"
    " live INTEGER NOT NULL DEFAULT 1,"
    " source TEXT NOT NULL,"
    " cluster TEXT NOT NULL DEFAULT '',"
    " namespace TEXT NOT NULL DEFAULT '',"
    " kind TEXT NOT NULL DEFAULT '',"
    " name TEXT NOT NULL DEFAULT '',"
    " failure_class TEXT NOT NULL DEFAULT '',"
    " title TEXT NOT NULL DEFAULT '',"
    " message TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL,"
    " error TEXT,"
    " facts_json TEXT,"
    " observation_count INTEGER NOT NULL DEFAULT 0,"
    " reopen_count INTEGER NOT NULL DEFAULT 0,"
    " first_seen_ms INTEGER NOT NULL,"
    " last_seen_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " resolved_at_ms INTEGER);"
    "CREATE UNIQUE INDEX incidents_live_fingerprint ON incidents(fingerprint) WHERE live = 1;"
    "CREATE INDEX incidents_state ON incidents(state, id);"
    "CREATE INDEX incidents_namespace ON incidents(namespace, id);"
    "CREATE TABLE observations ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,"
    " fingerprint TEXT NOT NULL,"
    " source TEXT NOT NULL,"
    " cluster TEXT, namespace TEXT, kind TEXT, name TEXT,"
    " owner_kind TEXT, owner_name TEXT, failure_class TEXT, message TEXT,"
    " raw_ref TEXT, raw_json TEXT, facts_json TEXT,"
    " observed_ms INTEGER NOT NULL,"
    " recorded_ms INTEGER NOT NULL);"
    "CREATE INDEX observations_incident ON observations(incident_id, id);"
    "CREATE TABLE evidence ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,"
    " bundle_json TEXT NOT NULL,"
    " token_estimate INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL);"
    "CREATE INDEX evidence_incident ON evidence(incident_id, id);"
    "CREATE TABLE analyses ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,"
    " summary TEXT NOT NULL,"
    " root_cause TEXT NOT NULL,"
    " severity TEXT NOT NULL DEFAULT '',"
    " confidence REAL NOT NULL DEFAULT 0,"
    " evidence_json TEXT, remediation_json TEXT, patch TEXT,"
    " provider TEXT, model TEXT, prompt_hash TEXT,"
    " tokens_in INTEGER NOT NULL DEFAULT 0,"
    " tokens_out INTEGER NOT NULL DEFAULT 0,"
    " fallback_reason TEXT,"
    " created_ms INTEGER NOT NULL);"
    "CREATE INDEX analyses_incident ON analyses(incident_id, id);"
    "CREATE TABLE decisions ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,"
    " decision TEXT NOT NULL,"
    " actor TEXT NOT NULL,"
    " reason TEXT,"
    " created_ms INTEGER NOT NULL);"
    "CREATE INDEX decisions_incident ON decisions(incident_id, id);"
    "CREATE TABLE pull_requests ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,"
    " forge TEXT NOT NULL,"
    " url TEXT NOT NULL UNIQUE,"
    " number INTEGER NOT NULL,"
    " branch TEXT NOT NULL,"
    " head_commit TEXT,"
    " state TEXT NOT NULL,"
    " etag TEXT,"
    " last_polled_ms INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL);"
    "CREATE INDEX pull_requests_incident ON pull_requests(incident_id, id);"
    "CREATE INDEX pull_requests_state ON pull_requests(state, last_polled_ms);"
    "CREATE TABLE outbox_messages ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " incident_id INTEGER REFERENCES incidents(id) ON DELETE SET NULL,"
    " event TEXT NOT NULL,"
    " payload_json TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE outbox_sinks ("
    " name TEXT PRIMARY KEY,"
    " cursor_id INTEGER NOT NULL,"
    " registered_ms INTEGER NOT NULL);"
    "CREATE TABLE outbox_deliveries ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " message_id INTEGER NOT NULL REFERENCES outbox_messages(id) ON DELETE CASCADE,"
    " sink TEXT NOT NULL REFERENCES outbox_sinks(name) ON DELETE CASCADE,"
    " delivery_id TEXT NOT NULL UNIQUE,"
    " state TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_ms INTEGER NOT NULL,"
    " last_error TEXT,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " delivered_ms INTEGER,"
    " UNIQUE (message_id, sink));"
    "CREATE INDEX outbox_deliveries_due ON outbox_deliveries(sink, state, next_attempt_ms);"
    "CREATE TABLE watch_state ("
    " key TEXT PRIMARY KEY,"
    " resource_version TEXT NOT NULL,"
    " updated_ms INTEGER NOT NULL);"
    "CREATE TABLE budgets ("
    " key TEXT NOT NULL,"
    " window_start_ms INTEGER NOT NULL,"
    " value INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " PRIMARY KEY (key, window_start_ms));"
    "CREATE TABLE terraform_files ("
    " path TEXT PRIMARY KEY,"
    " size_bytes INTEGER NOT NULL,"
    " content_hash TEXT NOT NULL,"
    " processed_ms INTEGER NOT NULL);"
    "CREATE TABLE kv ("
    " key TEXT PRIMARY KEY,"
    " value TEXT NOT NULL,"
    " updated_ms INTEGER NOT NULL);";

/*
 * Schema v2: the follow-up conversation per incident (`triaged chat`, the
 * API's /chat, Slack's "Explain more"). turn numbers are per incident and
 * never reused; a turn that revised the patch points at the analysis row it
 * added (the patch itself lives there, where the fixer looks for it).
 */
static const char schema_v2[] =
    "CREATE TABLE chat_turns ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,"
    " turn INTEGER NOT NULL,"
    " actor TEXT NOT NULL,"
    " question TEXT NOT NULL,"
    " answer TEXT NOT NULL,"
    " patch TEXT,"
    " analysis_id INTEGER REFERENCES analyses(id) ON DELETE SET NULL,"
    " provider TEXT, model TEXT,"
    " tokens_in INTEGER NOT NULL DEFAULT 0,"
    " tokens_out INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL,"
    " UNIQUE (incident_id, turn));";

typedef struct store_migration {
    int version;
    const char *sql;
} store_migration;

/* Append only; a released migration is never edited. */
static const store_migration migrations[] = {
    { 1, schema_v1 },
    { 2, schema_v2 },
};

#define STORE_SCHEMA_VERSION 2

static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";
static const char sql_savepoint[] = "SAVEPOINT tr_batch_step";
static const char sql_release[] = "RELEASE tr_batch_step";
static const char sql_rollback_to[] = "ROLLBACK TO tr_batch_step";
static const char sql_user_version[] = "PRAGMA user_version";

int tr_store_schema_version(void)
{
    return STORE_SCHEMA_VERSION;
}

int store_fail(tr_store *store, int sqlite_rc, const char *what, tr_error *err)
{
    const char *detail;
    int code;

    switch (sqlite_rc & 0xff) {
    case SQLITE_NOMEM: code = TR_ENOMEM; break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: code = TR_EBUSY; break;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN: code = TR_EIO; break;
    case SQLITE_TOOBIG: code = TR_ETOOBIG; break;
    default: code = TR_ESTORE; break;
    }
    /* errmsg describes the last failed call on this connection, which is this one. */
    if (store != NULL && store->db != NULL &&
        (sqlite3_errcode(store->db) & 0xff) == (sqlite_rc & 0xff))
        detail = sqlite3_errmsg(store->db);
    else
        detail = sqlite3_errstr(sqlite_rc);
    return tr_error_set(err, code, "store: %s: %s", what, detail);
}

int store_stmt(tr_store *store, const char *sql, sqlite3_stmt **out, tr_error *err)
{
    sqlite3_stmt *stmt = NULL;
    size_t i;
    int rc;

    *out = NULL;
    for (i = 0; i < store->stmt_count; i++) {
        if (store->stmts[i].sql == sql) {
            *out = store->stmts[i].stmt;
            return TR_OK;
        }
    }
    if (store->stmt_count == STORE_STMT_CACHE_MAX)
        return tr_error_set(err, TR_ESTORE, "store: statement cache full (%d)",
                            STORE_STMT_CACHE_MAX);
    rc = sqlite3_prepare_v3(store->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
    if (rc != SQLITE_OK) {
        rc = store_fail(store, rc, "prepare", err);
        (void)sqlite3_finalize(stmt); /* NULL-safe; frees a half-prepared statement */
        return rc;
    }
    store->stmts[store->stmt_count].sql = sql;
    store->stmts[store->stmt_count].stmt = stmt;
    store->stmt_count++;
    *out = stmt;
    return TR_OK;
}

void store_done(sqlite3_stmt *stmt)
{
    if (stmt == NULL)
        return;
    /* reset repeats the error of the last step, which the caller has already handled */
    (void)sqlite3_reset(stmt);
    (void)sqlite3_clear_bindings(stmt);
}

int store_exec(tr_store *store, sqlite3_stmt *stmt, const char *what, tr_error *err)
{
    int rc = sqlite3_step(stmt);

    while (rc == SQLITE_ROW)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        rc = store_fail(store, rc, what, err);
    else
        rc = TR_OK;
    store_done(stmt);
    return rc;
}

int64_t store_changes(tr_store *store)
{
    return (int64_t)sqlite3_changes64(store->db);
}

int64_t store_last_id(tr_store *store)
{
    return (int64_t)sqlite3_last_insert_rowid(store->db);
}

void store_bind_text(sqlite3_stmt *stmt, int index, const char *text, int *rc)
{
    if (*rc != SQLITE_OK)
        return;
    if (text == NULL)
        *rc = sqlite3_bind_null(stmt, index);
    else
        *rc = sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
}

void store_bind_str(sqlite3_stmt *stmt, int index, const char *text, int *rc)
{
    store_bind_text(stmt, index, text ? text : "", rc);
}

void store_bind_int(sqlite3_stmt *stmt, int index, int64_t value, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc = sqlite3_bind_int64(stmt, index, (sqlite3_int64)value);
}

void store_bind_double(sqlite3_stmt *stmt, int index, double value, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc = sqlite3_bind_double(stmt, index, value);
}

void store_column_str(sqlite3_stmt *stmt, int col, const char **out, int *rc)
{
    const unsigned char *text;
    int len;

    *out = NULL;
    if (*rc != TR_OK || sqlite3_column_type(stmt, col) == SQLITE_NULL)
        return;
    text = sqlite3_column_text(stmt, col);
    if (text == NULL) {
        *rc = TR_ENOMEM; /* a non-NULL value that could not be converted */
        return;
    }
    len = sqlite3_column_bytes(stmt, col);
    *out = tr_strndup((const char *)text, (size_t)len);
    if (*out == NULL)
        *rc = TR_ENOMEM;
}

void store_free_str(const char *s)
{
    tr_free((void *)s);
}

static int run_cached(tr_store *store, const char *sql, tr_error *err)
{
    sqlite3_stmt *stmt;
    int rc = store_stmt(store, sql, &stmt, err);

    if (rc != TR_OK)
        return rc;
    return store_exec(store, stmt, sql, err);
}

static void rollback(tr_store *store)
{
    int rc;

    /* SQLite rolls back by itself on some errors (SQLITE_FULL, NOMEM, ...). */
    if (sqlite3_get_autocommit(store->db))
        return;
    rc = run_cached(store, sql_rollback, NULL);
    if (rc != TR_OK)
        tr_log_error("store", "rollback failed: %s", sqlite3_errmsg(store->db));
}

int store_begin(tr_store *store, tr_error *err)
{
    int rc;

    if (store->batch) {
        if (store->batch_tx && sqlite3_get_autocommit(store->db)) {
            /* SQLite ended the batch's transaction by itself (an I/O error): what the
             * batch wrote is lost; its commit says so. */
            store->batch_failed = 1;
            store->batch_tx = 0;
        }
        /* Begun at the first write, so a burst that changes nothing costs nothing. */
        if (!store->batch_tx) {
            rc = run_cached(store, sql_begin, err);
            if (rc != TR_OK)
                return rc;
            store->batch_tx = 1;
        }
        return run_cached(store, sql_savepoint, err);
    }
    if (!sqlite3_get_autocommit(store->db)) {
        /* A transaction left open by a failed rollback: end it rather than nest. */
        tr_log_warn("store", "transaction still open before begin; rolling back");
        rollback(store);
    }
    return run_cached(store, sql_begin, err);
}

int store_finish(tr_store *store, int rc, tr_error *err)
{
    if (store->batch) {
        /* One step of a batch: kept or undone alone; the batch commits it later. */
        if (rc == TR_OK && run_cached(store, sql_release, err) == TR_OK)
            return TR_OK;
        if (rc == TR_OK)
            rc = err && err->code ? err->code : TR_EIO;
        if (sqlite3_get_autocommit(store->db) ||
            run_cached(store, sql_rollback_to, NULL) != TR_OK ||
            run_cached(store, sql_release, NULL) != TR_OK) {
            tr_log_error("store", "a batched step could not be undone: the batch is dropped");
            store->batch_failed = 1;
        }
        return rc;
    }
    if (rc == TR_OK) {
        rc = run_cached(store, sql_commit, err);
        if (rc == TR_OK)
            return TR_OK;
    }
    rollback(store);
    return rc;
}

int tr_store_batch_begin(tr_store *store, tr_error *err)
{
    if (store->batch)
        return tr_error_set(err, TR_EINVAL, "store: batches do not nest");
    store->batch = 1;
    store->batch_tx = 0;
    store->batch_failed = 0;
    return TR_OK;
}

int tr_store_batch_commit(tr_store *store, tr_error *err)
{
    int rc = TR_OK, failed = store->batch_failed;

    if (!store->batch)
        return tr_error_set(err, TR_EINVAL, "store: no batch to commit");
    store->batch = 0;
    store->batch_failed = 0;
    if (store->batch_tx && sqlite3_get_autocommit(store->db))
        failed = 1;
    if (store->batch_tx) {
        if (failed) {
            rollback(store);
        } else {
            rc = run_cached(store, sql_commit, err);
            if (rc != TR_OK)
                rollback(store);
        }
    }
    store->batch_tx = 0;
    if (failed && rc == TR_OK)
        rc = tr_error_set(err, TR_EIO, "store: a batch was lost after a failed step");
    return rc;
}

int store_check_text(const char *what, const char *text, size_t max, int required,
                     tr_error *err)
{
    if (text == NULL || text[0] == '\0') {
        if (required)
            return tr_error_set(err, TR_EINVAL, "store: %s is required", what);
        return TR_OK;
    }
    if (strnlen(text, max + 1) > max)
        return tr_error_set(err, TR_ETOOBIG, "store: %s is longer than %zu bytes", what, max);
    return TR_OK;
}

size_t store_clamp_limit(size_t limit)
{
    return (limit == 0 || limit > TR_STORE_LIST_MAX) ? TR_STORE_LIST_MAX : limit;
}

/* ------------------------------------------------------------ open */

static int read_user_version(tr_store *store, int *version, tr_error *err)
{
    sqlite3_stmt *stmt;
    int rc = store_stmt(store, sql_user_version, &stmt, err);

    if (rc != TR_OK)
        return rc;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *version = sqlite3_column_int(stmt, 0);
        rc = TR_OK;
    } else {
        rc = store_fail(store, rc, "read schema version", err);
    }
    store_done(stmt);
    return rc;
}

static int apply_migration(tr_store *store, const store_migration *migration, tr_error *err)
{
    char bump[64];
    char *message = NULL;
    int version = 0;
    int rc;

    rc = store_begin(store, err);
    if (rc != TR_OK)
        return rc;
    /* Re-read under the write lock: another process may have migrated meanwhile. */
    rc = read_user_version(store, &version, err);
    if (rc != TR_OK || version >= migration->version)
        goto cleanup;
    rc = sqlite3_exec(store->db, migration->sql, NULL, NULL, &message);
    if (rc == SQLITE_OK) {
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", migration->version);
        rc = sqlite3_exec(store->db, bump, NULL, NULL, &message);
    }
    if (rc != SQLITE_OK) {
        rc = tr_error_set(err, rc == SQLITE_NOMEM ? TR_ENOMEM : TR_ESTORE,
                          "store: migration to schema version %d: %s", migration->version,
                          message ? message : sqlite3_errstr(rc));
        goto cleanup;
    }
    rc = TR_OK;
cleanup:
    sqlite3_free(message);
    return store_finish(store, rc, err);
}

static int check_version(const char *path, int version, tr_error *err)
{
    if (version <= STORE_SCHEMA_VERSION)
        return TR_OK;
    return tr_error_set(err, TR_ESTORE,
                        "store: %s has schema version %d, newer than the %d this triaged "
                        "supports; run a newer triaged or use another state_dir",
                        path, version, STORE_SCHEMA_VERSION);
}

static int migrate(tr_store *store, const char *path, tr_error *err)
{
    size_t i;
    int version = 0;
    int rc = read_user_version(store, &version, err);

    if (rc == TR_OK)
        rc = check_version(path, version, err);
    if (rc != TR_OK)
        return rc;
    for (i = 0; i < sizeof(migrations) / sizeof(migrations[0]); i++) {
        if (migrations[i].version <= version)
            continue;
        rc = apply_migration(store, &migrations[i], err);
        if (rc != TR_OK)
            return rc;
        tr_log_info("store", "%s: migrated to schema version %d", path, migrations[i].version);
    }
    return TR_OK;
}

static int exec_pragma(tr_store *store, const char *sql, const char *expect, tr_error *err)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    /* Pragmas run once: not worth a cache slot. */
    rc = sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        rc = store_fail(store, rc, sql, err);
        goto cleanup;
    }
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = store_fail(store, rc, sql, err);
        goto cleanup;
    }
    if (expect != NULL) {
        const unsigned char *value = rc == SQLITE_ROW ? sqlite3_column_text(stmt, 0) : NULL;

        if (value == NULL || strcmp((const char *)value, expect) != 0) {
            rc = tr_error_set(err, TR_ESTORE, "store: %s: got %s, want %s", sql,
                              value ? (const char *)value : "nothing", expect);
            goto cleanup;
        }
    }
    rc = TR_OK;
cleanup:
    (void)sqlite3_finalize(stmt);
    return rc;
}

/* The database (and with it the WAL, which copies its mode) is readable by us only. */
static int create_private(const char *path, tr_error *err)
{
    int fd;

    if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
        return TR_OK;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return tr_error_set(err, TR_EIO, "store: open %s: %s", path, strerror(errno));
    (void)close(fd); /* opened only to create it; nothing was written */
    return TR_OK;
}

static int configure(tr_store *store, const char *path, tr_error *err)
{
    int memory = strcmp(path, ":memory:") == 0;
    int rc;

    rc = sqlite3_extended_result_codes(store->db, 1);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(store->db, STORE_BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK)
        return store_fail(store, rc, "configure", err);
    rc = exec_pragma(store, "PRAGMA foreign_keys = ON", NULL, err);
    if (rc == TR_OK)
        rc = exec_pragma(store, "PRAGMA journal_mode = WAL", memory ? "memory" : "wal", err);
    if (rc == TR_OK)
        rc = exec_pragma(store, "PRAGMA synchronous = FULL", NULL, err);
    return rc;
}

int tr_store_open(tr_store **out, const char *path, tr_error *err)
{
    tr_store *store = NULL;
    int version = 0;
    int rc;

    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return tr_error_set(err, TR_EINVAL, "store: no database path");
    rc = create_private(path, err);
    if (rc != TR_OK)
        return rc;
    store = tr_calloc(1, sizeof(*store));
    if (store == NULL)
        return tr_error_set(err, TR_ENOMEM, "store: out of memory");
    rc = sqlite3_open_v2(path, &store->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI, NULL);
    if (rc != SQLITE_OK) {
        rc = store_fail(store, rc, path, err);
        goto cleanup;
    }
    /* Check the version before WAL mode is set: that would already write the file. */
    rc = read_user_version(store, &version, err);
    if (rc == TR_OK)
        rc = check_version(path, version, err);
    if (rc == TR_OK)
        rc = configure(store, path, err);
    if (rc == TR_OK)
        rc = migrate(store, path, err);
    if (rc == TR_OK) {
        /* Prepared now so that a rollback never needs memory to prepare itself. */
        sqlite3_stmt *stmt;

        rc = store_stmt(store, sql_rollback, &stmt, err);
        if (rc == TR_OK)
            rc = store_stmt(store, sql_begin, &stmt, err);
        if (rc == TR_OK)
            rc = store_stmt(store, sql_commit, &stmt, err);
    }
cleanup:
    if (rc != TR_OK) {
        tr_store_close(store);
        return rc;
    }
    *out = store;
    return TR_OK;
}

void tr_store_close(tr_store *store)
{
    size_t i;
    int rc;

    if (store == NULL)
        return;
    for (i = 0; i < store->stmt_count; i++)
        (void)sqlite3_finalize(store->stmts[i].stmt); /* errors were reported by step */
    store->stmt_count = 0;
    if (store->db != NULL) {
        /* sqlite3_close, not _v2: a statement left unfinalised is a bug we want to see. */
        rc = sqlite3_close(store->db);
        if (rc != SQLITE_OK)
            tr_log_error("store", "close: %s", sqlite3_errstr(rc));
    }
    tr_free(store);
}
