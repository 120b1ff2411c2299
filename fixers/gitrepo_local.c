/*
 * gitrepo_local.c - the GitOps clone read and written without the network:
 * a file at a commit, the last commits that touched a file with their short
 * diffs (triage evidence), and the fixer's one commit on a branch.
 *
 * The history walk is bounded (HISTORY_SCAN_MAX commits looked at), so a
 * file last touched years ago in a busy repository costs a bounded walk,
 * not the whole history.
 */
#include "gitrepo_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "buf.h"

#define READ_DEFAULT_MAX ((size_t)1024 * 1024)
#define DIFF_DEFAULT_MAX 4096
#define HISTORY_MAX 50
#define HISTORY_SCAN_MAX 20000
#define COMMIT_FILES_MAX 256

/* Relative, no "..", "." or ".git" component, no empty component. */
static int path_ok(const char *path)
{
    const char *p = path;
    if (!path || !path[0] || path[0] == '/' || strlen(path) > 4096)
        return 0;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && !strncmp(p, "..", 2)) ||
            (len == 4 && !strncasecmp(p, ".git", 4)))
            return 0;
        if (!end)
            break;
        p = end + 1;
    }
    return 1;
}

int tr_gitrepo_read_file(const char *dir, const char *commit, const char *path,
                         size_t max_bytes, char **out, size_t *len_out, tr_error *err)
{
    git_repository *repo = NULL;
    git_commit *obj = NULL;
    git_tree *tree = NULL;
    git_tree_entry *entry = NULL;
    git_blob *blob = NULL;
    size_t len;
    int rc;

    *out = NULL;
    if (len_out)
        *len_out = 0;
    if (!path_ok(path))
        return tr_error_set(err, TR_EINVAL, "bad repository path '%s'", path ? path : "");
    if (max_bytes == 0)
        max_bytes = READ_DEFAULT_MAX;
    if ((rc = tr_gitrepo_open_dir(&repo, dir, err)) < 0 ||
        (rc = tr_gitrepo_lookup_commit(&obj, repo, commit, err)) < 0)
        goto cleanup;
    if (git_commit_tree(&tree, obj) < 0 || git_tree_entry_bypath(&entry, tree, path) < 0 ||
        git_tree_entry_type(entry) != GIT_OBJECT_BLOB) {
        rc = tr_gitrepo_fail(err, TR_ENOTFOUND, NULL, "no file '%s' at %s", path,
                             commit ? commit : "HEAD");
        goto cleanup;
    }
    if (git_blob_lookup(&blob, repo, git_tree_entry_id(entry)) < 0) {
        rc = tr_gitrepo_fail(err, TR_EIO, NULL, "reading '%s'", path);
        goto cleanup;
    }
    len = (size_t)git_blob_rawsize(blob);
    if (len > max_bytes) {
        rc = tr_error_set(err, TR_ETOOBIG, "'%s' is %zu bytes, over the %zu-byte cap", path, len,
                          max_bytes);
        goto cleanup;
    }
    if (!(*out = tr_strndup(git_blob_rawcontent(blob), len))) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory reading '%s'", path);
        goto cleanup;
    }
    if (len_out)
        *len_out = len;
    rc = 0;
cleanup:
    git_blob_free(blob);
    git_tree_entry_free(entry);
    git_tree_free(tree);
    git_commit_free(obj);
    git_repository_free(repo);
    return rc;
}

/* ------------------------------------------------------------ history */

/* The blob id of path in commit's tree; zero when absent. */
static void path_blob(git_commit *commit, const char *path, git_oid *out)
{
    git_tree *tree = NULL;
    git_tree_entry *entry = NULL;

    memset(out, 0, sizeof(*out));
    if (git_commit_tree(&tree, commit) == 0 && git_tree_entry_bypath(&entry, tree, path) == 0)
        git_oid_cpy(out, git_tree_entry_id(entry));
    git_tree_entry_free(entry);
    git_tree_free(tree);
    git_error_clear();
}

