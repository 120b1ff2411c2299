/*
 * gitrepo.h - the GitOps repository: a local clone of one remote branch,
 * kept at the remote's head, read for triage evidence, and written to by the
 * fixer (one commit on a branch, pushed).
 *
 * Two layers:
 *
 *  - Blocking functions (tr_gitrepo_sync_blocking, _read_file, _file_history,
 *    _commit_files, _push, _remote_branch_commit) call libgit2 and may take
 *    seconds. They never run on the loop: call them from thread-pool work,
 *    preferably through tr_gitrepo_queue_work(), which serialises them with
 *    the repository's own syncs (a sync may delete and re-clone the work
 *    tree when it finds it corrupt).
 *
 *  - tr_gitrepo, an object living on the loop thread: it owns a copy of the
 *    spec, runs one job at a time on the libuv thread pool (uv_queue_work),
 *    coalesces sync requests, tracks the status (head, last fetch, last
 *    error, failures, backoff) and can sync periodically.
 *
 * The sync never merges: the local branch and work tree are forced to the
 * fetched remote head, so a force-pushed branch simply moves. libgit2 1.5 has
 * no shallow clone: the first sync clones everything, later syncs fetch.
 *
 * Secrets: the token is only handed to libgit2's credential callback; no
 * error or log text contains it (libgit2's own messages are scrubbed too),
 * and URLs in messages have their user-info part removed.
 *
 * What Debian 12's libgit2 1.5 (with libssh2 1.10) implies:
 *  - ssh host keys are checked against ~/.ssh/known_hosts of the daemon's
 *    user (HOME): add the forge's key there. Use ed25519 or ECDSA keys:
 *    libssh2 1.10 signs RSA with SHA-1 only, which OpenSSH 8.8+ refuses.
 *    libgit2 1.5 leaks ~300 bytes per ssh connection (its known-hosts
 *    state); https does not leak.
 *  - No connect timeout: an unreachable (blackholed) host holds a thread
 *    pool thread until the kernel gives up (~2 min); closing waits for it.
 *  - url.<base>.insteadOf from git config files is not applied (libgit2
 *    leaks on every lookup of it); the configured URL is used as written.
 *  - No proxy: http(s)_proxy is not used.
 */
#ifndef TR_GITREPO_H
#define TR_GITREPO_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "error.h"

#define TR_GITREPO_OID_HEX 41 /* 40 hex digits and a NUL */
#define TR_GITREPO_DEFAULT_USERNAME "x-access-token"

/*
 * Where a repository comes from and where its clone lives. All strings are
 * borrowed by the blocking functions and copied by tr_gitrepo_new.
 *   url: https://host/path, http://..., ssh://[user@]host/path,
 *        user@host:path (scp-like), file:///path or a local path.
 *   branch: NULL or "" means "main". username: NULL or "" means
 *   "x-access-token" (https only; ssh uses the URL's user, default "git").
 *   token: the resolved secret for https (NULL or "" = none).
 *   ssh_key_file: private key for ssh URLs (public key derived by libssh2).
 *   work_dir: the clone, normally <state_dir>/git/<name>.
 */
typedef struct tr_gitrepo_spec {
    const char *name;
    const char *url;
    const char *branch;
    const char *username;
    const char *token;
    const char *ssh_key_file;
    const char *work_dir;
} tr_gitrepo_spec;

/* One path -> content replacement for tr_gitrepo_commit_files. */
typedef struct tr_gitrepo_file {
    const char *path;    /* relative, '/'-separated, no "..", no ".git" */
    const char *content; /* exact bytes (may hold NULs); NULL deletes the file */
    size_t len;
} tr_gitrepo_file;

/* Call once per process before any other function (git_libgit2_init). */
int tr_gitrepo_global_init(tr_error *err);
void tr_gitrepo_global_shutdown(void);

/* ------------------------------------------------------------ blocking */

