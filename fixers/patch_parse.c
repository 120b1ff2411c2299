/*
 * patch_parse.c - the intake half of patch.h: from a model's answer (markdown, prose, a diff
 * in some state of repair) to a tr_patch_parsed, or a refusal naming the line or file.
 *
 * The parser is our own rather than libgit2's because model diffs break libgit2's parser in
 * ways that are safe to repair (hunk counts that do not add up, a context line whose leading
 * space was eaten, no `diff --git` line, a header reading just "@@ @@"), and because the
 * refusals need to see every path and every added line before libgit2 does. What comes out is
 * serialised again as a plain git diff, which libgit2 then parses for real.
 */
#include "patch_internal.h"

#include "alloc.h"
#include "redact.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PATH_BYTES 4096
#define MAX_FILES 64
#define HUNK_SAMPLE 60 /* bytes of a line quoted in an error */

typedef struct span {
    const char *ptr;
    size_t len;
} span;

typedef struct lines {
    span *items;
    size_t count;
} lines;

static int starts(span s, const char *prefix)
{
    size_t n = strlen(prefix);

    return s.len >= n && memcmp(s.ptr, prefix, n) == 0;
}

static int is_fence(span s)
{
    return starts(s, "```");
}

/* "--- x" followed by "+++ y": the start of a file section without a diff --git line. */
static int is_minus_header(const lines *ls, size_t i)
{
    return starts(ls->items[i], "--- ") && i + 1 < ls->count && starts(ls->items[i + 1], "+++ ");
}

static int is_file_start(const lines *ls, size_t i)
{
    return starts(ls->items[i], "diff --git ") || is_minus_header(ls, i);
}

static int is_diff_marker(const lines *ls, size_t i)
{
    return is_file_start(ls, i) || starts(ls->items[i], "@@");
}

/* Split t (CRs already dropped) into lines without their newline. */
static int split_lines(lines *out, const char *t, size_t len)
{
    size_t n = 1, i, k = 0, begin = 0;

    for (i = 0; i < len; i++)
        n += t[i] == '\n';
    out->items = tr_calloc(n, sizeof(span));
    if (out->items == NULL)
        return TR_ENOMEM;
    for (i = 0; i <= len; i++) {
        if (i == len || t[i] == '\n') {
            if (i > begin || i < len) {
                out->items[k].ptr = t + begin;
                out->items[k].len = i - begin;
                k++;
            }
            begin = i + 1;
        }
    }
    out->count = k;
    return TR_OK;
}

/*
 * When the answer has markdown fences, keep only the fenced blocks that hold a diff (prose and
 * other code blocks go); otherwise keep everything. A fence must start in column 0: a context
 * line always starts with a space, so a fenced block inside a patched markdown file survives.
 */
static void select_fenced(lines *ls)
{
    size_t i, k = 0, block_start = 0;
    int has_fence = 0, inside = 0;

    for (i = 0; i < ls->count && !has_fence; i++)
        has_fence = is_fence(ls->items[i]);
    if (!has_fence)
        return;
    for (i = 0; i <= ls->count; i++) {
        if (i < ls->count && !is_fence(ls->items[i])) {
            if (inside)
                ls->items[k++] = ls->items[i];
            continue;
        }
        if (inside) { /* closing fence (or EOF): drop the block unless it holds a diff */
            size_t j;
            int diff = 0;

            for (j = block_start; j < k && !diff; j++) {
                lines view = {ls->items, k};
                diff = is_diff_marker(&view, j);
            }
            if (!diff)
                k = block_start;
        }
        inside = !inside;
        block_start = k;
    }
    ls->count = k;
}

static void quote_sample(char *dst, size_t cap, span s)
{
    size_t i, n = s.len < HUNK_SAMPLE ? s.len : HUNK_SAMPLE;

    for (i = 0; i < n && i + 1 < cap; i++)
        dst[i] = (s.ptr[i] >= 0x20 && s.ptr[i] != 0x7f) ? s.ptr[i] : '?';
    dst[i] = '\0';
}

/* ------------------------------------------------------------------ paths */

static int ci_starts(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    return len >= n && strncasecmp(s, prefix, n) == 0;
}

