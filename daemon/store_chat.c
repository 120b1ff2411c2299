/*
 * store_chat.c - the follow-up conversation about an incident.
 *
 * A turn is written in one transaction with what it changes: the revised
 * analysis when the answer carried a new patch (so "the latest analysis" is
 * the one with the patch the operator discussed) and the outbox message
 * when the turn is announced (Slack's "Explain more" posts its answer in the
 * incident's thread). The turn number is read and written under the same
 * write lock, so two turns racing on one incident get 1 and 2, never 1 and 1.
 */
#include "store_internal.h"

#include "alloc.h"

#include <inttypes.h>
#include <string.h>

static const char sql_chat_next[] =
    "SELECT COALESCE(MAX(turn), 0) + 1 FROM chat_turns WHERE incident_id = ?1";
static const char sql_chat_add[] =
    "INSERT INTO chat_turns (incident_id, turn, actor, question, answer, patch, analysis_id,"
    " provider, model, tokens_in, tokens_out, created_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULLIF(?7, 0), ?8, ?9, ?10, ?11, ?12)";
static const char sql_chat_prune[] =
    "DELETE FROM chat_turns WHERE incident_id = ?1 AND turn <= ?2";
/* The newest `limit` turns, handed back oldest first. */
static const char sql_chat_recent[] =
    "SELECT id, incident_id, turn, actor, question, answer, patch, COALESCE(analysis_id, 0),"
    " provider, model, tokens_in, tokens_out, created_ms FROM"
    " (SELECT * FROM chat_turns WHERE incident_id = ?1 ORDER BY turn DESC LIMIT ?2)"
    " ORDER BY turn ASC";

static int check_turn(const tr_store_chat_turn *turn, const tr_store_analysis *revised,
                      tr_error *err)
{
    int rc = store_check_text("chat actor", turn->actor, TR_STORE_NAME_MAX, 1, err);

    if (rc == TR_OK)
        rc = store_check_text("chat question", turn->question, TR_STORE_MESSAGE_MAX, 1, err);
    if (rc == TR_OK)
        rc = store_check_text("chat answer", turn->answer, TR_STORE_TEXT_MAX, 1, err);
    if (rc == TR_OK)
        rc = store_check_text("chat patch", turn->patch, TR_STORE_TEXT_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("chat provider", turn->provider, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK)
        rc = store_check_text("chat model", turn->model, TR_STORE_NAME_MAX, 0, err);
    if (rc == TR_OK && revised != NULL) {
        rc = store_check_analysis(revised, err);
        if (rc == TR_OK && revised->incident_id != turn->incident_id)
            rc = tr_error_set(err, TR_EINVAL, "store: the revised analysis is about incident "
                              "%" PRId64 ", the turn about %" PRId64, revised->incident_id,
                              turn->incident_id);
    }
    return rc;
}

static int next_turn(tr_store *store, int64_t incident_id, int64_t *next, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_chat_next, &stmt, err);

    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, incident_id, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, "next chat turn", err);
    }
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *next = sqlite3_column_int64(stmt, 0);
        rc = TR_OK;
    } else {
        rc = store_fail(store, rc, "next chat turn", err);
    }
    store_done(stmt);
    return rc;
}

static int insert_turn(tr_store *store, const tr_store_chat_turn *turn, int64_t number,
                       int64_t analysis_id, int64_t now_ms, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc = store_stmt(store, sql_chat_add, &stmt, err);

    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, turn->incident_id, &bind);
    store_bind_int(stmt, 2, number, &bind);
    store_bind_text(stmt, 3, turn->actor, &bind);
    store_bind_text(stmt, 4, turn->question, &bind);
    store_bind_text(stmt, 5, turn->answer, &bind);
    store_bind_text(stmt, 6, turn->patch, &bind);
    store_bind_int(stmt, 7, analysis_id, &bind);
    store_bind_text(stmt, 8, turn->provider, &bind);
    store_bind_text(stmt, 9, turn->model, &bind);
    store_bind_int(stmt, 10, turn->tokens_in, &bind);
    store_bind_int(stmt, 11, turn->tokens_out, &bind);
    store_bind_int(stmt, 12, now_ms, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, "add chat turn", err);
    }
    return store_exec(store, stmt, "add chat turn", err);
}

static int prune_turns(tr_store *store, int64_t incident_id, int64_t newest, tr_error *err)
{
    sqlite3_stmt *stmt;
    int bind = SQLITE_OK;
    int rc;

    if (newest <= TR_STORE_CHAT_TURNS_KEPT)
        return TR_OK;
    rc = store_stmt(store, sql_chat_prune, &stmt, err);
    if (rc != TR_OK)
        return rc;
    store_bind_int(stmt, 1, incident_id, &bind);
    store_bind_int(stmt, 2, newest - TR_STORE_CHAT_TURNS_KEPT, &bind);
    if (bind != SQLITE_OK) {
        store_done(stmt);
        return store_fail(store, bind, "prune chat turns", err);
    }
    return store_exec(store, stmt, "prune chat turns", err);
}

