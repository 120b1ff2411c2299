/*
 * patch.c - anchoring, in-memory apply with libgit2, and the result of patch.h.
 *
 * Anchoring is done here, before libgit2, on purpose: libgit2's apply looks for a hunk's
 * pre-image at the stated line and then at the nearest line where it matches, so an LLM hunk
 * with a wrong line number and a context that occurs twice would land on whichever copy is
 * nearer. We decide the position ourselves (stated line if it matches exactly, else the one
 * unique match in the file), then hand libgit2 a patch whose every hunk matches exactly where
 * it says, so libgit2's search never runs.
 */
#include "patch.h"
#include "patch_internal.h"

#include "alloc.h"

#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BLOB_BYTES ((size_t)16 * 1024 * 1024)
#define SAMPLE 60

typedef struct file_lines {
    const char *data;
    size_t len;
    size_t *begin;    /* count + 1 entries: begin[count] = len (+1 when the file ends in \n) */
    size_t count;
    int final_eol;
} file_lines;

typedef struct apply_ctx {
    git_repository *repo;
    git_tree *tree;
    git_blob **blobs;     /* per file of the patch; NULL for new files */
    file_lines *fls;
    tr_patch_parsed parsed;
    const tr_patch_options *opts;
    size_t reanchored;
    tr_error *err;
} apply_ctx;

void tr_patch_options_init(tr_patch_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->max_patch_lines = TR_PATCH_DEFAULT_MAX_LINES;
    opts->max_input_bytes = TR_PATCH_DEFAULT_MAX_INPUT_BYTES;
    opts->terraform_timeout_ms = TR_PATCH_DEFAULT_TERRAFORM_TIMEOUT_MS;
    opts->terraform_validate = 1;
}

const char *tr_patch_check_status_name(tr_patch_check_status status)
{
    switch (status) {
    case TR_PATCH_CHECK_PASSED:
        return "passed";
    case TR_PATCH_CHECK_FAILED:
        return "failed";
    default:
        return "skipped";
    }
}

int tr_patch_normalize(char **out, size_t *out_len, const char *text, size_t len,
                       const tr_patch_options *opts, tr_error *err)
{
    tr_patch_parsed parsed;
    tr_buf buf = TR_BUF_INIT(0);
    int rc;

    *out = NULL;
    *out_len = 0;
    if ((rc = tr_patch_parse(&parsed, text, len, opts, err)) != TR_OK)
        return rc;
    if (tr_patch_serialize(&buf, &parsed) != TR_OK) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    *out_len = buf.len;
    *out = tr_buf_detach(&buf);
cleanup:
    tr_buf_dispose(&buf);
    tr_patch_parsed_dispose(&parsed);
    return rc;
}

