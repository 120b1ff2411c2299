/*
 * locate_text.c - what the prompt shows of a located source: numbered
 * excerpts of repository files (Secret values masked) and the enclosing
 * HCL block of a Terraform diagnostic.
 *
 * Masking is textual, not parsed, so it also holds for files libyaml
 * rejects: in a YAML document that has a `kind: Secret` line, every line
 * deeper than a `data:`, `stringData:` or `binaryData:` key (and a flow
 * value on the key's own line) is replaced. It over-masks rather than risk
 * a value; the redact module still runs on everything sent.
 *
 * The HCL scanner is deliberately rough: it counts `{`/`}` outside double
 * quoted strings (with `${ }` interpolation), heredocs and comments, which
 * is enough to widen a diagnostic's range to its top-level block.
 */
#include "locate_internal.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"

#define FILE_MAX ((size_t)4 * 1024 * 1024)
#define REDACTED "[secret value redacted]"
#define TRUNCATED "... (truncated)\n"

typedef struct lines {
    char *data;
    size_t len;
    size_t *start; /* offset of each line; line i (1-based) is start[i-1] */
    size_t count;
    unsigned char *masked; /* 1 = whole value masked, 2 = value after the key masked */
} lines;

static void lines_dispose(lines *l)
{
    tr_free(l->data);
    tr_free(l->start);
    tr_free(l->masked);
    memset(l, 0, sizeof(*l));
}

static size_t line_len(const lines *l, size_t i)
{
    size_t end = i + 1 < l->count ? l->start[i + 1] : l->len;

    while (end > l->start[i] && (l->data[end - 1] == '\n' || l->data[end - 1] == '\r'))
        end--;
    return end - l->start[i];
}

static size_t indent_of(const char *s, size_t len)
{
    size_t n = 0;

    while (n < len && (s[n] == ' ' || s[n] == '\t'))
        n++;
    return n;
}

/* After optional "- ", does the line hold `word:`? Sets *value to what follows. */
static int key_is(const char *s, size_t len, const char *word, size_t *key_col, size_t *value)
{
    size_t i = indent_of(s, len), wl = strlen(word);

    if (i + 1 < len && s[i] == '-' && s[i + 1] == ' ')
        i = i + 2 + indent_of(s + i + 2, len - i - 2);
    if (len - i < wl + 1 || strncmp(s + i, word, wl) != 0 || s[i + wl] != ':')
        return 0;
    *key_col = i;
    *value = i + wl + 1;
    return 1;
}

static int is_secret_kind(const char *s, size_t len)
{
    size_t col, v;

    if (!key_is(s, len, "kind", &col, &v))
        return 0;
    v += indent_of(s + v, len - v);
    if (v < len && (s[v] == '"' || s[v] == '\''))
        v++;
    return len - v >= 6 && strncmp(s + v, "Secret", 6) == 0 &&
           (len - v == 6 || !isalnum((unsigned char)s[v + 6]));
}

static void mask_document(lines *l, size_t from, size_t to)
{
    size_t i, col = 0, value, deeper_than = (size_t)-1;
    int secret = 0;

    for (i = from; i < to && !secret; i++)
        secret = is_secret_kind(l->data + l->start[i], line_len(l, i));
    for (i = from; secret && i < to; i++) {
        const char *s = l->data + l->start[i];
        size_t len = line_len(l, i), ind = indent_of(s, len);

        if (deeper_than != (size_t)-1 && (ind == len || ind > deeper_than)) {
            l->masked[i] = 1;
            continue;
        }
        deeper_than = (size_t)-1;
        if (key_is(s, len, "data", &col, &value) || key_is(s, len, "stringData", &col, &value) ||
            key_is(s, len, "binaryData", &col, &value)) {
            deeper_than = col;
            if (value + indent_of(s + value, len - value) < len)
                l->masked[i] = 2;
        }
    }
}

static int lines_load(lines *l, const char *path)
{
    size_t i, cap = 0, doc_start = 0;
    int rc;

    memset(l, 0, sizeof(*l));
    if ((rc = tr_locate_read_file(path, FILE_MAX, &l->data, &l->len)) != 0)
        return rc;
    for (i = 0; i <= l->len; i++) {
        if (i == l->len && (i == 0 || l->data[i - 1] == '\n'))
            break;
        if (i == 0 || l->data[i - 1] == '\n') {
            if (tr_locate_grow((void **)&l->start, &cap, l->count, sizeof(size_t)) != 0)
                return TR_ENOMEM;
            l->start[l->count++] = i;
        }
    }
    if ((l->masked = tr_calloc(l->count + 1, 1)) == NULL)
        return TR_ENOMEM;
    for (i = 0; i < l->count; i++)
        if (strncmp(l->data + l->start[i], "---", 3) == 0) {
            mask_document(l, doc_start, i);
            doc_start = i + 1;
        }
    mask_document(l, doc_start, l->count);
    return 0;
}

