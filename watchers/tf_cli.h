/*
 * tf_cli.h - `triaged terraform FILE|-`: one-shot analysis of a `terraform ... -json` log,
 * printed for a person (no daemon, no store): the operation, the Terraform version, each
 * error diagnostic with file:line and the quoted source, the failing resource, the tail of
 * the failing provisioner's output, and the incident it would become.
 */
#ifndef TR_TF_CLI_H
#define TR_TF_CLI_H

#include <stdio.h>

#include "tf_log.h"

/*
 * Analyse the log at path ("-" = stdin) and print the report on out; problems go to stderr.
 * Returns the exit status: 0 when the log was analysed (whether the run failed or not:
 * finding the failure is the command succeeding), 1 when memory ran out, 2 when the file
 * can not be read or holds no Terraform -json message (the wrong input: a usage error).
 */
int tr_tf_cli_run(const char *path_or_dash, FILE *out);

/* The report of tr_tf_cli_run for a parsed result (source names the log in the header). */
void tr_tf_cli_print(FILE *out, const tr_tf_result *res, const char *source);

#endif
