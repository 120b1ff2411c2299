/*
 * openapi.c - see openapi.h. Parse and index /openapi/v2, read YAML documents into a small
 * typed tree (plain scalars resolved as go-yaml v2 does, since that is what kubectl reads
 * manifests with), and walk each object against its schema.
 */
#include "openapi.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <yaml.h>

#include "alloc.h"

#define MAX_REF_HOPS 16        /* $ref -> $ref chains; the definitions may be cyclic */
#define MAX_YAML_DEPTH 64
#define MAX_YAML_NODES 200000
#define MAX_DOCS 1000
#define PATH_MAX_BYTES 1024

typedef struct gvk_entry {
    const char *group;         /* borrowed from the cJSON tree; "" for the core group */
    const char *version;
    const char *kind;
    const cJSON *schema;
} gvk_entry;

struct tr_openapi_set {
    cJSON *definitions;        /* owned */
    gvk_entry *kinds;
    size_t kind_count;
};

/* ------------------------------------------------------------ parse */

static void drop_descriptions(cJSON *node, int depth)
{
    cJSON *child, *next;

    if (depth > 200)
        return;
    for (child = node->child; child != NULL; child = next) {
        next = child->next;
        if (cJSON_IsObject(node) && child->string && strcmp(child->string, "description") == 0)
            cJSON_Delete(cJSON_DetachItemViaPointer(node, child));
        else if (cJSON_IsObject(child) || cJSON_IsArray(child))
            drop_descriptions(child, depth + 1);
    }
}

static int index_kinds(tr_openapi_set *set)
{
    const cJSON *def, *gvk;
    size_t n = 0;

    cJSON_ArrayForEach(def, set->definitions) {
        n += (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
            def, "x-kubernetes-group-version-kind"));
    }
    if (n == 0)
        return TR_EPARSE;
    set->kinds = tr_calloc(n, sizeof(*set->kinds));
    if (set->kinds == NULL)
        return TR_ENOMEM;
    cJSON_ArrayForEach(def, set->definitions) {
        cJSON_ArrayForEach(gvk, cJSON_GetObjectItemCaseSensitive(
                                    def, "x-kubernetes-group-version-kind")) {
            const char *g = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(gvk, "group"));
            const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(gvk,
                                                                                  "version"));
            const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(gvk, "kind"));

            if (v == NULL || k == NULL || !cJSON_IsObject(def) || set->kind_count == n)
                continue;
            set->kinds[set->kind_count].group = g ? g : "";
            set->kinds[set->kind_count].version = v;
            set->kinds[set->kind_count].kind = k;
            set->kinds[set->kind_count].schema = def;
            set->kind_count++;
        }
    }
    return set->kind_count ? TR_OK : TR_EPARSE;
}

int tr_openapi_parse(tr_openapi_set **out, const char *json, size_t len, tr_error *err)
{
    tr_openapi_set *set = NULL;
    cJSON *root = NULL;
    int rc;

    *out = NULL;
    if (len > TR_OPENAPI_MAX_DOC_BYTES)
        return tr_error_set(err, TR_ETOOBIG, "openapi: the document is %zu bytes, over the "
                                             "%zu-byte cap", len, TR_OPENAPI_MAX_DOC_BYTES);
    root = cJSON_ParseWithLength(json, len);
    if (root == NULL || !cJSON_IsObject(root)) {
        rc = tr_error_set(err, TR_EPARSE, "openapi: not a JSON object");
        goto cleanup;
    }
    set = tr_calloc(1, sizeof(*set));
    if (set == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    set->definitions = cJSON_DetachItemFromObjectCaseSensitive(root, "definitions");
    if (!cJSON_IsObject(set->definitions)) {
        rc = tr_error_set(err, TR_EPARSE, "openapi: no \"definitions\" object (is this a "
                                          "Swagger 2.0 /openapi/v2 document?)");
        goto cleanup;
    }
    drop_descriptions(set->definitions, 0);
    rc = index_kinds(set);
    if (rc == TR_ENOMEM)
        tr_error_set(err, rc, "out of memory");
    else if (rc != TR_OK)
        tr_error_set(err, rc, "openapi: no definition carries x-kubernetes-group-version-kind");
cleanup:
    cJSON_Delete(root);
    if (rc != TR_OK) {
        tr_openapi_free(set);
        return rc;
    }
    *out = set;
    return TR_OK;
}

void tr_openapi_free(tr_openapi_set *set)
{
    if (set == NULL)
        return;
    cJSON_Delete(set->definitions);
    tr_free(set->kinds);
    tr_free(set);
}

size_t tr_openapi_kind_count(const tr_openapi_set *set)
{
    return set ? set->kind_count : 0;
}

static const gvk_entry *find_kind(const tr_openapi_set *set, const char *api_version,
                                  const char *kind)
{
    const char *slash = strchr(api_version, '/');
    size_t glen = slash ? (size_t)(slash - api_version) : 0;
    const char *version = slash ? slash + 1 : api_version;
    size_t i;

    for (i = 0; set && i < set->kind_count; i++) {
        const gvk_entry *e = &set->kinds[i];

        if (strcmp(e->kind, kind) == 0 && strcmp(e->version, version) == 0 &&
            strlen(e->group) == glen && strncmp(e->group, api_version, glen) == 0)
            return e;
    }
    return NULL;
}

int tr_openapi_has_kind(const tr_openapi_set *set, const char *api_version, const char *kind)
{
    return api_version && kind && find_kind(set, api_version, kind) != NULL;
}

/* ------------------------------------------------------------ YAML */

typedef enum ykind { Y_NULL, Y_BOOL, Y_INT, Y_FLOAT, Y_STR, Y_MAP, Y_SEQ } ykind;

typedef struct ynode {
    ykind kind;
    char *text;                /* scalars; map keys are scalars too */
    struct ynode **items;      /* seq: items; map: key, value, key, value ... */
    size_t count, cap;
} ynode;

static void ynode_free(ynode *n)
{
    size_t i;

    if (n == NULL)
        return;
    for (i = 0; i < n->count; i++)
        ynode_free(n->items[i]);
    tr_free(n->items);
    tr_free(n->text);
    tr_free(n);
}

static int all_digits(const char *s, const char *set)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s != '_' && strchr(set, *s) == NULL)
            return 0;
    return 1;
}