/* root + "/" + file, refusing ".." escapes and symlinks that lead out of root. */
static int safe_path(tr_buf *abs, tr_buf *rel, const char *root, const char *dir,
                     const char *file, tr_error *err)
{
    char *real_root = NULL, *real_file = NULL;
    int rc = 0;

    if (file == NULL || file[0] == '/' || tr_locate_normalize(rel, dir ? dir : "", file) != 0 ||
        rel->len == 0)
        return tr_error_set(err, TR_EINVAL, "path %s%s%s is outside the repository",
                            dir && dir[0] ? dir : "", dir && dir[0] ? "/" : "",
                            file ? file : "(null)");
    if (tr_buf_printf(abs, "%s/%s", root, rel->ptr) != 0)
        return tr_error_set(err, TR_ETOOBIG, "path too long");
    real_root = realpath(root, NULL);
    real_file = realpath(abs->ptr, NULL);
    if (real_file == NULL)
        rc = tr_error_set(err, TR_ENOTFOUND, "%s: no such file in the repository", rel->ptr);
    else if (real_root == NULL || !tr_locate_path_under(real_file, real_root))
        rc = tr_error_set(err, TR_EINVAL, "%s leads outside the repository", rel->ptr);
    free(real_root); /* realpath allocates with malloc */
    free(real_file);
    return rc;
}

