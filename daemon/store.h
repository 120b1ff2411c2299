/*
 * store.h - triaged's durable state: incidents and the observations that feed
 * them, evidence bundles, analyses, decisions, pull requests, the notification
 * outbox, and the small pieces of daemon state that must survive a restart
 * (watch resourceVersions, budgets, processed Terraform logs, key/value).
 *
 * The store owns the database. Its interface is deliberately narrow and knows
 * nothing of SQL: the embedded backend is SQLite in WAL mode, and a PostgreSQL
 * backend can implement the same calls later. A tr_store is used by one thread
 * at a time (the loop thread).
 *
 * Conventions:
 * - Every call that changes state is one transaction: it happens entirely or
 *   not at all. Outbox messages announcing a change are written in the same
 *   transaction as the change.
 * - Times are int64 milliseconds since the epoch, always passed in by the
 *   caller (the store never reads the clock), so tests control time.
 * - Getters return TR_ENOTFOUND when there is nothing to return.
 * - Structs returned through `**out` are owned by the caller, who frees them
 *   with the matching _free function (which accepts NULL). Their strings are
 *   owned by the struct. Structs passed in are borrowed; only the fields
 *   documented as inputs are read.
 * - Text inputs are bounded: names and identifiers by TR_STORE_NAME_MAX,
 *   one-line texts by TR_STORE_MESSAGE_MAX, JSON documents and patches by
 *   TR_STORE_TEXT_MAX; longer inputs fail with TR_ETOOBIG.
 */
#ifndef TR_STORE_H
#define TR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define TR_STORE_NAME_MAX 2048
#define TR_STORE_MESSAGE_MAX 65536
#define TR_STORE_TEXT_MAX (1024 * 1024)
/* Observation rows kept per incident; older ones are dropped (the count stays). */
#define TR_STORE_OBSERVATIONS_KEPT 50
/* Largest page of a list call; bigger limits are clamped. */
#define TR_STORE_LIST_MAX 1000

typedef struct tr_store tr_store;

/* ------------------------------------------------------------ open/close */

/*
 * Open (creating when missing, mode 0600) the database at path and bring its
 * schema up to date. A database written by a newer triaged (higher schema
 * version) is refused with TR_ESTORE and left untouched. The directory must
 * exist. On success *out is the store; close it with tr_store_close.
 */
int tr_store_open(tr_store **out, const char *path, tr_error *err);

/* Finalise every statement and close the database. Accepts NULL. */
void tr_store_close(tr_store *store);

/*
 * Batches: many state changes, one commit (one fsync). Between begin and
 * commit every store call runs as a savepoint of one transaction: a failing
 * call is undone alone and reports its error as usual; the others become
 * durable together at tr_store_batch_commit. Callers must not let anything
 * leave the process (a delivery, an answer) for a change of the batch before
 * the commit returned 0; a commit error means the whole batch is lost.
 * Batches do not nest. Used by the Kubernetes watcher to write a burst of
 * watch events (one read from the stream, one page of a list) at once.
 */
int tr_store_batch_begin(tr_store *store, tr_error *err);
int tr_store_batch_commit(tr_store *store, tr_error *err);

/* Schema version this build writes (the database's PRAGMA user_version). */
int tr_store_schema_version(void);

/* ------------------------------------------------------------ incidents */

/*
 * Incident states. 0 (TR_INCIDENT_NONE) is not a state: in a transition it
 * means "do not check" / "do not change", so a zeroed struct does nothing.
 *
 *   open → triaged → analyzed → notified → patch_proposed → accepted →
 *   pr_open → pr_merged | pr_closed → resolved
 *
 * plus the skips open → analyzed (analysis without triage), analyzed →
 * patch_proposed and pr_closed → patch_proposed (a new patch); any active
 * state → failed | rejected | resolved; resolved → open (reopen); failed →
 * open (retry); failed | rejected → resolved. Anything else is TR_ECONFLICT.
 */