static int is_float_text(const char *s)
{
    char *end;

    if (strcmp(s, ".inf") == 0 || strcmp(s, "-.inf") == 0 || strcmp(s, "+.inf") == 0 ||
        strcmp(s, ".nan") == 0 || strcmp(s, ".NaN") == 0 || strcmp(s, ".Inf") == 0)
        return 1;
    if (strpbrk(s, ".eE") == NULL || strchr(s, 'x') || strchr(s, 'X'))
        return 0;
    (void)strtod(s, &end);
    return end != s && *end == '\0' && strpbrk(s, "0123456789") != NULL;
}

/* The type of a plain scalar, as go-yaml v2 (YAML 1.1) resolves it. */
static ykind plain_kind(const char *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE",
                                        "yes", "Yes", "YES", "no", "No", "NO",
                                        "on", "On", "ON", "off", "Off", "OFF",
                                        "y", "Y", "n", "N"};
    const char *digits = s + (*s == '-' || *s == '+');
    size_t i;

    for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(s, nulls[i]) == 0)
            return Y_NULL;
    for (i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
        if (strcmp(s, bools[i]) == 0)
            return Y_BOOL;
    if (strncmp(digits, "0x", 2) == 0 && all_digits(digits + 2, "0123456789abcdefABCDEF"))
        return Y_INT;
    if (strncmp(digits, "0o", 2) == 0 && all_digits(digits + 2, "01234567"))
        return Y_INT;
    if (all_digits(digits, "0123456789") && digits[0] != '_')
        return Y_INT;
    return is_float_text(s) ? Y_FLOAT : Y_STR;
}

static ykind scalar_kind(const yaml_event_t *ev)
{
    const char *tag = (const char *)ev->data.scalar.tag;

    if (tag != NULL) {
        if (strcmp(tag, YAML_STR_TAG) == 0 || strcmp(tag, "!") == 0)
            return Y_STR;
        if (strcmp(tag, YAML_INT_TAG) == 0)
            return Y_INT;
        if (strcmp(tag, YAML_FLOAT_TAG) == 0)
            return Y_FLOAT;
        if (strcmp(tag, YAML_BOOL_TAG) == 0)
            return Y_BOOL;
        if (strcmp(tag, YAML_NULL_TAG) == 0)
            return Y_NULL;
    }
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return Y_STR;
    return plain_kind((const char *)ev->data.scalar.value);
}

static int ynode_append(ynode *parent, ynode *child)
{
    if (parent->count == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        ynode **items = tr_realloc(parent->items, cap * sizeof(*items));

        if (items == NULL)
            return TR_ENOMEM;
        parent->items = items;
        parent->cap = cap;
    }
    parent->items[parent->count++] = child;
    return TR_OK;
}

typedef struct ydocs {
    ynode *docs[MAX_DOCS];
    size_t count;
    char error[256];
} ydocs;

