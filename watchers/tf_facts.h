/*
 * tf_facts.h - what a parsed Terraform run (tf_log.h) becomes in the incident store, per
 * docs/incident-facts.md: the failure class, the incident object (kind and name), the
 * fingerprint, the facts JSON, and a title and message for people.
 *
 * Pure functions of a tr_tf_result and the run's metadata; nothing here touches the store
 * (tf_ingest.h does).
 */
#ifndef TR_TF_FACTS_H
#define TR_TF_FACTS_H

#include "tf_log.h"

/* Where a run came from. All borrowed; any may be NULL. */
typedef struct tr_tf_meta {
    const char *workspace;  /* NULL or "" → "default" */
    const char *repo_path;  /* repository path of the root module */
    const char *commit;
    const char *run_id;
    const char *run_url;
    const char *source_ref; /* where the log is: a file path, "http", a run URL */
} tr_tf_meta;

/* Fingerprint pieces are cut to this many bytes (summaries can be paragraphs). */
#define TR_TF_FINGERPRINT_PART_MAX 256

/* The workspace to use: meta's, else "default". Borrowed. */
const char *tr_tf_workspace(const tr_tf_meta *meta);

/* The first kept error diagnostic, or NULL. Borrowed from result. */
const tr_tf_diagnostic *tr_tf_first_error(const tr_tf_result *result);

/*
 * "TerraformInitFailed", "TerraformValidateFailed", "TerraformPlanFailed" or
 * "TerraformApplyFailed" for a failed run; NULL otherwise. An unknown operation counts as
 * plan: a log that shows neither init messages nor apply hooks failed before any change was
 * made, while loading and evaluating the configuration, which is the plan phase of a run.
 */
const char *tr_tf_failure_class(const tr_tf_result *result);

/*
 * The incident object: TerraformResource + address when a resource is known, else
 * TerraformConfig + the first error's file, else TerraformRun + run id (or workspace).
 * Both borrowed from result or meta.
 */
void tr_tf_object(const tr_tf_result *result, const tr_tf_meta *meta, const char **kind,
                  const char **name);

/* tf/<workspace>/<address or file>/<first error summary, first line>. Caller frees. */
int tr_tf_fingerprint(char **out, const tr_tf_result *result, const tr_tf_meta *meta);

/* The facts object of docs/incident-facts.md as JSON text. Caller frees with tr_free. */
int tr_tf_facts_json(char **out, const tr_tf_result *result, const tr_tf_meta *meta);

/* "terraform apply failed: Invalid value for variable (main.tf:1)". Caller frees. */
int tr_tf_title(char **out, const tr_tf_result *result);

/* First error's summary and detail, as one text for the incident message. Caller frees. */
int tr_tf_message(char **out, const tr_tf_result *result);

#endif