/* Number of components of an allowed_paths entry, or 0 when the entry covers nothing. */
static size_t prefix_match(const char *prefix, const char *path)
{
    size_t plen, comps = 1, i;

    while (prefix[0] == '.' && prefix[1] == '/')
        prefix += 2;
    while (prefix[0] == '/')
        prefix++;
    plen = strlen(prefix);
    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    if (plen == 0 || (plen == 1 && prefix[0] == '.'))
        return SIZE_MAX; /* the whole repository, named explicitly: covers no .git* name */
    if (strncmp(path, prefix, plen) != 0 || (path[plen] != '\0' && path[plen] != '/'))
        return 0;
    for (i = 0; i < plen; i++)
        comps += prefix[i] == '/';
    return comps;
}

static int check_path(const char *path, const tr_patch_options *opts, tr_error *err)
{
    size_t len = strlen(path), i, comp = 0, begin = 0, git_comp = SIZE_MAX, covered = 0;
    int matched = 0;

    if (len == 0)
        return tr_error_set(err, TR_EINVAL, "a file header names an empty path");
    if (len > MAX_PATH_BYTES)
        return tr_error_set(err, TR_EINVAL, "a path is longer than %d bytes", MAX_PATH_BYTES);
    if (path[0] == '/')
        return tr_error_set(err, TR_EINVAL, "%s: absolute paths are refused", path);
    for (i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)path[i];

        if (i < len && (c < 0x20 || c == 0x7f || c == '\\'))
            return tr_error_set(err, TR_EINVAL, "%s: control characters and backslashes are "
                                "refused in paths", path);
        if (i < len && c != '/')
            continue;
        if (i == begin)
            return tr_error_set(err, TR_EINVAL, "%s: empty path component", path);
        if ((i - begin == 1 && path[begin] == '.') ||
            (i - begin == 2 && path[begin] == '.' && path[begin + 1] == '.'))
            return tr_error_set(err, TR_EINVAL, "%s: '.' and '..' components are refused", path);
        /* ".git" in any case, and its 8.3 alias, would reach the repository's own files. */
        if ((i - begin == 4 && strncasecmp(path + begin, ".git", 4) == 0) ||
            (i - begin == 5 && strncasecmp(path + begin, "git~1", 5) == 0))
            return tr_error_set(err, TR_EINVAL, "%s: paths inside .git/ are refused", path);
        if (git_comp == SIZE_MAX && ci_starts(path + begin, i - begin, ".git"))
            git_comp = comp;
        comp++;
        begin = i + 1;
    }
    for (i = 0; opts->allowed_paths && i < opts->allowed_path_count; i++) {
        size_t m = prefix_match(opts->allowed_paths[i], path);

        if (m != 0) {
            matched = 1;
            if (m != SIZE_MAX && m > covered)
                covered = m;
        }
    }
    if (opts->allowed_path_count > 0 && !matched)
        return tr_error_set(err, TR_EINVAL, "%s: outside allowed_paths (the patch may only touch "
                            "files under the configured prefixes)", path);
    /* A .git* component passes only under a prefix that names it (".github/workflows"). */
    if (git_comp != SIZE_MAX && covered <= git_comp)
        return tr_error_set(err, TR_EINVAL, "%s: .git* files (CI workflows, git attributes and "
                            "modules) are refused unless allowed_paths names them", path);
    return TR_OK;
}

/* Path of a "--- x" / "+++ x" line: a/ or b/ prefix and a tab-separated timestamp dropped. */
static int header_path(char **out, span s, char side, tr_error *err)
{
    const char *p = s.ptr + 4;
    size_t n = s.len - 4;
    const char *tab = memchr(p, '\t', n);

    *out = NULL;
    if (tab != NULL)
        n = (size_t)(tab - p);
    while (n > 0 && (p[n - 1] == ' '))
        n--;
    if (n > 0 && p[0] == '"')
        return tr_error_set(err, TR_EINVAL, "quoted path names are refused: %.*s",
                            (int)(n < 200 ? n : 200), p);
    if (n == 9 && memcmp(p, "/dev/null", 9) == 0)
        return TR_OK;
    if (n >= 2 && p[0] == side && p[1] == '/') {
        p += 2;
        n -= 2;
    }
    *out = tr_strndup(p, n);
    return *out ? TR_OK : tr_error_set(err, TR_ENOMEM, "out of memory");
}

/* "diff --git a/X b/X": X when both halves agree (used when no ---/+++ lines follow). */
static char *git_header_path(span s)
{
    const char *p = s.ptr + 11;
    size_t n = s.len - 11, half;

    if (n < 7 || (n - 1) % 2 != 0)
        return NULL;
    half = (n - 1) / 2;
    if (p[half] != ' ' || memcmp(p, "a/", 2) != 0 || memcmp(p + half + 1, "b/", 2) != 0 ||
        memcmp(p + 2, p + half + 3, half - 2) != 0)
        return NULL;
    return tr_strndup(p + 2, half - 2);
}

