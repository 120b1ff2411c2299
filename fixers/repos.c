/*
 * repos.c - the GitOps repository registry: config → tr_gitrepo objects,
 * their periodic fetch, readiness and per-commit index cache.
 *
 * Readiness is polled from tr_gitrepo_get_status on a one-second timer
 * rather than pushed from sync callbacks: the periodic sync of tr_gitrepo
 * has no callback, and a poll also catches syncs that triage evidence or
 * the fixer started. Only a change of state or detail reaches tr_health.
 */
#include "repos.h"

#include "alloc.h"
#include "buf.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MODULE "gitops"
#define HEALTH_POLL_MS 1000
#define DEFAULT_INTERVAL_MS ((uint64_t)5 * 60 * 1000)

typedef struct entry {
    tr_gitrepo *repo;
    char *name;
    char *component; /* "gitops/<name>" */
    char *last_detail;
    tr_health_state last_state;
    /* Touched only from this repo's queued work (one job at a time). */
    tr_locate_index *index;
} entry;

struct tr_repos {
    uv_loop_t *loop;
    tr_health *health;
    uint64_t interval_ms;
    entry entries[TR_REPOS_MAX];
    size_t count;
    uv_timer_t poll;
    int poll_started;
    size_t closes_pending;
    void (*closed_cb)(void *userdata);
    void *closed_userdata;
};

static int global_done;

static int make_dir(const char *path, tr_error *err)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return tr_error_set(err, TR_EIO, "gitops: cannot create %s: %s", path, strerror(errno));
    return TR_OK;
}

static int add_repo(tr_repos *r, const char *state_dir, const char *name, const char *url,
                    const char *branch, const char *username, const char *token_env,
                    const char *ssh_key_file, tr_error *err)
{
    entry *e = &r->entries[r->count];
    tr_buf dir = TR_BUF_INIT(4096), component = TR_BUF_INIT(512);
    tr_gitrepo_spec spec;
    char *token = NULL;
    tr_error secret_err = { 0 };
    int rc;

    if (r->count >= TR_REPOS_MAX)
        return tr_error_set(err, TR_ELIMIT, "gitops: more than %d repositories", TR_REPOS_MAX);
    if (token_env && token_env[0] &&
        tr_config_secret_resolve(token_env, NULL, &token, &secret_err) != TR_OK) {
        /* A public repository needs no token: say so once and go on. */
        tr_log_info(MODULE, "repo %s: no token (%s)", name, secret_err.message);
        token = NULL;
    }
    rc = tr_buf_printf(&dir, "%s/git/%s", state_dir, name);
    if (rc == TR_OK)
        rc = tr_buf_printf(&component, "gitops/%s", name);
    if (rc != TR_OK) {
        rc = tr_error_set(err, rc, "gitops: repo %s: path too long", name);
        goto cleanup;
    }
    memset(&spec, 0, sizeof(spec));
    spec.name = name;
    spec.url = url;
    spec.branch = branch;
    spec.username = username;
    spec.token = token;
    spec.ssh_key_file = ssh_key_file;
    spec.work_dir = tr_buf_cstr(&dir);
    e->name = tr_strdup(name);
    e->component = tr_strdup(tr_buf_cstr(&component));
    if (e->name == NULL || e->component == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "gitops: out of memory");
        goto cleanup;
    }
    rc = tr_gitrepo_new(&e->repo, r->loop, &spec, err);
    if (rc != TR_OK)
        goto cleanup;
    e->last_state = TR_HEALTH_STARTING;
    r->count++;
    if (r->health)
        (void)tr_health_set(r->health, e->component, TR_HEALTH_STARTING, "not fetched yet");
cleanup:
    if (rc != TR_OK) {
        tr_free(e->name);
        tr_free(e->component);
        memset(e, 0, sizeof(*e));
    }
    tr_secret_free(token);
    tr_buf_dispose(&dir);
    tr_buf_dispose(&component);
    return rc;
}

