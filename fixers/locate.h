/*
 * locate.h - the deterministic GitOps source locator: from a live object to
 * the file, document and lines in the GitOps repository that define it.
 *
 * Four parts, all pure functions or plain filesystem reads (no libuv, no
 * globals, no logging), so they run on the libuv thread pool:
 *   - origin: which Argo CD Application or Flux Kustomization/HelmRelease
 *     owns a live object (its metadata labels and annotations), and where
 *     that owner takes its manifests from (repo URL, path, revision, values
 *     files), read from the owner's JSON;
 *   - index: every YAML document of a checked-out work tree (libyaml) with
 *     its kind/name/namespace and lines, plus the identities that kustomize
 *     overlays give the documents of their bases (namespace, namePrefix,
 *     nameSuffix; nested overlays compose). One index per commit;
 *   - queries: ranked matches for a kind/name/namespace, excerpts with line
 *     numbers for the prompt, the enclosing HCL block of a Terraform
 *     diagnostic, and the Secret/ConfigMap names a namespace defines and
 *     references (names only: a Secret's data is never read into memory by
 *     the index and is masked in every excerpt).
 *
 * Ownership: every struct or string handed out is owned by the caller and
 * freed with the _free/_dispose function named at its declaration. Results
 * of tr_locate_find borrow strings from the index they came from.
 */
#ifndef TR_LOCATE_H
#define TR_LOCATE_H

#include <stddef.h>

#include "error.h"

struct cJSON;

/* ------------------------------------------------------------- origin */

typedef enum tr_locate_tool {
    TR_LOCATE_NONE = 0,
    TR_LOCATE_ARGO,
    TR_LOCATE_FLUX_KUSTOMIZATION,
    TR_LOCATE_FLUX_HELMRELEASE,
} tr_locate_tool;

#define TR_LOCATE_NAME_MAX 256

typedef struct tr_locate_origin {
    tr_locate_tool tool;
    char name[TR_LOCATE_NAME_MAX];      /* Application / Kustomization / HelmRelease */
    char namespace_[TR_LOCATE_NAME_MAX]; /* its namespace; "" = unknown (Argo: use argocd's) */
    int from_annotation; /* Argo: 1 = tracking-id annotation, 0 = instance label */
} tr_locate_origin;

/*
 * Who owns the live object whose metadata, apiVersion and kind are given
 * (api_version/kind may be NULL: then a tracking-id annotation cannot be
 * checked against the object and only its namespace/name are compared).
 * Argo's tracking-id that names another object (a copied resource) is
 * ignored. Always fills *out (tool NONE when nothing matches); returns 0, or
 * TR_EINVAL when metadata is not a JSON object.
 */
int tr_locate_origin_of(tr_locate_origin *out, const struct cJSON *metadata,
                        const char *api_version, const char *kind);

const char *tr_locate_tool_name(tr_locate_tool tool);

/* ------------------------------------------------------------- source */

#define TR_LOCATE_MAX_VALUE_FILES 16
#define TR_LOCATE_MAX_SOURCES 8

/*
 * Where an owner takes its manifests from. value_files are repo-relative
 * when they could be resolved (Argo: against the source path; Flux: already
 * relative to the source root); a multi-source Argo `$ref/...` file that
 * names a source of the same Application is resolved to that source's path
 * and its repo_url is in value_file_repos (NULL = this source's repo).
 */
typedef struct tr_locate_source {
    char *repo_url;  /* NULL when unknown (Flux: until the GitRepository is given) */
    char *path;      /* repo-relative dir (Argo/Flux path) or chart dir; "" = root */
    char *revision;  /* branch, tag or commit; NULL = the default branch */
    char *chart;     /* Helm chart name (Argo helm repo or Flux chart), else NULL */
    char *ref_name;  /* Argo multi-source `ref:` name, else NULL */
    char *value_files[TR_LOCATE_MAX_VALUE_FILES];
    char *value_file_repos[TR_LOCATE_MAX_VALUE_FILES];
    size_t value_file_count;
} tr_locate_source;

typedef struct tr_locate_sources {
    tr_locate_source items[TR_LOCATE_MAX_SOURCES];
    size_t count;
} tr_locate_sources;

/* Frees the strings of every source; the struct itself is the caller's. Accepts NULL. */
void tr_locate_sources_dispose(tr_locate_sources *sources);