/* ------------------------------------------------------------------ structure */

static int grow(void **items, size_t *cap, size_t count, size_t size)
{
    void *bigger;
    size_t n;

    if (count < *cap)
        return TR_OK;
    n = *cap ? *cap * 2 : 8;
    bigger = tr_realloc(*items, n * size);
    if (bigger == NULL)
        return TR_ENOMEM;
    *items = bigger;
    *cap = n;
    return TR_OK;
}

static int add_line(tr_patch_hunk *h, char tag, const char *text, size_t len)
{
    if (grow((void **)&h->lines, &h->cap, h->count, sizeof(*h->lines)) != TR_OK)
        return TR_ENOMEM;
    memset(&h->lines[h->count], 0, sizeof(h->lines[0]));
    h->lines[h->count].tag = tag;
    h->lines[h->count].text = text;
    h->lines[h->count].len = len;
    h->count++;
    return TR_OK;
}

size_t tr_patch_hunk_old_len(const tr_patch_hunk *h)
{
    size_t i, n = 0;

    for (i = 0; i < h->count; i++)
        n += h->lines[i].tag != '+';
    return n;
}

size_t tr_patch_hunk_new_len(const tr_patch_hunk *h)
{
    size_t i, n = 0;

    for (i = 0; i < h->count; i++)
        n += h->lines[i].tag != '-';
    return n;
}

void tr_patch_parsed_dispose(tr_patch_parsed *p)
{
    size_t i, j;

    if (p == NULL)
        return;
    for (i = 0; i < p->file_count; i++) {
        for (j = 0; j < p->files[i].hunk_count; j++)
            tr_free(p->files[i].hunks[j].lines);
        tr_free(p->files[i].hunks);
        tr_free(p->files[i].path);
    }
    tr_free(p->files);
    tr_free(p->text);
    memset(p, 0, sizeof(*p));
}

/* Extended header lines after "diff --git": most of them announce a change we refuse. */
static int extended_header(span s, tr_patch_filediff *f, const char *path, tr_error *err)
{
    static const char *const refused[][2] = {
        {"deleted file mode", "deletes the whole file; whole-file deletions are refused"},
        {"old mode", "changes the file mode; mode changes are refused"},
        {"new mode", "changes the file mode; mode changes are refused"},
        {"rename ", "renames a file; renames are refused"},
        {"copy ", "copies a file; copies are refused"},
        {"similarity index", "renames or copies a file; renames are refused"},
        {"dissimilarity index", "rewrites a file whole; rewrites are refused"},
    };
    size_t i;

    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (starts(s, refused[i][0]))
            return tr_error_set(err, TR_EINVAL, "%s: the patch %s", path, refused[i][1]);
    if (starts(s, "new file mode ")) {
        if (s.len != 20 || memcmp(s.ptr + 14, "100644", 6) != 0)
            return tr_error_set(err, TR_EINVAL, "%s: new files must be plain files (mode "
                                "100644), not executables, symlinks or submodules", path);
        f->is_new = 1;
        return 1;
    }
    return starts(s, "index ") ? 1 : 0;
}

static int check_binary(span s, const char *path, tr_error *err)
{
    int binary_differ = starts(s, "Binary files ") && s.len >= 6 &&
                        memcmp(s.ptr + s.len - 6, "differ", 6) == 0;

    if (starts(s, "GIT binary patch") || binary_differ)
        return tr_error_set(err, TR_EINVAL, "%s: binary patches are refused",
                            path ? path : "(unknown file)");
    return TR_OK;
}

typedef struct parser {
    lines ls;
    size_t i;
    tr_patch_parsed *p;
    const tr_patch_options *opts;
    tr_error *err;
} parser;

static int parse_hunk_header(span s, tr_patch_hunk *h)
{
    char tmp[64];
    size_t n = s.len < sizeof(tmp) - 1 ? s.len : sizeof(tmp) - 1;
    char *end;
    const char *minus;
    unsigned long v;

    memcpy(tmp, s.ptr, n);
    tmp[n] = '\0';
    minus = strstr(tmp, " -");
    if (minus == NULL || !isdigit((unsigned char)minus[2]))
        return 0; /* "@@ @@" and friends: the position comes from anchoring */
    v = strtoul(minus + 2, &end, 10);
    if (v > (unsigned long)INT32_MAX)
        return 0;
    h->old_start = v;
    h->has_start = 1;
    return 0;
}