static void ydocs_dispose(ydocs *d)
{
    size_t i;

    for (i = 0; i < d->count; i++)
        ynode_free(d->docs[i]);
    d->count = 0;
}

/* A new node for ev attached to the top of stack (or as a document root). */
static int add_node(ydocs *d, ynode **stack, size_t depth, const yaml_event_t *ev, ynode **out)
{
    ynode *n = tr_calloc(1, sizeof(*n));
    int rc;

    *out = n;
    if (n == NULL)
        return TR_ENOMEM;
    if (ev->type == YAML_SCALAR_EVENT) {
        n->kind = scalar_kind(ev);
        n->text = tr_strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        if (n->text == NULL) {
            tr_free(n);
            return TR_ENOMEM;
        }
    } else {
        n->kind = ev->type == YAML_MAPPING_START_EVENT ? Y_MAP : Y_SEQ;
    }
    if (depth > 0) {
        rc = ynode_append(stack[depth - 1], n);
    } else if (d->count == MAX_DOCS) {
        snprintf(d->error, sizeof(d->error), "more than %d documents", MAX_DOCS);
        rc = TR_ETOOBIG;
    } else {
        d->docs[d->count++] = n;
        rc = TR_OK;
    }
    if (rc != TR_OK)
        ynode_free(n);
    return rc;
}

/* Every document of data into d->docs; TR_EPARSE / TR_ETOOBIG with d->error. */
static int read_yaml(ydocs *d, const char *data, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    ynode *stack[MAX_YAML_DEPTH], *n;
    size_t depth = 0, nodes = 0;
    int rc = TR_OK, done = 0;

    if (memchr(data, '\0', len) != NULL) {
        snprintf(d->error, sizeof(d->error), "a NUL byte in the YAML");
        return TR_EPARSE;
    }
    if (!yaml_parser_initialize(&parser))
        return TR_ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    while (!done && rc == TR_OK) {
        if (!yaml_parser_parse(&parser, &ev)) {
            snprintf(d->error, sizeof(d->error), "YAML line %zu column %zu: %s",
                     parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                     parser.problem ? parser.problem : "parse error");
            rc = TR_EPARSE;
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_ALIAS_EVENT:
            snprintf(d->error, sizeof(d->error), "YAML line %zu: aliases are not supported",
                     ev.start_mark.line + 1);
            rc = TR_EPARSE;
            break;
        case YAML_SCALAR_EVENT:
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (++nodes > MAX_YAML_NODES) {
                snprintf(d->error, sizeof(d->error), "more than %d YAML nodes",
                         MAX_YAML_NODES);
                rc = TR_ETOOBIG;
                break;
            }
            if (ev.type != YAML_SCALAR_EVENT && depth == MAX_YAML_DEPTH) {
                snprintf(d->error, sizeof(d->error), "YAML nested deeper than %d",
                         MAX_YAML_DEPTH);
                rc = TR_ETOOBIG;
                break;
            }
            rc = add_node(d, stack, depth, &ev, &n);
            if (rc == TR_OK && ev.type != YAML_SCALAR_EVENT)
                stack[depth++] = n;
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    if (rc == TR_ENOMEM)
        snprintf(d->error, sizeof(d->error), "out of memory");
    return rc;
}

static const ynode *ymap_get(const ynode *map, const char *key)
{
    size_t i;

    if (map == NULL || map->kind != Y_MAP)
        return NULL;
    for (i = 0; i + 1 < map->count; i += 2)
        if (map->items[i]->text && strcmp(map->items[i]->text, key) == 0)
            return map->items[i + 1];
    return NULL;
}

static const char *ymap_str(const ynode *map, const char *key)
{
    const ynode *v = ymap_get(map, key);

    return v && v->text && v->kind != Y_MAP && v->kind != Y_SEQ ? v->text : NULL;
}

/* ------------------------------------------------------------ walk */

typedef struct walker {
    const tr_openapi_set *set;
    tr_buf *detail;
    const char *object;        /* "apps/v1 Deployment web" */
    size_t errors;             /* all of them, listed or not */
    char path[PATH_MAX_BYTES];
} walker;

static void report(walker *w, const char *fmt, const char *what)
{
    w->errors++;
    if (w->errors > TR_OPENAPI_MAX_ERRORS)
        return;
    (void)tr_buf_printf(w->detail, "%s: %s: ", w->object, w->path[0] ? w->path : "(object)");
    (void)tr_buf_printf(w->detail, fmt, what);
    (void)tr_buf_putc(w->detail, '\n');
}

/* The schema behind $ref (and a one-element allOf, as newer generators write refs). */
static const cJSON *resolve(const walker *w, const cJSON *schema)
{
    int hops;

    for (hops = 0; schema != NULL && hops < MAX_REF_HOPS; hops++) {
        const char *ref = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(schema,
                                                                                "$ref"));
        const cJSON *all = cJSON_GetObjectItemCaseSensitive(schema, "allOf");

        if (ref == NULL && cJSON_GetArraySize(all) == 1 &&
            cJSON_GetObjectItemCaseSensitive(schema, "properties") == NULL) {
            schema = cJSON_GetArrayItem(all, 0);
            continue;
        }
        if (ref == NULL)
            return schema;
        if (strncmp(ref, "#/definitions/", 14) != 0)
            return NULL;
        schema = cJSON_GetObjectItemCaseSensitive(w->set->definitions, ref + 14);
    }
    return NULL; /* a cycle of bare refs: nothing to check against */
}

static int flag(const cJSON *schema, const char *name)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(schema, name));
}