/*
 * An Argo CD Application (argoproj.io/v1alpha1) → its spec.source or each of
 * spec.sources[] (capped at TR_LOCATE_MAX_SOURCES). TR_EINVAL with a message
 * when the object has neither. Caller disposes *out.
 */
int tr_locate_source_argo(tr_locate_sources *out, const struct cJSON *application,
                          tr_error *err);

/* The source object a Flux Kustomization or HelmRelease points at. */
typedef struct tr_locate_ref {
    char kind[64];                      /* GitRepository, OCIRepository, HelmRepository, ... */
    char name[TR_LOCATE_NAME_MAX];
    char namespace_[TR_LOCATE_NAME_MAX]; /* defaults to the owner's namespace */
} tr_locate_ref;

/*
 * The sourceRef of a Flux Kustomization (spec.sourceRef) or HelmRelease
 * (spec.chart.spec.sourceRef, else spec.chartRef): what to read next.
 * TR_ENOTFOUND when there is none.
 */
int tr_locate_flux_source_ref(tr_locate_ref *out, const struct cJSON *owner, tr_error *err);

/*
 * A Flux Kustomization (kustomize.toolkit.fluxcd.io/v1) or HelmRelease
 * (helm.toolkit.fluxcd.io/v2) plus, when its source is a GitRepository
 * (source.toolkit.fluxcd.io/v1), that object (may be NULL) → one source.
 * Revision: spec.ref.commit, else tag, else semver, else name, else branch.
 * Caller disposes *out.
 */
int tr_locate_source_flux(tr_locate_sources *out, const struct cJSON *owner,
                          const struct cJSON *git_repository, tr_error *err);

/*
 * 1 when two Git URLs name the same repository: https://host/org/repo(.git),
 * git@host:org/repo.git, ssh://git@host[:port]/org/repo, file:///p and /p.
 * Host compared case-insensitively; user, port, a trailing ".git" and
 * slashes ignored; the path compared exactly. 0 otherwise or for NULL.
 */
int tr_locate_repo_matches(const char *url_a, const char *url_b);

/* ------------------------------------------------------------- index */

typedef struct tr_locate_limits {
    size_t max_files;      /* YAML files read; default 5000 */
    size_t max_file_bytes; /* bigger files are skipped (and listed); default 1 MiB */
    size_t max_depth;      /* directory depth below root; default 24 */
    size_t max_docs;       /* documents kept; default 50000 */
} tr_locate_limits;

/* One YAML document. Strings are owned by the index. */
typedef struct tr_locate_doc {
    const char *file;        /* repo-relative, '/'-separated */
    int doc_index;           /* 0-based position in the file */
    int start_line;          /* 1-based, first line of content */
    int end_line;            /* 1-based, last line of content */
    const char *api_version; /* NULL when absent */
    const char *kind;
    const char *name;
    const char *namespace_;
} tr_locate_doc;

typedef struct tr_locate_index tr_locate_index;

/*
 * Scan the work tree at root (checked out at commit, a hex string kept
 * as-is): every *.yaml / *.yml file except under .git and Helm chart
 * templates/, no symlink followed, within limits (NULL = defaults). A file
 * that does not parse is listed in the index's problems as
 * "FILE:LINE:COLUMN: PROBLEM" and the other files are still indexed.
 * Returns 0 or TR_EIO (root unreadable) / TR_ENOMEM. Caller frees *out with
 * tr_locate_index_free.
 */
int tr_locate_index_build(tr_locate_index **out, const char *root, const char *commit,
                          const tr_locate_limits *limits, tr_error *err);

/*
 * An index of one in-memory file named file (repo-relative), for tests and
 * fuzzing: same parser, no filesystem. Caller frees with tr_locate_index_free.
 */
int tr_locate_index_from_buffer(tr_locate_index **out, const char *file, const char *data,
                                size_t len, tr_error *err);

void tr_locate_index_free(tr_locate_index *index);

/* The commit the index was built at (borrowed; "" for a buffer index). */
const char *tr_locate_index_commit(const tr_locate_index *index);

size_t tr_locate_index_doc_count(const tr_locate_index *index);
/* Borrowed from the index; NULL when i is out of range. */
const tr_locate_doc *tr_locate_index_doc(const tr_locate_index *index, size_t i);

