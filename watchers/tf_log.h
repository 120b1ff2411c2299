/*
 * tf_log.h - parser for Terraform's machine-readable UI (`terraform init|plan|apply -json`:
 * one JSON object per line) and for `terraform validate -json` (one pretty-printed object).
 *
 * The parser is incremental: bytes go in with any chunking (a file read in blocks, an HTTP
 * body), memory stays bounded whatever the input size, and tr_tf_log_finish() hands back a
 * tr_tf_result: every error diagnostic (capped), the failing resource address and module,
 * the failing provisioner's output, the operation, the Terraform version, and the verdict
 * (failed / succeeded / no verdict).
 *
 * Real logs are messy: CLI warnings arrive on the same stream, CI prefixes lines, logs get
 * cut. Lines that are not JSON objects are skipped and counted; a truncated last line is
 * tolerated (counted); over-long lines are dropped (counted); every kept string is capped.
 *
 * How the operation is decided (the run may be init, plan, apply or validate, or several of
 * them concatenated): the furthest phase the log shows wins, in the order init < plan <
 * apply, because an error belongs to the last phase the run reached.
 *   - validate: a `validate -json` document ("format_version" + "valid");
 *   - apply: any apply_* or provision_* hook, or a change_summary with operation
 *     apply|destroy, or "Apply complete!"/"Destroy complete!" messages;
 *   - plan: planned_change, resource_drift, change_summary with operation plan;
 *   - init: init_output messages, "Initializing ..." / "Terraform has been successfully
 *     initialized!" messages;
 *   - otherwise the caller's hint (a file name or query parameter), else unknown.
 *
 * The facts, fingerprint and failure class built from a result follow
 * docs/incident-facts.md (see tf_facts.h).
 */
#ifndef TR_TF_LOG_H
#define TR_TF_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum tr_tf_operation {
    TR_TF_OP_UNKNOWN = 0,
    TR_TF_OP_INIT,
    TR_TF_OP_VALIDATE,
    TR_TF_OP_PLAN,
    TR_TF_OP_APPLY,
} tr_tf_operation;

typedef enum tr_tf_outcome {
    TR_TF_NO_VERDICT = 0, /* no error, but nothing says the run finished either */
    TR_TF_FAILED,         /* at least one error diagnostic */
    TR_TF_SUCCEEDED,      /* no error and a change_summary/outputs/init or validate success */
} tr_tf_outcome;

/* Zero fields take the defaults in brackets. */
typedef struct tr_tf_log_options {
    size_t max_line_bytes;     /* [1 MiB] a longer line is dropped and counted */
    size_t max_diagnostics;    /* [20] kept; errors displace kept warnings */
    size_t max_output_lines;   /* [40] provisioner output lines kept (the tail) */
    size_t max_text_bytes;     /* [8 KiB] per kept string (summary, detail, snippet, ...) */
    size_t max_document_bytes; /* [4 MiB] buffered for a multi-line validate -json document */
    tr_tf_operation operation_hint; /* used when the log itself does not tell */
} tr_tf_log_options;

typedef struct tr_tf_value {
    char *traversal; /* "var.replicas" */
    char *statement; /* "is 0" */
} tr_tf_value;

/* Strings are owned by the result; any may be NULL when absent. Lines are 0 when unknown. */
typedef struct tr_tf_diagnostic {
    int error;        /* 1 for severity error, 0 for warning */
    char *severity;
    char *summary;
    char *detail;
    char *address;    /* diagnostic.address (newer Terraform) */
    char *filename;   /* relative to the root module */
    int start_line;
    int start_column;
    int end_line;
    int end_column;
    char *snippet_context; /* enclosing block: `resource "x" "y"` */
    char *snippet_code;    /* the source line(s) */
    int snippet_start_line;
    tr_tf_value *values;
    size_t value_count;
} tr_tf_diagnostic;

typedef struct tr_tf_result {
    int outcome;                /* tr_tf_outcome */
    int operation;              /* tr_tf_operation */
    char *terraform_version;    /* "1.11.4" (or OpenTofu's), NULL when no version line */
    char *ui_version;           /* "1.2" */

    tr_tf_diagnostic *diagnostics; /* kept ones, in log order */
    size_t diagnostic_count;
    size_t error_count;            /* every error diagnostic seen, kept or not */
    size_t warning_count;
    size_t diagnostics_dropped;

    char *address;              /* failing resource: first apply_errored, else diagnostic */
    char *module;               /* its module ("module.db"), NULL for the root module */
    char *provisioner;          /* "local-exec" when a provisioner failed */
    char *provisioner_address;
    char **provisioner_output;  /* tail of the failing provisioner's output lines */
    size_t provisioner_output_count;
    size_t provisioner_output_dropped;

    int change_summary_seen;
    long long changes_add, changes_change, changes_remove;

    size_t lines;               /* non-blank lines read */
    size_t messages;            /* lines that were Terraform UI messages */
    size_t skipped_lines;       /* non-JSON or non-object lines */
    size_t oversized_lines;
    int truncated_last_line;    /* the input ended in a line that did not parse */
    int final_message_seen;     /* the log ends like a finished run */
} tr_tf_result;

typedef struct tr_tf_log tr_tf_log;

/* options may be NULL. Caller frees *out with tr_tf_log_free. */
int tr_tf_log_new(tr_tf_log **out, const tr_tf_log_options *options);

/* Feed len bytes (any chunking). Returns 0 or TR_ENOMEM. */
int tr_tf_log_feed(tr_tf_log *log, const char *data, size_t len);

/*
 * Parse what is left (a last line without newline) and hand back the result, owned by the
 * caller (tr_tf_result_free). TR_EPARSE with a message when the input held no Terraform
 * message at all (empty, garbage, plain-text output), or when its UI schema has an unknown
 * major version. The parser can not be fed after this.
 */
int tr_tf_log_finish(tr_tf_log *log, tr_tf_result **out, tr_error *err);

void tr_tf_log_free(tr_tf_log *log);

/* One-shot: new + feed + finish. */
int tr_tf_log_parse(tr_tf_result **out, const char *data, size_t len,
                    const tr_tf_log_options *options, tr_error *err);

void tr_tf_result_free(tr_tf_result *result);

/*
 * 1 when line (one line of a -json log, no newline needed) is a message Terraform prints
 * last in a finished run: the apply or destroy change_summary, outputs, the init success
 * message. tf_dir uses it to process a file without waiting for it to settle.
 */
int tr_tf_line_is_final(const char *line, size_t len);

/* "init", "validate", "plan", "apply", "unknown". */
const char *tr_tf_operation_name(int operation);
/* The operation named (also found inside a file name: "prod-apply-42.json"); else UNKNOWN. */
tr_tf_operation tr_tf_operation_guess(const char *text);

#endif
