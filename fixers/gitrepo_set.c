/*
 * gitrepo_set.c - the daemon's GitOps repositories, built from [gitops] and
 * [[gitops.repos]]: one tr_gitrepo each, cloned under <state_dir>/git/<name>,
 * tokens resolved from their *_env variables, closed together.
 *
 * The top-level [gitops] url, when set, is the repository named "gitops";
 * each [[gitops.repos]] entry is one more (the loader has already filled in
 * what an entry leaves out from [gitops]). A repository name becomes a
 * directory name, so it is held to [A-Za-z0-9._-] and may not start with '.'.
 */
#include "gitrepo_internal.h"

#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "config.h"
#include "log.h"

#define SET_NAME "gitops"

struct tr_gitrepo_set {
    tr_gitrepo **repos;
    size_t count;
    size_t open_count; /* repos not yet reported closed */
    void (*closed_cb)(void *user_data);
    void *closed_user_data;
};

static int name_ok(const char *name)
{
    const char *p;
    if (!name || !name[0] || name[0] == '.' || strlen(name) > 100)
        return 0;
    for (p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

static int wants_token(const char *url)
{
    return strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0;
}

static int add_repo(tr_gitrepo_set *set, uv_loop_t *loop, const char *state_dir,
                    const char *name, const char *url, const char *branch, const char *username,
                    const char *token_env, const char *ssh_key_file, tr_error *err)
{
    tr_gitrepo_spec spec = { 0 };
    tr_buf dir = TR_BUF_INIT(4096);
    char *token = NULL;
    int rc;

    if (!name_ok(name)) {
        rc = tr_error_set(err, TR_ECONFIG, "gitops: repository name \"%s\" must be "
                          "[A-Za-z0-9._-] and not start with '.'", name ? name : "");
        goto cleanup;
    }
    if (tr_buf_printf(&dir, "%s/git/%s", state_dir && state_dir[0] ? state_dir : ".", name)) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (wants_token(url) && token_env && token_env[0]) {
        rc = tr_config_secret_resolve(token_env, NULL, &token, err);
        if (rc == TR_ENOTFOUND) {
            tr_log_warn("gitrepo", "repo %s: $%s is not set; fetching without a token", name,
                        token_env);
            tr_error_clear(err);
        } else if (rc < 0) {
            tr_error_prefix(err, "gitops repo %s: ", name);
            goto cleanup;
        }
    }
    spec.name = name;
    spec.url = url;
    spec.branch = branch;
    spec.username = username;
    spec.token = token;
    spec.ssh_key_file = ssh_key_file;
    spec.work_dir = tr_buf_cstr(&dir);
    rc = tr_gitrepo_new(&set->repos[set->count], loop, &spec, err);
    if (rc == 0) {
        set->count++;
        set->open_count++;
    }
cleanup:
    tr_secret_free(token);
    tr_buf_dispose(&dir);
    return rc;
}

int tr_gitrepo_set_open(tr_gitrepo_set **out, uv_loop_t *loop,
                        const struct tr_config_gitops *cfg, const char *state_dir,
                        tr_error *err)
{
    tr_gitrepo_set *set;
    size_t i, j;
    int rc = 0;

    *out = NULL;
    if (!(set = tr_calloc(1, sizeof(*set))) ||
        !(set->repos = tr_calloc(cfg->repo_count + 1, sizeof(tr_gitrepo *)))) {
        tr_free(set);
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    }
    if (cfg->url && cfg->url[0])
        rc = add_repo(set, loop, state_dir, SET_NAME, cfg->url, cfg->branch, cfg->username,
                      cfg->token_env, cfg->ssh_key_file, err);
    for (i = 0; rc == 0 && i < cfg->repo_count; i++) {
        const tr_config_repo *repo = &cfg->repos[i];
        for (j = 0; j < set->count; j++)
            if (strcmp(tr_gitrepo_spec_get(set->repos[j])->name, repo->name) == 0)
                rc = tr_error_set(err, TR_ECONFIG, "gitops.repos[%zu].name: \"%s\" is "
                                  "already used", i, repo->name);
        if (rc == 0)
            rc = add_repo(set, loop, state_dir, repo->name, repo->url, repo->branch,
                          repo->username, repo->token_env, repo->ssh_key_file, err);
    }
    if (rc < 0) {
        tr_gitrepo_set_close(set, NULL, NULL); /* the loop frees them */
        return rc;
    }
    *out = set;
    return 0;
}

size_t tr_gitrepo_set_count(const tr_gitrepo_set *set)
{
    return set ? set->count : 0;
}

tr_gitrepo *tr_gitrepo_set_at(const tr_gitrepo_set *set, size_t index)
{
    return set && index < set->count ? set->repos[index] : NULL;
}

tr_gitrepo *tr_gitrepo_set_find(const tr_gitrepo_set *set, const char *name)
{
    size_t i;
    if (!set || set->count == 0)
        return NULL;
    if (!name || !name[0])
        return set->repos[0];
    for (i = 0; i < set->count; i++)
        if (strcmp(tr_gitrepo_spec_get(set->repos[i])->name, name) == 0)
            return set->repos[i];
    return NULL;
}

int tr_gitrepo_set_start(tr_gitrepo_set *set, uint64_t interval_ms)
{
    size_t i;
    int rc;
    for (i = 0; set && i < set->count; i++)
        if ((rc = tr_gitrepo_start_periodic(set->repos[i], interval_ms)) < 0)
            return rc;
    return 0;
}

static void finish_set(tr_gitrepo_set *set)
{
    void (*closed_cb)(void *) = set->closed_cb;
    void *closed_user_data = set->closed_user_data;

    tr_free(set->repos);
    tr_free(set);
    if (closed_cb)
        closed_cb(closed_user_data);
}

static void on_repo_closed(void *user_data)
{
    tr_gitrepo_set *set = user_data;
    if (--set->open_count == 0)
        finish_set(set);
}

void tr_gitrepo_set_close(tr_gitrepo_set *set, void (*closed_cb)(void *user_data),
                          void *user_data)
{
    size_t i;

    if (!set)
        return;
    set->closed_cb = closed_cb;
    set->closed_user_data = user_data;
    if (set->open_count == 0) {
        finish_set(set);
        return;
    }
    for (i = 0; i < set->count; i++)
        tr_gitrepo_close(set->repos[i], on_repo_closed, set);
}
