/*
 * store_misc.c - the small pieces of daemon state that must survive a
 * restart: watch resume points (resourceVersion per watcher), budgets (LLM
 * calls per hour, tokens per day), Terraform run logs already processed,
 * and a key/value table for anything else.
 */
#include "store_internal.h"

#include "alloc.h"

#include <string.h>

static const char sql_watch_get[] =
    "SELECT resource_version, updated_ms FROM watch_state WHERE key = ?1";
static const char sql_watch_put[] =
    "INSERT INTO watch_state (key, resource_version, updated_ms) VALUES (?1, ?2, ?3)"
    " ON CONFLICT(key) DO UPDATE SET resource_version = excluded.resource_version,"
    " updated_ms = excluded.updated_ms";
static const char sql_watch_clear[] = "DELETE FROM watch_state WHERE key = ?1";

static const char sql_budget_get[] =
    "SELECT value FROM budgets WHERE key = ?1 AND window_start_ms = ?2";
static const char sql_budget_add[] =
    "INSERT INTO budgets (key, window_start_ms, value, updated_ms) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT(key, window_start_ms) DO UPDATE SET value = value + excluded.value,"
    " updated_ms = excluded.updated_ms";
static const char sql_budget_expire[] =
    "DELETE FROM budgets WHERE key = ?1 AND window_start_ms < ?2";

static const char sql_tf_seen[] =
    "SELECT 1 FROM terraform_files WHERE path = ?1 AND size_bytes = ?2 AND content_hash = ?3";
static const char sql_tf_mark[] =
    "INSERT INTO terraform_files (path, size_bytes, content_hash, processed_ms)"
    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(path) DO UPDATE SET size_bytes = excluded.size_bytes,"
    " content_hash = excluded.content_hash, processed_ms = excluded.processed_ms";

static const char sql_kv_get[] = "SELECT value FROM kv WHERE key = ?1";
static const char sql_kv_put[] =
    "INSERT INTO kv (key, value, updated_ms) VALUES (?1, ?2, ?3)"
    " ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms";
static const char sql_kv_delete[] = "DELETE FROM kv WHERE key = ?1";

/*
 * Read one row of a statement whose parameters are bound (bind holds the
 * binds' result): *text gets column 0 as a copy (when text is not NULL),
 * *value column `value_col` (when value is not NULL). TR_ENOTFOUND without a row.
 */
static int read_row(tr_store *store, sqlite3_stmt *stmt, int bind, char **text, int value_col,
                    int64_t *value, const char *what, tr_error *err)
{
    const char *copy = NULL;
    int rc = bind == SQLITE_OK ? sqlite3_step(stmt) : bind;

    if (rc == SQLITE_ROW) {
        rc = TR_OK;
        if (text != NULL)
            store_column_str(stmt, 0, &copy, &rc);
        if (rc != TR_OK)
            rc = tr_error_set(err, rc, "store: %s: out of memory", what);
        else if (value != NULL)
            *value = sqlite3_column_int64(stmt, value_col);
    } else if (rc == SQLITE_DONE) {
        rc = tr_error_set(err, TR_ENOTFOUND, "store: %s: not found", what);
    } else {
        rc = store_fail(store, rc, what, err);
    }
    store_done(stmt);
    if (text != NULL)
        *text = (char *)copy;
    return rc;
}

static int run_write(tr_store *store, sqlite3_stmt *stmt, int bind, const char *what,
                     tr_error *err)
{
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, what, err);
    }
    return store_exec(store, stmt, what, err);
}

/* ------------------------------------------------------------ watch state */

int tr_store_watch_get(tr_store *store, const char *key, char **resource_version,
                       int64_t *updated_ms, tr_error *err)
{
    sqlite3_stmt *stmt;
    int64_t updated = 0;
    int bind = SQLITE_OK;
    int rc = store_check_text("watch key", key, TR_STORE_NAME_MAX, 1, err);

    *resource_version = NULL;
    if (rc == TR_OK)
        rc = store_stmt(store, sql_watch_get, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, key, &bind);
    rc = read_row(store, stmt, bind, resource_version, 1, &updated, "watch state", err);
    if (rc == TR_OK && updated_ms != NULL)
        *updated_ms = updated;
    return rc;
}

int tr_store_watch_put(tr_store *store, const char *key, const char *resource_version,
                       int64_t now_ms, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_check_text("watch key", key, TR_STORE_NAME_MAX, 1, err);

    if (rc == TR_OK)
        rc = store_check_text("resourceVersion", resource_version, TR_STORE_NAME_MAX, 1, err);
    if (rc == TR_OK)
        rc = store_stmt(store, sql_watch_put, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, key, &bind);
    store_bind_text(stmt, 2, resource_version, &bind);
    store_bind_int(stmt, 3, now_ms, &bind);
    /* A single statement is its own transaction. */
    return run_write(store, stmt, bind, "put watch state", err);
}

int tr_store_watch_clear(tr_store *store, const char *key, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_check_text("watch key", key, TR_STORE_NAME_MAX, 1, err);

    if (rc == TR_OK)
        rc = store_stmt(store, sql_watch_clear, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, key, &bind);
    return run_write(store, stmt, bind, "clear watch state", err);
}

/* ------------------------------------------------------------ budgets */

static int budget_read(tr_store *store, const char *key, int64_t window_start_ms,
                       int64_t *value, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_budget_get, &stmt, err);

    *value = 0;
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, key, &bind);
    store_bind_int(stmt, 2, window_start_ms, &bind);
    rc = read_row(store, stmt, bind, NULL, 0, value, "budget", err);
    return rc == TR_ENOTFOUND ? TR_OK : rc;
}