typedef enum tr_incident_state {
    TR_INCIDENT_NONE = 0,
    TR_INCIDENT_OPEN,
    TR_INCIDENT_TRIAGED,
    TR_INCIDENT_ANALYZED,
    TR_INCIDENT_NOTIFIED,
    TR_INCIDENT_PATCH_PROPOSED,
    TR_INCIDENT_ACCEPTED,
    TR_INCIDENT_PR_OPEN,
    TR_INCIDENT_PR_MERGED,
    TR_INCIDENT_PR_CLOSED,
    TR_INCIDENT_RESOLVED,
    TR_INCIDENT_REJECTED,
    TR_INCIDENT_FAILED,
} tr_incident_state;

#define TR_INCIDENT_STATE_COUNT (TR_INCIDENT_FAILED + 1)

/* "open", "pr_merged", ...; NULL for TR_INCIDENT_NONE and unknown values. */
const char *tr_store_state_name(int state);
/* The state called name, or TR_INCIDENT_NONE when there is none. */
int tr_store_state_parse(const char *name);
/* 1 when from → to is an allowed transition. */
int tr_store_state_allowed(int from, int to);

/*
 * One failure signal from a watcher, as recorded. All strings are borrowed.
 * Required: fingerprint, source. kind/name are the object that produced the
 * signal (a Pod); owner_kind/owner_name the workload the incident is about
 * (its Deployment); when owner_name is NULL the object itself is the owner.
 */
typedef struct tr_store_observation {
    const char *fingerprint;
    const char *source;        /* "kubernetes" | "terraform" */
    const char *cluster;
    const char *namespace;
    const char *kind;
    const char *name;
    const char *owner_kind;
    const char *owner_name;
    const char *failure_class; /* "CrashLoopBackOff", "OOMKilled", ... */
    const char *title;         /* incident title; NULL → failure_class */
    const char *message;
    const char *raw_ref;       /* where the raw object is: "v1/Pod/ns/name@rv" */
    const char *raw_json;      /* excerpt of the raw object, or NULL */
    const char *facts_json;    /* {"exit_code":137,...}; replaces the incident's */
    int64_t observed_ms;
} tr_store_observation;

typedef enum tr_store_obs_outcome {
    TR_OBS_CREATED = 1,  /* a new incident; incident.opened was enqueued */
    TR_OBS_UPDATED = 2,  /* deduplicated into a live incident; nothing enqueued */
    TR_OBS_REOPENED = 3, /* a resolved incident is open again; incident.reopened */
} tr_store_obs_outcome;

typedef struct tr_store_obs_result {
    int64_t incident_id;
    int64_t observation_id;
    int outcome; /* tr_store_obs_outcome */
    int state;   /* the incident's state afterwards */
} tr_store_obs_result;

/*
 * Record an observation in one transaction: store it, find the live incident
 * with its fingerprint or create one, and update counts and last_seen.
 * A resolved incident reopens. A failed or rejected incident absorbs
 * observations arriving within dedup_window_ms of its last_seen; a later one
 * retires it (it keeps its id and history) and starts a new incident.
 * Active incidents absorb every observation. result may be NULL.
 */
int tr_store_observe(tr_store *store, const tr_store_observation *obs, int64_t dedup_window_ms,
                     int64_t now_ms, tr_store_obs_result *result, tr_error *err);

typedef struct tr_store_incident {
    int64_t id;
    const char *fingerprint;
    const char *source;
    const char *cluster;
    const char *namespace;
    const char *kind;          /* the owner workload */
    const char *name;
    const char *failure_class;
    const char *title;
    const char *message;       /* latest observation's message */
    int state;                 /* tr_incident_state */
    const char *error;         /* NULL unless set with the last state change */
    const char *facts_json;    /* NULL when no observation had facts */
    int64_t observation_count;
    int64_t reopen_count;
    int64_t first_seen_ms;
    int64_t last_seen_ms;
    int64_t updated_ms;
    int64_t resolved_at_ms;    /* 0 unless resolved */
    int live;                  /* 0 once retired by a newer incident */
} tr_store_incident;

