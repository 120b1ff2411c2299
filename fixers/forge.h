/*
 * forge.h - pull / merge requests on GitHub, GitLab and Gitea/Forgejo, for
 * the fixer: open a PR for a branch that is already pushed, find the PR of a
 * branch (idempotency after a crash or a retry), read a PR's state later
 * (open, merged, closed unmerged) cheaply with an ETag, add labels.
 *
 * A tr_forge owns its copy of the configuration and the token (zeroed on
 * free, never logged, never put in an error text); it borrows the process'
 * tr_http_client. Every call is asynchronous on the loop and ends in exactly
 * one done callback, never from inside the call that started it. Each
 * result is one of three outcomes (STYLE.md): done (code TR_OK), retry later
 * (retryable set: 5xx, 408, timeouts, transport errors, rate limits with
 * retry_after_ms) or give up (a rejected token, an unknown repository, a
 * request the forge refuses).
 *
 * Each forge is a vtable in its own file (forge_github.c, forge_gitlab.c,
 * forge_gitea.c) that builds the requests and parses the replies (with the
 * shared helpers of forge_reply.h, also where the pure reply parsers live);
 * forge.c runs the HTTP calls, the duplicate-PR reuse, label follow-ups and
 * the error classification common to all three.
 */
#ifndef TR_FORGE_H
#define TR_FORGE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "error.h"
#include "http_client.h"

typedef struct tr_forge tr_forge;

#define TR_FORGE_DEFAULT_TIMEOUT_MS 30000L
#define TR_FORGE_MAX_REPLY_BYTES ((size_t)4 * 1024 * 1024)
#define TR_FORGE_MAX_LABELS 32

typedef enum tr_forge_pr_state {
    TR_FORGE_PR_OPEN = 0,
    TR_FORGE_PR_MERGED = 1,
    TR_FORGE_PR_CLOSED = 2, /* closed without merging */
} tr_forge_pr_state;

/* A pull / merge request. Strings are owned (tr_forge_pr_clear), never NULL once parsed. */
typedef struct tr_forge_pr {
    int64_t number;          /* GitHub/Gitea number, GitLab iid: the one in the web URL */
    tr_forge_pr_state state;
    bool draft;
    bool reused;             /* open_pr found an existing PR for the branch */
    bool not_modified;       /* get_pr: 304, the PR did not change (only number, etag set) */
    char *html_url;
    char *head_branch;       /* "" when the reply had none */
    char *merge_commit_sha;  /* "" unless merged and the forge said it */
    char *etag;              /* "" when the forge sent none */
} tr_forge_pr;

void tr_forge_pr_clear(tr_forge_pr *pr);

/* What a call ended with; borrowed, valid only while the done callback runs. */
typedef struct tr_forge_result {
    /*
     * TR_OK; TR_EAUTH (token rejected, 401/403); TR_ENOTFOUND (no such
     * repository or PR, or find: no PR for the branch); TR_ELIMIT (rate
     * limited); TR_EUNAVAILABLE (5xx, 408); TR_ETIMEOUT / TR_EHTTP
     * (transport); TR_EPARSE (reply not what the API documents); TR_EINVAL
     * (the forge refused the request, e.g. 422 no commits between branches);
     * TR_ECANCELLED (tr_forge_free).
     */
    int code;
    bool retryable;
    int64_t retry_after_ms; /* > 0 when the forge said when to come back */
    long status;            /* HTTP status of the last response, 0 if none */
    const char *error;      /* "" on success; never holds the token */
    const tr_forge_pr *pr;  /* the PR when code is TR_OK (NULL for add_labels) */
} tr_forge_result;

typedef void (*tr_forge_done_cb)(const tr_forge_result *result, void *userdata);

/* What to open. Borrowed: copied before tr_forge_open_pr returns. */
typedef struct tr_forge_pr_request {
    const char *head;  /* the pushed branch, "triaged/<incident id>" */
    const char *base;  /* the branch to merge into */
    const char *title;
    const char *body;  /* markdown; NULL = "" */
    /* NULL = the configured forge.labels; else these (count may be 0 = none) */
    const char *const *labels;
    size_t label_count;
    int draft;         /* -1 = the configured forge.draft, 0 no, 1 yes */
} tr_forge_pr_request;

/*
 * Build a forge of cfg->kind for cfg->repo at cfg->api_url ("" = the kind's
 * public default). token may be NULL: then cfg->token_env is resolved with
 * tr_config_secret_resolve. *out is owned by the caller (tr_forge_free).
 * Returns TR_OK, TR_ECONFIG (kind none, bad repo or URL, no token; the
 * message says which key) or TR_ENOMEM.
 */