static int git_fail(tr_error *err, int code, const char *what)
{
    const git_error *e = git_error_last();

    return tr_error_set(err, code, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

/* ------------------------------------------------------------------ anchoring */

static int split_file(file_lines *fl, const char *data, size_t len)
{
    size_t i, k = 0, n = 0;

    fl->data = data;
    fl->len = len;
    for (i = 0; i < len; i++)
        n += data[i] == '\n';
    fl->final_eol = len == 0 || data[len - 1] == '\n';
    fl->count = n + (fl->final_eol ? 0 : 1);
    fl->begin = tr_calloc(fl->count + 1, sizeof(size_t));
    if (fl->begin == NULL)
        return TR_ENOMEM;
    for (i = 0; i < len && k < fl->count; i++)
        if (i == 0 || data[i - 1] == '\n')
            fl->begin[k++] = i;
    fl->begin[fl->count] = len + (fl->final_eol ? 0 : 1);
    return TR_OK;
}

static size_t line_len(const file_lines *fl, size_t i)
{
    return fl->begin[i + 1] - 1 - fl->begin[i];
}

static size_t trim_len(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    return n;
}

/* How many pre-image lines (context and removed, in order) match from file line pos on. */
static size_t match_at(const file_lines *fl, size_t pos, const tr_patch_hunk *h, int loose)
{
    size_t k, matched = 0;

    for (k = 0; k < h->count; k++) {
        const tr_patch_line *l = &h->lines[k];
        const char *a;
        size_t alen, blen;

        if (l->tag == '+')
            continue;
        if (pos + matched >= fl->count)
            return matched;
        a = fl->data + fl->begin[pos + matched];
        alen = line_len(fl, pos + matched);
        blen = l->len;
        if (loose) {
            alen = trim_len(a, alen);
            blen = trim_len(l->text, blen);
        }
        if (alen != blen || memcmp(a, l->text, alen) != 0)
            return matched;
        matched++;
    }
    return matched;
}

static int insert_line(tr_patch_hunk *h, size_t at, const tr_patch_line *l)
{
    if (h->count == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        tr_patch_line *bigger = tr_realloc(h->lines, cap * sizeof(*bigger));

        if (bigger == NULL)
            return TR_ENOMEM;
        h->lines = bigger;
        h->cap = cap;
    }
    memmove(&h->lines[at + 1], &h->lines[at], (h->count - at) * sizeof(*l));
    h->lines[at] = *l;
    h->count++;
    return TR_OK;
}

/*
 * The hunk now sits at pos: take its pre-image bytes from the file (so a re-anchored hunk's
 * context is the file's, trailing whitespace included), give added lines the file's CRLF, and
 * set the "no newline at end of file" markers from the file, not from the model.
 */
static int settle(apply_ctx *c, tr_patch_filediff *f, tr_patch_hunk *h, const file_lines *fl,
                  size_t pos)
{
    size_t k, line = pos, last_pre = SIZE_MAX, last_post = SIZE_MAX, crlf = 1, pre = 0;

    for (k = 0; k < h->count; k++) {
        tr_patch_line *l = &h->lines[k];

        l->no_eol = 0;
        if (l->tag == '+')
            continue;
        l->text = fl->data + fl->begin[line];
        l->len = line_len(fl, line);
        crlf &= l->len > 0 && l->text[l->len - 1] == '\r';
        line++;
        pre++;
        last_pre = k;
    }
    for (k = 0; k < h->count; k++) {
        tr_patch_line *l = &h->lines[k];

        if (l->tag == '+' && pre > 0 && crlf && !(l->len > 0 && l->text[l->len - 1] == '\r'))
            l->add_cr = 1;
        if (l->tag != '-')
            last_post = k;
    }
    h->old_start = pos + 1;
    if (fl->final_eol || pos + pre != fl->count || last_pre == SIZE_MAX)
        return TR_OK;
    if (h->lines[last_pre].tag == ' ' && last_post != last_pre) {
        /* The unterminated last line gets lines after it: it changes (gains its newline). */
        tr_patch_line copy = h->lines[last_pre];

        copy.tag = '+';
        h->lines[last_pre].tag = '-';
        if (insert_line(h, last_pre + 1, &copy) != TR_OK)
            return tr_error_set(c->err, TR_ENOMEM, "out of memory");
        f->added++;
        f->removed++;
        c->parsed.added++;
        c->parsed.removed++;
        last_post++;
    }
    h->lines[last_pre].no_eol = 1;
    if (last_post != SIZE_MAX && last_post >= last_pre)
        h->lines[last_post].no_eol = 1;
    return TR_OK;
}

static void first_pre_line(const tr_patch_hunk *h, size_t nth, char *dst, size_t cap)
{
    size_t k, seen = 0, i;

    dst[0] = '\0';
    for (k = 0; k < h->count; k++) {
        if (h->lines[k].tag == '+')
            continue;
        if (seen++ == nth) {
            for (i = 0; i < h->lines[k].len && i < SAMPLE && i + 1 < cap; i++)
                dst[i] = (unsigned char)h->lines[k].text[i] >= 0x20 ? h->lines[k].text[i] : '?';
            dst[i] = '\0';
            return;
        }
    }
}

/* Search the whole file: 0 and *pos on a unique match, else the precise refusal. */
static int search(apply_ctx *c, const tr_patch_filediff *f, size_t hunk_no,
                  const tr_patch_hunk *h, const file_lines *fl, size_t *pos)
{
    size_t npre = tr_patch_hunk_old_len(h), p, found, at[3] = {0, 0, 0}, best = 0, best_at = 0;
    char sample[SAMPLE + 1];
    int loose;

    for (loose = 0; loose <= 1; loose++) {
        found = 0;
        for (p = 0; p + npre <= fl->count; p++) {
            size_t m = match_at(fl, p, h, loose);

            if (m == npre) {
                if (found < 3)
                    at[found] = p + 1;
                found++;
            } else if (m > best) {
                best = m;
                best_at = p;
            }
        }
        if (found == 1) {
            *pos = at[0] - 1;
            return TR_OK;
        }
        if (found > 1)
            return tr_error_set(c->err, TR_EINVAL, "%s: hunk %zu (header at diff line %zu): its "
                                "context and removed lines match %zu places (lines %zu, %zu%s); "
                                "refusing to guess: add unchanged lines around the change until "
                                "it is unique", f->path, hunk_no, h->input_line, found, at[0],
                                at[1], found > 2 ? ", ..." : "");
    }
    if (best == 0) {
        first_pre_line(h, 0, sample, sizeof(sample));
        return tr_error_set(c->err, TR_EINVAL, "%s: hunk %zu (header at diff line %zu): its "
                            "first context/removed line '%s' is not in the file at this commit",
                            f->path, hunk_no, h->input_line, sample);
    }
    first_pre_line(h, best, sample, sizeof(sample));
    return tr_error_set(c->err, TR_EINVAL, "%s: hunk %zu (header at diff line %zu): context "
                        "not found: its first %zu context/removed lines match at line %zu, but "
                        "the next one, '%s', is not line %zu of the file", f->path, hunk_no,
                        h->input_line, best, best_at + 1, sample, best_at + best + 1);
}

static int anchor_hunk(apply_ctx *c, tr_patch_filediff *f, size_t j, const file_lines *fl)
{
    tr_patch_hunk *h = &f->hunks[j];
    size_t npre = tr_patch_hunk_old_len(h), pos = 0;
    int rc;

    if (npre == 0) {
        if (!h->has_start || h->old_start > fl->count)
            return tr_error_set(c->err, TR_EINVAL, "%s: hunk %zu only adds lines and its "
                                "position is not in the file (%zu lines): include unchanged "
                                "context lines around the addition", f->path, j + 1, fl->count);
        return TR_OK;
    }
    if (h->has_start && h->old_start >= 1 && h->old_start - 1 + npre <= fl->count &&
        match_at(fl, h->old_start - 1, h, 0) == npre) {
        pos = h->old_start - 1;
    } else {
        if ((rc = search(c, f, j + 1, h, fl, &pos)) != TR_OK)
            return rc;
        c->reanchored++;
    }
    return settle(c, f, h, fl, pos);
}

static size_t hunk_begin(const tr_patch_hunk *h)
{
    return tr_patch_hunk_old_len(h) ? h->old_start - 1 : h->old_start;
}

static int order_hunks(apply_ctx *c, tr_patch_filediff *f)
{
    size_t i, j;

    for (i = 1; i < f->hunk_count; i++) /* insertion sort: a handful of hunks */
        for (j = i; j > 0 && hunk_begin(&f->hunks[j]) < hunk_begin(&f->hunks[j - 1]); j--) {
            tr_patch_hunk tmp = f->hunks[j];

            f->hunks[j] = f->hunks[j - 1];
            f->hunks[j - 1] = tmp;
        }
    for (i = 1; i < f->hunk_count; i++)
        if (hunk_begin(&f->hunks[i]) <
            hunk_begin(&f->hunks[i - 1]) + tr_patch_hunk_old_len(&f->hunks[i - 1]))
            return tr_error_set(c->err, TR_EINVAL, "%s: two hunks overlap (lines %zu and %zu): "
                                "merge them into one", f->path, hunk_begin(&f->hunks[i - 1]) + 1,
                                hunk_begin(&f->hunks[i]) + 1);
    return TR_OK;
}

/* A new file's parents must be directories (or absent), never a file or a symlink. */
static int check_new_path(apply_ctx *c, const char *path)
{
    char *prefix = tr_strdup(path);
    char *slash;
    int rc = TR_OK;

    if (prefix == NULL)
        return tr_error_set(c->err, TR_ENOMEM, "out of memory");
    for (slash = strchr(prefix, '/'); slash != NULL && rc == TR_OK;
         slash = strchr(slash + 1, '/')) {
        git_tree_entry *e = NULL;

        *slash = '\0';
        if (git_tree_entry_bypath(&e, c->tree, prefix) == 0 &&
            git_tree_entry_type(e) != GIT_OBJECT_TREE)
            rc = tr_error_set(c->err, TR_EINVAL, "%s: %s is a file or symlink, not a directory",
                              path, prefix);
        git_tree_entry_free(e);
        *slash = '/';
    }
    tr_free(prefix);
    return rc;
}

static int load_base(apply_ctx *c, size_t i)
{
    tr_patch_filediff *f = &c->parsed.files[i];
    git_tree_entry *e = NULL;
    git_filemode_t mode;
    size_t size;
    int rc = TR_OK;

    if (git_tree_entry_bypath(&e, c->tree, f->path) != 0) {
        if (f->is_new)
            return check_new_path(c, f->path);
        return tr_error_set(c->err, TR_EINVAL, "%s: no such file at this commit", f->path);
    }
    mode = git_tree_entry_filemode(e);
    if (f->is_new) {
        rc = tr_error_set(c->err, TR_EINVAL, "%s: the patch creates a file that already exists",
                          f->path);
    } else if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE) {
        rc = tr_error_set(c->err, TR_EINVAL, "%s: is a %s; only regular files are patched",
                          f->path, mode == GIT_FILEMODE_LINK ? "symlink" :
                          mode == GIT_FILEMODE_COMMIT ? "submodule" : "directory");
    } else if (git_blob_lookup(&c->blobs[i], c->repo, git_tree_entry_id(e)) != 0) {
        rc = git_fail(c->err, TR_EIO, f->path);
    } else if ((size = (size_t)git_blob_rawsize(c->blobs[i])) > MAX_BLOB_BYTES) {
        rc = tr_error_set(c->err, TR_EINVAL, "%s: the file is over %zu bytes", f->path,
                          MAX_BLOB_BYTES);
    } else if (split_file(&c->fls[i], git_blob_rawcontent(c->blobs[i]), size) != TR_OK) {
        rc = tr_error_set(c->err, TR_ENOMEM, "out of memory");
    }
    git_tree_entry_free(e);
    return rc;
}

static int anchor_all(apply_ctx *c)
{
    size_t i, j;
    int rc;

    for (i = 0; i < c->parsed.file_count; i++) {
        tr_patch_filediff *f = &c->parsed.files[i];

        if ((rc = load_base(c, i)) != TR_OK)
            return rc;
        if (f->is_new)
            continue;
        for (j = 0; j < f->hunk_count; j++)
            if ((rc = anchor_hunk(c, f, j, &c->fls[i])) != TR_OK)
                return rc;
        if ((rc = order_hunks(c, f)) != TR_OK)
            return rc;
    }
    return TR_OK;
}

/* ------------------------------------------------------------------ result */

void tr_patch_result_free(tr_patch_result *res)
{
    size_t i;

    if (res == NULL)
        return;
    for (i = 0; i < res->check_count; i++) {
        tr_free(res->checks[i].name);
        tr_free(res->checks[i].text);
    }
    for (i = 0; i < res->file_count; i++) {
        tr_free(res->files[i].path);
        tr_free(res->files[i].content);
    }
    tr_free(res->checks);
    tr_free(res->files);
    tr_free(res->patch);
    tr_free(res);
}

static int collect_files(apply_ctx *c, tr_patch_result *res, git_index *index)
{
    size_t i;

    res->files = tr_calloc(c->parsed.file_count, sizeof(*res->files));
    if (res->files == NULL)
        return tr_error_set(c->err, TR_ENOMEM, "out of memory");
    for (i = 0; i < c->parsed.file_count; i++) {
        const tr_patch_filediff *f = &c->parsed.files[i];
        tr_patch_file *out = &res->files[res->file_count];
        const git_index_entry *e = git_index_get_bypath(index, f->path, 0);
        git_blob *blob = NULL;
        size_t size;

        if (e == NULL || git_blob_lookup(&blob, c->repo, &e->id) != 0)
            return git_fail(c->err, TR_EIO, f->path);
        size = (size_t)git_blob_rawsize(blob);
        out->path = tr_strdup(f->path);
        out->content = tr_malloc(size + 1);
        if (out->path == NULL || out->content == NULL) {
            tr_free(out->path);
            tr_free(out->content);
            git_blob_free(blob);
            return tr_error_set(c->err, TR_ENOMEM, "out of memory");
        }
        memcpy(out->content, git_blob_rawcontent(blob), size);
        out->content[size] = '\0';
        out->content_len = size;
        out->is_new = f->is_new;
        out->lines_added = f->added;
        out->lines_removed = f->removed;
        git_blob_free(blob);
        res->file_count++;
    }
    return TR_OK;
}

static int apply(apply_ctx *c, tr_patch_result *res)
{
    tr_buf buf = TR_BUF_INIT(0);
    git_diff *diff = NULL;
    git_index *index = NULL;
    git_oid tree_oid;
    int rc = TR_OK;

    if (tr_patch_serialize(&buf, &c->parsed) != TR_OK) {
        rc = tr_error_set(c->err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (git_diff_from_buffer(&diff, buf.ptr, buf.len) != 0) {
        rc = git_fail(c->err, TR_EINVAL, "the normalised patch does not parse");
        goto cleanup;
    }
    if (git_apply_to_tree(&index, c->repo, c->tree, diff, NULL) != 0) {
        rc = git_fail(c->err, TR_EINVAL, "the patch does not apply");
        goto cleanup;
    }
    if (git_index_write_tree_to(&tree_oid, index, c->repo) != 0) {
        rc = git_fail(c->err, TR_EIO, "writing the patched tree");
        goto cleanup;
    }
    git_oid_tostr(res->tree_id, sizeof(res->tree_id), &tree_oid);
    if ((rc = collect_files(c, res, index)) != TR_OK)
        goto cleanup;
    res->patch_len = buf.len;
    res->patch = tr_buf_detach(&buf);
cleanup:
    git_index_free(index);
    git_diff_free(diff);
    tr_buf_dispose(&buf);
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* The new tree's files directly in dir (one module) written into tmp; subdirectories are not. */
static int write_tf_dir(apply_ctx *c, const git_oid *tree_oid, const char *dir, const char *tmp)
{
    git_tree *root = NULL, *sub = NULL;
    git_tree_entry *e = NULL;
    size_t i, total = 0;
    int rc = TR_EIO;

    if (git_tree_lookup(&root, c->repo, tree_oid) != 0)
        goto cleanup;
    if (dir[0] == '\0') {
        sub = root;
        root = NULL;
    } else if (git_tree_entry_bypath(&e, root, dir) != 0 ||
               git_tree_lookup(&sub, c->repo, git_tree_entry_id(e)) != 0) {
        goto cleanup;
    }
    for (i = 0; i < git_tree_entrycount(sub); i++) {
        const git_tree_entry *te = git_tree_entry_byindex(sub, i);
        git_blob *blob = NULL;
        tr_buf file = TR_BUF_INIT(0);
        FILE *fp;
        int ok;

        if (git_tree_entry_filemode(te) != GIT_FILEMODE_BLOB &&
            git_tree_entry_filemode(te) != GIT_FILEMODE_BLOB_EXECUTABLE)
            continue;
        if (git_blob_lookup(&blob, c->repo, git_tree_entry_id(te)) != 0)
            goto cleanup;
        total += (size_t)git_blob_rawsize(blob);
        ok = total <= MAX_BLOB_BYTES &&
             tr_buf_printf(&file, "%s/%s", tmp, git_tree_entry_name(te)) == TR_OK &&
             (fp = fopen(file.ptr, "wb")) != NULL;
        if (ok) {
            ok = fwrite(git_blob_rawcontent(blob), 1, (size_t)git_blob_rawsize(blob), fp) ==
                 (size_t)git_blob_rawsize(blob);
            ok = (fclose(fp) == 0) && ok;
        }
        git_blob_free(blob);
        tr_buf_dispose(&file);
        if (!ok)
            goto cleanup;
    }
    rc = TR_OK;
cleanup:
    git_tree_entry_free(e);
    git_tree_free(sub);
    git_tree_free(root);
    return rc;
}

static size_t dir_len_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash ? (size_t)(slash - path) : 0;
}

/* terraform validate once per directory holding a changed .tf file. */
static int validate_tf_dirs(apply_ctx *c, tr_patch_result *res)
{
    git_oid tree_oid;
    size_t i, j;
    int rc = TR_OK;

    if (git_oid_fromstr(&tree_oid, res->tree_id) != 0)
        return TR_OK;
    for (i = 0; i < res->file_count && rc == TR_OK; i++) {
        const char *path = res->files[i].path;
        size_t dir_len = dir_len_of(path);
        char tmp[] = "/tmp/triaged-patch-XXXXXX";
        char *dir;
        int seen = 0;

        if (!ends_with(path, ".tf"))
            continue;
        for (j = 0; j < i && !seen; j++) /* an earlier file of the same directory did it */
            seen = ends_with(res->files[j].path, ".tf") &&
                   dir_len_of(res->files[j].path) == dir_len &&
                   strncmp(res->files[j].path, path, dir_len) == 0;
        if (seen)
            continue;
        if ((dir = tr_strndup(path, dir_len)) == NULL)
            return tr_error_set(c->err, TR_ENOMEM, "out of memory");
        if (mkdtemp(tmp) == NULL)
            rc = tr_patch_add_check(res, "terraform validate", TR_PATCH_CHECK_SKIPPED,
                                    "validate skipped: no temporary directory");
        else if (write_tf_dir(c, &tree_oid, dir, tmp) != TR_OK)
            rc = tr_patch_add_check(res, "terraform validate", TR_PATCH_CHECK_SKIPPED,
                                    "validate skipped: %s/ could not be copied out",
                                    dir[0] ? dir : ".");
        else
            rc = tr_patch_check_tf_validate(res, c->opts, dir[0] ? dir : ".", tmp);
        tr_patch_remove_tree(tmp);
        tr_free(dir);
    }
    return rc;
}

static int run_checks(apply_ctx *c, tr_patch_result *res, const char *commit_id)
{
    const tr_patch_options *o = c->opts;
    size_t i, max_lines = o->max_patch_lines ? o->max_patch_lines : TR_PATCH_DEFAULT_MAX_LINES;
    int rc;

    rc = tr_patch_add_check(res, "apply", TR_PATCH_CHECK_PASSED, "applies to %.12s (%zu "
                            "hunk(s) re-anchored by their context)", commit_id, c->reanchored);
    if (rc == TR_OK)
        rc = tr_patch_add_check(res, "paths", TR_PATCH_CHECK_PASSED, "%zu file(s), %s",
                                res->file_count, o->allowed_path_count ?
                                "all under allowed_paths" :
                                "no allowed_paths set: whole repository except .git* files");
    if (rc == TR_OK)
        rc = tr_patch_add_check(res, "size", TR_PATCH_CHECK_PASSED, "+%zu -%zu lines (max %zu)",
                                res->lines_added, res->lines_removed, max_lines);
    if (rc == TR_OK)
        rc = tr_patch_add_check(res, "placeholders", TR_PATCH_CHECK_PASSED,
                                "no redaction placeholder in added lines");
    for (i = 0; i < res->file_count && rc == TR_OK; i++) {
        const tr_patch_file *f = &res->files[i];
        const char *old = c->blobs[i] ? (const char *)git_blob_rawcontent(c->blobs[i]) : NULL;
        size_t old_len = c->blobs[i] ? c->fls[i].len : 0;

        if (ends_with(f->path, ".yaml") || ends_with(f->path, ".yml")) {
            rc = tr_patch_check_yaml(res, f->path, old, old_len, f->content, f->content_len);
            if (rc == TR_OK && o->yaml_hook != NULL) {
                tr_buf detail = TR_BUF_INIT(4096);
                tr_patch_check_status st = o->yaml_hook(o->yaml_hook_ctx, f->path, f->content,
                                                        f->content_len, &detail);

                rc = tr_patch_add_check(res, "schema", st, "%s: %s", f->path,
                                        tr_buf_cstr(&detail));
                tr_buf_dispose(&detail);
            }
        } else if (ends_with(f->path, ".tf")) {
            rc = tr_patch_check_tf_fmt(res, o, f->path, old, old_len, f->content,
                                       f->content_len);
        }
    }
    if (rc == TR_OK && o->terraform_validate)
        rc = validate_tf_dirs(c, res);
    return rc;
}

static void dispose_ctx(apply_ctx *c)
{
    size_t i;

    for (i = 0; c->blobs && i < c->parsed.file_count; i++)
        git_blob_free(c->blobs[i]);
    for (i = 0; c->fls && i < c->parsed.file_count; i++)
        tr_free(c->fls[i].begin);
    tr_free(c->blobs);
    tr_free(c->fls);
    tr_patch_parsed_dispose(&c->parsed);
    git_tree_free(c->tree);
    git_repository_free(c->repo);
}

static int open_commit(apply_ctx *c, const char *repo_path, const char *commit, char *id_out)
{
    git_object *obj = NULL;
    git_commit *cm = NULL;
    int rc = TR_OK;

    if (git_repository_open(&c->repo, repo_path) != 0)
        return git_fail(c->err, TR_ENOTFOUND, repo_path);
    if (git_revparse_single(&obj, c->repo, commit) != 0 ||
        git_object_peel((git_object **)&cm, obj, GIT_OBJECT_COMMIT) != 0) {
        rc = git_fail(c->err, TR_ENOTFOUND, commit);
    } else if (git_commit_tree(&c->tree, cm) != 0) {
        rc = git_fail(c->err, TR_EIO, commit);
    } else {
        git_oid_tostr(id_out, 41, git_commit_id(cm));
    }
    git_commit_free(cm);
    git_object_free(obj);
    return rc;
}

static tr_patch_check_item *first_failure(const tr_patch_result *res)
{
    size_t i;

    for (i = 0; i < res->check_count; i++)
        if (res->checks[i].status == TR_PATCH_CHECK_FAILED)
            return &res->checks[i];
    return NULL;
}

int tr_patch_check(tr_patch_result **out, const char *repo_path, const char *commit,
                   const char *text, size_t len, const tr_patch_options *opts, tr_error *err)
{
    tr_patch_options defaults;
    tr_patch_result *res = NULL;
    tr_patch_check_item *failed;
    apply_ctx c;
    int rc;

    *out = NULL;
    memset(&c, 0, sizeof(c));
    if (opts == NULL) {
        tr_patch_options_init(&defaults);
        opts = &defaults;
    }
    c.opts = opts;
    c.err = err;
    if (git_libgit2_init() < 0)
        return tr_error_set(err, TR_EIO, "libgit2 did not initialise");
    if ((rc = tr_patch_parse(&c.parsed, text, len, opts, err)) != TR_OK)
        goto cleanup;
    res = tr_calloc(1, sizeof(*res));
    c.blobs = tr_calloc(c.parsed.file_count, sizeof(*c.blobs));
    c.fls = tr_calloc(c.parsed.file_count, sizeof(*c.fls));
    if (res == NULL || c.blobs == NULL || c.fls == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = open_commit(&c, repo_path, commit, res->commit_id)) != TR_OK ||
        (rc = anchor_all(&c)) != TR_OK || (rc = apply(&c, res)) != TR_OK)
        goto cleanup;
    res->lines_added = c.parsed.added;
    res->lines_removed = c.parsed.removed;
    res->hunks_reanchored = c.reanchored;
    if ((rc = run_checks(&c, res, res->commit_id)) != TR_OK)
        goto cleanup;
    failed = first_failure(res);
    res->ok = failed == NULL;
    if (failed != NULL)
        rc = tr_error_set(err, TR_EINVAL, "%s: %s", failed->name, failed->text);
    *out = res;
    res = NULL;
cleanup:
    tr_patch_result_free(res);
    dispose_ctx(&c);
    git_libgit2_shutdown();
    return rc;
}

char *tr_patch_repair_prompt(const tr_error *err, const char *patch, size_t patch_len)
{
    tr_buf b = TR_BUF_INIT(TR_PATCH_DEFAULT_MAX_INPUT_BYTES + 4096);
    int rc;

    rc = tr_buf_printf(&b, "Your patch was refused and nothing was changed. The exact reason:\n\n"
                       "    %s\n\n"
                       "Reply with a corrected unified diff against the same commit, in one "
                       "```diff block: `--- a/PATH` / `+++ b/PATH` headers, hunks whose context "
                       "lines are copied exactly from the file (leading space kept, unique in the "
                       "file), the smallest change that fixes the root cause, no other files. "
                       "Never write redaction placeholders; leave lines you do not change as "
                       "they are.\n\nThe refused patch:\n\n```diff\n",
                       err && err->message[0] ? err->message : "the patch could not be applied");
    if (rc == TR_OK && patch != NULL)
        rc = tr_buf_put(&b, patch, patch_len);
    if (rc == TR_OK)
        rc = tr_buf_puts(&b, patch != NULL && patch_len && patch[patch_len - 1] != '\n'
                                 ? "\n```\n"
                                 : "```\n");
    if (rc != TR_OK) {
        tr_buf_dispose(&b);
        return NULL;
    }
    return tr_buf_detach(&b);
}