/* Caller frees *out with tr_store_incident_free. */
int tr_store_incident_get(tr_store *store, int64_t id, tr_store_incident **out, tr_error *err);
/* The live incident with this fingerprint. Caller frees with tr_store_incident_free. */
int tr_store_incident_find(tr_store *store, const char *fingerprint, tr_store_incident **out,
                           tr_error *err);
void tr_store_incident_free(tr_store_incident *incident);

typedef struct tr_store_incident_filter {
    int state;             /* TR_INCIDENT_NONE = any */
    const char *source;    /* NULL = any */
    const char *namespace; /* NULL = any */
    size_t limit;          /* 0 or above TR_STORE_LIST_MAX → TR_STORE_LIST_MAX */
    int64_t before_id;     /* paging cursor: only ids below it; 0 = from the newest */
} tr_store_incident_filter;

typedef struct tr_store_incident_list {
    tr_store_incident *items; /* newest first */
    size_t count;
    int64_t next_before_id;   /* pass as before_id for the next page; 0 = no more */
} tr_store_incident_list;

/* filter may be NULL. Caller frees *out with tr_store_incident_list_free. */
int tr_store_incident_list_get(tr_store *store, const tr_store_incident_filter *filter,
                               tr_store_incident_list **out, tr_error *err);
void tr_store_incident_list_free(tr_store_incident_list *list);

/* counts[state] = incidents in that state (counts[0] stays 0), for /metrics. */
int tr_store_incident_counts(tr_store *store, int64_t counts[TR_INCIDENT_STATE_COUNT],
                             tr_error *err);

/*
 * A state change riding along with a call (all fields optional, borrowed).
 * The expected-from check and the transition table give TR_ECONFLICT, and
 * then nothing of the call is written.
 */
typedef struct tr_store_transition {
    int expect_from;          /* fail unless the incident is in this state; 0 = any */
    int to;                   /* new state; 0 = keep the state */
    const char *error_text;   /* stored as the incident's error on a state change */
    const char *event;        /* outbox event to enqueue ("incident.analyzed"), or NULL */
    const char *payload_json; /* its payload; NULL → a summary of the incident */
} tr_store_transition;

/* Apply t to incident id in one transaction. TR_ENOTFOUND for an unknown id. */
int tr_store_incident_transition(tr_store *store, int64_t id, const tr_store_transition *t,
                                 int64_t now_ms, tr_error *err);

/* ------------------------------------------------- pipeline records */

typedef struct tr_store_evidence {
    int64_t id;
    int64_t incident_id;
    const char *bundle_json;
    int64_t token_estimate;
    int64_t created_ms;
} tr_store_evidence;

/*
 * Store a triage bundle (evidence->incident_id, bundle_json, token_estimate
 * are read) with an optional transition t, in one transaction.
 * *id_out (may be NULL) is the new row id.
 */
int tr_store_evidence_put(tr_store *store, const tr_store_evidence *evidence,
                          const tr_store_transition *t, int64_t now_ms, int64_t *id_out,
                          tr_error *err);
/* The newest bundle of an incident; caller frees with tr_store_evidence_free. */
int tr_store_evidence_latest(tr_store *store, int64_t incident_id, tr_store_evidence **out,
                             tr_error *err);
void tr_store_evidence_free(tr_store_evidence *evidence);

typedef struct tr_store_analysis {
    int64_t id;
    int64_t incident_id;
    const char *summary;
    const char *root_cause;
    const char *severity;          /* "critical" | "high" | ... */
    double confidence;             /* 0..1 */
    const char *evidence_json;     /* array of quotes */
    const char *remediation_json;  /* array of steps */
    const char *patch;             /* unified diff, or NULL */
    const char *provider;          /* "openai", "rules", ... */
    const char *model;
    const char *prompt_hash;       /* hash of the prompt template used */
    int64_t tokens_in;
    int64_t tokens_out;
    const char *fallback_reason;   /* why the rule-based analysis was used, or NULL */
    int64_t created_ms;
} tr_store_analysis;

