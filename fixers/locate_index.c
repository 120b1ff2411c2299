/*
 * locate_index.c - builds the YAML index of a work tree (locate.h).
 *
 * Each document is read with libyaml's event API into a small cJSON tree
 * (scalars as strings, aliases as null so an alias bomb costs nothing), the
 * identity fields and config references are taken from it, and the tree is
 * freed: the index keeps only what queries need. The values of the
 * top-level `data`, `stringData` and `binaryData` keys are skipped while
 * reading, so a Secret's content never reaches memory we own.
 *
 * Lines: libyaml marks are 0-based; a scalar's end mark at column 0 means
 * its last line is the one before (block scalars end there). Block
 * collection ends are placed at the next token, possibly past comments and
 * a following `---`, so only scalars and flow collections extend a
 * document's end line.
 */
#include "locate_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <yaml.h>

#include "alloc.h"
#include "buf.h"

#define DEPTH_MAX 64
#define NODES_MAX 200000
#define PROBLEMS_MAX 500
#define DIR_ENTRIES_MAX 20000

int tr_locate_grow(void **items, size_t *cap, size_t count, size_t elem)
{
    size_t next;
    void *grown;

    if (count < *cap)
        return 0;
    next = *cap ? *cap * 2 : 16;
    grown = tr_realloc(*items, next * elem);
    if (grown == NULL)
        return TR_ENOMEM;
    *items = grown;
    *cap = next;
    return 0;
}

int tr_locate_problem(tr_locate_index *index, const char *file, size_t line, size_t col,
                      const char *fmt, ...)
{
    tr_buf b = TR_BUF_INIT(2048);
    va_list ap;
    int rc;

    if (index->problem_count >= PROBLEMS_MAX)
        return 0;
    if (tr_locate_grow((void **)&index->problems, &index->problem_cap, index->problem_count,
                       sizeof(char *)) != 0)
        return TR_ENOMEM;
    if (line > 0)
        rc = tr_buf_printf(&b, "%s:%zu:%zu: ", file, line, col);
    else
        rc = tr_buf_printf(&b, "%s: ", file);
    va_start(ap, fmt);
    if (rc == 0)
        rc = tr_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (rc == TR_ETOOBIG)
        rc = 0; /* a cut message is still worth keeping */
    if (rc == 0 && (index->problems[index->problem_count] = tr_buf_detach(&b)) != NULL)
        index->problem_count++;
    else
        rc = TR_ENOMEM;
    tr_buf_dispose(&b);
    return rc;
}

/* ------------------------------------------------------------- events → tree */

typedef struct builder {
    cJSON *stack[DEPTH_MAX];
    char *key[DEPTH_MAX]; /* pending mapping key at each level (owned) */
    int depth;
    cJSON *root;
    size_t nodes;
    int skip;      /* > 0 while inside a skipped collection */
    int skip_next; /* the next node is a skipped value */
    int first_line, last_line;
    int too_big;
} builder;

static void builder_reset(builder *b)
{
    int i;

    for (i = 0; i < DEPTH_MAX; i++) {
        tr_free(b->key[i]);
        b->key[i] = NULL;
    }
    cJSON_Delete(b->root);
    memset(b, 0, sizeof(*b));
}

static void note_end(builder *b, const yaml_mark_t *start, const yaml_mark_t *end)
{
    int line = (int)end->line + 1;

    if (end->column == 0 && end->line > start->line)
        line = (int)end->line;
    if (line > b->last_line)
        b->last_line = line;
}

static int is_skipped_key(const char *key)
{
    return strcmp(key, "data") == 0 || strcmp(key, "stringData") == 0 ||
           strcmp(key, "binaryData") == 0;
}