/* Hunk body from ps->i on; empty lines count as empty context only when more body follows. */
static int parse_hunk_body(parser *ps, tr_patch_filediff *f, tr_patch_hunk *h)
{
    size_t pending_empty = 0;
    tr_patch_line *last = NULL;

    for (; ps->i < ps->ls.count; ps->i++) {
        span s = ps->ls.items[ps->i];
        char tag;

        if (s.len == 0) {
            pending_empty++;
            continue;
        }
        tag = s.ptr[0];
        if (tag == '\\') {
            if (last != NULL)
                last->no_eol = 1;
            continue;
        }
        if ((tag != ' ' && tag != '+' && tag != '-') || is_minus_header(&ps->ls, ps->i))
            break;
        for (; pending_empty > 0; pending_empty--)
            if (add_line(h, ' ', s.ptr, 0) != TR_OK)
                return tr_error_set(ps->err, TR_ENOMEM, "out of memory");
        if (add_line(h, tag, s.ptr + 1, s.len - 1) != TR_OK)
            return tr_error_set(ps->err, TR_ENOMEM, "out of memory");
        last = &h->lines[h->count - 1];
        if (tag == '+') {
            f->added++;
            if (tr_redact_has_placeholder(s.ptr, s.len))
                return tr_error_set(ps->err, TR_EINVAL, "%s: hunk %zu: an added line holds a "
                                    "redaction placeholder ([REDACTED... or <redacted:...>): "
                                    "keep the existing value's line unchanged instead",
                                    f->path, f->hunk_count);
        } else if (tag == '-') {
            f->removed++;
        }
    }
    return TR_OK;
}

static int start_file(parser *ps, tr_patch_filediff **out)
{
    tr_patch_parsed *p = ps->p;

    if (p->file_count >= MAX_FILES)
        return tr_error_set(ps->err, TR_EINVAL, "the patch touches more than %d files",
                            MAX_FILES);
    if (grow((void **)&p->files, &p->file_cap, p->file_count, sizeof(*p->files)) != TR_OK)
        return tr_error_set(ps->err, TR_ENOMEM, "out of memory");
    *out = &p->files[p->file_count++];
    memset(*out, 0, sizeof(**out));
    return TR_OK;
}

/* "--- x" / "+++ y" at ps->i: set f's path, refuse deletions and renames. */
static int parse_minus_plus(parser *ps, tr_patch_filediff *f)
{
    char *old_path = NULL, *new_path = NULL;
    int rc;

    rc = header_path(&old_path, ps->ls.items[ps->i], 'a', ps->err);
    if (rc == TR_OK)
        rc = header_path(&new_path, ps->ls.items[ps->i + 1], 'b', ps->err);
    if (rc != TR_OK)
        goto cleanup;
    if (new_path == NULL) {
        rc = tr_error_set(ps->err, TR_EINVAL, "%s: the patch deletes the whole file; whole-file "
                          "deletions are refused", old_path ? old_path : "(unnamed)");
        goto cleanup;
    }
    if (old_path != NULL && strcmp(old_path, new_path) != 0) {
        rc = tr_error_set(ps->err, TR_EINVAL, "%s -> %s: renames are refused", old_path,
                          new_path);
        goto cleanup;
    }
    if (old_path == NULL)
        f->is_new = 1;
    tr_free(f->path);
    f->path = new_path;
    new_path = NULL;
    ps->i += 2;
cleanup:
    tr_free(old_path);
    tr_free(new_path);
    return rc;
}