int tr_forge_create(tr_forge **out, const tr_config_forge *cfg, tr_http_client *http,
                    const char *token, tr_error *err);

/*
 * Cancel the calls in flight (their done callbacks run later from the loop
 * with TR_ECANCELLED, so their userdata must stay valid until then) and free
 * the forge. Accepts NULL.
 */
void tr_forge_free(tr_forge *f);

/* Per-call timeout; 0 restores TR_FORGE_DEFAULT_TIMEOUT_MS. */
void tr_forge_set_timeout(tr_forge *f, long timeout_ms);

/* "github", "gitlab" or "gitea". */
const char *tr_forge_kind(const tr_forge *f);

/*
 * The start calls below return TR_OK when done will run exactly once, or a
 * TR_E* code (err says why) when nothing was started.
 */

/*
 * Open a PR for req->head into req->base. When the forge answers that one
 * already exists for the branch (GitHub 422, GitLab 409, Gitea 409/422), the
 * open one is looked up and returned with reused set. Labels are then set
 * (GitHub and Gitea in a second call, GitLab in the same one); failing to
 * label is logged and does not fail the call (the PR exists).
 */
int tr_forge_open_pr(tr_forge *f, const tr_forge_pr_request *req, tr_forge_done_cb done,
                     void *userdata, tr_error *err);

/*
 * Read PR number's state. etag (NULL or "" = none) is sent as If-None-Match;
 * a 304 ends with TR_OK and pr->not_modified (it does not count against
 * GitHub's rate limit). pr->etag is what to send next time.
 */
int tr_forge_get_pr(tr_forge *f, int64_t number, const char *etag, tr_forge_done_cb done,
                    void *userdata, tr_error *err);

/*
 * The PR whose head is branch head, in any state (an open one first, else
 * the most recent); TR_ENOTFOUND when there is none.
 */
int tr_forge_find_pr_for_branch(tr_forge *f, const char *head, tr_forge_done_cb done,
                                void *userdata, tr_error *err);

/* Add labels to PR number (count <= TR_FORGE_MAX_LABELS). */
int tr_forge_add_labels(tr_forge *f, int64_t number, const char *const *labels, size_t count,
                        tr_forge_done_cb done, void *userdata, tr_error *err);

/* ------------------------------------------- for the forge implementations */

/* Where requests go; built once by tr_forge_create. */
typedef struct tr_forge_site {
    const char *api_url; /* no trailing '/', the kind's api_path appended when missing */
    const char *repo;    /* as configured: "owner/name", GitLab "group/sub/name" or an id */
    const char *owner;   /* part before the last '/' ("" for a bare GitLab id) */
    const char *name;    /* part after the last '/' */
} tr_forge_site;

/* One request a vtable builds. url and body are owned by the caller. */
typedef struct tr_forge_call {
    tr_http_method method;
    tr_buf url;
    tr_buf body; /* JSON, or empty */
} tr_forge_call;

/* The request builders get the effective request (labels and draft resolved). */
typedef struct tr_forge_vtable {
    const char *kind;            /* "github" */
    const char *display;         /* "GitHub", for messages */
    const char *default_api_url;
    const char *api_path;        /* appended to api_url when it lacks it; "" none */
    const char *auth_format;     /* the auth header, one %s for the token */
    const char *const *headers;  /* more fixed headers, NULL-terminated, or NULL */
    bool nested_repo;            /* repo may be "group/sub/name" or a numeric id */
    bool labels_on_open;         /* open_pr carries labels; add_labels only after reuse */
    int (*open_pr)(const tr_forge_site *site, const tr_forge_pr_request *req,
                   tr_forge_call *out);
    int (*get_pr)(const tr_forge_site *site, int64_t number, tr_forge_call *out);
    /* open_only: only open PRs (the duplicate path); else any state. */
    int (*find_pr_for_branch)(const tr_forge_site *site, const char *head, bool open_only,
                              tr_forge_call *out);
    int (*add_labels)(const tr_forge_site *site, int64_t number, const char *const *labels,
                      size_t count, tr_forge_call *out); /* NULL: unsupported */
    bool (*is_duplicate)(long status, const char *message);
    int (*parse_pr)(const cJSON *obj, tr_forge_pr *out, tr_error *err);
} tr_forge_vtable;

extern const tr_forge_vtable tr_forge_github;
extern const tr_forge_vtable tr_forge_gitlab;
extern const tr_forge_vtable tr_forge_gitea;

#endif