static void iso_date(const git_time *when, char *out, size_t cap)
{
    time_t local = (time_t)(when->time + (git_time_t)when->offset * 60);
    int offset = when->offset < 0 ? -when->offset : when->offset;
    struct tm tm;
    char base[24];

    gmtime_r(&local, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s%c%02d:%02d", base, when->offset < 0 ? '-' : '+', offset / 60,
             offset % 60);
}

typedef struct diff_ctx {
    tr_buf text;
    int truncated;
} diff_ctx;

static int on_diff_line(const git_diff_delta *delta, const git_diff_hunk *hunk,
                        const git_diff_line *line, void *payload)
{
    diff_ctx *ctx = payload;
    size_t mark = ctx->text.len;
    int rc = 0;

    (void)delta;
    (void)hunk;
    if (line->origin == GIT_DIFF_LINE_CONTEXT || line->origin == GIT_DIFF_LINE_ADDITION ||
        line->origin == GIT_DIFF_LINE_DELETION)
        rc = tr_buf_putc(&ctx->text, line->origin);
    if (rc == 0)
        rc = tr_buf_put(&ctx->text, line->content, line->content_len);
    if (rc != 0) {
        ctx->text.len = mark; /* drop the half line; the cut is at a line end */
        if (ctx->text.ptr)
            ctx->text.ptr[mark] = '\0';
        ctx->truncated = 1;
        return 1; /* stop the walk */
    }
    return 0;
}

/* The diff of path alone between parent (may be NULL) and commit. */
static int file_diff(git_repository *repo, git_commit *commit, git_commit *parent,
                     const char *path, diff_ctx *ctx)
{
    git_tree *new_tree = NULL, *old_tree = NULL;
    git_diff *diff = NULL;
    git_diff_options opts;
    char *paths[1] = { (char *)path };
    int rc = -1;

    (void)git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION); /* only bad versions fail */
    opts.pathspec.strings = paths;
    opts.pathspec.count = 1;
    opts.flags = GIT_DIFF_DISABLE_PATHSPEC_MATCH;
    opts.context_lines = 3;
    if (git_commit_tree(&new_tree, commit) < 0 ||
        (parent && git_commit_tree(&old_tree, parent) < 0))
        goto cleanup;
    if (git_diff_tree_to_tree(&diff, repo, old_tree, new_tree, &opts) < 0)
        goto cleanup;
    rc = git_diff_print(diff, GIT_DIFF_FORMAT_PATCH, on_diff_line, ctx);
    if (rc > 0 || (rc < 0 && ctx->truncated))
        rc = 0; /* stopped at the cap on purpose */
cleanup:
    git_diff_free(diff);
    git_tree_free(old_tree);
    git_tree_free(new_tree);
    return rc;
}

static int history_entry(cJSON *array, git_repository *repo, git_commit *commit,
                         git_commit *parent, const char *path, size_t max_bytes)
{
    const git_signature *author = git_commit_author(commit);
    const char *summary = git_commit_summary(commit);
    char sha[TR_GITREPO_OID_HEX], short_sha[8], date[48];
    tr_buf who = TR_BUF_INIT(1024);
    diff_ctx diff = { TR_BUF_INIT(max_bytes), 0 };
    cJSON *item = cJSON_CreateObject();
    int rc = TR_ENOMEM;

    git_oid_tostr(sha, sizeof(sha), git_commit_id(commit));
    memcpy(short_sha, sha, 7);
    short_sha[7] = '\0';
    iso_date(&author->when, date, sizeof(date));
    if (tr_buf_printf(&who, "%s <%s>", author->name, author->email) == TR_ENOMEM)
        goto cleanup;
    if (file_diff(repo, commit, parent, path, &diff) < 0) {
        rc = TR_EIO;
        goto cleanup;
    }
    if (!item || !cJSON_AddStringToObject(item, "sha", short_sha) ||
        !cJSON_AddStringToObject(item, "commit", sha) ||
        !cJSON_AddStringToObject(item, "author", tr_buf_cstr(&who)) ||
        !cJSON_AddStringToObject(item, "date", date) ||
        !cJSON_AddStringToObject(item, "subject", summary ? summary : "") ||
        !cJSON_AddStringToObject(item, "diff", tr_buf_cstr(&diff.text)) ||
        !cJSON_AddBoolToObject(item, "diff_truncated", diff.truncated))
        goto cleanup;
    cJSON_AddItemToArray(array, item);
    item = NULL;
    rc = 0;
cleanup:
    cJSON_Delete(item);
    tr_buf_dispose(&diff.text);
    tr_buf_dispose(&who);
    return rc;
}

