/*
 * toml_parse.c - the document half of the TOML parser: keys, key/value
 * pairs, [table] and [[array of tables]] headers, arrays, inline tables,
 * and TOML's rules on what may be defined where.
 *
 * Those rules are decided on how each table came to be (toml_internal.h):
 * - a [header] may name a table that exists only as a parent of an earlier
 *   header (IMPLICIT), never one already named by a header (DEFINED), made
 *   by dotted keys (DOTTED), or written inline (INLINE);
 * - a header may pass through any table that is not inline, and through an
 *   array of tables (into its last element), never a static array;
 * - a dotted key may only pass through tables made by dotted keys: a table
 *   made by a header is closed to dotted keys from elsewhere.
 * Since a [section] can never be entered twice, DOTTED tables can only be
 * reached by dotted keys from the section (or inline table) that made them.
 *
 * Input drives recursion only through nested arrays and inline tables, and
 * every node knows its depth, so nothing goes deeper than TR_TOML_MAX_DEPTH.
 */
#include "alloc.h"
#include "toml_internal.h"

#include <stdio.h>
#include <string.h>

/*
 * tr_toml_fail and tr_toml_nomem (toml_lex.c) always return TR_EPARSE and
 * TR_ENOMEM, as toml_internal.h says. The static analyzer reads one file at a
 * time, so without seeing that it assumes they may return TR_OK and reports
 * the out-parameters of every failed helper as NULL. These wrappers call the
 * same functions and state their documented codes where the analyzer sees
 * them; a function-like macro does not expand inside itself, so the calls
 * reach the real functions.
 */
#define tr_toml_fail(...) ((void)tr_toml_fail(__VA_ARGS__), TR_EPARSE)
#define tr_toml_nomem(p) ((void)tr_toml_nomem(p), TR_ENOMEM)

typedef struct key_part {
    char *name; /* owned */
    size_t len;
    size_t pos; /* where it was written, for messages */
} key_part;

typedef struct key_path {
    key_part *parts;
    size_t count, cap;
} key_path;

static int parse_value(tr_toml_parser *p, int depth, tr_toml_value **out);

static void key_path_clear(key_path *path)
{
    size_t i;

    for (i = 0; i < path->count; i++)
        tr_free(path->parts[i].name);
    path->count = 0;
}

static void key_path_dispose(key_path *path)
{
    key_path_clear(path);
    tr_free(path->parts);
    path->parts = NULL;
    path->cap = 0;
}

