/*
 * forge_reply.h - reading forge replies (a PR, a list, an error message, the
 * "already exists" answer) and the helpers the forge request builders share.
 * Pure functions, no I/O; the fuzz target's surface. Types are in forge.h.
 */
#ifndef TR_FORGE_REPLY_H
#define TR_FORGE_REPLY_H

#include "forge.h"

#define TR_FORGE_MESSAGE_MAX 300

/* The vtable of a kind; NULL for TR_CONFIG_FORGE_NONE or an unknown kind. */
const tr_forge_vtable *tr_forge_vtable_of(tr_config_forge_kind kind);

/* ----------------------------------------------------------- reply parsers
 * Pure functions on a reply body (also the fuzz target's surface). A missing
 * or mistyped field is TR_EPARSE naming the field. */

/* One PR object. out is cleared first; the caller clears it after. */
int tr_forge_parse_pr(tr_config_forge_kind kind, const char *body, size_t len, tr_forge_pr *out,
                      tr_error *err);

/*
 * A JSON array of PRs: the one whose head is head (NULL = any), an open one
 * first, else the first listed. TR_ENOTFOUND when none matches.
 */
int tr_forge_parse_pr_list(tr_config_forge_kind kind, const char *body, size_t len,
                           const char *head, tr_forge_pr *out, tr_error *err);

/* Whether a failed create (status, body) means "a PR for this branch already exists". */
bool tr_forge_reply_is_duplicate(tr_config_forge_kind kind, long status, const char *body,
                                 size_t len);

/*
 * The forge's own words from an error body ("message" as a string or array,
 * GitHub's errors[].message, "error_description"/"error"), printable ASCII,
 * cut to fit size; "" when there are none.
 */
void tr_forge_reply_message(const char *body, size_t len, char *out, size_t size);

/* Append s percent-encoded (everything but RFC 3986 unreserved characters). */
int tr_forge_put_escaped(tr_buf *b, const char *s);

/* Set out->body to the JSON of obj, which is consumed (deleted) either way. */
int tr_forge_call_json(tr_forge_call *out, cJSON *obj);

/* A JSON array of strings; NULL when out of memory. */
cJSON *tr_forge_json_strings(const char *const *items, size_t count);

/*
 * Copy string field name of obj into *out (tr_strdup). A JSON null or a
 * missing field gives "" when optional, else TR_EPARSE naming the field
 * with what ("GitHub pull request").
 */
int tr_forge_take_string(const cJSON *obj, const char *name, bool required, const char *what,
                         char **out, tr_error *err);

/* A required positive integer field. */
int tr_forge_take_number(const cJSON *obj, const char *name, const char *what, int64_t *out,
                         tr_error *err);

/* Append "<api_url>/repos/<owner>/<name>" (GitHub and Gitea share this layout). */
int tr_forge_put_repos_url(tr_buf *url, const tr_forge_site *site);

/* Append items joined with "," (GitLab's label lists). */
int tr_forge_put_joined(tr_buf *b, const char *const *items, size_t count);

/* How a forge spells a PR: the fields and states parse_pr reads. */
typedef struct tr_forge_pr_shape {
    const char *what;                /* "GitHub pull request", for messages */
    const char *number_field;        /* "number" (GitHub, Gitea), "iid" (GitLab) */
    const char *url_field;           /* "html_url", "web_url" */
    const char *branch_field;        /* "source_branch"; NULL = head.ref */
    const char *const *open_states;  /* NULL-terminated: "open"; GitLab "opened", "locked" */
    const char *merged_state;        /* GitLab "merged"; NULL = merged / merged_at decide */
    const char *closed_state;        /* "closed" */
} tr_forge_pr_shape;

/*
 * Read obj as a PR of that shape into out (owned strings; the caller clears
 * it). number, state and the URL are required; the rest may be absent.
 */
int tr_forge_parse_pr_shape(const cJSON *obj, const tr_forge_pr_shape *shape, tr_forge_pr *out,
                            tr_error *err);

#endif