/*
 * Clone spec->url into spec->work_dir when absent, else fetch
 * `origin <branch>` and force the work tree and refs/heads/<branch> to the
 * fetched head. A work dir that cannot be opened or is corrupt is removed and
 * cloned again, once. head_out (may be NULL) gets the head commit hex.
 * Returns 0, TR_EAUTH (credentials refused), TR_ENOTFOUND (branch missing),
 * TR_EUNAVAILABLE (network, bad URL), TR_ECANCELLED (cancel_flag set),
 * TR_EIO or TR_ENOMEM; err names the repo, the URL without credentials and
 * libgit2's message. cancel_flag (may be NULL) is polled during transfers.
 */
int tr_gitrepo_sync_blocking(const tr_gitrepo_spec *spec, const volatile int *cancel_flag,
                             char head_out[TR_GITREPO_OID_HEX], tr_error *err);

/*
 * The content of path at commit (NULL = HEAD; a hex id, a ref name or any
 * revspec) in the clone at dir. Files larger than max_bytes (0 = 1 MiB)
 * fail with TR_ETOOBIG. *out (NUL-terminated, *len_out bytes before it) is
 * owned by the caller (tr_free). TR_ENOTFOUND when the path or commit does
 * not exist.
 */
int tr_gitrepo_read_file(const char *dir, const char *commit, const char *path,
                         size_t max_bytes, char **out, size_t *len_out, tr_error *err);

/*
 * The last n (1..50) commits reachable from HEAD that changed path (git log
 * -n N -- path), newest first, as a cJSON array the caller frees with
 * cJSON_Delete. Each element:
 *   {"sha": "abc1234", "commit": "<40 hex>", "author": "Name <mail>",
 *    "date": "2026-11-25T13:49:03+01:00", "subject": "first line",
 *    "diff": "diff --git a/path b/path\n...", "diff_truncated": false}
 * "diff" is the unified diff of that file only against the first parent
 * (the whole file as added for a root commit), cut at max_bytes (0 = 4096)
 * with diff_truncated true. An empty array when no commit touched path.
 */
int tr_gitrepo_file_history(const char *dir, const char *path, size_t n, size_t max_bytes,
                            cJSON **out, tr_error *err);

/*
 * Create one commit whose parent is base_commit (revspec) and whose tree is
 * base's tree with files[] applied, and point refs/heads/<branch> at it
 * (created or moved). author is "Name <mail>" and is also the committer.
 * out_commit (may be NULL) gets its hex. The work tree is not touched.
 */
int tr_gitrepo_commit_files(const char *dir, const char *base_commit, const char *branch,
                            const tr_gitrepo_file *files, size_t file_count,
                            const char *author, const char *message,
                            char out_commit[TR_GITREPO_OID_HEX], tr_error *err);

/*
 * Push local refs/heads/<branch> of spec->work_dir to the same name on
 * spec->url. expected_remote NULL: an ordinary push (a non-fast-forward is
 * refused). expected_remote a hex id: force-with-lease (the remote branch
 * must be exactly there; "" = must not exist yet). Errors: TR_EAUTH,
 * TR_ECONFLICT (non-fast-forward or lease broken), TR_EUNAVAILABLE,
 * TR_ERROR with "rejected by the remote: <status>; remote said: <hook
 * output>" for a hook rejection.
 */
int tr_gitrepo_push(const tr_gitrepo_spec *spec, const char *branch,
                    const char *expected_remote, tr_error *err);

/*
 * ls-remote: the commit refs/heads/<branch> points at on spec->url, and
 * (tree_out non-NULL) that commit's tree, fetched into spec->work_dir under
 * refs/triaged/remote/<branch> when it is not there yet. Returns
 * TR_ENOTFOUND when the branch does not exist. A fixer retrying after a
 * crash compares the tree with the one it would push and skips the push.
 */
int tr_gitrepo_remote_branch_commit(const tr_gitrepo_spec *spec, const char *branch,
                                    char commit_out[TR_GITREPO_OID_HEX],
                                    char tree_out[TR_GITREPO_OID_HEX], tr_error *err);