static const char *kind_name(ykind k)
{
    static const char *const names[] = {"null", "boolean", "integer", "number", "string",
                                        "object", "array"};
    return names[k];
}

static int integral(const char *text)
{
    char *end;
    double v = strtod(text, &end);

    return end != text && *end == '\0' && isfinite(v) && floor(v) == v;
}

/* 1 when node's type fits the schema's type (kubectl's leniency: see openapi.h). */
static int type_fits(const cJSON *schema, const ynode *node)
{
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(schema, "type"));
    const char *format = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(schema,
                                                                               "format"));

    if (node->kind == Y_NULL)
        return 1;
    if (flag(schema, "x-kubernetes-int-or-string") ||
        (format != NULL && strcmp(format, "int-or-string") == 0))
        return node->kind == Y_INT || node->kind == Y_STR;
    if (type == NULL)
        return 1;
    if (strcmp(type, "string") == 0)
        return node->kind == Y_STR || node->kind == Y_INT || node->kind == Y_FLOAT;
    if (strcmp(type, "integer") == 0)
        return node->kind == Y_INT || (node->kind == Y_FLOAT && integral(node->text));
    if (strcmp(type, "number") == 0)
        return node->kind == Y_INT || node->kind == Y_FLOAT;
    if (strcmp(type, "boolean") == 0)
        return node->kind == Y_BOOL;
    if (strcmp(type, "object") == 0)
        return node->kind == Y_MAP;
    if (strcmp(type, "array") == 0)
        return node->kind == Y_SEQ;
    return 1;
}

static void walk(walker *w, const cJSON *schema, const ynode *node);

/* Append ".key" or "[i]" to w->path; the old length to restore, or (size_t)-1 when full. */
static size_t path_push(walker *w, const char *key, size_t index)
{
    size_t len = strlen(w->path);
    int n = key ? snprintf(w->path + len, sizeof(w->path) - len, "%s%s", len ? "." : "", key)
                : snprintf(w->path + len, sizeof(w->path) - len, "[%zu]", index);

    if (n < 0 || (size_t)n >= sizeof(w->path) - len) {
        w->path[len] = '\0';
        return (size_t)-1;
    }
    return len;
}

static void walk_child(walker *w, const cJSON *schema, const ynode *child, const char *key,
                       size_t index)
{
    size_t keep = path_push(w, key, index);

    if (keep == (size_t)-1)
        return; /* deeper than a path can say: not worth reporting */
    walk(w, schema, child);
    w->path[keep] = '\0';
}

static void walk_map(walker *w, const cJSON *schema, const ynode *node)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
    const cJSON *req;
    int open = flag(schema, "x-kubernetes-preserve-unknown-fields") || cJSON_IsTrue(extra) ||
               (props == NULL && extra == NULL);
    size_t i;

    for (i = 0; i + 1 < node->count; i += 2) {
        const char *key = node->items[i]->text ? node->items[i]->text : "";
        const cJSON *sub = cJSON_GetObjectItemCaseSensitive(props, key);

        if (sub != NULL)
            walk_child(w, sub, node->items[i + 1], key, 0);
        else if (cJSON_IsObject(extra))
            walk_child(w, extra, node->items[i + 1], key, 0);
        else if (!open) {
            size_t keep = path_push(w, key, 0);

            report(w, "%s", "unknown field");
            if (keep != (size_t)-1)
                w->path[keep] = '\0';
        }
    }
    cJSON_ArrayForEach(req, cJSON_GetObjectItemCaseSensitive(schema, "required")) {
        const char *name = cJSON_GetStringValue(req);

        if (name != NULL && ymap_get(node, name) == NULL) {
            size_t keep = path_push(w, name, 0);

            report(w, "%s", "required field missing");
            if (keep != (size_t)-1)
                w->path[keep] = '\0';
        }
    }
}

