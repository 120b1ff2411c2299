/*
 * kube_yaml.c - the bounded YAML node tree behind kubeconfig.c.
 *
 * The YAML is turned into a small node tree with libyaml's event API (no
 * recursion while parsing: an explicit stack bounded by YAML_MAX_DEPTH, and a
 * node budget). Aliases are refused: kubeconfigs written by kubectl and cloud
 * CLIs never use them, and refusing them rules out exponential alias
 * expansion.
 */
#include "kube_yaml.h"

#include "alloc.h"
#include "error.h"

#include <string.h>
#include <yaml.h>

#define YAML_MAX_DEPTH 64
#define YAML_MAX_NODES 100000
#define YAML_MAX_MAP_KEYS 256 /* keeps the duplicate-key check cheap */

void tr_kube_yaml_free(tr_kube_yaml_node *node)
{
    size_t i;

    if (node == NULL)
        return;
    for (i = 0; i < node->count; i++)
        tr_kube_yaml_free(node->items[i]);
    tr_free(node->items);
    tr_free(node->text);
    tr_free(node);
}

static int node_append(tr_kube_yaml_node *parent, tr_kube_yaml_node *child)
{
    tr_kube_yaml_node **items;
    size_t cap;

    if (parent->count == parent->cap) {
        cap = parent->cap ? parent->cap * 2 : 4;
        items = tr_realloc(parent->items, cap * sizeof(tr_kube_yaml_node *));
        if (items == NULL)
            return TR_ENOMEM;
        parent->items = items;
        parent->cap = cap;
    }
    parent->items[parent->count++] = child;
    return TR_OK;
}

/* Put a new node under the innermost open collection (or make it the root). */
static int attach(tr_kube_yaml_ctx *c, tr_kube_yaml_node **root, tr_kube_yaml_node **stack,
                  size_t depth, tr_kube_yaml_node *node)
{
    tr_kube_yaml_node *parent;
    size_t i;

    if (depth == 0) {
        *root = node;
        return TR_OK;
    }
    parent = stack[depth - 1];
    if (parent->kind == TR_KUBE_YAML_MAP && parent->count % 2 == 0) {
        if (node->kind != TR_KUBE_YAML_SCALAR)
            return tr_error_set(c->err, TR_EPARSE, "%s:%zu: mapping keys must be plain strings",
                                c->source, node->line);
        if (parent->count / 2 >= YAML_MAX_MAP_KEYS)
            return tr_error_set(c->err, TR_ETOOBIG, "%s:%zu: more than %d keys in one mapping",
                                c->source, node->line, YAML_MAX_MAP_KEYS);
        for (i = 0; i < parent->count; i += 2)
            if (strcmp(parent->items[i]->text, node->text) == 0)
                return tr_error_set(c->err, TR_EPARSE, "%s:%zu: duplicate key \"%s\"",
                                    c->source, node->line, node->text);
    }
    return node_append(parent, node) == TR_OK ? TR_OK
                                              : tr_error_set(c->err, TR_ENOMEM, "out of memory");
}

static int new_node(tr_kube_yaml_ctx *c, const yaml_event_t *event, tr_kube_yaml_node **out)
{
    tr_kube_yaml_node *node = tr_calloc(1, sizeof(*node));

    *out = node;
    if (node == NULL)
        return tr_error_set(c->err, TR_ENOMEM, "out of memory");
    node->line = event->start_mark.line + 1;
    if (event->type == YAML_MAPPING_START_EVENT) {
        node->kind = TR_KUBE_YAML_MAP;
    } else if (event->type == YAML_SEQUENCE_START_EVENT) {
        node->kind = TR_KUBE_YAML_SEQ;
    } else {
        node->kind = TR_KUBE_YAML_SCALAR;
        node->plain = event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (memchr(event->data.scalar.value, '\0', event->data.scalar.length))
            return tr_error_set(c->err, TR_EPARSE, "%s:%zu: NUL character in a string",
                                c->source, node->line);
        node->text = tr_strndup((const char *)event->data.scalar.value,
                                event->data.scalar.length);
        if (node->text == NULL)
            return tr_error_set(c->err, TR_ENOMEM, "out of memory");
    }
    return TR_OK;
}

int tr_kube_yaml_parse(tr_kube_yaml_ctx *c, const char *data, size_t len,
                       tr_kube_yaml_node **out)
{
    yaml_parser_t parser;
    yaml_event_t event;
    tr_kube_yaml_node *stack[YAML_MAX_DEPTH];
    tr_kube_yaml_node *root = NULL, *node;
    size_t depth = 0, nodes = 0;
    int rc = TR_OK, done = 0;

    *out = NULL;
    if (!yaml_parser_initialize(&parser))
        return tr_error_set(c->err, TR_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    while (!done && rc == TR_OK) {
        if (!yaml_parser_parse(&parser, &event)) {
            rc = tr_error_set(c->err, TR_EPARSE, "%s:%zu:%zu: invalid YAML: %s%s%s", c->source,
                              parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                              parser.problem ? parser.problem : "syntax error",
                              parser.context ? " " : "", parser.context ? parser.context : "");
            break;
        }
        switch (event.type) {
        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_ALIAS_EVENT:
            rc = tr_error_set(c->err, TR_EPARSE, "%s:%zu: YAML aliases are not supported",
                              c->source, event.start_mark.line + 1);
            break;
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++nodes > YAML_MAX_NODES) {
                rc = tr_error_set(c->err, TR_ETOOBIG, "%s: more than %d YAML nodes", c->source,
                                  YAML_MAX_NODES);
                break;
            }
            rc = new_node(c, &event, &node);
            if (rc == TR_OK)
                rc = attach(c, &root, stack, depth, node);
            if (rc != TR_OK) {
                tr_kube_yaml_free(node);
                break;
            }
            if (node->kind == TR_KUBE_YAML_SCALAR)
                break;
            if (depth == YAML_MAX_DEPTH) {
                rc = tr_error_set(c->err, TR_ETOOBIG, "%s:%zu: nested deeper than %d levels",
                                  c->source, node->line, YAML_MAX_DEPTH);
                break;
            }
            stack[depth++] = node;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            /* libyaml pairs every end with its start; say so where the analyzer sees it */
            if (depth == 0) {
                rc = tr_error_set(c->err, TR_EPARSE, "%s:%zu: unbalanced YAML collection end",
                                  c->source, event.start_mark.line + 1);
                break;
            }
            depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&event);
    }
    yaml_parser_delete(&parser);
    if (rc != TR_OK)
        tr_kube_yaml_free(root);
    else
        *out = root;
    return rc;
}