/* The tree of commit (revspec) in dir; for comparing with tree_out above. */
int tr_gitrepo_commit_tree(const char *dir, const char *commit,
                           char tree_out[TR_GITREPO_OID_HEX], tr_error *err);

/* ------------------------------------------------------------ on the loop */

typedef struct tr_gitrepo tr_gitrepo;

/* A sync finished: status 0 or TR_E*, err the message (NULL on success). */
typedef void (*tr_gitrepo_sync_cb)(tr_gitrepo *repo, int status, const tr_error *err,
                                   void *user_data);

/*
 * Queued job: work runs on the thread pool (blocking calls allowed; spec is
 * the repo's own copy), done runs on the loop with work's return value, or
 * with TR_ECANCELLED (work never ran) when the repo closed first.
 */
typedef int (*tr_gitrepo_work_fn)(const tr_gitrepo_spec *spec, void *user_data);
typedef void (*tr_gitrepo_done_fn)(tr_gitrepo *repo, int status, void *user_data);

typedef struct tr_gitrepo_status {
    char head[TR_GITREPO_OID_HEX]; /* "" before the first successful sync */
    uint64_t last_fetch_ms;        /* wall clock of the last success; 0 = never */
    char last_error[TR_ERROR_MSG_MAX]; /* "" after a success */
    unsigned consecutive_failures;
    uint64_t next_retry_ms;        /* loop time (uv_now) of the next periodic try */
    int syncing;                   /* a sync is queued or running */
} tr_gitrepo_status;

/*
 * A repository object on loop. spec is copied (the token is wiped when the
 * object is freed). *out is closed with tr_gitrepo_close. Nothing runs until
 * tr_gitrepo_sync or tr_gitrepo_start_periodic.
 */
int tr_gitrepo_new(tr_gitrepo **out, uv_loop_t *loop, const tr_gitrepo_spec *spec,
                   tr_error *err);

/*
 * Queue a sync. While one is queued or running, the request joins it and cb
 * gets its result. cb (may be NULL) runs on the loop, never before this
 * returns. TR_EBUSY when too many callers wait, TR_ECANCELLED when closing.
 */
int tr_gitrepo_sync(tr_gitrepo *repo, tr_gitrepo_sync_cb cb, void *user_data);

/*
 * Sync when the last successful fetch is older than max_age_ms and the
 * backoff after failures allows it. Returns 1 when nothing needs doing (cb
 * will not be called: read the status), 0 when a sync was queued or joined
 * (cb will be called), or a TR_E* code.
 */
int tr_gitrepo_fetch_if_older(tr_gitrepo *repo, uint64_t max_age_ms, tr_gitrepo_sync_cb cb,
                              void *user_data);

/*
 * Sync now and then every interval_ms; after failures wait the backoff
 * instead (5 s doubling, +-20 % jitter, capped at 10 min).
 */
int tr_gitrepo_start_periodic(tr_gitrepo *repo, uint64_t interval_ms);

/* Run work then done, after the jobs already queued (FIFO, at most 64). */
int tr_gitrepo_queue_work(tr_gitrepo *repo, tr_gitrepo_work_fn work, tr_gitrepo_done_fn done,
                          void *user_data);

void tr_gitrepo_get_status(const tr_gitrepo *repo, tr_gitrepo_status *out);
/* The repo's copy of its spec; valid until close, safe to read on any thread. */
const tr_gitrepo_spec *tr_gitrepo_spec_get(const tr_gitrepo *repo);

/*
 * Close: queued jobs are dropped (their callbacks get TR_ECANCELLED), a
 * running transfer is asked to stop, and the object is freed once the
 * running job has returned and the timer is closed; then closed_cb (may be
 * NULL) runs. Keep running the loop until then. NULL is fine.
 */
void tr_gitrepo_close(tr_gitrepo *repo, void (*closed_cb)(void *user_data), void *user_data);

/* The daemon's set of repositories from [gitops] is fixers/repos.h. */

#endif