int tr_gitrepo_file_history(const char *dir, const char *path, size_t n, size_t max_bytes,
                            cJSON **out, tr_error *err)
{
    git_repository *repo = NULL;
    git_revwalk *walk = NULL;
    cJSON *array = NULL;
    git_oid oid;
    size_t scanned = 0;
    int rc;

    *out = NULL;
    if (!path_ok(path) || n == 0 || n > HISTORY_MAX)
        return tr_error_set(err, TR_EINVAL, "file history: bad path '%s' or count %zu",
                            path ? path : "", n);
    if (max_bytes == 0)
        max_bytes = DIFF_DEFAULT_MAX;
    if ((rc = tr_gitrepo_open_dir(&repo, dir, err)) < 0)
        goto cleanup;
    if (!(array = cJSON_CreateArray())) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (git_revwalk_new(&walk, repo) < 0 ||
        git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME) < 0 ||
        git_revwalk_push_head(walk) < 0) {
        rc = tr_gitrepo_fail(err, TR_EIO, NULL, "walking the history of %s", dir);
        goto cleanup;
    }
    while ((size_t)cJSON_GetArraySize(array) < n && scanned++ < HISTORY_SCAN_MAX &&
           git_revwalk_next(&oid, walk) == 0) {
        git_commit *commit = NULL, *parent = NULL;
        git_oid now, before;

        if (git_commit_lookup(&commit, repo, &oid) < 0) {
            rc = tr_gitrepo_fail(err, TR_EIO, NULL, "reading commit in %s", dir);
            goto cleanup;
        }
        if (git_commit_parentcount(commit) > 0 && git_commit_parent(&parent, commit, 0) < 0) {
            git_commit_free(commit);
            rc = tr_gitrepo_fail(err, TR_EIO, NULL, "reading a parent commit in %s", dir);
            goto cleanup;
        }
        path_blob(commit, path, &now);
        if (parent)
            path_blob(parent, path, &before);
        else
            memset(&before, 0, sizeof(before));
        rc = 0;
        if (!git_oid_equal(&now, &before))
            rc = history_entry(array, repo, commit, parent, path, max_bytes);
        git_commit_free(parent);
        git_commit_free(commit);
        if (rc < 0) {
            rc = tr_gitrepo_fail(err, rc, NULL, "history of '%s'", path);
            goto cleanup;
        }
    }
    *out = array;
    array = NULL;
    rc = 0;
cleanup:
    cJSON_Delete(array);
    git_revwalk_free(walk);
    git_repository_free(repo);
    return rc;
}

/* ------------------------------------------------------------ commit */

/* "Name <mail>" -> a signature dated now. */
static int parse_author(git_signature **out, const char *author, tr_error *err)
{
    const char *lt = author ? strchr(author, '<') : NULL;
    const char *gt = lt ? strchr(lt, '>') : NULL;
    char *name = NULL, *mail = NULL;
    size_t name_len;
    int rc;

    if (!lt || !gt || gt[1] != '\0')
        return tr_error_set(err, TR_EINVAL, "author '%s' is not \"Name <mail>\"",
                            author ? author : "");
    name_len = (size_t)(lt - author);
    while (name_len > 0 && author[name_len - 1] == ' ')
        name_len--;
    name = tr_strndup(author, name_len);
    mail = tr_strndup(lt + 1, (size_t)(gt - lt - 1));
    if (!name || !mail)
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
    else if (!name[0] || git_signature_now(out, name, mail) < 0)
        rc = tr_gitrepo_fail(err, TR_EINVAL, NULL, "author '%s'", author);
    else
        rc = 0;
    tr_free(name);
    tr_free(mail);
    return rc;
}

