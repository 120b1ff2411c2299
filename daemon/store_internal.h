/*
 * store_internal.h - what the store_*.c files share and nobody else sees:
 * the tr_store struct, the prepared-statement cache, transaction helpers,
 * bind/column helpers and the calls one part of the store makes into another
 * (the outbox enqueue and the incident transition run inside a caller's
 * transaction).
 *
 * Statements are cached by the address of their SQL text: each file keeps
 * its SQL in `static const char sql_x[]` and asks store_stmt() for it, so
 * the SQL stays next to the code that uses it.
 */
#ifndef TR_STORE_INTERNAL_H
#define TR_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

/* More than the store's distinct statements; hitting it is a bug (an error). */
#define STORE_STMT_CACHE_MAX 128

typedef struct store_cached {
    const char *sql;
    sqlite3_stmt *stmt;
} store_cached;

struct tr_store {
    sqlite3 *db;
    store_cached stmts[STORE_STMT_CACHE_MAX];
    size_t stmt_count;
    int batch;        /* inside tr_store_batch_begin: transactions are savepoints */
    int batch_tx;     /* the batch's transaction is open (begun at its first write) */
    int batch_failed; /* a step of the batch failed beyond its savepoint */
};

/* Map a SQLite result to a TR_E* code and record "store: what: sqlite message". */
int store_fail(tr_store *store, int sqlite_rc, const char *what, tr_error *err);

/*
 * The cached statement for sql (prepared on first use), reset and with its
 * bindings cleared. Borrowed: hand it back with store_done() after use.
 */
int store_stmt(tr_store *store, const char *sql, sqlite3_stmt **out, tr_error *err);
/* Reset a statement and clear its bindings (releases locks and borrowed text). */
void store_done(sqlite3_stmt *stmt);

/* Run a statement that returns no rows, then store_done() it. */
int store_exec(tr_store *store, sqlite3_stmt *stmt, const char *what, tr_error *err);
/* Rows changed by the last write statement. */
int64_t store_changes(tr_store *store);
int64_t store_last_id(tr_store *store);

/*
 * Binding: each helper does nothing once *rc holds an error, so a run of
 * binds is checked once at the end. Text is bound without copying (the
 * statement is always store_done() before the call returns).
 * store_bind_text binds NULL as SQL NULL, store_bind_str binds NULL as ''.
 */
void store_bind_text(sqlite3_stmt *stmt, int index, const char *text, int *rc);
void store_bind_str(sqlite3_stmt *stmt, int index, const char *text, int *rc);
void store_bind_int(sqlite3_stmt *stmt, int index, int64_t value, int *rc);
void store_bind_double(sqlite3_stmt *stmt, int index, double value, int *rc);

/*
 * Copy a text column into *out (NULL for SQL NULL); the copy is freed with
 * store_free_str. Sets *rc (a TR_E* code) to TR_ENOMEM when SQLite or the
 * copy ran out of memory, and does nothing once *rc holds an error.
 */
void store_column_str(sqlite3_stmt *stmt, int col, const char **out, int *rc);
void store_free_str(const char *s);

/*
 * Transactions: BEGIN IMMEDIATE (the write lock is taken up front, so a
 * transaction never fails half-way for a lock it could not upgrade), and
 * store_finish() commits when rc is TR_OK and rolls back otherwise, returning
 * rc or the commit's error.
 */
int store_begin(tr_store *store, tr_error *err);
int store_finish(tr_store *store, int rc, tr_error *err);

/* Fail with TR_ETOOBIG/TR_EINVAL when a text input breaks its bound. */
int store_check_text(const char *what, const char *text, size_t max, int required,
                     tr_error *err);
size_t store_clamp_limit(size_t limit);

/* Inside a transaction: add an outbox message (store_outbox.c). */
int store_outbox_add(tr_store *store, int64_t incident_id, const char *event,
                     const char *payload_json, int64_t now_ms, int64_t *id_out, tr_error *err);
int store_check_event(const char *event, tr_error *err);

/*
 * Inside a transaction: check incident id exists and apply t (may be NULL)
 * to it, enqueueing t->event (store_incident.c).
 */
int store_transition_locked(tr_store *store, int64_t incident_id, const tr_store_transition *t,
                            int64_t now_ms, tr_error *err);

/*
 * Analyses (store_records.c), also written by a chat turn that revises the
 * patch: check the bounds, then insert inside the caller's transaction
 * (record is a tr_store_analysis).
 */
int store_check_analysis(const tr_store_analysis *a, tr_error *err);
int store_analysis_insert(tr_store *store, const void *record, int64_t now_ms, int64_t *id,
                          tr_error *err);

/* 1 for a real state (not TR_INCIDENT_NONE, not out of range). */
int store_state_valid(int state);
/* The state's name for messages; never NULL. */
const char *store_state_label(int state);

/* Validate the parts of t that can be checked before writing anything. */
int store_check_transition(const tr_store_transition *t, tr_error *err);

#endif