int tr_store_chat_put(tr_store *store, const tr_store_chat_turn *turn,
                      const tr_store_analysis *revised, const tr_store_transition *t,
                      int64_t now_ms, int64_t *turn_out, int64_t *analysis_id_out,
                      tr_error *err)
{
    int64_t number = 0, analysis_id = 0;
    int rc = check_turn(turn, revised, err);

    if (rc == TR_OK)
        rc = store_check_transition(t, err);
    if (rc == TR_OK)
        rc = store_begin(store, err);
    if (rc != TR_OK)
        return rc;
    /* Also proves the incident exists (TR_ENOTFOUND) before anything is written. */
    rc = store_transition_locked(store, turn->incident_id, t, now_ms, err);
    if (rc == TR_OK)
        rc = next_turn(store, turn->incident_id, &number, err);
    if (rc == TR_OK && revised != NULL)
        rc = store_analysis_insert(store, revised, now_ms, &analysis_id, err);
    if (rc == TR_OK)
        rc = insert_turn(store, turn, number, analysis_id, now_ms, err);
    if (rc == TR_OK)
        rc = prune_turns(store, turn->incident_id, number, err);
    rc = store_finish(store, rc, err);
    if (rc != TR_OK)
        return rc;
    if (turn_out)
        *turn_out = number;
    if (analysis_id_out)
        *analysis_id_out = analysis_id;
    return TR_OK;
}

static void turn_clear(tr_store_chat_turn *t)
{
    store_free_str(t->actor);
    store_free_str(t->question);
    store_free_str(t->answer);
    store_free_str(t->patch);
    store_free_str(t->provider);
    store_free_str(t->model);
}

void tr_store_chat_list_free(tr_store_chat_list *list)
{
    size_t i;

    if (list == NULL)
        return;
    for (i = 0; i < list->count; i++)
        turn_clear(&list->items[i]);
    tr_free(list->items);
    tr_free(list);
}

static int turn_read(sqlite3_stmt *stmt, tr_store_chat_turn *t)
{
    int rc = TR_OK;

    t->id = sqlite3_column_int64(stmt, 0);
    t->incident_id = sqlite3_column_int64(stmt, 1);
    t->turn = sqlite3_column_int64(stmt, 2);
    store_column_str(stmt, 3, &t->actor, &rc);
    store_column_str(stmt, 4, &t->question, &rc);
    store_column_str(stmt, 5, &t->answer, &rc);
    store_column_str(stmt, 6, &t->patch, &rc);
    t->analysis_id = sqlite3_column_int64(stmt, 7);
    store_column_str(stmt, 8, &t->provider, &rc);
    store_column_str(stmt, 9, &t->model, &rc);
    t->tokens_in = sqlite3_column_int64(stmt, 10);
    t->tokens_out = sqlite3_column_int64(stmt, 11);
    t->created_ms = sqlite3_column_int64(stmt, 12);
    return rc;
}

int tr_store_chat_recent(tr_store *store, int64_t incident_id, size_t limit,
                         tr_store_chat_list **out, tr_error *err)
{
    tr_store_chat_list *list;
    sqlite3_stmt *stmt = NULL;
    int bind = SQLITE_OK;
    int rc;

    *out = NULL;
    if (limit > TR_STORE_CHAT_TURNS_KEPT)
        limit = TR_STORE_CHAT_TURNS_KEPT;
    list = tr_calloc(1, sizeof(*list));
    if (list == NULL || (limit && (list->items = tr_calloc(limit, sizeof(*list->items))) == NULL)) {
        tr_free(list);
        return tr_error_set(err, TR_ENOMEM, "store: chat turns: out of memory");
    }
    rc = store_stmt(store, sql_chat_recent, &stmt, err);
    if (rc != TR_OK)
        goto cleanup;
    store_bind_int(stmt, 1, incident_id, &bind);
    store_bind_int(stmt, 2, (int64_t)limit, &bind);
    if (bind != SQLITE_OK) {
        rc = store_fail(store, bind, "chat turns", err);
        goto cleanup;
    }
    while (list->count < limit && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        rc = turn_read(stmt, &list->items[list->count++]);
        if (rc != TR_OK) {
            rc = tr_error_set(err, rc, "store: chat turns: out of memory");
            goto cleanup;
        }
    }
    rc = list->count < limit && rc != SQLITE_DONE ? store_fail(store, rc, "chat turns", err)
                                                  : TR_OK;
cleanup:
    store_done(stmt);
    if (rc != TR_OK) {
        tr_store_chat_list_free(list);
        return rc;
    }
    *out = list;
    return TR_OK;
}
