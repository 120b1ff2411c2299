/*
 * locate_internal.h - private to fixers/locate_*.c (the public surface is
 * locate.h): the index's layout, shared by the builder (locate_index.c),
 * the query and kustomize code (locate_find.c) and the config reference
 * code (locate_refs.c). The index owns every string reachable from it.
 */
#ifndef TR_LOCATE_INTERNAL_H
#define TR_LOCATE_INTERNAL_H

#include <stddef.h>

#include "locate.h"

struct cJSON;
struct tr_buf;

#define TR_LOCATE_DOC_REFS_MAX 64

typedef struct tr_locate_doc_rec {
    tr_locate_doc pub;     /* strings below are owned through these pointers */
    /* Secret / ConfigMap names this document references: "S<name>" or "C<name>". */
    char **refs;
    size_t ref_count;
    int ref_line; /* line of the document's kind, for "where" */
} tr_locate_doc_rec;

typedef struct tr_locate_kust {
    char *dir;  /* repo-relative directory ("" for the root) */
    char *file; /* the kustomization file itself */
    char *namespace_, *name_prefix, *name_suffix;
    char **resources; /* resources, bases and components as written */
    size_t resource_count;
} tr_locate_kust;

/* A document as a kustomization (and the overlays above it) renders it. */
typedef struct tr_locate_view {
    size_t doc;
    size_t kust;    /* the outermost kustomization of the chain */
    char *name;     /* prefix + name + suffix */
    const char *ns; /* effective namespace, borrowed; NULL = unset */
} tr_locate_view;

struct tr_locate_index {
    char *commit;
    tr_locate_doc_rec *docs;
    size_t doc_count, doc_cap;
    tr_locate_kust *kusts;
    size_t kust_count, kust_cap;
    tr_locate_view *views;
    size_t view_count, view_cap;
    char **problems;
    size_t problem_count, problem_cap;
    tr_locate_limits limits;
};

/* Grow *items (of size elem) so that one more fits; 0 or TR_ENOMEM. */
int tr_locate_grow(void **items, size_t *cap, size_t count, size_t elem);

/* Record "FILE:LINE:COL: message" (line/col 0 = omitted); 0 or TR_ENOMEM. Capped. */
int tr_locate_problem(tr_locate_index *index, const char *file, size_t line, size_t col,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Compute index->views from docs and kusts (after every file is read). */
int tr_locate_views_build(tr_locate_index *index);

/*
 * Add to *refs ("S"/"C"-prefixed names, at most max, no duplicates) the
 * Secret and ConfigMap names obj references anywhere below it.
 */
int tr_locate_refs_collect(const struct cJSON *obj, char **refs, size_t *count, size_t max);

/*
 * dir + "/" + rel with "." and ".." folded into out ('/'-separated, no
 * leading or trailing slash). Returns 0, or -1 when the result leaves the
 * repository (too many "..") or is too long.
 */
int tr_locate_normalize(struct tr_buf *out, const char *dir, const char *rel);

/* Read a regular file (symlinks refused) of at most max bytes; caller frees *out. */
int tr_locate_read_file(const char *path, size_t max, char **out, size_t *len);

/* 1 when a and b are equal strings or both NULL/empty. */
int tr_locate_str_eq(const char *a, const char *b);

/* 1 when path is dir itself or below it ('/'-separated; dir "" is the root). */
int tr_locate_path_under(const char *path, const char *dir);

#endif