static int parse_file(parser *ps)
{
    tr_patch_filediff *f = NULL;
    int rc = start_file(ps, &f);

    if (rc != TR_OK || f == NULL)
        return rc != TR_OK ? rc : TR_ENOMEM;
    if (starts(ps->ls.items[ps->i], "diff --git ")) {
        f->path = git_header_path(ps->ls.items[ps->i]);
        for (ps->i++; ps->i < ps->ls.count; ps->i++) {
            rc = extended_header(ps->ls.items[ps->i], f, f->path ? f->path : "(unnamed)",
                                 ps->err);
            if (rc < 0)
                return rc;
            if (rc == 0)
                break;
        }
    }
    if (ps->i < ps->ls.count &&
        (rc = check_binary(ps->ls.items[ps->i], f->path, ps->err)) != TR_OK)
        return rc;
    if (ps->i < ps->ls.count && is_minus_header(&ps->ls, ps->i) &&
        (rc = parse_minus_plus(ps, f)) != TR_OK)
        return rc;
    if (f->path == NULL)
        return tr_error_set(ps->err, TR_EINVAL, "line %zu: a file section without a usable "
                            "'--- a/PATH' / '+++ b/PATH' pair", ps->i);
    if ((rc = check_path(f->path, ps->opts, ps->err)) != TR_OK)
        return rc;
    while (ps->i < ps->ls.count && starts(ps->ls.items[ps->i], "@@")) {
        tr_patch_hunk *h;

        if (grow((void **)&f->hunks, &f->hunk_cap, f->hunk_count, sizeof(*f->hunks)) != TR_OK)
            return tr_error_set(ps->err, TR_ENOMEM, "out of memory");
        h = &f->hunks[f->hunk_count++];
        memset(h, 0, sizeof(*h));
        h->input_line = ps->i + 1;
        (void)parse_hunk_header(ps->ls.items[ps->i], h); /* unusable numbers: anchor later */
        ps->i++;
        if ((rc = parse_hunk_body(ps, f, h)) != TR_OK)
            return rc;
        if (f->is_new && tr_patch_hunk_old_len(h) != 0)
            return tr_error_set(ps->err, TR_EINVAL, "%s: hunk %zu: a new file's hunk can only "
                                "add lines", f->path, f->hunk_count);
        if (tr_patch_hunk_old_len(h) == h->count && h->count > 0) {
            tr_free(h->lines); /* context only: changes nothing */
            f->hunk_count--;
        } else if (h->count == 0)
            return tr_error_set(ps->err, TR_EINVAL, "%s: hunk %zu (line %zu) is empty", f->path,
                                f->hunk_count, h->input_line);
    }
    if (ps->i < ps->ls.count && (rc = check_binary(ps->ls.items[ps->i], f->path, ps->err)))
        return rc;
    if (f->hunk_count == 0)
        return tr_error_set(ps->err, TR_EINVAL, "%s: the file section changes nothing (no hunk "
                            "with an added or removed line)", f->path);
    if (f->is_new && f->hunk_count != 1)
        return tr_error_set(ps->err, TR_EINVAL, "%s: a new file must come as one hunk",
                            f->path);
    if (f->is_new)
        f->hunks[0].old_start = 0;
    ps->p->added += f->added;
    ps->p->removed += f->removed;
    return TR_OK;
}

static int check_duplicates(const tr_patch_parsed *p, tr_error *err)
{
    size_t i, j;

    for (i = 0; i < p->file_count; i++)
        for (j = i + 1; j < p->file_count; j++)
            if (strcmp(p->files[i].path, p->files[j].path) == 0)
                return tr_error_set(err, TR_EINVAL, "%s: the file appears twice in the patch; "
                                    "put all its hunks in one section", p->files[i].path);
    return TR_OK;
}

static int parse_lines(parser *ps)
{
    int rc;

    for (ps->i = 0; ps->i < ps->ls.count && !is_file_start(&ps->ls, ps->i); ps->i++)
        if ((rc = check_binary(ps->ls.items[ps->i], NULL, ps->err)) != TR_OK)
            return rc;
    if (ps->i == ps->ls.count)
        return tr_error_set(ps->err, TR_EINVAL, "no unified diff found: expected a 'diff --git "
                            "a/PATH b/PATH' or '--- a/PATH' / '+++ b/PATH' header");
    while (ps->i < ps->ls.count) {
        span s = ps->ls.items[ps->i];
        size_t j;

        if (is_file_start(&ps->ls, ps->i)) {
            if ((rc = parse_file(ps)) != TR_OK)
                return rc;
            continue;
        }
        if ((rc = check_binary(s, NULL, ps->err)) != TR_OK)
            return rc;
        if (s.len == 0) {
            ps->i++;
            continue;
        }
        /* Prose after the diff ends it; text between two parts of the diff is an error. */
        for (j = ps->i; j < ps->ls.count; j++) {
            if (is_diff_marker(&ps->ls, j)) {
                char sample[HUNK_SAMPLE + 1];

                quote_sample(sample, sizeof(sample), s);
                return tr_error_set(ps->err, TR_EINVAL, "line %zu: '%s' is not a diff line "
                                    "(context lines start with a space, added with '+', "
                                    "removed with '-')", ps->i + 1, sample);
            }
        }
        break;
    }
    return check_duplicates(ps->p, ps->err);
}

