/*
 * gitrepo.c - the network half of the GitOps repository: clone, fetch and
 * force the work tree to the remote head, push, ls-remote; libgit2's
 * credential, progress and push callbacks.
 *
 * Why the callbacks look the way they do:
 *  - libgit2 calls the credential callback again after every 401 or refused
 *    key, forever. The first secret is offered once; the second request is
 *    refused and turned into "authentication failed for <url> as <user>".
 *  - A broken clone (missing HEAD, missing objects) shows up anywhere: at
 *    open, during the fetch negotiation, at checkout. Errors from local
 *    stages mark the clone corrupt and the sync starts over from an empty
 *    directory, once; network and auth errors never do (re-cloning would not
 *    help and would cost a full download).
 *  - Hook output (pre-receive) reaches us only on the sideband; it is kept
 *    (capped) so a rejection says what the hook said.
 */
#include "gitrepo_internal.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "buf.h"
#include "log.h"

#define REMOTE_MSG_MAX 2048
#define REF_MAX 512

typedef struct remote_ctx {
    const tr_gitrepo_spec *spec;
    const volatile int *cancel_flag;
    int secret_attempts;
    int auth_refused;
    int cancelled;
    tr_buf remote_msg;              /* sideband text ("remote: ..."), capped */
    char rejected_status[256];      /* "" unless a ref was rejected */
    const char *lease;              /* force-with-lease expectation, or NULL */
    int lease_broken;
    char lease_found[TR_GITREPO_OID_HEX];
} remote_ctx;

/* ------------------------------------------------------------ helpers */

int tr_gitrepo_fail(tr_error *err, int code, const char *secret, const char *fmt, ...)
{
    tr_buf msg = TR_BUF_INIT(TR_ERROR_MSG_MAX * 2);
    const git_error *gerr = git_error_last();
    va_list ap;
    const char *text;
    const char *hit;

    va_start(ap, fmt);
    (void)tr_buf_vprintf(&msg, fmt, ap); /* a cut message is still useful */
    va_end(ap);
    if (gerr && gerr->message && gerr->message[0])
        (void)tr_buf_printf(&msg, ": %s", gerr->message);
    text = tr_buf_cstr(&msg);
    if (secret && secret[0] && (hit = strstr(text, secret))) {
        tr_buf clean = TR_BUF_INIT(TR_ERROR_MSG_MAX * 2);
        size_t secret_len = strlen(secret);
        while (hit) {
            (void)tr_buf_put(&clean, text, (size_t)(hit - text));
            (void)tr_buf_puts(&clean, "[redacted]");
            text = hit + secret_len;
            hit = strstr(text, secret);
        }
        (void)tr_buf_puts(&clean, text);
        tr_error_set(err, code, "%s", tr_buf_cstr(&clean));
        tr_buf_dispose(&clean);
    } else {
        tr_error_set(err, code, "%s", text);
    }
    tr_buf_dispose(&msg);
    git_error_clear();
    return code;
}

/* The URL without its user-info part ("https://u:t@h/p" -> "https://h/p"). */
static void display_url(const char *url, char *out, size_t cap)
{
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : NULL;
    const char *at = NULL;

    if (host) {
        const char *p;
        for (p = host; *p && *p != '/'; p++)
            if (*p == '@')
                at = p;
    }
    if (at)
        snprintf(out, cap, "%.*s%s", (int)(host - url), url, at + 1);
    else
        snprintf(out, cap, "%s", url);
}

static int is_ssh_url(const char *url)
{
    const char *colon;
    if (strncmp(url, "ssh://", 6) == 0)
        return 1;
    if (strstr(url, "://") || url[0] == '/' || url[0] == '.')
        return 0;
    colon = strchr(url, ':');
    return colon && colon != url && !strchr(colon, ' '); /* scp-like user@host:path */
}

static const char *https_username(const tr_gitrepo_spec *spec)
{
    return spec->username && spec->username[0] ? spec->username : TR_GITREPO_DEFAULT_USERNAME;
}

static const char *spec_branch(const tr_gitrepo_spec *spec)
{
    return spec->branch && spec->branch[0] ? spec->branch : "main";
}

static const char *spec_name(const tr_gitrepo_spec *spec)
{
    return spec->name && spec->name[0] ? spec->name : "gitops";
}

