/*
 * patch.h - intake and validation of an LLM's patch before the fixer commits it.
 *
 * An analysis (or a chat turn) carries a unified diff written by a model. Before anything is
 * committed or pushed, tr_patch_check() takes that text in, makes it a diff libgit2 accepts,
 * applies it in memory to a commit of a local repository and checks the result:
 *
 *   intake   markdown fences, prose before and after, CRLF and a missing final newline are
 *            dropped; `diff --git` headers are added where only `--- a/x` / `+++ b/x` were
 *            given; hunk counts are recomputed from the hunk bodies (models miscount).
 *   refusals binary patches, deletions of whole files, renames, copies, mode changes, new files
 *            that are not plain 100644 files, changes to symlinks or submodules, NUL bytes,
 *            quoted or odd path names, absolute paths, `.` / `..` components, any `.git`
 *            component, paths outside allowed_paths, more than max_patch_lines changed lines,
 *            and added lines holding a redaction placeholder (`[REDACTED`, `<redacted:`).
 *   paths    allowed_paths are path prefixes matched by whole components (`apps` covers
 *            `apps/x.yaml`, not `apps2/`). An empty list means the whole repository EXCEPT
 *            paths with a component starting with `.git` (`.github/workflows/`, `.gitlab-ci.yml`,
 *            `.gitmodules`, `.gitattributes`): CI definitions run with the repository's
 *            secrets, so a model never edits them unless an allowed_paths entry names that
 *            component itself (`.github/workflows`). A `.git` component is refused always.
 *   anchoring a hunk applies where its header says when its pre-image (context and removed
 *            lines) is there byte for byte. Otherwise the pre-image is searched in the whole
 *            file, exactly, then ignoring trailing whitespace; a unique match re-anchors the
 *            hunk (its context then taken from the file), several matches or none refuse the
 *            patch naming the file, the hunk and the reason. This runs BEFORE libgit2 because
 *            libgit2 itself would apply a hunk at the nearest match, ambiguous or not.
 *   checks   every changed YAML file parses (all documents) and defines the same multiset of
 *            kind/metadata.name as before; changed .tf files pass `terraform fmt -check` (when
 *            the file was formatted before) and `terraform validate` in a temporary copy of
 *            their directory after an offline `terraform init -backend=false` (skipped with the
 *            reason when terraform is absent or init can not work offline); an optional hook
 *            validates changed YAML against the cluster (the caller supplies it).
 *
 * Lines the patch does not change are never rewritten: libgit2 copies them from the blob.
 * Everything here blocks (libgit2, terraform): call it from the libuv thread pool. The module
 * owns no global state; results belong to the caller (tr_patch_result_free).
 */
#ifndef TR_PATCH_H
#define TR_PATCH_H

#include <stddef.h>

#include "buf.h"
#include "error.h"

#define TR_PATCH_DEFAULT_MAX_LINES 200
#define TR_PATCH_DEFAULT_MAX_INPUT_BYTES ((size_t)1024 * 1024)
#define TR_PATCH_DEFAULT_TERRAFORM_TIMEOUT_MS 30000

typedef enum tr_patch_check_status {
    TR_PATCH_CHECK_PASSED = 0,
    TR_PATCH_CHECK_FAILED = 1,
    TR_PATCH_CHECK_SKIPPED = 2,
} tr_patch_check_status;

/*
 * Hook validating one changed YAML file (e.g. against the cluster's /openapi/v2). Called on the
 * calling (thread-pool) thread with the file's new content. Append a human explanation to
 * detail (capped buffer) and return the status; the check is recorded as "schema PATH".
 */
typedef tr_patch_check_status (*tr_patch_yaml_hook)(void *ctx, const char *path,
                                                    const char *content, size_t len,
                                                    tr_buf *detail);

