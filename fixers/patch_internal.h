/*
 * patch_internal.h - private to fixers/patch*.c (the public surface is patch.h): the parsed
 * form of a patch shared by the intake (patch_parse.c), the anchoring and apply (patch.c) and
 * the post-apply checks (patch_check.c).
 *
 * A tr_patch_parsed owns `text` (the input with CRs dropped) and every array; line texts point
 * into `text`, or, after anchoring, into the base blob's content, which the caller keeps alive
 * until the patch is serialised.
 */
#ifndef TR_PATCH_INTERNAL_H
#define TR_PATCH_INTERNAL_H

#include <stddef.h>

#include "buf.h"
#include "error.h"
#include "patch.h"

typedef struct tr_patch_line {
    char tag;           /* ' ', '+' or '-' */
    int no_eol;         /* followed by "\ No newline at end of file" */
    int add_cr;         /* serialise "\r" before the newline (CRLF file, re-anchored hunk) */
    const char *text;   /* without the tag and the newline */
    size_t len;
} tr_patch_line;

typedef struct tr_patch_hunk {
    size_t old_start;   /* as in the header: 1-based, or the line after which (count 0) */
    int has_start;      /* 0 when the header had no usable numbers ("@@ @@") */
    size_t input_line;  /* line of the header in the received text, for errors */
    tr_patch_line *lines;
    size_t count;
    size_t cap;
} tr_patch_hunk;

typedef struct tr_patch_filediff {
    char *path;         /* old and new path: renames are refused */
    int is_new;
    tr_patch_hunk *hunks;
    size_t hunk_count;
    size_t hunk_cap;
    size_t added;
    size_t removed;
} tr_patch_filediff;

typedef struct tr_patch_parsed {
    char *text;
    tr_patch_filediff *files;
    size_t file_count;
    size_t file_cap;
    size_t added;
    size_t removed;
} tr_patch_parsed;

/* Intake: everything short of the repository. On failure the struct is disposed. */
int tr_patch_parse(tr_patch_parsed *out, const char *text, size_t len,
                   const tr_patch_options *opts, tr_error *err);
void tr_patch_parsed_dispose(tr_patch_parsed *p);
/* The git-style diff of p (counts recomputed) appended to out. */
int tr_patch_serialize(tr_buf *out, const tr_patch_parsed *p);
/* Context plus removed lines of a hunk, and added lines. */
size_t tr_patch_hunk_old_len(const tr_patch_hunk *h);
size_t tr_patch_hunk_new_len(const tr_patch_hunk *h);

/* Post-apply checks: append items to res (patch_check.c). */
int tr_patch_add_check(tr_patch_result *res, const char *name, tr_patch_check_status status,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* YAML file: parses, kind/name multiset unchanged. old may be NULL (new file). */
int tr_patch_check_yaml(tr_patch_result *res, const char *path, const char *old_data,
                        size_t old_len, const char *new_data, size_t new_len);
/* .tf file: terraform fmt -check on old and new content. */
int tr_patch_check_tf_fmt(tr_patch_result *res, const tr_patch_options *opts, const char *path,
                          const char *old_data, size_t old_len, const char *new_data,
                          size_t new_len);
/* terraform init -backend=false + validate on a directory already written out. */
int tr_patch_check_tf_validate(tr_patch_result *res, const tr_patch_options *opts,
                               const char *label, const char *dir);

/* rm -r of a temporary directory (no symlink is followed). */
void tr_patch_remove_tree(const char *dir);

#endif