/* Store an analysis (+ optional transition t) in one transaction. */
int tr_store_analysis_put(tr_store *store, const tr_store_analysis *analysis,
                          const tr_store_transition *t, int64_t now_ms, int64_t *id_out,
                          tr_error *err);
/* The newest analysis of an incident; caller frees with tr_store_analysis_free. */
int tr_store_analysis_latest(tr_store *store, int64_t incident_id, tr_store_analysis **out,
                             tr_error *err);
void tr_store_analysis_free(tr_store_analysis *analysis);

typedef struct tr_store_decision {
    int64_t id;
    int64_t incident_id;
    int accept;          /* 1 accept, 0 reject */
    const char *actor;   /* "cli", "slack:U123", ... */
    const char *reason;  /* may be NULL */
    int64_t created_ms;
} tr_store_decision;

/* Record a decision (+ optional transition t) in one transaction. */
int tr_store_decision_put(tr_store *store, const tr_store_decision *decision,
                          const tr_store_transition *t, int64_t now_ms, int64_t *id_out,
                          tr_error *err);
/* The newest decision on an incident; caller frees with tr_store_decision_free. */
int tr_store_decision_latest(tr_store *store, int64_t incident_id, tr_store_decision **out,
                             tr_error *err);
void tr_store_decision_free(tr_store_decision *decision);

typedef struct tr_store_pr {
    int64_t id;
    int64_t incident_id;
    const char *forge;        /* "github" | "gitlab" | "gitea" */
    const char *url;          /* identifies the PR */
    int64_t number;
    const char *branch;
    const char *head_commit;
    const char *state;        /* "open" | "merged" | "closed" */
    const char *etag;         /* of the last poll, or NULL */
    int64_t last_polled_ms;   /* 0 = never */
    int64_t created_ms;
    int64_t updated_ms;
} tr_store_pr;

typedef struct tr_store_pr_list {
    tr_store_pr *items;
    size_t count;
} tr_store_pr_list;

/*
 * Insert or update (by url) a pull request, with an optional transition t,
 * in one transaction: opening a PR and polling its state use the same call.
 */
int tr_store_pr_put(tr_store *store, const tr_store_pr *pr, const tr_store_transition *t,
                    int64_t now_ms, int64_t *id_out, tr_error *err);
/* The newest PR of an incident; caller frees with tr_store_pr_free. */
int tr_store_pr_latest(tr_store *store, int64_t incident_id, tr_store_pr **out, tr_error *err);
/* PRs in state "open", least recently polled first (the poller's work list). */
int tr_store_pr_list_open(tr_store *store, size_t limit, tr_store_pr_list **out, tr_error *err);
void tr_store_pr_free(tr_store_pr *pr);
void tr_store_pr_list_free(tr_store_pr_list *list);

/* ------------------------------------------------------------ chat */

/* Turns kept per incident; older ones are dropped (turn numbers keep counting). */
#define TR_STORE_CHAT_TURNS_KEPT 200

/*
 * One question and its answer in the follow-up conversation about an
 * incident. The question is stored as given: callers redact it first.
 */
typedef struct tr_store_chat_turn {
    int64_t id;
    int64_t incident_id;
    int64_t turn;            /* 1, 2, ... per incident; assigned by the store */
    const char *actor;       /* "api", "slack:U123", ... */
    const char *question;
    const char *answer;
    const char *patch;       /* a revised patch, or NULL */
    int64_t analysis_id;     /* the analysis row the revised patch went into, 0 = none */
    const char *provider;
    const char *model;
    int64_t tokens_in;
    int64_t tokens_out;
    int64_t created_ms;
} tr_store_chat_turn;

typedef struct tr_store_chat_list {
    tr_store_chat_turn *items; /* oldest first */
    size_t count;
} tr_store_chat_list;