static int build_updates(git_repository *repo, git_tree *base, const tr_gitrepo_file *files,
                         size_t count, git_tree_update *updates, tr_error *err)
{
    size_t i;
    for (i = 0; i < count; i++) {
        git_tree_entry *old = NULL;
        if (!path_ok(files[i].path))
            return tr_error_set(err, TR_EINVAL, "commit: bad path '%s'",
                                files[i].path ? files[i].path : "");
        updates[i].path = files[i].path;
        if (!files[i].content) {
            updates[i].action = GIT_TREE_UPDATE_REMOVE;
            continue;
        }
        updates[i].action = GIT_TREE_UPDATE_UPSERT;
        updates[i].filemode = GIT_FILEMODE_BLOB;
        if (git_tree_entry_bypath(&old, base, files[i].path) == 0 &&
            git_tree_entry_filemode(old) == GIT_FILEMODE_BLOB_EXECUTABLE)
            updates[i].filemode = GIT_FILEMODE_BLOB_EXECUTABLE; /* keep the x bit */
        git_tree_entry_free(old);
        git_error_clear();
        if (git_blob_create_from_buffer(&updates[i].id, repo, files[i].content, files[i].len) < 0)
            return tr_gitrepo_fail(err, TR_EIO, NULL, "writing '%s'", files[i].path);
    }
    return 0;
}

int tr_gitrepo_commit_files(const char *dir, const char *base_commit, const char *branch,
                            const tr_gitrepo_file *files, size_t file_count,
                            const char *author, const char *message,
                            char out_commit[TR_GITREPO_OID_HEX], tr_error *err)
{
    git_repository *repo = NULL;
    git_commit *base = NULL;
    git_tree *base_tree = NULL, *tree = NULL;
    git_signature *sig = NULL;
    git_reference *ref = NULL;
    git_tree_update *updates = NULL;
    git_oid tree_id, commit_id;
    char refname[600];
    int rc;

    if (!branch || !branch[0] || strlen(branch) > 500 || !message || !message[0] ||
        file_count == 0 || file_count > COMMIT_FILES_MAX || !files)
        return tr_error_set(err, TR_EINVAL, "commit: branch, message and 1..%d files required",
                            COMMIT_FILES_MAX);
    snprintf(refname, sizeof(refname), "refs/heads/%s", branch);
    if (!git_reference_is_valid_name(refname))
        return tr_error_set(err, TR_EINVAL, "commit: bad branch name '%s'", branch);
    if ((rc = parse_author(&sig, author, err)) < 0 ||
        (rc = tr_gitrepo_open_dir(&repo, dir, err)) < 0 ||
        (rc = tr_gitrepo_lookup_commit(&base, repo, base_commit, err)) < 0)
        goto cleanup;
    if (!(updates = tr_calloc(file_count, sizeof(*updates)))) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (git_commit_tree(&base_tree, base) < 0) {
        rc = tr_gitrepo_fail(err, TR_EIO, NULL, "commit: base tree");
        goto cleanup;
    }
    if ((rc = build_updates(repo, base_tree, files, file_count, updates, err)) < 0)
        goto cleanup;
    if (git_tree_create_updated(&tree_id, repo, base_tree, file_count, updates) < 0 ||
        git_tree_lookup(&tree, repo, &tree_id) < 0) {
        rc = tr_gitrepo_fail(err, TR_EIO, NULL, "commit: building the tree");
        goto cleanup;
    }
    if (git_commit_create(&commit_id, repo, NULL, sig, sig, NULL, message, tree, 1,
                          (const git_commit **)&base) < 0 ||
        git_reference_create(&ref, repo, refname, &commit_id, 1, "triaged: fix") < 0) {
        rc = tr_gitrepo_fail(err, TR_EIO, NULL, "commit on %s", refname);
        goto cleanup;
    }
    if (out_commit)
        git_oid_tostr(out_commit, TR_GITREPO_OID_HEX, &commit_id);
    rc = 0;
cleanup:
    git_reference_free(ref);
    tr_free(updates);
    git_tree_free(tree);
    git_tree_free(base_tree);
    git_commit_free(base);
    git_repository_free(repo);
    git_signature_free(sig);
    return rc;
}