static void walk(walker *w, const cJSON *schema, const ynode *node)
{
    const cJSON *items;
    size_t i;

    schema = resolve(w, schema);
    if (schema == NULL || !cJSON_IsObject(schema))
        return;
    if (!type_fits(schema, node)) {
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(schema,
                                                                                 "type"));
        char what[128];

        snprintf(what, sizeof(what), "%s where the schema wants %s", kind_name(node->kind),
                 type ? type : "integer or string");
        report(w, "wrong type: %s", what);
        return;
    }
    if (node->kind == Y_MAP) {
        walk_map(w, schema, node);
    } else if (node->kind == Y_SEQ) {
        items = cJSON_GetObjectItemCaseSensitive(schema, "items");
        for (i = 0; cJSON_IsObject(items) && i < node->count; i++)
            walk_child(w, items, node->items[i], NULL, i);
    }
}

/* ------------------------------------------------------------ validate */

typedef struct tally {
    size_t checked, skipped, errors;
} tally;

static void validate_doc(const tr_openapi_set *set, const ynode *doc, size_t index,
                         tr_buf *errors, tr_buf *notes, tally *t)
{
    const char *api = ymap_str(doc, "apiVersion"), *kind = ymap_str(doc, "kind");
    const char *name = ymap_str(ymap_get(doc, "metadata"), "name");
    const gvk_entry *e;
    char object[512];
    walker w;

    if (doc->kind == Y_NULL)
        return; /* an empty document (a trailing ---) */
    if (api == NULL || kind == NULL) {
        t->skipped++;
        (void)tr_buf_printf(notes, "; document %zu is not a Kubernetes object (no apiVersion "
                                   "and kind)", index + 1);
        return;
    }
    snprintf(object, sizeof(object), "%s %s %s", api, kind, name ? name : "(no name)");
    e = find_kind(set, api, kind);
    if (e == NULL) {
        t->skipped++;
        (void)tr_buf_printf(notes, "; %s skipped: the cluster has no schema for %s %s",
                            object, api, kind);
        return;
    }
    memset(&w, 0, sizeof(w));
    w.set = set;
    w.detail = errors;
    w.object = object;
    w.errors = t->errors;
    walk(&w, e->schema, doc);
    t->errors = w.errors;
    t->checked++;
}

tr_patch_check_status tr_openapi_validate_yaml(const tr_openapi_set *set, const char *content,
                                               size_t len, tr_buf *detail)
{
    tr_buf errors = TR_BUF_INIT(8192), notes = TR_BUF_INIT(2048);
    tr_patch_check_status status;
    ydocs *docs = tr_calloc(1, sizeof(*docs));
    tally t = {0, 0, 0};
    size_t i;
    int rc;

    if (docs == NULL) {
        (void)tr_buf_puts(detail, "out of memory");
        return TR_PATCH_CHECK_FAILED;
    }
    rc = read_yaml(docs, content ? content : "", content ? len : 0);
    if (rc != TR_OK) {
        (void)tr_buf_printf(detail, "the YAML can not be read: %s", docs->error);
        status = TR_PATCH_CHECK_FAILED;
        goto cleanup;
    }
    for (i = 0; i < docs->count; i++)
        validate_doc(set, docs->docs[i], i, &errors, &notes, &t);
    if (t.errors > 0) {
        (void)tr_buf_puts(detail, tr_buf_cstr(&errors));
        if (t.errors > TR_OPENAPI_MAX_ERRORS)
            (void)tr_buf_printf(detail, "... and %zu more\n", t.errors - TR_OPENAPI_MAX_ERRORS);
        status = TR_PATCH_CHECK_FAILED;
    } else if (t.checked == 0) {
        (void)tr_buf_printf(detail, "no object of a kind the cluster knows%s",
                            tr_buf_cstr(&notes));
        status = TR_PATCH_CHECK_SKIPPED;
    } else {
        (void)tr_buf_printf(detail, "%zu object(s) match the cluster's schema%s", t.checked,
                            tr_buf_cstr(&notes));
        status = TR_PATCH_CHECK_PASSED;
    }
cleanup:
    ydocs_dispose(docs);
    tr_free(docs);
    tr_buf_dispose(&errors);
    tr_buf_dispose(&notes);
    return status;
}

tr_patch_check_status tr_openapi_yaml_hook(void *ctx, const char *path, const char *content,
                                           size_t len, tr_buf *detail)
{
    (void)path;
    return tr_openapi_validate_yaml(ctx, content, len, detail);
}