int tr_gitrepo_open_dir(git_repository **out, const char *dir, tr_error *err)
{
    if (git_repository_open_ext(out, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0)
        return tr_gitrepo_fail(err, TR_EIO, NULL, "cannot open git repository %s", dir);
    return 0;
}

int tr_gitrepo_lookup_commit(git_commit **out, git_repository *repo, const char *rev,
                             tr_error *err)
{
    git_object *obj = NULL;
    int rc;

    if (git_revparse_single(&obj, repo, rev ? rev : "HEAD") < 0)
        return tr_gitrepo_fail(err, TR_ENOTFOUND, NULL, "no commit '%s'", rev ? rev : "HEAD");
    rc = git_object_peel((git_object **)out, obj, GIT_OBJECT_COMMIT);
    git_object_free(obj);
    if (rc < 0)
        return tr_gitrepo_fail(err, TR_ENOTFOUND, NULL, "'%s' is not a commit",
                               rev ? rev : "HEAD");
    return 0;
}

static int unlink_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int remove_tree(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(dir, unlink_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkdir -p of the directory that will hold dir. */
static int make_parent_dirs(const char *dir)
{
    char *copy = tr_strdup(dir);
    char *p;
    int rc = 0;

    if (!copy)
        return TR_ENOMEM;
    for (p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST)
            rc = TR_EIO;
        *p = '/';
    }
    tr_free(copy);
    return rc;
}

/* ------------------------------------------------------------ callbacks */

static int remote_cancelled(remote_ctx *ctx)
{
    if (ctx->cancel_flag && *ctx->cancel_flag) {
        ctx->cancelled = 1;
        return 1;
    }
    return 0;
}

static int on_credentials(git_credential **out, const char *url, const char *url_user,
                          unsigned int allowed, void *payload)
{
    remote_ctx *ctx = payload;
    const tr_gitrepo_spec *spec = ctx->spec;
    const char *ssh_user = url_user && url_user[0] ? url_user : "git";

    (void)url;
    if (remote_cancelled(ctx))
        return GIT_EUSER;
    /* A user name alone (ssh asks for it first) is not a secret attempt. */
    if ((allowed & GIT_CREDENTIAL_USERNAME) && !(allowed & GIT_CREDENTIAL_SSH_KEY))
        return git_credential_username_new(out, ssh_user);
    if (ctx->secret_attempts++ > 0) {
        ctx->auth_refused = 1;
        git_error_set_str(GIT_ERROR_NET, "the credentials were refused");
        return GIT_EAUTH;
    }
    if ((allowed & GIT_CREDENTIAL_SSH_KEY) && spec->ssh_key_file && spec->ssh_key_file[0])
        return git_credential_ssh_key_new(out, ssh_user, NULL, spec->ssh_key_file, NULL);
    if (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT)
        return git_credential_userpass_plaintext_new(out, https_username(spec),
                                                     spec->token ? spec->token : "");
    ctx->auth_refused = 1;
    git_error_set_str(GIT_ERROR_NET, "no usable credentials configured (token or ssh key)");
    return GIT_EAUTH;
}

static int on_transfer(const git_indexer_progress *stats, void *payload)
{
    (void)stats;
    return remote_cancelled(payload) ? GIT_EUSER : 0;
}

static int on_sideband(const char *text, int len, void *payload)
{
    remote_ctx *ctx = payload;
    if (len > 0)
        (void)tr_buf_put(&ctx->remote_msg, text, (size_t)len); /* capped: keep the start */
    return remote_cancelled(ctx) ? GIT_EUSER : 0;
}

static int on_push_update(const char *refname, const char *status, void *payload)
{
    remote_ctx *ctx = payload;
    if (status && !ctx->rejected_status[0])
        snprintf(ctx->rejected_status, sizeof(ctx->rejected_status), "%s: %s", refname, status);
    return 0;
}

static int on_push_negotiation(const git_push_update **updates, size_t len, void *payload)
{
    remote_ctx *ctx = payload;
    size_t i;

    if (!ctx->lease)
        return 0;
    for (i = 0; i < len; i++) {
        char found[TR_GITREPO_OID_HEX] = "";
        if (!git_oid_is_zero(&updates[i]->src))
            git_oid_tostr(found, sizeof(found), &updates[i]->src);
        if (strcmp(found, ctx->lease) != 0) {
            ctx->lease_broken = 1;
            snprintf(ctx->lease_found, sizeof(ctx->lease_found), "%s", found);
            git_error_set_str(GIT_ERROR_NET, "force-with-lease check failed");
            return GIT_EUSER;
        }
    }
    return 0;
}

static void remote_ctx_init(remote_ctx *ctx, const tr_gitrepo_spec *spec,
                            const volatile int *cancel_flag, git_remote_callbacks *cbs)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->spec = spec;
    ctx->cancel_flag = cancel_flag;
    tr_buf_init(&ctx->remote_msg, REMOTE_MSG_MAX);
    git_remote_init_callbacks(cbs, GIT_REMOTE_CALLBACKS_VERSION);
    cbs->credentials = on_credentials;
    cbs->transfer_progress = on_transfer;
    cbs->sideband_progress = on_sideband;
    cbs->push_update_reference = on_push_update;
    cbs->push_negotiation = on_push_negotiation;
    cbs->payload = ctx;
}

/* Turn a failed network operation into a tr_error. doing: "fetch", "push". */
static int remote_fail(remote_ctx *ctx, int git_rc, const char *doing, tr_error *err)
{
    const tr_gitrepo_spec *spec = ctx->spec;
    char url[1024];

    display_url(spec->url, url, sizeof(url));
    if (ctx->cancelled || (ctx->cancel_flag && *ctx->cancel_flag)) {
        git_error_clear();
        return tr_error_set(err, TR_ECANCELLED, "repo %s: %s of %s cancelled", spec_name(spec),
                            doing, url);
    }
    if (ctx->auth_refused || git_rc == GIT_EAUTH) {
        const char *user = is_ssh_url(spec->url) ? "the ssh key user" : https_username(spec);
        return tr_gitrepo_fail(err, TR_EAUTH, spec->token,
                               "repo %s: authentication failed for %s as %s", spec_name(spec),
                               url, user);
    }
    return tr_gitrepo_fail(err, TR_EUNAVAILABLE, spec->token, "repo %s: %s of %s failed",
                           spec_name(spec), doing, url);
}

/* A failure during fetch that says "your clone is broken", not "the network". */
static int fetch_error_is_local(remote_ctx *ctx)
{
    const git_error *gerr = git_error_last();
    if (ctx->auth_refused || ctx->cancelled || !gerr)
        return 0;
    switch (gerr->klass) {
    case GIT_ERROR_ODB:
    case GIT_ERROR_ZLIB:
    case GIT_ERROR_REPOSITORY:
    case GIT_ERROR_REFERENCE:
    case GIT_ERROR_OBJECT:
    case GIT_ERROR_INDEX:
    case GIT_ERROR_TREE:
        return 1;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------ sync */

typedef struct verify_ctx {
    git_odb *odb;
    int missing;
} verify_ctx;

static int on_verify_entry(const char *root, const git_tree_entry *entry, void *payload)
{
    verify_ctx *ctx = payload;
    (void)root;
    if (git_tree_entry_type(entry) == GIT_OBJECT_BLOB &&
        !git_odb_exists(ctx->odb, git_tree_entry_id(entry))) {
        ctx->missing = 1;
        return -1;
    }
    return 0;
}

/*
 * Every blob of commit's tree is present (a checkout to the commit already
 * checked out reads none of them, so a deleted object would go unnoticed).
 */
static int verify_tree(git_repository *repo, git_commit *commit)
{
    git_tree *tree = NULL;
    git_odb *odb = NULL;
    verify_ctx ctx = { NULL, 0 };
    int rc = -1;

    if (git_commit_tree(&tree, commit) < 0 || git_repository_odb(&odb, repo) < 0)
        goto cleanup;
    ctx.odb = odb;
    rc = git_tree_walk(tree, GIT_TREEWALK_PRE, on_verify_entry, &ctx);
    if (ctx.missing)
        git_error_set_str(GIT_ERROR_ODB, "objects of the checked-out tree are missing");
cleanup:
    git_odb_free(odb);
    git_tree_free(tree);
    return rc < 0 ? -1 : 0;
}

/* Force refs/heads/<branch>, HEAD and the work tree to oid. */
static int force_to(git_repository *repo, const char *branch, const git_oid *oid)
{
    git_commit *commit = NULL;
    git_reference *ref = NULL;
    git_checkout_options co;
    char refname[REF_MAX];
    int rc = -1;

    snprintf(refname, sizeof(refname), "refs/heads/%s", branch);
    (void)git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION); /* only bad versions fail */
    co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_REMOVE_UNTRACKED;
    if (git_commit_lookup(&commit, repo, oid) < 0 || verify_tree(repo, commit) < 0)
        goto cleanup;
    if (git_checkout_tree(repo, (const git_object *)commit, &co) < 0)
        goto cleanup;
    if (git_reference_create(&ref, repo, refname, oid, 1, "triaged: sync") < 0)
        goto cleanup;
    rc = git_repository_set_head(repo, refname);
cleanup:
    git_reference_free(ref);
    git_commit_free(commit);
    return rc;
}

static void head_hex(git_repository *repo, char head_out[TR_GITREPO_OID_HEX])
{
    git_oid oid;
    if (!head_out)
        return;
    head_out[0] = '\0';
    if (git_reference_name_to_id(&oid, repo, "HEAD") == 0)
        git_oid_tostr(head_out, TR_GITREPO_OID_HEX, &oid);
}

static int on_clone_remote(git_remote **out, git_repository *repo, const char *name,
                           const char *url, void *payload);

static int clone_fresh(const tr_gitrepo_spec *spec, const volatile int *cancel_flag,
                       char head_out[TR_GITREPO_OID_HEX], tr_error *err)
{
    git_clone_options opts;
    git_repository *repo = NULL;
    remote_ctx ctx;
    char url[1024], head[TR_GITREPO_OID_HEX];
    int rc;

    (void)git_clone_options_init(&opts, GIT_CLONE_OPTIONS_VERSION); /* only bad versions fail */
    remote_ctx_init(&ctx, spec, cancel_flag, &opts.fetch_opts.callbacks);
    opts.checkout_branch = spec_branch(spec);
    opts.remote_cb = on_clone_remote;
    opts.fetch_opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    if (remove_tree(spec->work_dir) != 0 || make_parent_dirs(spec->work_dir) != 0) {
        rc = tr_error_set(err, TR_EIO, "repo %s: cannot prepare %s: %s", spec_name(spec),
                          spec->work_dir, strerror(errno));
        goto cleanup;
    }
    rc = git_clone(&repo, spec->url, spec->work_dir, &opts);
    if (rc < 0) {
        const git_error *gerr = git_error_last();
        display_url(spec->url, url, sizeof(url));
        if (rc == GIT_ENOTFOUND && gerr && gerr->klass == GIT_ERROR_REFERENCE &&
            !ctx.auth_refused)
            rc = tr_gitrepo_fail(err, TR_ENOTFOUND, spec->token,
                                 "repo %s: branch '%s' not found on %s", spec_name(spec),
                                 spec_branch(spec), url);
        else
            rc = remote_fail(&ctx, rc, "clone", err);
        (void)remove_tree(spec->work_dir); /* no half clone left to trip the next sync */
        goto cleanup;
    }
    head_hex(repo, head);
    if (head_out)
        memcpy(head_out, head, TR_GITREPO_OID_HEX);
    tr_log_info("gitrepo", "repo %s: cloned %s at %.12s", spec_name(spec), spec->work_dir, head);
    rc = 0;
cleanup:
    git_repository_free(repo);
    tr_buf_dispose(&ctx.remote_msg);
    return rc;
}

/*
 * Every remote is created with GIT_REMOTE_CREATE_SKIP_INSTEADOF: Debian's
 * libgit2 1.5 leaks a PCRE2 match block (about 20 KiB with its frames) for
 * every config entry its url.<base>.insteadOf glob does not match
 * (libgit2 PR #6382, fixed after 1.5), i.e. on every git_remote_lookup and
 * git_remote_create, which a daemon syncing each minute cannot afford. The
 * URL in triaged's config is used as written. name NULL = anonymous.
 */
static int make_remote(git_remote **out, git_repository *repo, const char *name,
                       const char *url)
{
    git_remote_create_options opts;

    if (git_remote_create_options_init(&opts, GIT_REMOTE_CREATE_OPTIONS_VERSION) < 0)
        return -1;
    opts.repository = repo;
    opts.name = name;
    opts.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
    return git_remote_create_with_opts(out, url, &opts);
}

static int on_clone_remote(git_remote **out, git_repository *repo, const char *name,
                           const char *url, void *payload)
{
    (void)payload;
    return make_remote(out, repo, name, url);
}

/* The oid the remote advertised for refname (after a fetch or connect). */
static int advertised_oid(git_remote *remote, const char *refname, git_oid *out)
{
    const git_remote_head **heads = NULL;
    size_t count = 0, i;

    if (git_remote_ls(&heads, &count, remote) < 0)
        return -1;
    for (i = 0; i < count; i++) {
        if (strcmp(heads[i]->name, refname) == 0) {
            git_oid_cpy(out, &heads[i]->oid);
            return 0;
        }
    }
    return GIT_ENOTFOUND;
}

/* One fetch-and-force attempt; *corrupt set when a re-clone may help. */
static int sync_existing(const tr_gitrepo_spec *spec, const volatile int *cancel_flag,
                         char head_out[TR_GITREPO_OID_HEX], int *corrupt, tr_error *err)
{
    git_repository *repo = NULL;
    git_remote *remote = NULL;
    git_fetch_options opts;
    remote_ctx ctx;
    char refspec[REF_MAX * 2 + 8], refname[REF_MAX];
    char *refspecs[1] = { refspec };
    git_strarray specs = { refspecs, 1 };
    git_oid oid;
    char url[1024];
    int rc;

    (void)git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION); /* only bad versions fail */
    remote_ctx_init(&ctx, spec, cancel_flag, &opts.callbacks);
    opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    opts.update_fetchhead = 0;
    display_url(spec->url, url, sizeof(url));
    snprintf(refname, sizeof(refname), "refs/heads/%s", spec_branch(spec));
    snprintf(refspec, sizeof(refspec), "+%s:refs/remotes/origin/%s", refname, spec_branch(spec));
    *corrupt = 1;
    if ((rc = tr_gitrepo_open_dir(&repo, spec->work_dir, err)) < 0) {
        tr_error_prefix(err, "repo %s: ", spec_name(spec));
        goto cleanup;
    }
    if (git_repository_is_bare(repo) || git_repository_head_unborn(repo) == 1) {
        rc = tr_gitrepo_fail(err, TR_EIO, NULL, "repo %s: %s is not a usable clone",
                             spec_name(spec), spec->work_dir);
        goto cleanup;
    }
    if (make_remote(&remote, repo, NULL, spec->url) < 0) {
        rc = tr_gitrepo_fail(err, TR_EINVAL, spec->token, "repo %s: bad URL", spec_name(spec));
        goto cleanup;
    }
    rc = git_remote_fetch(remote, &specs, &opts, "triaged: fetch");
    if (rc < 0) {
        *corrupt = fetch_error_is_local(&ctx);
        rc = remote_fail(&ctx, rc, "fetch", err);
        goto cleanup;
    }
    *corrupt = 0;
    rc = advertised_oid(remote, refname, &oid);
    if (rc < 0) {
        rc = tr_error_set(err, TR_ENOTFOUND, "repo %s: branch '%s' not found on %s",
                          spec_name(spec), spec_branch(spec), url);
        goto cleanup;
    }
    if (force_to(repo, spec_branch(spec), &oid) < 0) {
        *corrupt = 1;
        rc = tr_gitrepo_fail(err, TR_EIO, NULL, "repo %s: checkout in %s", spec_name(spec),
                             spec->work_dir);
        goto cleanup;
    }
    head_hex(repo, head_out);
    rc = 0;
cleanup:
    git_remote_free(remote);
    git_repository_free(repo);
    tr_buf_dispose(&ctx.remote_msg);
    return rc;
}

static int spec_check(const tr_gitrepo_spec *spec, tr_error *err)
{
    if (!spec || !spec->url || !spec->url[0] || !spec->work_dir || !spec->work_dir[0])
        return tr_error_set(err, TR_EINVAL, "repo %s: url and work_dir are required",
                            spec && spec->name ? spec->name : "?");
    if (strlen(spec_branch(spec)) >= REF_MAX - 32 || strchr(spec_branch(spec), ':'))
        return tr_error_set(err, TR_EINVAL, "repo %s: bad branch name", spec_name(spec));
    return 0;
}

int tr_gitrepo_sync_blocking(const tr_gitrepo_spec *spec, const volatile int *cancel_flag,
                             char head_out[TR_GITREPO_OID_HEX], tr_error *err)
{
    struct stat st;
    int corrupt = 0;
    int rc;

    if ((rc = spec_check(spec, err)) < 0)
        return rc;
    if (head_out)
        head_out[0] = '\0';
    if (stat(spec->work_dir, &st) != 0)
        return clone_fresh(spec, cancel_flag, head_out, err);
    rc = sync_existing(spec, cancel_flag, head_out, &corrupt, err);
    if (rc < 0 && corrupt) {
        tr_log_warn("gitrepo", "%s; removing it and cloning again", err ? err->message : "");
        rc = clone_fresh(spec, cancel_flag, head_out, err);
    }
    return rc;
}

/* ------------------------------------------------------------ push, ls-remote */

static void trim_end(tr_buf *buf)
{
    while (buf->len > 0 && (buf->ptr[buf->len - 1] == '\n' || buf->ptr[buf->len - 1] == '\r' ||
                            buf->ptr[buf->len - 1] == ' ' || buf->ptr[buf->len - 1] == '\t'))
        buf->ptr[--buf->len] = '\0';
}

static int anonymous_remote(git_repository **repo, git_remote **remote,
                            const tr_gitrepo_spec *spec, tr_error *err)
{
    int rc;
    if ((rc = spec_check(spec, err)) < 0 || (rc = tr_gitrepo_open_dir(repo, spec->work_dir, err)))
        return rc;
    if (make_remote(remote, *repo, NULL, spec->url) < 0)
        return tr_gitrepo_fail(err, TR_EINVAL, spec->token, "repo %s: bad URL", spec_name(spec));
    return 0;
}

int tr_gitrepo_push(const tr_gitrepo_spec *spec, const char *branch,
                    const char *expected_remote, tr_error *err)
{
    git_repository *repo = NULL;
    git_remote *remote = NULL;
    git_push_options opts;
    remote_ctx ctx;
    char refspec[REF_MAX * 2 + 8];
    char *refspecs[1] = { refspec };
    git_strarray specs = { refspecs, 1 };
    char url[1024];
    int rc;

    (void)git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION); /* only bad versions fail */
    remote_ctx_init(&ctx, spec, NULL, &opts.callbacks);
    if (!branch || !branch[0] || strlen(branch) >= REF_MAX - 16 || strchr(branch, ':')) {
        rc = tr_error_set(err, TR_EINVAL, "push: bad branch name");
        goto cleanup;
    }
    if ((rc = anonymous_remote(&repo, &remote, spec, err)) < 0)
        goto cleanup;
    display_url(spec->url, url, sizeof(url));
    ctx.lease = expected_remote;
    snprintf(refspec, sizeof(refspec), "%srefs/heads/%s:refs/heads/%s",
             expected_remote ? "+" : "", branch, branch);
    rc = git_remote_push(remote, &specs, &opts);
    if (rc < 0 && ctx.lease_broken) {
        git_error_clear();
        rc = tr_error_set(err, TR_ECONFLICT,
                          "repo %s: push of %s to %s refused: the remote branch is at '%s', "
                          "expected '%s'", spec_name(spec), branch, url, ctx.lease_found,
                          expected_remote);
    } else if (rc == GIT_ENONFASTFORWARD) {
        rc = tr_gitrepo_fail(err, TR_ECONFLICT, spec->token,
                             "repo %s: push of %s to %s is not a fast-forward",
                             spec_name(spec), branch, url);
    } else if (rc < 0) {
        rc = remote_fail(&ctx, rc, "push", err);
    } else if (ctx.rejected_status[0]) {
        int code;
        trim_end(&ctx.remote_msg);
        code = strstr(ctx.rejected_status, "fast-forward") ||
                       strstr(ctx.rejected_status, "fetch first") ? TR_ECONFLICT : TR_ERROR;
        rc = tr_error_set(err, code, "repo %s: push of %s to %s rejected by the remote: %s%s%s",
                          spec_name(spec), branch, url, ctx.rejected_status,
                          ctx.remote_msg.len ? "; remote said: " : "",
                          tr_buf_cstr(&ctx.remote_msg));
    } else {
        tr_log_info("gitrepo", "repo %s: pushed %s to %s", spec_name(spec), branch, url);
    }
cleanup:
    git_remote_free(remote);
    git_repository_free(repo);
    tr_buf_dispose(&ctx.remote_msg);
    return rc;
}