/* A node starts: a scalar (text != NULL), an alias, or a collection (array/object). */
static int builder_node(builder *b, const yaml_event_t *ev)
{
    int collection = ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT;
    cJSON *top, *node;

    if (b->first_line == 0)
        b->first_line = (int)ev->start_mark.line + 1;
    if (ev->type == YAML_SCALAR_EVENT || ev->type == YAML_ALIAS_EVENT)
        note_end(b, &ev->start_mark, &ev->end_mark);
    else if (ev->start_mark.line + 1 > (size_t)b->last_line)
        b->last_line = (int)ev->start_mark.line + 1;
    if (b->skip_next) {
        /* The skipped value's key is dropped with it. */
        b->skip_next = 0;
        tr_free(b->key[b->depth - 1]);
        b->key[b->depth - 1] = NULL;
        if (collection)
            b->skip++;
        return 0;
    }
    if (b->skip > 0) {
        if (collection)
            b->skip++;
        return 0;
    }
    if (++b->nodes > NODES_MAX || (collection && b->depth >= DEPTH_MAX)) {
        b->too_big = 1;
        return TR_ETOOBIG;
    }
    top = b->depth > 0 ? b->stack[b->depth - 1] : NULL;
    if (top != NULL && cJSON_IsObject(top) && b->key[b->depth - 1] == NULL) {
        if (ev->type != YAML_SCALAR_EVENT) {
            /* A complex key (never in Kubernetes manifests): drop it and its value. */
            b->key[b->depth - 1] = tr_strdup("?");
            if (collection)
                b->skip++;
            return b->key[b->depth - 1] ? 0 : TR_ENOMEM;
        }
        b->key[b->depth - 1] = tr_strndup((const char *)ev->data.scalar.value,
                                          ev->data.scalar.length);
        if (b->key[b->depth - 1] == NULL)
            return TR_ENOMEM;
        if (b->depth == 1 && is_skipped_key(b->key[0]))
            b->skip_next = 1;
        return 0;
    }
    if (ev->type == YAML_SCALAR_EVENT)
        node = cJSON_CreateString((const char *)ev->data.scalar.value);
    else if (ev->type == YAML_ALIAS_EVENT)
        node = cJSON_CreateNull();
    else if (ev->type == YAML_SEQUENCE_START_EVENT)
        node = cJSON_CreateArray();
    else
        node = cJSON_CreateObject();
    if (node == NULL)
        return TR_ENOMEM;
    if (top == NULL) {
        cJSON_Delete(b->root);
        b->root = node;
    } else if (cJSON_IsObject(top)) {
        cJSON_AddItemToObject(top, b->key[b->depth - 1], node);
        tr_free(b->key[b->depth - 1]);
        b->key[b->depth - 1] = NULL;
    } else {
        cJSON_AddItemToArray(top, node);
    }
    if (collection)
        b->stack[b->depth++] = node;
    return 0;
}

static void builder_end(builder *b, const yaml_event_t *ev)
{
    /* A block end is zero-width at the next token; a flow `]` or `}` has a width. */
    if (ev->end_mark.index > ev->start_mark.index)
        note_end(b, &ev->start_mark, &ev->end_mark);
    if (b->skip > 0) {
        b->skip--;
        return;
    }
    if (b->depth > 0) {
        b->depth--;
        tr_free(b->key[b->depth]);
        b->key[b->depth] = NULL;
    }
}

/* ------------------------------------------------------------- documents */

static const char *obj_str(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(item) && item->valuestring[0] ? item->valuestring : NULL;
}

static int is_kustomization_file(const char *file)
{
    const char *base = strrchr(file, '/');

    base = base ? base + 1 : file;
    return strcmp(base, "kustomization.yaml") == 0 || strcmp(base, "kustomization.yml") == 0 ||
           strcmp(base, "Kustomization") == 0;
}

/* A copy of src (NULL stays NULL) in *dst; 0 or TR_ENOMEM. */
static int dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 0;
    *dst = tr_strdup(src);
    return *dst ? 0 : TR_ENOMEM;
}

static int dup_field(const char **dst, const char *src)
{
    char *copy;
    int rc = dup_str(&copy, src);

    *dst = copy;
    return rc;
}

static int add_kustomization(tr_locate_index *index, const char *file, const cJSON *root)
{
    static const char *const lists[] = {"resources", "bases", "components"};
    const char *slash = strrchr(file, '/');
    tr_locate_kust *k;
    const cJSON *item;
    size_t i, total = 0;

    if (tr_locate_grow((void **)&index->kusts, &index->kust_cap, index->kust_count,
                       sizeof(*k)) != 0)
        return TR_ENOMEM;
    k = &index->kusts[index->kust_count++];
    memset(k, 0, sizeof(*k));
    k->dir = slash ? tr_strndup(file, (size_t)(slash - file)) : tr_strdup("");
    k->file = tr_strdup(file);
    if (k->dir == NULL || k->file == NULL)
        return TR_ENOMEM;
    if (dup_str(&k->namespace_, obj_str(root, "namespace")) != 0 ||
        dup_str(&k->name_prefix, obj_str(root, "namePrefix")) != 0 ||
        dup_str(&k->name_suffix, obj_str(root, "nameSuffix")) != 0)
        return TR_ENOMEM;
    for (i = 0; i < 3; i++)
        total += (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, lists[i]));
    if (total == 0)
        return 0;
    if ((k->resources = tr_calloc(total, sizeof(char *))) == NULL)
        return TR_ENOMEM;
    for (i = 0; i < 3; i++) {
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(root, lists[i])) {
            if (!cJSON_IsString(item) || k->resource_count >= total)
                continue;
            if ((k->resources[k->resource_count++] = tr_strdup(item->valuestring)) == NULL)
                return TR_ENOMEM;
        }
    }
    return 0;
}