static int add_all(tr_repos *r, const tr_config *cfg, tr_error *err)
{
    const tr_config_gitops *g = &cfg->gitops;
    int rc = TR_OK;

    if (g->url && g->url[0])
        rc = add_repo(r, cfg->daemon.state_dir, "default", g->url, g->branch, g->username,
                      g->token_env, g->ssh_key_file, err);
    for (size_t i = 0; rc == TR_OK && i < g->repo_count; i++) {
        const tr_config_repo *c = &g->repos[i];

        rc = add_repo(r, cfg->daemon.state_dir, c->name, c->url, c->branch, c->username,
                      c->token_env, c->ssh_key_file, err);
    }
    return rc;
}

int tr_repos_new(tr_repos **out, uv_loop_t *loop, const tr_config *cfg, tr_health *health,
                 tr_error *err)
{
    tr_repos *r;
    tr_buf dir = TR_BUF_INIT(4096);
    int rc = TR_OK;

    *out = NULL;
    r = tr_calloc(1, sizeof(*r));
    if (r == NULL)
        return tr_error_set(err, TR_ENOMEM, "gitops: out of memory");
    r->loop = loop;
    r->health = health;
    r->interval_ms = cfg->gitops.fetch_interval_ms ? cfg->gitops.fetch_interval_ms
                                                   : DEFAULT_INTERVAL_MS;
    uv_timer_init(loop, &r->poll);
    r->poll.data = r;
    if ((cfg->gitops.url && cfg->gitops.url[0]) || cfg->gitops.repo_count > 0) {
        if (!global_done) {
            rc = tr_gitrepo_global_init(err);
            global_done = rc == TR_OK;
        }
        if (rc == TR_OK && (rc = tr_buf_printf(&dir, "%s/git", cfg->daemon.state_dir)) != TR_OK)
            rc = tr_error_set(err, rc, "gitops: state_dir too long");
        if (rc == TR_OK)
            rc = make_dir(tr_buf_cstr(&dir), err);
        if (rc == TR_OK)
            rc = add_all(r, cfg, err);
    }
    tr_buf_dispose(&dir);
    if (rc != TR_OK) {
        tr_repos_close(r, NULL, NULL);
        return rc;
    }
    *out = r;
    return TR_OK;
}

static entry *entry_of(const tr_repos *r, const tr_gitrepo *repo)
{
    for (size_t i = 0; r && i < r->count; i++)
        if (r->entries[i].repo == repo)
            return (entry *)&r->entries[i];
    return NULL;
}

static void format_time(uint64_t ms, char *out, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&secs, &tm) == NULL || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, size, "%" PRIu64 " ms", ms);
}

static void update_entry(tr_repos *r, entry *e)
{
    tr_gitrepo_status st;
    tr_health_state state;
    char detail[TR_ERROR_MSG_MAX + 160], when[40];

    tr_gitrepo_get_status(e->repo, &st);
    if (st.last_error[0]) {
        state = TR_HEALTH_DEGRADED;
        snprintf(detail, sizeof(detail), "%s", st.last_error);
    } else if (st.head[0]) {
        state = TR_HEALTH_OK;
        format_time(st.last_fetch_ms, when, sizeof(when));
        snprintf(detail, sizeof(detail), "head %.12s, fetched %s", st.head, when);
    } else {
        return; /* still STARTING */
    }
    if (state == e->last_state && e->last_detail && strcmp(e->last_detail, detail) == 0)
        return;
    if (state != e->last_state)
        tr_log_info(MODULE, "repo %s: %s", e->name, detail);
    e->last_state = state;
    tr_free(e->last_detail);
    e->last_detail = tr_strdup(detail);
    if (r->health)
        (void)tr_health_set(r->health, e->component, state, detail);
}

void tr_repos_update_health(tr_repos *repos, const tr_gitrepo *repo)
{
    entry *e = entry_of(repos, repo);

    if (e)
        update_entry(repos, e);
}