/* Files that did not parse or were skipped by a cap: "FILE:LINE:COL: ..." (borrowed). */
size_t tr_locate_index_problem_count(const tr_locate_index *index);
const char *tr_locate_index_problem(const tr_locate_index *index, size_t i);

/* ------------------------------------------------------------- find */

typedef struct tr_locate_match {
    const char *file;             /* borrowed from the index */
    int doc_index;
    int start_line;
    int end_line;
    const char *via_overlay_path; /* the kustomization file that renamed it, or NULL */
    int score;                    /* TR_LOCATE_SCORE_* */
} tr_locate_match;

#define TR_LOCATE_SCORE_EXACT 3     /* kind + name + namespace */
#define TR_LOCATE_SCORE_DEFAULT_NS 2 /* kind + name, no namespace in the manifest */
#define TR_LOCATE_SCORE_NAME 1      /* name only (other kind or namespace) */

/*
 * Up to max matches for kind/name/namespace (kind and namespace may be
 * NULL), best first; ties by file then document. When subpath is not NULL
 * (the Argo/Flux path, repo-relative), only documents under it or pulled in
 * by a kustomization under it count. Returns the number of matches written.
 */
size_t tr_locate_find(const tr_locate_index *index, const char *subpath, const char *kind,
                      const char *name, const char *namespace_, tr_locate_match *matches,
                      size_t max);

/* ------------------------------------------------------------- rendering */

/*
 * Lines start..end of root/file (repo-relative; ".." or a symlink leading
 * out of root is refused) with context_lines either side, each as
 * "%4d | text\n", at most max_bytes (cut at a line end, ending with a
 * "... (truncated)" line). Values under data/stringData of a Secret are
 * replaced by "[secret value redacted]". Caller frees *out with tr_free.
 */
int tr_locate_excerpt(char **out, const char *root, const char *file, int start_line,
                      int end_line, int context_lines, size_t max_bytes, tr_error *err);

/* The located Terraform block. Caller disposes with tr_locate_tf_dispose. */
typedef struct tr_locate_tf {
    char *path;      /* repo-relative file */
    int block_start; /* 1-based lines of the enclosing top-level block (or window) */
    int block_end;
    char *excerpt;   /* numbered lines as tr_locate_excerpt writes them */
} tr_locate_tf;

void tr_locate_tf_dispose(tr_locate_tf *tf);

/*
 * A Terraform diagnostic's range (filename relative to the root module dir,
 * which is relative to root) → the repo-relative file and the enclosing
 * top-level HCL block, found by brace matching that skips strings,
 * heredocs and comments. Windows longer than max_lines (0 = 80) are cut
 * around the diagnostic. TR_EINVAL when the path escapes the repo,
 * TR_ENOTFOUND when the file does not exist.
 */
int tr_locate_terraform(tr_locate_tf *out, const char *root, const char *root_module_path,
                        const char *diag_filename, int start_line, int end_line,
                        int max_lines, size_t max_bytes, tr_error *err);

/* ------------------------------------------------------------- config refs */

typedef struct tr_locate_name {
    char *name;
    char *where; /* "FILE:LINE Kind/name" (repo) or "Kind/name" (live objects) */
} tr_locate_name;

#define TR_LOCATE_MAX_NAMES 256

typedef struct tr_locate_names {
    tr_locate_name items[TR_LOCATE_MAX_NAMES];
    size_t count; /* distinct (name, where) pairs, capped */
    int truncated;
} tr_locate_names;

void tr_locate_names_dispose(tr_locate_names *names);

/*
 * For a namespace and kind ("Secret" or "ConfigMap"): the names of such
 * objects the repo defines there (kind + name only) and the names the
 * workloads in that namespace reference (env valueFrom, envFrom, volumes,
 * projected sources, imagePullSecrets). Documents without a namespace
 * count as the namespace asked for. Caller disposes both.
 */
int tr_locate_config_refs(tr_locate_names *defined, tr_locate_names *referenced,
                          const tr_locate_index *index, const char *namespace_,
                          const char *kind, tr_error *err);

/*
 * The same references over live objects: items is a JSON array of objects
 * (Pods, Deployments, ... or a List's items), each searched for references
 * of kind. Appends to *referenced (zero it first).
 */
int tr_locate_config_refs_json(tr_locate_names *referenced, const struct cJSON *items,
                               const char *kind, tr_error *err);

#endif