static int add_document(tr_locate_index *index, const char *file, int doc_index, builder *b)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(b->root, "metadata");
    tr_locate_doc_rec *rec;
    const char *kind = obj_str(b->root, "kind");

    if (!cJSON_IsObject(b->root))
        return 0; /* empty documents and bare scalars define nothing */
    if (is_kustomization_file(file) && add_kustomization(index, file, b->root) != 0)
        return TR_ENOMEM;
    if (index->doc_count >= index->limits.max_docs)
        return TR_ETOOBIG;
    if (tr_locate_grow((void **)&index->docs, &index->doc_cap, index->doc_count,
                       sizeof(*rec)) != 0)
        return TR_ENOMEM;
    rec = &index->docs[index->doc_count];
    memset(rec, 0, sizeof(*rec));
    index->doc_count++;
    rec->pub.doc_index = doc_index;
    rec->pub.start_line = b->first_line;
    rec->pub.end_line = b->last_line < b->first_line ? b->first_line : b->last_line;
    rec->ref_line = b->first_line;
    if (dup_field(&rec->pub.file, file) != 0 ||
        dup_field(&rec->pub.api_version, obj_str(b->root, "apiVersion")) != 0 ||
        dup_field(&rec->pub.kind, kind) != 0 ||
        dup_field(&rec->pub.name, obj_str(meta, "name")) != 0 ||
        dup_field(&rec->pub.namespace_, obj_str(meta, "namespace")) != 0)
        return TR_ENOMEM;
    if (kind == NULL || strcmp(kind, "Secret") == 0 || strcmp(kind, "ConfigMap") == 0)
        return 0;
    if ((rec->refs = tr_calloc(TR_LOCATE_DOC_REFS_MAX, sizeof(char *))) == NULL)
        return TR_ENOMEM;
    return tr_locate_refs_collect(b->root, rec->refs, &rec->ref_count, TR_LOCATE_DOC_REFS_MAX);
}

/*
 * Parse one file's bytes. A syntax error is recorded as a problem and ends
 * this file only (documents before it stay). Returns 0, TR_ENOMEM, or
 * TR_ETOOBIG when the index is full.
 */