/* "a.b.c" of the first count parts, for messages (quoted parts stay readable enough). */
static const char *key_path_text(const key_path *path, size_t count, char *buf, size_t size)
{
    size_t used = 0, i;

    buf[0] = '\0';
    for (i = 0; i < count && used + 1 < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? "." : "", path->parts[i].name);

        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

static bool at(const tr_toml_parser *p, char c)
{
    return p->pos < p->len && p->text[p->pos] == c;
}

static void skip_ws(tr_toml_parser *p)
{
    while (p->pos < p->len && (p->text[p->pos] == ' ' || p->text[p->pos] == '\t'))
        p->pos++;
}

static void skip_comment(tr_toml_parser *p)
{
    if (!at(p, '#'))
        return;
    while (p->pos < p->len && p->text[p->pos] != '\n' && p->text[p->pos] != '\r')
        p->pos++;
}

static bool at_newline(const tr_toml_parser *p)
{
    return at(p, '\n') || at(p, '\r');
}

static void skip_newline(tr_toml_parser *p)
{
    p->pos += at(p, '\r') ? 2 : 1; /* a CR is always followed by LF (checked up front) */
}

/* Whitespace, comments and newlines: what may sit between array items. */
static void skip_blank(tr_toml_parser *p)
{
    for (;;) {
        skip_ws(p);
        skip_comment(p);
        if (!at_newline(p))
            return;
        skip_newline(p);
    }
}

static bool is_bare_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

static int parse_key(tr_toml_parser *p, key_path *path)
{
    char what[16];
    int rc;

    key_path_clear(path);
    for (;;) {
        key_part part = { NULL, 0, 0 };

        skip_ws(p);
        part.pos = p->pos;
        if (at(p, '"') || at(p, '\'')) {
            rc = tr_toml_lex_string(p, true, &part.name, &part.len);
            if (rc != TR_OK)
                return rc;
        } else {
            while (p->pos < p->len && is_bare_key_char(p->text[p->pos]))
                p->pos++;
            if (p->pos == part.pos)
                return tr_toml_fail(p, p->pos, "expected a key, found %s",
                                    tr_toml_describe(p, p->pos, what, sizeof(what)));
            part.len = p->pos - part.pos;
            part.name = tr_strndup(p->text + part.pos, part.len);
            if (part.name == NULL)
                return tr_toml_nomem(p);
        }
        if (path->count == path->cap) {
            size_t cap = path->cap ? path->cap * 2 : 8;
            key_part *parts = NULL;

            if (path->count >= TR_TOML_MAX_DEPTH) {
                tr_free(part.name);
                return tr_toml_fail(p, part.pos, "key has more than %d parts",
                                    TR_TOML_MAX_DEPTH);
            }
            parts = tr_realloc(path->parts, cap * sizeof(*parts));
            if (parts == NULL) {
                tr_free(part.name);
                return tr_toml_nomem(p);
            }
            path->parts = parts;
            path->cap = cap;
        }
        path->parts[path->count++] = part;
        skip_ws(p);
        if (!at(p, '.'))
            return TR_OK;
        p->pos++;
    }
}

/* What an existing node is, for "already defined as ..." messages. */
static const char *describe_node(const tr_toml_value *node)
{
    if (node->type == TR_TOML_ARRAY)
        return (node->flags & TR_TOML_F_AOT) ? "an array of tables" : "a static array";
    if (node->type != TR_TOML_TABLE)
        return tr_toml_type_name(node->type);
    if (node->flags & TR_TOML_F_INLINE)
        return "an inline table";
    if (node->flags & TR_TOML_F_DOTTED)
        return "a table by dotted keys";
    return "a table by a [header]";
}

static int check_depth(tr_toml_parser *p, size_t pos, int depth)
{
    if (depth > TR_TOML_MAX_DEPTH)
        return tr_toml_fail(p, pos, "nested deeper than %d levels", TR_TOML_MAX_DEPTH);
    return TR_OK;
}

/* Add a new table named by part to parent; *out is borrowed from the tree. */
static int add_table(tr_toml_parser *p, tr_toml_value *parent, const key_part *part,
                     unsigned flags, int line, tr_toml_value **out)
{
    tr_toml_value *table;
    char *name;
    int rc = check_depth(p, part->pos, parent->depth + 1);

    if (rc != TR_OK)
        return rc;
    table = tr_toml_value_new(TR_TOML_TABLE, line, parent->depth + 1);
    name = tr_strndup(part->name, part->len);
    if (table == NULL || name == NULL || tr_toml_table_add(parent, name, part->len, table) != 0) {
        tr_free(name);
        tr_toml_free(table);
        return tr_toml_nomem(p);
    }
    table->flags = flags;
    *out = table;
    return TR_OK;
}

/* key = value, into table; p->pos is at the key. */
static int parse_keyval(tr_toml_parser *p, tr_toml_value *table, key_path *path)
{
    char name[256], what[16];
    tr_toml_value *target = table, *value = NULL;
    const key_part *last;
    size_t i;
    int line = tr_toml_line_of(p, p->pos);
    int rc = parse_key(p, path);

    if (rc != TR_OK)
        return rc;
    if (!at(p, '='))
        return tr_toml_fail(p, p->pos, "expected '=' after key '%s', found %s",
                            key_path_text(path, path->count, name, sizeof(name)),
                            tr_toml_describe(p, p->pos, what, sizeof(what)));
    p->pos++;
    skip_ws(p);
    for (i = 0; i + 1 < path->count; i++) {
        const key_part *part = &path->parts[i];
        tr_toml_value *next = tr_toml_table_find(target, part->name, part->len);

        if (next == NULL) {
            rc = add_table(p, target, part, TR_TOML_F_DOTTED, line, &next);
            if (rc != TR_OK)
                return rc;
        } else if (next->type != TR_TOML_TABLE || !(next->flags & TR_TOML_F_DOTTED)) {
            return tr_toml_fail(p, part->pos, "cannot add keys to '%s' with a dotted key: it is "
                                "already defined as %s (line %d)",
                                key_path_text(path, i + 1, name, sizeof(name)),
                                describe_node(next), next->line);
        }
        target = next;
    }
    last = &path->parts[path->count - 1];
    value = tr_toml_table_find(target, last->name, last->len);
    if (value != NULL)
        return tr_toml_fail(p, last->pos, "duplicate key '%s' (first defined on line %d)",
                            key_path_text(path, path->count, name, sizeof(name)), value->line);
    rc = parse_value(p, target->depth + 1, &value);
    if (rc != TR_OK)
        return rc;
    value->line = line;
    /* The table takes the name; the path must not free it too. */
    rc = tr_toml_table_add(target, path->parts[path->count - 1].name, last->len, value);
    if (rc != TR_OK) {
        tr_toml_free(value);
        return tr_toml_nomem(p);
    }
    path->parts[path->count - 1].name = NULL;
    return TR_OK;
}

static int parse_array(tr_toml_parser *p, int depth, tr_toml_value **out)
{
    size_t start = p->pos;
    tr_toml_value *array, *item = NULL;
    char what[16];
    int rc = check_depth(p, start, depth);

    if (rc != TR_OK)
        return rc;
    array = tr_toml_value_new(TR_TOML_ARRAY, tr_toml_line_of(p, start), depth);
    if (array == NULL)
        return tr_toml_nomem(p);
    p->pos++;
    for (;;) {
        skip_blank(p);
        if (at(p, ']'))
            break;
        rc = parse_value(p, depth + 1, &item);
        if (rc != TR_OK)
            goto cleanup;
        if (tr_toml_array_push(array, item) != TR_OK) {
            tr_toml_free(item);
            rc = tr_toml_nomem(p);
            goto cleanup;
        }
        skip_blank(p);
        if (at(p, ','))
            p->pos++;
        else if (!at(p, ']')) {
            rc = p->pos >= p->len
                     ? tr_toml_fail(p, start, "unterminated array")
                     : tr_toml_fail(p, p->pos, "expected ',' or ']' in array, found %s",
                                    tr_toml_describe(p, p->pos, what, sizeof(what)));
            goto cleanup;
        }
    }
    p->pos++;
    *out = array;
    return TR_OK;
cleanup:
    tr_toml_free(array);
    return rc;
}

static int parse_inline_table(tr_toml_parser *p, int depth, tr_toml_value **out)
{
    size_t start = p->pos;
    key_path path = { NULL, 0, 0 };
    tr_toml_value *table;
    char what[16];
    int rc = check_depth(p, start, depth);

    if (rc != TR_OK)
        return rc;
    table = tr_toml_value_new(TR_TOML_TABLE, tr_toml_line_of(p, start), depth);
    if (table == NULL)
        return tr_toml_nomem(p);
    table->flags = TR_TOML_F_INLINE;
    p->pos++;
    skip_ws(p);
    if (!at(p, '}')) {
        for (;;) {
            if (at_newline(p)) {
                rc = tr_toml_fail(p, p->pos, "newline in an inline table (an inline table must "
                                  "fit on one line)");
                goto cleanup;
            }
            rc = parse_keyval(p, table, &path);
            if (rc != TR_OK)
                goto cleanup;
            skip_ws(p);
            if (at(p, '}'))
                break;
            if (!at(p, ',')) {
                rc = at_newline(p) ? tr_toml_fail(p, p->pos, "newline in an inline table (an "
                                                  "inline table must fit on one line)")
                     : p->pos >= p->len ? tr_toml_fail(p, start, "unterminated inline table")
                     : tr_toml_fail(p, p->pos, "expected ',' or '}' in inline table, found %s",
                                    tr_toml_describe(p, p->pos, what, sizeof(what)));
                goto cleanup;
            }
            p->pos++;
            skip_ws(p);
            if (at(p, '}')) {
                rc = tr_toml_fail(p, p->pos, "trailing comma in an inline table");
                goto cleanup;
            }
        }
    }
    p->pos++;
    *out = table;
    table = NULL;
    rc = TR_OK;
cleanup:
    key_path_dispose(&path);
    tr_toml_free(table);
    return rc;
}

/* Any value at p->pos; *out is the caller's (its line is where it starts). */
static int parse_value(tr_toml_parser *p, int depth, tr_toml_value **out)
{
    int line = tr_toml_line_of(p, p->pos);
    tr_toml_value *value;
    size_t len = 0;
    char *text = NULL;
    int rc;

    *out = NULL;
    if (at(p, '[')) {
        return parse_array(p, depth, out);
    } else if (at(p, '{')) {
        return parse_inline_table(p, depth, out);
    } else if (at(p, '"') || at(p, '\'')) {
        rc = tr_toml_lex_string(p, false, &text, &len);
        if (rc != TR_OK)
            return rc;
        value = tr_toml_value_new(TR_TOML_STRING, line, depth);
        if (value == NULL) {
            tr_free(text);
            return tr_toml_nomem(p);
        }
        value->u.string.ptr = text;
        value->u.string.len = len;
        *out = value;
        return TR_OK;
    }
    return tr_toml_lex_scalar(p, line, depth, out);
}

/* [a.b] or [[a.b]]; *current becomes the table that the following keys go into. */
static int parse_header(tr_toml_parser *p, tr_toml_value *root, key_path *path,
                        tr_toml_value **current)
{
    size_t start = p->pos, i;
    bool is_array = p->pos + 1 < p->len && p->text[p->pos + 1] == '[';
    int line = tr_toml_line_of(p, start);
    tr_toml_value *target = root, *found, *table;
    const key_part *last;
    char name[256], what[16];
    int rc;

    p->pos += is_array ? 2 : 1;
    rc = parse_key(p, path);
    if (rc != TR_OK)
        return rc;
    if (!at(p, ']') || (is_array && (p->pos + 1 >= p->len || p->text[p->pos + 1] != ']')))
        return tr_toml_fail(p, p->pos, "expected '%s' to close the table header, found %s",
                            is_array ? "]]" : "]", tr_toml_describe(p, p->pos, what, sizeof(what)));
    p->pos += is_array ? 2 : 1;
    for (i = 0; i + 1 < path->count; i++) {
        const key_part *part = &path->parts[i];

        found = tr_toml_table_find(target, part->name, part->len);
        if (found == NULL) {
            rc = add_table(p, target, part, TR_TOML_F_IMPLICIT, line, &found);
            if (rc != TR_OK)
                return rc;
        } else if (found->type == TR_TOML_ARRAY && (found->flags & TR_TOML_F_AOT)) {
            found = found->u.array.items[found->u.array.count - 1];
        } else if (found->type != TR_TOML_TABLE || (found->flags & TR_TOML_F_INLINE)) {
            return tr_toml_fail(p, part->pos, "cannot add a table under '%s': it is %s "
                                "(line %d)", key_path_text(path, i + 1, name, sizeof(name)),
                                describe_node(found), found->line);
        }
        target = found;
    }
    last = &path->parts[path->count - 1];
    key_path_text(path, path->count, name, sizeof(name));
    found = tr_toml_table_find(target, last->name, last->len);
    if (!is_array) {
        if (found == NULL)
            return add_table(p, target, last, TR_TOML_F_DEFINED, line, current);
        if (found->type != TR_TOML_TABLE || !(found->flags & TR_TOML_F_IMPLICIT))
            return tr_toml_fail(p, start, "table '%s' is already defined as %s (line %d)", name,
                                describe_node(found), found->line);
        found->flags = TR_TOML_F_DEFINED;
        found->line = line;
        *current = found;
        return TR_OK;
    }
    if (found == NULL) {
        char *key = tr_strndup(last->name, last->len);

        rc = check_depth(p, last->pos, target->depth + 2);
        if (rc != TR_OK) {
            tr_free(key);
            return rc;
        }
        found = tr_toml_value_new(TR_TOML_ARRAY, line, target->depth + 1);
        if (key == NULL || found == NULL || tr_toml_table_add(target, key, last->len, found)) {
            tr_free(key);
            tr_toml_free(found);
            return tr_toml_nomem(p);
        }
        found->flags = TR_TOML_F_AOT;
    } else if (found->type != TR_TOML_ARRAY || !(found->flags & TR_TOML_F_AOT)) {
        return tr_toml_fail(p, start, "cannot define array of tables '%s': it is already "
                            "defined as %s (line %d)", name, describe_node(found), found->line);
    }
    table = tr_toml_value_new(TR_TOML_TABLE, line, found->depth + 1);
    if (table == NULL || tr_toml_array_push(found, table) != TR_OK) {
        tr_toml_free(table);
        return tr_toml_nomem(p);
    }
    table->flags = TR_TOML_F_DEFINED;
    *current = table;
    return TR_OK;
}

/* After a key/value pair or a header only a comment may follow on the line. */
static int expect_line_end(tr_toml_parser *p, const char *after)
{
    char what[16];

    skip_ws(p);
    skip_comment(p);
    if (p->pos >= p->len)
        return TR_OK;
    if (at_newline(p)) {
        skip_newline(p);
        return TR_OK;
    }
    return tr_toml_fail(p, p->pos, "expected a newline after %s, found %s", after,
                        tr_toml_describe(p, p->pos, what, sizeof(what)));
}

static int parse_document(tr_toml_parser *p, tr_toml_value *root)
{
    tr_toml_value *current = root;
    key_path path = { NULL, 0, 0 };
    int rc = TR_OK;

    /* A UTF-8 byte order mark is allowed at the very start. */
    if (p->len >= 3 && memcmp(p->text, "\xEF\xBB\xBF", 3) == 0)
        p->pos = 3;
    while (rc == TR_OK) {
        skip_ws(p);
        skip_comment(p);
        if (p->pos >= p->len)
            break;
        if (at_newline(p)) {
            skip_newline(p);
            continue;
        }
        if (at(p, '[')) {
            rc = parse_header(p, root, &path, &current);
            if (rc == TR_OK)
                rc = expect_line_end(p, "a table header");
        } else {
            rc = parse_keyval(p, current, &path);
            if (rc == TR_OK)
                rc = expect_line_end(p, "a value");
        }
    }
    key_path_dispose(&path);
    return rc;
}

int tr_toml_parse(tr_toml_value **out, const char *text, size_t len, tr_error *err)
{
    tr_toml_parser parser;
    tr_toml_value *root = NULL;
    int rc;

    *out = NULL;
    if (text == NULL && len > 0)
        return tr_error_set(err, TR_EINVAL, "no text to parse");
    if (len > TR_TOML_MAX_INPUT)
        return tr_error_set(err, TR_ETOOBIG, "document is %zu bytes, more than the %zu allowed",
                            len, TR_TOML_MAX_INPUT);
    memset(&parser, 0, sizeof(parser));
    parser.text = text ? text : "";
    parser.len = len;
    parser.err = err;
    parser.line_cache_line = 1;
    tr_buf_init(&parser.scratch, TR_TOML_MAX_INPUT);
    rc = tr_toml_check_text(&parser);
    if (rc != TR_OK)
        goto cleanup;
    root = tr_toml_value_new(TR_TOML_TABLE, 1, 0);
    if (root == NULL) {
        rc = tr_toml_nomem(&parser);
        goto cleanup;
    }
    root->flags = TR_TOML_F_DEFINED;
    rc = parse_document(&parser, root);
    if (rc != TR_OK)
        goto cleanup;
    *out = root;
    root = NULL;
cleanup:
    tr_toml_free(root);
    tr_buf_dispose(&parser.scratch);
    return rc;
}