static void on_poll(uv_timer_t *timer)
{
    tr_repos *r = timer->data;

    for (size_t i = 0; i < r->count; i++)
        update_entry(r, &r->entries[i]);
}

int tr_repos_start(tr_repos *repos)
{
    int rc = TR_OK;

    for (size_t i = 0; i < repos->count && rc == TR_OK; i++)
        rc = tr_gitrepo_start_periodic(repos->entries[i].repo, repos->interval_ms);
    if (rc == TR_OK && repos->count > 0 && !repos->poll_started) {
        repos->poll_started = 1;
        uv_timer_start(&repos->poll, on_poll, HEALTH_POLL_MS, HEALTH_POLL_MS);
    }
    return rc;
}

size_t tr_repos_count(const tr_repos *repos)
{
    return repos ? repos->count : 0;
}

tr_gitrepo *tr_repos_at(const tr_repos *repos, size_t i)
{
    return repos && i < repos->count ? repos->entries[i].repo : NULL;
}

tr_gitrepo *tr_repos_find_url(const tr_repos *repos, const char *url)
{
    for (size_t i = 0; repos && url && i < repos->count; i++)
        if (tr_locate_repo_matches(tr_gitrepo_spec_get(repos->entries[i].repo)->url, url))
            return repos->entries[i].repo;
    return NULL;
}

tr_gitrepo *tr_repos_find_name(const tr_repos *repos, const char *name)
{
    for (size_t i = 0; repos && name && i < repos->count; i++)
        if (strcmp(repos->entries[i].name, name) == 0)
            return repos->entries[i].repo;
    return NULL;
}

tr_gitrepo *tr_repos_default(const tr_repos *repos)
{
    return repos && repos->count > 0 ? repos->entries[0].repo : NULL;
}

int tr_repos_index(tr_repos *repos, const tr_gitrepo *repo, const char *commit,
                   const tr_locate_index **out, tr_error *err)
{
    entry *e = entry_of(repos, repo);
    tr_locate_index *index = NULL;
    int rc;

    *out = NULL;
    if (e == NULL)
        return tr_error_set(err, TR_ENOTFOUND, "gitops: repository not registered");
    if (e->index && strcmp(tr_locate_index_commit(e->index), commit) == 0) {
        *out = e->index;
        return TR_OK;
    }
    rc = tr_locate_index_build(&index, tr_gitrepo_spec_get(repo)->work_dir, commit, NULL, err);
    if (rc != TR_OK)
        return rc;
    tr_locate_index_free(e->index);
    e->index = index;
    *out = index;
    return TR_OK;
}

static void free_registry(tr_repos *r)
{
    void (*cb)(void *) = r->closed_cb;
    void *ud = r->closed_userdata;

    for (size_t i = 0; i < r->count; i++) {
        tr_free(r->entries[i].name);
        tr_free(r->entries[i].component);
        tr_free(r->entries[i].last_detail);
        tr_locate_index_free(r->entries[i].index);
    }
    tr_free(r);
    if (cb)
        cb(ud);
}

static void close_one_done(void *userdata)
{
    tr_repos *r = userdata;

    if (--r->closes_pending == 0)
        free_registry(r);
}

static void on_poll_closed(uv_handle_t *handle)
{
    close_one_done(handle->data);
}

void tr_repos_close(tr_repos *repos, void (*closed_cb)(void *userdata), void *userdata)
{
    if (repos == NULL) {
        if (closed_cb)
            closed_cb(userdata);
        return;
    }
    repos->closed_cb = closed_cb;
    repos->closed_userdata = userdata;
    repos->closes_pending = 1 + repos->count;
    uv_close((uv_handle_t *)&repos->poll, on_poll_closed);
    for (size_t i = 0; i < repos->count; i++)
        tr_gitrepo_close(repos->entries[i].repo, close_one_done, repos);
}