int tr_patch_parse(tr_patch_parsed *out, const char *text, size_t len,
                   const tr_patch_options *opts, tr_error *err)
{
    tr_patch_options defaults;
    parser ps;
    size_t i, k = 0, max_lines, max_bytes;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&ps, 0, sizeof(ps));
    if (opts == NULL) {
        tr_patch_options_init(&defaults);
        opts = &defaults;
    }
    max_bytes = opts->max_input_bytes ? opts->max_input_bytes : TR_PATCH_DEFAULT_MAX_INPUT_BYTES;
    max_lines = opts->max_patch_lines ? opts->max_patch_lines : TR_PATCH_DEFAULT_MAX_LINES;
    if (len > max_bytes)
        return tr_error_set(err, TR_ETOOBIG, "the patch is %zu bytes, over the %zu byte cap",
                            len, max_bytes);
    if (text == NULL || memchr(text, '\0', len) != NULL)
        return tr_error_set(err, TR_EINVAL, "the patch holds NUL bytes (binary content is "
                            "refused)");
    out->text = tr_malloc(len + 1);
    if (out->text == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    for (i = 0; i < len; i++) { /* every CR ending a line goes: "\r\r\n" too (idempotent) */
        size_t run = 0;

        while (i + run < len && text[i + run] == '\r')
            run++;
        if (run > 0 && (i + run == len || text[i + run] == '\n')) {
            i += run - 1;
            continue;
        }
        out->text[k++] = text[i];
    }
    out->text[k] = '\0';
    ps.p = out;
    ps.opts = opts;
    ps.err = err;
    if (split_lines(&ps.ls, out->text, k) != TR_OK) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    select_fenced(&ps.ls);
    if ((rc = parse_lines(&ps)) != TR_OK)
        goto cleanup;
    if (out->added + out->removed > max_lines)
        rc = tr_error_set(err, TR_EINVAL, "the patch changes %zu lines (+%zu -%zu), over "
                          "max_patch_lines %zu: make the smallest change that fixes the root "
                          "cause", out->added + out->removed, out->added, out->removed,
                          max_lines);
cleanup:
    tr_free(ps.ls.items);
    if (rc != TR_OK)
        tr_patch_parsed_dispose(out);
    return rc;
}

/* new_start follows from old_start and what the hunks before added or removed. */
int tr_patch_serialize(tr_buf *out, const tr_patch_parsed *p)
{
    size_t i, j, k;
    int rc = TR_OK;

    for (i = 0; i < p->file_count && rc == TR_OK; i++) {
        const tr_patch_filediff *f = &p->files[i];
        long delta = 0;

        rc = tr_buf_printf(out, "diff --git a/%s b/%s\n", f->path, f->path);
        if (rc == TR_OK && f->is_new)
            rc = tr_buf_printf(out, "new file mode 100644\n--- /dev/null\n");
        else if (rc == TR_OK)
            rc = tr_buf_printf(out, "--- a/%s\n", f->path);
        if (rc == TR_OK)
            rc = tr_buf_printf(out, "+++ b/%s\n", f->path);
        for (j = 0; j < f->hunk_count && rc == TR_OK; j++) {
            const tr_patch_hunk *h = &f->hunks[j];
            size_t old_len = tr_patch_hunk_old_len(h), new_len = tr_patch_hunk_new_len(h);
            long new_start = (long)h->old_start + delta;

            if (old_len == 0)
                new_start++;
            if (new_len == 0)
                new_start--;
            if (new_start < 0)
                new_start = 0;
            rc = tr_buf_printf(out, "@@ -%zu,%zu +%ld,%zu @@\n", h->old_start, old_len,
                               new_start, new_len);
            for (k = 0; k < h->count && rc == TR_OK; k++) {
                const tr_patch_line *l = &h->lines[k];

                rc = tr_buf_putc(out, l->tag);
                if (rc == TR_OK)
                    rc = tr_buf_put(out, l->text, l->len);
                if (rc == TR_OK && l->add_cr)
                    rc = tr_buf_putc(out, '\r');
                if (rc == TR_OK)
                    rc = tr_buf_putc(out, '\n');
                if (rc == TR_OK && l->no_eol)
                    rc = tr_buf_puts(out, "\\ No newline at end of file\n");
            }
            delta += (long)new_len - (long)old_len;
        }
    }
    return rc;
}
