/*
 * repos.h - the registry of GitOps repositories: one tr_gitrepo per
 * repository of the config ([gitops] url as "default", then each
 * [[gitops.repos]]), cloned under <state_dir>/git/<name> and fetched every
 * gitops.fetch_interval. Triage evidence (llm/source.h) and the fixer look
 * repositories up here by URL or name.
 *
 * Each repository is a readiness component "gitops/<name>": OK with the
 * head commit and the time of the last fetch, DEGRADED with the last error
 * (bad URL, refused credentials, a work tree that cannot be repaired), or
 * STARTING before the first fetch ends. A failing repository never makes
 * the daemon unready.
 *
 * The registry also keeps, per repository, the YAML index of the work tree
 * at its head (fixers/locate.h), rebuilt when the head moves; it is only
 * touched from that repository's queued work (tr_gitrepo_queue_work), which
 * runs one job at a time.
 *
 * Ownership: the registry owns its repositories, their tokens (wiped on
 * close) and their indexes; pointers handed out are borrowed until
 * tr_repos_close. Loop thread only, except tr_repos_index.
 */
#ifndef TR_REPOS_H
#define TR_REPOS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "error.h"
#include "gitrepo.h"
#include "health.h"
#include "locate.h"

#define TR_REPOS_MAX 32

typedef struct tr_repos tr_repos;

/*
 * Build the registry from cfg->gitops (borrowed for this call only):
 * resolves each token_env (a missing variable means no token), calls
 * tr_gitrepo_global_init once per process, creates <state_dir>/git. health
 * (may be NULL) is borrowed and must outlive the registry. Nothing is
 * fetched before tr_repos_start. *out (never NULL on success, possibly with
 * no repository) is closed with tr_repos_close.
 */
int tr_repos_new(tr_repos **out, uv_loop_t *loop, const tr_config *cfg, tr_health *health,
                 tr_error *err);

/* Fetch every repository now and then every fetch_interval. */
int tr_repos_start(tr_repos *repos);

size_t tr_repos_count(const tr_repos *repos);
/* The i-th repository (config order, "default" first when set), or NULL. */
tr_gitrepo *tr_repos_at(const tr_repos *repos, size_t i);

/* The repository whose URL names the same one as url (tr_locate_repo_matches), or NULL. */
tr_gitrepo *tr_repos_find_url(const tr_repos *repos, const char *url);
tr_gitrepo *tr_repos_find_name(const tr_repos *repos, const char *name);
/* [gitops] url when set, else the first [[gitops.repos]], else NULL. */
tr_gitrepo *tr_repos_default(const tr_repos *repos);

/*
 * Refresh the readiness component of repo from its status now (the
 * registry also does it every second); for callers that just saw a sync end.
 */
void tr_repos_update_health(tr_repos *repos, const tr_gitrepo *repo);

/*
 * From work queued on repo (thread pool): the index of its work tree at
 * commit, built when the cached one is for another commit. Borrowed until
 * the next call for the same repository or tr_repos_close. TR_ENOTFOUND for
 * a repo not in the registry.
 */
int tr_repos_index(tr_repos *repos, const tr_gitrepo *repo, const char *commit,
                   const tr_locate_index **out, tr_error *err);

/*
 * Close every repository (running syncs are asked to stop) and free the
 * registry once they are all closed; then closed_cb (may be NULL) runs.
 * Keep the loop running until then. NULL is fine (closed_cb still runs).
 */
void tr_repos_close(tr_repos *repos, void (*closed_cb)(void *userdata), void *userdata);

#endif