typedef struct tr_patch_options {
    const char *const *allowed_paths; /* borrowed; see "paths" above */
    size_t allowed_path_count;
    size_t max_patch_lines;           /* added + removed lines; 0 = TR_PATCH_DEFAULT_MAX_LINES */
    size_t max_input_bytes;           /* patch text as received; 0 = default (1 MiB) */
    const char *terraform_bin;        /* NULL = "terraform" looked up on PATH */
    int terraform_timeout_ms;         /* per terraform run; 0 = default (30 s) */
    int terraform_validate;           /* 1 = run init + validate (default), 0 = fmt only */
    tr_patch_yaml_hook yaml_hook;     /* NULL = no schema check */
    void *yaml_hook_ctx;
} tr_patch_options;

typedef struct tr_patch_check_item {
    char *name;                       /* "apply", "paths", "yaml apps/web.yaml", ... */
    tr_patch_check_status status;
    char *text;                       /* one line or a few: goes into the PR body */
} tr_patch_check_item;

typedef struct tr_patch_file {
    char *path;                       /* repository-relative */
    int is_new;
    char *content;                    /* new full content, NUL-terminated for convenience */
    size_t content_len;               /* the content may itself hold NUL bytes */
    size_t lines_added;
    size_t lines_removed;
} tr_patch_file;

typedef struct tr_patch_result {
    int ok;                           /* 1 = applied and every check passed or was skipped */
    tr_patch_check_item *checks;
    size_t check_count;
    tr_patch_file *files;
    size_t file_count;
    size_t lines_added;
    size_t lines_removed;
    size_t hunks_reanchored;
    char *patch;                      /* normalised patch, as applied; NUL-terminated */
    size_t patch_len;
    char tree_id[41];                 /* the new tree's oid (hex), written to the repo's odb */
    char commit_id[41];               /* the commit the patch was applied to */
} tr_patch_result;

/* Defaults: no allowed_paths (see above), 200 lines, 1 MiB, terraform on PATH, 30 s, validate. */
void tr_patch_options_init(tr_patch_options *opts);

/*
 * Intake only (no repository): the normalised patch text of an LLM's answer, after every
 * refusal that does not need the repository (paths, binary, size, placeholders, shape).
 * *out is NUL-terminated; caller frees with tr_free. TR_EINVAL with err naming the line or file
 * when refused, TR_ETOOBIG over max_input_bytes, TR_ENOMEM.
 */
int tr_patch_normalize(char **out, size_t *out_len, const char *text, size_t len,
                       const tr_patch_options *opts, tr_error *err);

/*
 * Take patch text in, apply it to `commit` (any revspec resolving to a commit: a hex oid, or
 * "refs/heads/main") of the repository at repo_path, and run the checks. opts may be NULL
 * (defaults).
 *
 * Returns 0 with *out set when the patch applied and every check passed or was skipped.
 * Returns TR_EINVAL when the patch was refused: err->message says which file, which hunk and
 * why, in words fit to send back to the model (tr_patch_repair_prompt). When the patch applied
 * but a check failed, *out is ALSO set (ok = 0; its checks are for the incident). TR_ETOOBIG
 * (input over max_input_bytes), TR_ENOTFOUND (commit or repository missing), TR_EIO (libgit2),
 * TR_ENOMEM leave *out NULL. Caller frees *out with tr_patch_result_free.
 */
int tr_patch_check(tr_patch_result **out, const char *repo_path, const char *commit,
                   const char *text, size_t len, const tr_patch_options *opts, tr_error *err);

/* Accepts NULL. */
void tr_patch_result_free(tr_patch_result *res);

/*
 * The instruction asking the model once to repair its patch: the exact refusal (err's message)
 * and the patch as it was received. Caller frees with tr_free; NULL when out of memory.
 */
char *tr_patch_repair_prompt(const tr_error *err, const char *patch, size_t patch_len);

/* "passed" | "failed" | "skipped". */
const char *tr_patch_check_status_name(tr_patch_check_status status);

#endif