/*
 * Record a turn in one transaction: the turn (incident_id, actor, question,
 * answer, patch, provider, model, tokens are read; its number is the next
 * one of the incident), the revised analysis when revised is not NULL (its
 * incident_id must match; it becomes the incident's latest analysis, so the
 * fixer takes its patch), the optional transition t (e.g. an outbox event
 * `incident.explained`), and the pruning of turns beyond
 * TR_STORE_CHAT_TURNS_KEPT. *turn_out and *analysis_id_out may be NULL.
 * TR_ENOTFOUND for an unknown incident.
 */
int tr_store_chat_put(tr_store *store, const tr_store_chat_turn *turn,
                      const tr_store_analysis *revised, const tr_store_transition *t,
                      int64_t now_ms, int64_t *turn_out, int64_t *analysis_id_out,
                      tr_error *err);

/*
 * The last `limit` turns of an incident (at most TR_STORE_CHAT_TURNS_KEPT),
 * oldest first; an empty list when there are none. Caller frees *out with
 * tr_store_chat_list_free.
 */
int tr_store_chat_recent(tr_store *store, int64_t incident_id, size_t limit,
                         tr_store_chat_list **out, tr_error *err);
void tr_store_chat_list_free(tr_store_chat_list *list);

/* ------------------------------------------------------------ outbox */

/*
 * Messages are written once; each sink gets its own delivery row per
 * message, created lazily when the sink asks for due work. A sink sees the
 * messages enqueued after it was first registered.
 */
typedef enum tr_store_delivery_state {
    TR_DELIVERY_PENDING = 1,
    TR_DELIVERY_DELIVERED = 2,
    TR_DELIVERY_DEAD = 3,
} tr_store_delivery_state;

typedef struct tr_store_delivery {
    int64_t id;               /* handle for the mark calls */
    const char *delivery_id;  /* stable, unique per (message, sink): an idempotency key */
    int64_t message_id;
    int64_t incident_id;      /* 0 when the message is about no incident */
    const char *sink;
    const char *event;
    const char *payload_json;
    int state;                /* tr_store_delivery_state */
    int64_t attempts;         /* failed attempts so far */
    int64_t next_attempt_ms;
    const char *last_error;   /* NULL before the first failure */
    int64_t created_ms;       /* when the message was enqueued */
} tr_store_delivery;

typedef struct tr_store_delivery_list {
    tr_store_delivery *items;
    size_t count;
} tr_store_delivery_list;

/* Enqueue a message outside any state change. *id_out may be NULL. */
int tr_store_outbox_enqueue(tr_store *store, int64_t incident_id, const char *event,
                            const char *payload_json, int64_t now_ms, int64_t *id_out,
                            tr_error *err);

/*
 * Make sink known (idempotent). A new sink starts after the newest message
 * already enqueued: adding a sink to the config does not replay history.
 * Register every configured sink at startup, before anything is enqueued.
 */
int tr_store_outbox_register_sink(tr_store *store, const char *sink, int64_t now_ms,
                                  tr_error *err);
/* Drop a sink and all its delivery rows (a sink removed from the config). */
int tr_store_outbox_forget_sink(tr_store *store, const char *sink, tr_error *err);

/*
 * Up to limit pending deliveries of a registered sink that are due at now_ms,
 * oldest due first, creating the sink's rows for messages it has not seen.
 * When lease_ms > 0 the returned deliveries are not due again before
 * now_ms + lease_ms, so a second call does not hand out work in flight; after
 * a crash they come back when the lease ends. Caller frees *out with
 * tr_store_delivery_list_free. TR_ENOTFOUND for an unregistered sink.
 */
int tr_store_outbox_due(tr_store *store, const char *sink, int64_t now_ms, int64_t lease_ms,
                        size_t limit, tr_store_delivery_list **out, tr_error *err);

/* Mark delivered; a delivered row is never handed out again. Idempotent. */
int tr_store_outbox_delivered(tr_store *store, int64_t delivery, int64_t now_ms, tr_error *err);

/*
 * Record a failed attempt. The delivery is dead-lettered when attempts reach
 * max_attempts (0 = dead now: the "drop" outcome), else due again at
 * next_attempt_ms. *dead (may be NULL) says which. TR_ECONFLICT when the
 * delivery was already delivered.
 */