static int digits(long n)
{
    int d = 1;

    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

/* Lines from..to (1-based, clamped) as "%*d | text\n" into out, cut at max_bytes. */
static int render_lines(tr_buf *out, const lines *l, long from, long to, size_t max_bytes)
{
    tr_buf line = TR_BUF_INIT(0);
    int width, rc = 0;
    long i;

    if (from < 1)
        from = 1;
    if (to > (long)l->count)
        to = (long)l->count;
    width = digits(to) < 4 ? 4 : digits(to);
    for (i = from; i <= to && rc == 0; i++) {
        const char *s = l->data + l->start[i - 1];
        size_t len = line_len(l, (size_t)i - 1), ind = indent_of(s, len), col, value;

        tr_buf_clear(&line);
        if (l->masked[i - 1] == 1)
            rc = tr_buf_printf(&line, "%*ld | %.*s%s\n", width, i, (int)ind, s, REDACTED);
        else if (l->masked[i - 1] == 2 && (key_is(s, len, "data", &col, &value) ||
                                           key_is(s, len, "stringData", &col, &value) ||
                                           key_is(s, len, "binaryData", &col, &value)))
            rc = tr_buf_printf(&line, "%*ld | %.*s %s\n", width, i, (int)value, s, REDACTED);
        else
            rc = tr_buf_printf(&line, "%*ld | %.*s\n", width, i, (int)len, s);
        if (rc != 0)
            break;
        if (out->len + line.len + strlen(TRUNCATED) > max_bytes) {
            rc = tr_buf_puts(out, TRUNCATED);
            break;
        }
        rc = tr_buf_put(out, line.ptr, line.len);
    }
    tr_buf_dispose(&line);
    return rc;
}

int tr_locate_excerpt(char **out, const char *root, const char *file, int start_line,
                      int end_line, int context_lines, size_t max_bytes, tr_error *err)
{
    tr_buf abs = TR_BUF_INIT(8192), rel = TR_BUF_INIT(4096), text = TR_BUF_INIT(0);
    lines l;
    int rc;

    *out = NULL;
    memset(&l, 0, sizeof(l));
    if ((rc = safe_path(&abs, &rel, root, NULL, file, err)) != 0)
        goto cleanup;
    if ((rc = lines_load(&l, abs.ptr)) != 0) {
        tr_error_set(err, rc, "%s: %s", rel.ptr, tr_strerror(rc));
        goto cleanup;
    }
    if (context_lines < 0)
        context_lines = 0;
    if (end_line < start_line)
        end_line = start_line;
    rc = render_lines(&text, &l, (long)start_line - context_lines, (long)end_line + context_lines,
                      max_bytes ? max_bytes : 16384);
    if (rc == 0 && (*out = text.ptr ? tr_buf_detach(&text) : tr_strdup("")) == NULL)
        rc = TR_ENOMEM;
    if (rc != 0)
        tr_error_set(err, rc, "%s: %s", rel.ptr, tr_strerror(rc));
cleanup:
    lines_dispose(&l);
    tr_buf_dispose(&abs);
    tr_buf_dispose(&rel);
    tr_buf_dispose(&text);
    return rc;
}

/* ------------------------------------------------------------- HCL */

typedef struct hcl_scan {
    int depth;      /* `{` nesting outside strings and comments */
    int in_string;  /* inside "..." */
    int interp;     /* `{` nesting inside a `${`/`%{` of a string */
    int in_comment; /* inside a block comment */
    char heredoc[64];
    int in_heredoc;
} hcl_scan;

static void hcl_line(hcl_scan *h, const char *s, size_t len)
{
    size_t i, n;

    if (h->in_heredoc) {
        i = indent_of(s, len);
        n = strlen(h->heredoc);
        if (len - i >= n && strncmp(s + i, h->heredoc, n) == 0 &&
            indent_of(s + i + n, len - i - n) == len - i - n)
            h->in_heredoc = 0;
        return;
    }
    for (i = 0; i < len; i++) {
        char c = s[i], next = i + 1 < len ? s[i + 1] : '\0';

        if (h->in_comment) {
            if (c == '*' && next == '/')
                h->in_comment = 0, i++;
        } else if (h->in_string && h->interp == 0) {
            if (c == '\\')
                i++;
            else if (c == '"')
                h->in_string = 0;
            else if ((c == '$' || c == '%') && next == '{')
                h->interp = 1, i++;
        } else if (c == '"') {
            h->in_string = 1;
        } else if (c == '#' || (c == '/' && next == '/')) {
            return;
        } else if (c == '/' && next == '*') {
            h->in_comment = 1, i++;
        } else if (c == '<' && next == '<' && !h->in_string) {
            size_t j = i + 2, k = 0;

            if (j < len && s[j] == '-')
                j++;
            while (j < len && k + 1 < sizeof(h->heredoc) &&
                   (isalnum((unsigned char)s[j]) || s[j] == '_'))
                h->heredoc[k++] = s[j++];
            h->heredoc[k] = '\0';
            if (k > 0) {
                h->in_heredoc = 1;
                return;
            }
        } else if (c == '{') {
            if (h->in_string)
                h->interp++;
            else
                h->depth++;
        } else if (c == '}') {
            if (h->in_string)
                h->interp--;
            else if (h->depth > 0)
                h->depth--;
        }
    }
}

void tr_locate_tf_dispose(tr_locate_tf *tf)
{
    if (tf == NULL)
        return;
    tr_free(tf->path);
    tr_free(tf->excerpt);
    memset(tf, 0, sizeof(*tf));
}

int tr_locate_terraform(tr_locate_tf *out, const char *root, const char *root_module_path,
                        const char *diag_filename, int start_line, int end_line, int max_lines,
                        size_t max_bytes, tr_error *err)
{
    tr_buf abs = TR_BUF_INIT(8192), rel = TR_BUF_INIT(4096), text = TR_BUF_INIT(0);
    int *depth_start = NULL, *depth_end = NULL;
    hcl_scan h;
    lines l;
    long first, last, i, n;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&l, 0, sizeof(l));
    memset(&h, 0, sizeof(h));
    if ((rc = safe_path(&abs, &rel, root, root_module_path, diag_filename, err)) != 0)
        goto cleanup;
    if ((rc = lines_load(&l, abs.ptr)) != 0) {
        tr_error_set(err, rc, "%s: %s", rel.ptr, tr_strerror(rc));
        goto cleanup;
    }
    n = (long)l.count;
    depth_start = tr_calloc((size_t)n + 1, sizeof(int));
    depth_end = tr_calloc((size_t)n + 1, sizeof(int));
    if (depth_start == NULL || depth_end == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (i = 0; i < n; i++) {
        depth_start[i] = h.depth + h.in_heredoc + h.in_comment;
        hcl_line(&h, l.data + l.start[i], line_len(&l, (size_t)i));
        depth_end[i] = h.depth + h.in_heredoc + h.in_comment;
    }
    if (start_line < 1)
        start_line = 1;
    if (start_line > n)
        start_line = n > 0 ? (int)n : 1;
    if (end_line < start_line)
        end_line = start_line;
    if (end_line > n)
        end_line = n > 0 ? (int)n : 1;
    for (first = start_line; first > 1 && depth_start[first - 1] > 0; first--)
        ;
    for (last = end_line; last < n && depth_end[last - 1] > 0; last++)
        ;
    if (max_lines <= 0)
        max_lines = 80;
    if (last - first + 1 > max_lines) {
        long around = (max_lines - (end_line - start_line + 1)) / 2;

        first = start_line - (around > 0 ? around : 0);
        last = first + max_lines - 1 < end_line ? end_line : first + max_lines - 1;
        if (last > n) {
            last = n;
            first = last - max_lines + 1;
        }
        if (first < 1)
            first = 1;
    }
    out->block_start = (int)first;
    out->block_end = (int)(last > n ? n : last);
    rc = render_lines(&text, &l, first, last, max_bytes ? max_bytes : 16384);
    if (rc == 0) {
        out->path = tr_strdup(rel.ptr);
        out->excerpt = text.ptr ? tr_buf_detach(&text) : tr_strdup("");
        if (out->path == NULL || out->excerpt == NULL)
            rc = TR_ENOMEM;
    }
    if (rc != 0) {
        tr_locate_tf_dispose(out);
        tr_error_set(err, rc, "%s: %s", rel.ptr, tr_strerror(rc));
    }
cleanup:
    tr_free(depth_start);
    tr_free(depth_end);
    lines_dispose(&l);
    tr_buf_dispose(&abs);
    tr_buf_dispose(&rel);
    tr_buf_dispose(&text);
    return rc;
}