static int parse_file(tr_locate_index *index, const char *file, const char *data, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    builder b;
    int doc_index = 0, rc = 0, done = 0;

    memset(&b, 0, sizeof(b));
    if (!yaml_parser_initialize(&parser))
        return TR_ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    while (!done && rc == 0) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = tr_locate_problem(index, file, parser.problem_mark.line + 1,
                                   parser.problem_mark.column + 1, "%s%s%s",
                                   parser.problem ? parser.problem : "YAML error",
                                   parser.context ? " " : "",
                                   parser.context ? parser.context : "");
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            builder_reset(&b);
            break;
        case YAML_DOCUMENT_END_EVENT:
            rc = add_document(index, file, doc_index++, &b);
            builder_reset(&b);
            break;
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            rc = builder_node(&b, &ev);
            if (rc == TR_ETOOBIG && b.too_big) {
                rc = tr_locate_problem(index, file, ev.start_mark.line + 1,
                                       ev.start_mark.column + 1,
                                       "document too deep or too large; rest of file skipped");
                done = 1;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            builder_end(&b, &ev);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    builder_reset(&b);
    yaml_parser_delete(&parser);
    return rc;
}

/* ------------------------------------------------------------- the tree walk */

typedef struct walk {
    tr_locate_index *index;
    const char *root;
    size_t files;
    int stop;
    tr_error *err;
} walk;

static int has_yaml_ext(const char *name)
{
    size_t len = strlen(name);

    return (len > 5 && strcmp(name + len - 5, ".yaml") == 0) ||
           (len > 4 && strcmp(name + len - 4, ".yml") == 0) || strcmp(name, "Kustomization") == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int tr_locate_read_file(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    tr_buf b = TR_BUF_INIT(max);
    char chunk[8192];
    ssize_t n;
    int rc = 0;

    *out = NULL;
    if (fd < 0)
        return TR_EIO;
    while (rc == 0 && (n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        rc = n < 0 ? TR_EIO : tr_buf_put(&b, chunk, (size_t)n);
    }
    close(fd);
    if (rc == 0) {
        *len = b.len;
        *out = b.ptr ? tr_buf_detach(&b) : tr_strdup("");
        if (*out == NULL)
            rc = TR_ENOMEM;
    }
    tr_buf_dispose(&b);
    return rc;
}

static int walk_file(walk *w, const char *rel, const char *abs, const struct stat *st)
{
    char *data = NULL;
    size_t len = 0;
    int rc;

    if (++w->files > w->index->limits.max_files) {
        w->stop = 1;
        return tr_locate_problem(w->index, rel, 0, 0, "file cap (%zu) reached; rest of tree "
                                 "not indexed", w->index->limits.max_files);
    }
    if ((size_t)st->st_size > w->index->limits.max_file_bytes)
        return tr_locate_problem(w->index, rel, 0, 0, "skipped: %lld bytes is over the %zu "
                                 "byte cap", (long long)st->st_size,
                                 w->index->limits.max_file_bytes);
    rc = tr_locate_read_file(abs, w->index->limits.max_file_bytes, &data, &len);
    if (rc == TR_EIO || rc == TR_ETOOBIG)
        return tr_locate_problem(w->index, rel, 0, 0, "unreadable: %s", tr_strerror(rc));
    if (rc == 0)
        rc = parse_file(w->index, rel, data, len);
    tr_free(data);
    if (rc == TR_ETOOBIG) {
        w->stop = 1;
        return tr_locate_problem(w->index, rel, 0, 0, "document cap (%zu) reached; rest of "
                                 "tree not indexed", w->index->limits.max_docs);
    }
    return rc;
}

static int walk_dir(walk *w, const char *rel, size_t depth);

static int walk_entry(walk *w, const char *rel, const char *name, int chart_dir, size_t depth)
{
    tr_buf relp = TR_BUF_INIT(4096), absp = TR_BUF_INIT(8192);
    struct stat st;
    int rc;

    rc = rel[0] ? tr_buf_printf(&relp, "%s/%s", rel, name) : tr_buf_puts(&relp, name);
    if (rc == 0)
        rc = tr_buf_printf(&absp, "%s/%s", w->root, relp.ptr);
    if (rc != 0) {
        rc = rc == TR_ETOOBIG ? 0 : rc; /* absurdly long paths are not manifests */
        goto cleanup;
    }
    /* lstat: a symlink is never followed, so nothing outside the tree is read. */
    if (lstat(absp.ptr, &st) != 0 || S_ISLNK(st.st_mode))
        goto cleanup;
    if (S_ISDIR(st.st_mode)) {
        /* Helm templates are Go templates, not YAML: the values files are what to patch. */
        if (strcmp(name, ".git") == 0 || (chart_dir && strcmp(name, "templates") == 0))
            goto cleanup;
        if (depth + 1 > w->index->limits.max_depth) {
            rc = tr_locate_problem(w->index, relp.ptr, 0, 0, "skipped: deeper than %zu",
                                   w->index->limits.max_depth);
            goto cleanup;
        }
        rc = walk_dir(w, relp.ptr, depth + 1);
    } else if (S_ISREG(st.st_mode) && has_yaml_ext(name)) {
        rc = walk_file(w, relp.ptr, absp.ptr, &st);
    }
cleanup:
    tr_buf_dispose(&relp);
    tr_buf_dispose(&absp);
    return rc;
}

static int walk_dir(walk *w, const char *rel, size_t depth)
{
    tr_buf absp = TR_BUF_INIT(8192);
    char **names = NULL;
    size_t count = 0, cap = 0, i;
    int rc = 0, chart_dir = 0;
    struct dirent *de;
    DIR *dir = NULL;

    if (tr_buf_printf(&absp, "%s%s%s", w->root, rel[0] ? "/" : "", rel) != 0)
        goto cleanup;
    dir = opendir(absp.ptr);
    if (dir == NULL) {
        rc = depth == 0 ? tr_error_set(w->err, TR_EIO, "cannot read %s: %s", w->root,
                                       strerror(errno))
                        : tr_locate_problem(w->index, rel, 0, 0, "unreadable directory");
        goto cleanup;
    }
    while ((de = readdir(dir)) != NULL && count < DIR_ENTRIES_MAX) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (strcmp(de->d_name, "Chart.yaml") == 0)
            chart_dir = 1;
        if ((rc = tr_locate_grow((void **)&names, &cap, count, sizeof(char *))) != 0)
            goto cleanup;
        if ((names[count] = tr_strdup(de->d_name)) == NULL) {
            rc = TR_ENOMEM;
            goto cleanup;
        }
        count++;
    }
    /* readdir order is the filesystem's: sort so the index is the same on every host. */
    if (count > 0)
        qsort(names, count, sizeof(char *), cmp_names);
    for (i = 0; i < count && rc == 0 && !w->stop; i++)
        rc = walk_entry(w, rel, names[i], chart_dir, depth);
cleanup:
    if (dir != NULL)
        closedir(dir);
    for (i = 0; i < count; i++)
        tr_free(names[i]);
    tr_free(names);
    tr_buf_dispose(&absp);
    return rc;
}

/* ------------------------------------------------------------- public */

static tr_locate_index *index_new(const char *commit, const tr_locate_limits *limits)
{
    tr_locate_index *index = tr_calloc(1, sizeof(*index));

    if (index == NULL)
        return NULL;
    if ((index->commit = tr_strdup(commit ? commit : "")) == NULL) {
        tr_free(index);
        return NULL;
    }
    if (limits != NULL)
        index->limits = *limits;
    if (index->limits.max_files == 0)
        index->limits.max_files = 5000;
    if (index->limits.max_file_bytes == 0)
        index->limits.max_file_bytes = 1024 * 1024;
    if (index->limits.max_depth == 0)
        index->limits.max_depth = 24;
    if (index->limits.max_docs == 0)
        index->limits.max_docs = 50000;
    return index;
}

static int index_finish(tr_locate_index **out, tr_locate_index *index, int rc, tr_error *err)
{
    if (rc == 0)
        rc = tr_locate_views_build(index);
    if (rc != 0) {
        if (rc == TR_ENOMEM)
            tr_error_set(err, rc, "out of memory building the YAML index");
        tr_locate_index_free(index);
        return rc;
    }
    *out = index;
    return 0;
}

int tr_locate_index_build(tr_locate_index **out, const char *root, const char *commit,
                          const tr_locate_limits *limits, tr_error *err)
{
    tr_locate_index *index;
    walk w;
    int rc;

    *out = NULL;
    if (root == NULL || root[0] == '\0')
        return tr_error_set(err, TR_EINVAL, "no work tree given");
    if ((index = index_new(commit, limits)) == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    memset(&w, 0, sizeof(w));
    w.index = index;
    w.root = root;
    w.err = err;
    rc = walk_dir(&w, "", 0);
    return index_finish(out, index, rc, err);
}

int tr_locate_index_from_buffer(tr_locate_index **out, const char *file, const char *data,
                                size_t len, tr_error *err)
{
    tr_locate_index *index;
    int rc;

    *out = NULL;
    if ((index = index_new("", NULL)) == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    rc = parse_file(index, file, data, len);
    if (rc == TR_ETOOBIG)
        rc = 0;
    return index_finish(out, index, rc, err);
}

void tr_locate_index_free(tr_locate_index *index)
{
    size_t i, j;

    if (index == NULL)
        return;
    for (i = 0; i < index->doc_count; i++) {
        tr_locate_doc_rec *rec = &index->docs[i];

        tr_free((char *)rec->pub.file);
        tr_free((char *)rec->pub.api_version);
        tr_free((char *)rec->pub.kind);
        tr_free((char *)rec->pub.name);
        tr_free((char *)rec->pub.namespace_);
        for (j = 0; j < rec->ref_count; j++)
            tr_free(rec->refs[j]);
        tr_free(rec->refs);
    }
    for (i = 0; i < index->kust_count; i++) {
        tr_locate_kust *k = &index->kusts[i];

        tr_free(k->dir);
        tr_free(k->file);
        tr_free(k->namespace_);
        tr_free(k->name_prefix);
        tr_free(k->name_suffix);
        for (j = 0; j < k->resource_count; j++)
            tr_free(k->resources[j]);
        tr_free(k->resources);
    }
    for (i = 0; i < index->view_count; i++)
        tr_free(index->views[i].name);
    for (i = 0; i < index->problem_count; i++)
        tr_free(index->problems[i]);
    tr_free(index->docs);
    tr_free(index->kusts);
    tr_free(index->views);
    tr_free(index->problems);
    tr_free(index->commit);
    tr_free(index);
}

const char *tr_locate_index_commit(const tr_locate_index *index)
{
    return index ? index->commit : "";
}

size_t tr_locate_index_doc_count(const tr_locate_index *index)
{
    return index ? index->doc_count : 0;
}

const tr_locate_doc *tr_locate_index_doc(const tr_locate_index *index, size_t i)
{
    return index && i < index->doc_count ? &index->docs[i].pub : NULL;
}

size_t tr_locate_index_problem_count(const tr_locate_index *index)
{
    return index ? index->problem_count : 0;
}

const char *tr_locate_index_problem(const tr_locate_index *index, size_t i)
{
    return index && i < index->problem_count ? index->problems[i] : NULL;
}