int tr_gitrepo_commit_tree(const char *dir, const char *commit,
                           char tree_out[TR_GITREPO_OID_HEX], tr_error *err)
{
    git_repository *repo = NULL;
    git_commit *obj = NULL;
    int rc;

    if ((rc = tr_gitrepo_open_dir(&repo, dir, err)) < 0)
        return rc;
    if ((rc = tr_gitrepo_lookup_commit(&obj, repo, commit, err)) == 0)
        git_oid_tostr(tree_out, TR_GITREPO_OID_HEX, git_commit_tree_id(obj));
    git_commit_free(obj);
    git_repository_free(repo);
    return rc;
}

int tr_gitrepo_remote_branch_commit(const tr_gitrepo_spec *spec, const char *branch,
                                    char commit_out[TR_GITREPO_OID_HEX],
                                    char tree_out[TR_GITREPO_OID_HEX], tr_error *err)
{
    git_repository *repo = NULL;
    git_remote *remote = NULL;
    git_fetch_options opts;
    remote_ctx ctx;
    char refname[REF_MAX], refspec[REF_MAX * 2 + 8], url[1024];
    char *refspecs[1] = { refspec };
    git_strarray specs = { refspecs, 1 };
    git_odb *odb = NULL;
    git_oid oid;
    int rc;

    (void)git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION); /* only bad versions fail */
    remote_ctx_init(&ctx, spec, NULL, &opts.callbacks);
    if (!branch || !branch[0] || strlen(branch) >= REF_MAX - 32 || strchr(branch, ':')) {
        rc = tr_error_set(err, TR_EINVAL, "ls-remote: bad branch name");
        goto cleanup;
    }
    if ((rc = anonymous_remote(&repo, &remote, spec, err)) < 0)
        goto cleanup;
    display_url(spec->url, url, sizeof(url));
    snprintf(refname, sizeof(refname), "refs/heads/%s", branch);
    if ((rc = git_remote_connect(remote, GIT_DIRECTION_FETCH, &opts.callbacks, NULL, NULL))) {
        rc = remote_fail(&ctx, rc, "ls-remote", err);
        goto cleanup;
    }
    rc = advertised_oid(remote, refname, &oid);
    git_remote_disconnect(remote);
    if (rc < 0) {
        git_error_clear();
        rc = tr_error_set(err, TR_ENOTFOUND, "repo %s: no branch '%s' on %s", spec_name(spec),
                          branch, url);
        goto cleanup;
    }
    git_oid_tostr(commit_out, TR_GITREPO_OID_HEX, &oid);
    if (!tree_out)
        goto cleanup;
    if (git_repository_odb(&odb, repo) < 0) {
        rc = tr_gitrepo_fail(err, TR_EIO, NULL, "repo %s: object database", spec_name(spec));
        goto cleanup;
    }
    if (!git_odb_exists(odb, &oid)) {
        snprintf(refspec, sizeof(refspec), "+%s:refs/triaged/remote/%s", refname, branch);
        opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
        opts.update_fetchhead = 0;
        if ((rc = git_remote_fetch(remote, &specs, &opts, NULL)) < 0) {
            rc = remote_fail(&ctx, rc, "fetch", err);
            goto cleanup;
        }
    }
    rc = tr_gitrepo_commit_tree(spec->work_dir, commit_out, tree_out, err);
cleanup:
    git_odb_free(odb);
    git_remote_free(remote);
    git_repository_free(repo);
    tr_buf_dispose(&ctx.remote_msg);
    return rc;
}

int tr_gitrepo_global_init(tr_error *err)
{
    if (git_libgit2_init() < 0)
        return tr_gitrepo_fail(err, TR_ERROR, NULL, "libgit2 initialisation failed");
    return 0;
}

void tr_gitrepo_global_shutdown(void)
{
    (void)git_libgit2_shutdown(); /* the count of remaining users is of no interest */
}
