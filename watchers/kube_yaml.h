/*
 * kube_yaml.h - private to watchers/kubeconfig.c and watchers/kube_exec.c
 * (the public surface of both is kubeconfig.h): the small bounded YAML node
 * tree a kubeconfig is read into, the typed lookups that report a wrong
 * entry as `SOURCE:LINE: cluster "x": KEY must be ...`, and the two file and
 * token helpers that kubeconfig.c owns and kube_exec.c also needs.
 *
 * kube_yaml.c owns the tree: tr_kube_yaml_parse() hands back a tree the
 * caller frees with tr_kube_yaml_free(); every lookup returns pointers
 * borrowed from that tree. Nothing here logs.
 */
#ifndef TR_KUBE_YAML_H
#define TR_KUBE_YAML_H

#include <stddef.h>

#include "error.h"

typedef enum tr_kube_yaml_kind {
    TR_KUBE_YAML_SCALAR,
    TR_KUBE_YAML_SEQ,
    TR_KUBE_YAML_MAP,
} tr_kube_yaml_kind;

typedef struct tr_kube_yaml_node {
    tr_kube_yaml_kind kind;
    int plain;                        /* unquoted scalar: may mean null or a boolean */
    size_t line;                      /* 1-based */
    char *text;                       /* scalars only */
    struct tr_kube_yaml_node **items; /* sequence items; maps: key, value, key, value... */
    size_t count;
    size_t cap;
} tr_kube_yaml_node;

/*
 * What is being read, for error messages: `SOURCE:LINE: cluster "x": ...`.
 * kind and name name the entry being interpreted (NULL outside one);
 * base_dir is where relative paths of the kubeconfig resolve.
 */
typedef struct tr_kube_yaml_ctx {
    const char *source;
    const char *base_dir;
    tr_error *err;
    const char *kind;
    const char *name;
} tr_kube_yaml_ctx;

/*
 * Parse the first YAML document of data into *out (NULL for an empty
 * stream). Aliases, NUL characters, non-scalar or duplicate mapping keys
 * and inputs over the depth, node and keys-per-mapping caps are refused
 * (TR_EPARSE or TR_ETOOBIG, with the line). Caller frees *out with
 * tr_kube_yaml_free.
 */
int tr_kube_yaml_parse(tr_kube_yaml_ctx *c, const char *data, size_t len,
                       tr_kube_yaml_node **out);

/* Accepts NULL. */
void tr_kube_yaml_free(tr_kube_yaml_node *node);

/* 1 for an absent node (NULL) and for a plain null scalar ("", ~, null). */
int tr_kube_yaml_is_null(const tr_kube_yaml_node *node);

/* The value of key in map, or NULL when absent or map is not a mapping. */
const tr_kube_yaml_node *tr_kube_yaml_map_get(const tr_kube_yaml_node *map, const char *key);

/* Sets `key must be WANT` (with the line and the entry) and returns TR_ECONFIG. */
int tr_kube_yaml_type_error(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *node, const char *key,
                            const char *want);

/* A borrowed string, or NULL when the key is absent, null or "". */
int tr_kube_yaml_get_str(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *map, const char *key,
                         const char **out);

/* A YAML 1.1 boolean; absent or null is 0. */
int tr_kube_yaml_get_bool(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *map, const char *key,
                          int *out);

/* A mapping body that may be absent or null (*out = NULL, treated as empty). */
int tr_kube_yaml_get_map(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *parent, const char *key,
                         const tr_kube_yaml_node **out);

/*
 * Find `name` in the list root[list_key] of {name, body_key: {...}} entries
 * and borrow its body. TR_ENOTFOUND without a message when absent: the
 * caller knows what to say. Duplicate names are an error.
 */
int tr_kube_yaml_find_named(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *root,
                            const char *list_key, const char *body_key, const char *name,
                            const tr_kube_yaml_node **body_out);

/*
 * Defined in kubeconfig.c. Read a regular file of at most cap bytes into
 * *out (NUL-terminated, length in *out_len); caller frees *out with
 * tr_free. TR_ENOTFOUND, TR_EIO, TR_ETOOBIG or TR_ENOMEM, naming path.
 */
int tr_kubeconfig_read_file(const char *path, size_t cap, char **out, size_t *out_len,
                            tr_error *err);

/* Defined in kubeconfig.c. 1 when token may go into an HTTP header as is. */
int tr_kubeconfig_token_is_clean(const char *token);

#endif