int tr_store_outbox_failed(tr_store *store, int64_t delivery, const char *error_text,
                           int64_t next_attempt_ms, int64_t max_attempts, int64_t now_ms,
                           int *dead, tr_error *err);

/* Dead letters (sink NULL = all sinks) with id > after_id, oldest first. */
int tr_store_outbox_dead_letters(tr_store *store, const char *sink, int64_t after_id,
                                 size_t limit, tr_store_delivery_list **out, tr_error *err);
/* Put a dead letter back in the queue, attempts reset, due at now_ms. */
int tr_store_outbox_retry_dead(tr_store *store, int64_t delivery, int64_t now_ms, tr_error *err);
void tr_store_delivery_list_free(tr_store_delivery_list *list);

typedef struct tr_store_outbox_stat {
    const char *sink;
    int64_t pending;   /* includes messages the sink has not fetched yet */
    int64_t delivered;
    int64_t dead;
} tr_store_outbox_stat;

typedef struct tr_store_outbox_stats {
    tr_store_outbox_stat *items; /* one per registered sink, by name */
    size_t count;
} tr_store_outbox_stats;

/* Per-sink counts for /metrics. Caller frees with tr_store_outbox_stats_free. */
int tr_store_outbox_stats_get(tr_store *store, tr_store_outbox_stats **out, tr_error *err);
void tr_store_outbox_stats_free(tr_store_outbox_stats *stats);

/*
 * Delete messages created before before_ms that every registered sink has
 * fetched and none still has pending (dead letters go with them).
 * *removed (may be NULL) is how many messages went.
 */
int tr_store_outbox_prune(tr_store *store, int64_t before_ms, int64_t *removed, tr_error *err);

/* ------------------------------------------------------------ daemon state */

/*
 * Watch resume points, per watcher key ("kube/default/pods"). The
 * resourceVersion is an opaque string. Caller frees *resource_version with
 * tr_free; updated_ms may be NULL.
 */
int tr_store_watch_get(tr_store *store, const char *key, char **resource_version,
                       int64_t *updated_ms, tr_error *err);
int tr_store_watch_put(tr_store *store, const char *key, const char *resource_version,
                       int64_t now_ms, tr_error *err);
/* Forget a resume point (after a 410 Gone). Not an error when there is none. */
int tr_store_watch_clear(tr_store *store, const char *key, tr_error *err);

/*
 * Budgets: a counter per (key, window). Add amount to key's counter for the
 * window starting at window_start_ms, unless that would take it above limit
 * (limit < 0 = no limit): then nothing changes and TR_ELIMIT is returned.
 * Counters of earlier windows of the same key are dropped. *total (may be
 * NULL) is the counter afterwards (or as it stays on TR_ELIMIT). For costs
 * known only afterwards (tokens), check with tr_store_budget_get before and
 * add with limit -1 after.
 */
int tr_store_budget_add(tr_store *store, const char *key, int64_t window_start_ms,
                        int64_t amount, int64_t limit, int64_t now_ms, int64_t *total,
                        tr_error *err);
/* The counter for (key, window), 0 when there is none. */
int tr_store_budget_get(tr_store *store, const char *key, int64_t window_start_ms,
                        int64_t *value, tr_error *err);

/* *seen = 1 when path was processed with this size and content hash. */
int tr_store_tf_file_seen(tr_store *store, const char *path, int64_t size_bytes,
                          const char *content_hash, int *seen, tr_error *err);
int tr_store_tf_file_mark(tr_store *store, const char *path, int64_t size_bytes,
                          const char *content_hash, int64_t now_ms, tr_error *err);

/* Small key/value state. Caller frees *value with tr_free. */
int tr_store_kv_get(tr_store *store, const char *key, char **value, tr_error *err);
int tr_store_kv_put(tr_store *store, const char *key, const char *value, int64_t now_ms,
                    tr_error *err);
int tr_store_kv_delete(tr_store *store, const char *key, tr_error *err);

#endif