static int budget_add_locked(tr_store *store, const char *key, int64_t window_start_ms,
                             int64_t amount, int64_t limit, int64_t now_ms, int64_t *total,
                             tr_error *err)
{
    sqlite3_stmt *stmt;
    int64_t current = 0;
    int bind = SQLITE_OK;
    int rc = budget_read(store, key, window_start_ms, &current, err);

    *total = current;
    if (rc != TR_OK)
        return rc;
    if ((amount > 0 && current > INT64_MAX - amount) ||
        (amount < 0 && current < INT64_MIN - amount))
        return tr_error_set(err, TR_EINVAL, "store: budget %s would overflow", key);
    if (limit >= 0 && amount > 0 && current + amount > limit)
        return tr_error_set(err, TR_ELIMIT, "store: budget %s: %lld + %lld exceeds %lld", key,
                            (long long)current, (long long)amount, (long long)limit);
    rc = store_stmt(store, sql_budget_add, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, key, &bind);
    store_bind_int(stmt, 2, window_start_ms, &bind);
    store_bind_int(stmt, 3, amount, &bind);
    store_bind_int(stmt, 4, now_ms, &bind);
    rc = run_write(store, stmt, bind, "add to budget", err);
    if (rc != TR_OK)
        return rc;
    *total = current + amount;
    /* Earlier windows are over: drop them so the table stays one row per key. */
    rc = store_stmt(store, sql_budget_expire, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, key, &bind);
    store_bind_int(stmt, 2, window_start_ms, &bind);
    return run_write(store, stmt, bind, "expire budget windows", err);
}

int tr_store_budget_add(tr_store *store, const char *key, int64_t window_start_ms,
                        int64_t amount, int64_t limit, int64_t now_ms, int64_t *total,
                        tr_error *err)
{
    int64_t after = 0;
    int rc = store_check_text("budget key", key, TR_STORE_NAME_MAX, 1, err);

    if (rc == TR_OK)
        rc = store_begin(store, err);
    if (rc != TR_OK)
        return rc;
    rc = budget_add_locked(store, key, window_start_ms, amount, limit, now_ms, &after, err);
    rc = store_finish(store, rc, err);
    /* On TR_ELIMIT the counter is reported as it stays. */
    if ((rc == TR_OK || rc == TR_ELIMIT) && total != NULL)
        *total = after;
    return rc;
}

int tr_store_budget_get(tr_store *store, const char *key, int64_t window_start_ms,
                        int64_t *value, tr_error *err)
{
    int rc = store_check_text("budget key", key, TR_STORE_NAME_MAX, 1, err);

    *value = 0;
    if (rc != TR_OK)
        return rc;
    return budget_read(store, key, window_start_ms, value, err);
}

/* ------------------------------------------------------------ terraform files */

int tr_store_tf_file_seen(tr_store *store, const char *path, int64_t size_bytes,
                          const char *content_hash, int *seen, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_check_text("path", path, TR_STORE_NAME_MAX, 1, err);

    *seen = 0;
    if (rc == TR_OK)
        rc = store_check_text("content hash", content_hash, TR_STORE_NAME_MAX, 1, err);
    if (rc == TR_OK)
        rc = store_stmt(store, sql_tf_seen, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, path, &bind);
    store_bind_int(stmt, 2, size_bytes, &bind);
    store_bind_text(stmt, 3, content_hash, &bind);
    rc = read_row(store, stmt, bind, NULL, 0, NULL, "terraform file", err);
    if (rc == TR_OK)
        *seen = 1;
    return rc == TR_ENOTFOUND ? TR_OK : rc;
}

int tr_store_tf_file_mark(tr_store *store, const char *path, int64_t size_bytes,
                          const char *content_hash, int64_t now_ms, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_check_text("path", path, TR_STORE_NAME_MAX, 1, err);

    if (rc == TR_OK)
        rc = store_check_text("content hash", content_hash, TR_STORE_NAME_MAX, 1, err);
    if (rc == TR_OK)
        rc = store_stmt(store, sql_tf_mark, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, path, &bind);
    store_bind_int(stmt, 2, size_bytes, &bind);
    store_bind_text(stmt, 3, content_hash, &bind);
    store_bind_int(stmt, 4, now_ms, &bind);
    return run_write(store, stmt, bind, "mark terraform file", err);
}

/* ------------------------------------------------------------ key/value */

int tr_store_kv_get(tr_store *store, const char *key, char **value, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_check_text("key", key, TR_STORE_NAME_MAX, 1, err);

    *value = NULL;
    if (rc == TR_OK)
        rc = store_stmt(store, sql_kv_get, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, key, &bind);
    return read_row(store, stmt, bind, value, 0, NULL, "key", err);
}

int tr_store_kv_put(tr_store *store, const char *key, const char *value, int64_t now_ms,
                    tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_check_text("key", key, TR_STORE_NAME_MAX, 1, err);

    if (rc == TR_OK && value == NULL)
        rc = tr_error_set(err, TR_EINVAL, "store: kv %s: no value", key);
    if (rc == TR_OK)
        rc = store_check_text("value", value, TR_STORE_TEXT_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_stmt(store, sql_kv_put, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, key, &bind);
    store_bind_text(stmt, 2, value, &bind);
    store_bind_int(stmt, 3, now_ms, &bind);
    return run_write(store, stmt, bind, "put key", err);
}

int tr_store_kv_delete(tr_store *store, const char *key, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_check_text("key", key, TR_STORE_NAME_MAX, 1, err);

    if (rc == TR_OK)
        rc = store_stmt(store, sql_kv_delete, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_text(stmt, 1, key, &bind);
    return run_write(store, stmt, bind, "delete key", err);
}