int tr_kube_yaml_is_null(const tr_kube_yaml_node *node)
{
    static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
    size_t i;

    if (node == NULL)
        return 1;
    if (node->kind != TR_KUBE_YAML_SCALAR || !node->plain)
        return 0;
    for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(node->text, nulls[i]) == 0)
            return 1;
    return 0;
}

const tr_kube_yaml_node *tr_kube_yaml_map_get(const tr_kube_yaml_node *map, const char *key)
{
    size_t i;

    if (map == NULL || map->kind != TR_KUBE_YAML_MAP)
        return NULL;
    for (i = 0; i + 1 < map->count; i += 2)
        if (strcmp(map->items[i]->text, key) == 0)
            return map->items[i + 1];
    return NULL;
}

int tr_kube_yaml_type_error(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *node, const char *key,
                            const char *want)
{
    if (c->kind)
        return tr_error_set(c->err, TR_ECONFIG, "%s:%zu: %s \"%s\": %s must be %s", c->source,
                            node->line, c->kind, c->name, key, want);
    return tr_error_set(c->err, TR_ECONFIG, "%s:%zu: %s must be %s", c->source, node->line, key,
                        want);
}

int tr_kube_yaml_get_str(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *map, const char *key,
                         const char **out)
{
    const tr_kube_yaml_node *node = tr_kube_yaml_map_get(map, key);

    *out = NULL;
    if (tr_kube_yaml_is_null(node))
        return TR_OK;
    if (node->kind != TR_KUBE_YAML_SCALAR)
        return tr_kube_yaml_type_error(c, node, key, "a string");
    if (node->text[0] != '\0')
        *out = node->text;
    return TR_OK;
}

/* YAML 1.1 booleans, as go-yaml v2 (which kubectl's sigs.k8s.io/yaml uses) reads them. */
int tr_kube_yaml_get_bool(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *map, const char *key,
                          int *out)
{
    static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES",
                                       "on", "On", "ON", "y", "Y" };
    static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO",
                                      "off", "Off", "OFF", "n", "N" };
    const tr_kube_yaml_node *node = tr_kube_yaml_map_get(map, key);
    size_t i;

    *out = 0;
    if (tr_kube_yaml_is_null(node))
        return TR_OK;
    for (i = 0; node->kind == TR_KUBE_YAML_SCALAR && node->plain &&
                i < sizeof(yes) / sizeof(yes[0]);
         i++) {
        if (strcmp(node->text, yes[i]) == 0) {
            *out = 1;
            return TR_OK;
        }
        if (strcmp(node->text, no[i]) == 0)
            return TR_OK;
    }
    return tr_kube_yaml_type_error(c, node, key, "true or false");
}

int tr_kube_yaml_get_map(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *parent, const char *key,
                         const tr_kube_yaml_node **out)
{
    const tr_kube_yaml_node *node = tr_kube_yaml_map_get(parent, key);

    *out = NULL;
    if (tr_kube_yaml_is_null(node))
        return TR_OK;
    if (node->kind != TR_KUBE_YAML_MAP)
        return tr_kube_yaml_type_error(c, node, key, "a mapping");
    *out = node;
    return TR_OK;
}

/* Duplicate names are an error because client-go refuses them when converting. */
int tr_kube_yaml_find_named(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *root,
                            const char *list_key, const char *body_key, const char *name,
                            const tr_kube_yaml_node **body_out)
{
    const tr_kube_yaml_node *list = tr_kube_yaml_map_get(root, list_key), *entry, *found = NULL;
    const char *entry_name;
    size_t i;
    int rc;

    *body_out = NULL;
    c->kind = NULL; /* list-level errors belong to no entry */
    if (tr_kube_yaml_is_null(list))
        return TR_ENOTFOUND;
    if (list->kind != TR_KUBE_YAML_SEQ)
        return tr_kube_yaml_type_error(c, list, list_key, "a list");
    for (i = 0; i < list->count; i++) {
        entry = list->items[i];
        if (entry->kind != TR_KUBE_YAML_MAP)
            return tr_kube_yaml_type_error(c, entry, list_key, "a list of mappings");
        rc = tr_kube_yaml_get_str(c, entry, "name", &entry_name);
        if (rc != TR_OK)
            return rc;
        if (entry_name == NULL || strcmp(entry_name, name) != 0)
            continue;
        if (found)
            return tr_error_set(c->err, TR_ECONFIG, "%s:%zu: %s: duplicate name \"%s\"",
                                c->source, entry->line, list_key, name);
        found = entry;
    }
    if (found == NULL)
        return TR_ENOTFOUND;
    return tr_kube_yaml_get_map(c, found, body_key, body_out);
}

