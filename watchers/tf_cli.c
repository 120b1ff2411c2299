#include "tf_cli.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "tf_facts.h"

#define CHUNK_BYTES 65536

/* Print text with every line indented, so multi-line details stay readable. */
static void print_indented(FILE *out, const char *indent, const char *text)
{
    const char *p = text;

    while (p && *p) {
        size_t len = strcspn(p, "\n");
        fprintf(out, "%s%.*s\n", indent, (int)len, p);
        p += len;
        if (*p == '\n')
            p++;
    }
}

static void print_diagnostic(FILE *out, const tr_tf_diagnostic *d)
{
    size_t i;

    fprintf(out, "\n%s: %s\n", d->error ? "Error" : "Warning", d->summary ? d->summary : "");
    if (d->filename && d->start_line > 0) {
        fprintf(out, "  on %s line %d", d->filename, d->start_line);
        if (d->snippet_context)
            fprintf(out, ", in %s", d->snippet_context);
        fprintf(out, ":\n");
    }
    if (d->snippet_code) {
        int line = d->snippet_start_line > 0 ? d->snippet_start_line : d->start_line;
        const char *p = d->snippet_code;
        while (*p) {
            size_t len = strcspn(p, "\n");
            fprintf(out, "  %4d: %.*s\n", line++, (int)len, p);
            p += len;
            if (*p == '\n')
                p++;
        }
    }
    for (i = 0; i < d->value_count; i++)
        fprintf(out, "    | %s %s\n", d->values[i].traversal ? d->values[i].traversal : "",
                d->values[i].statement ? d->values[i].statement : "");
    if (d->address)
        fprintf(out, "  resource: %s\n", d->address);
    if (d->detail && *d->detail) {
        fputc('\n', out);
        print_indented(out, "  ", d->detail);
    }
}

void tr_tf_cli_print(FILE *out, const tr_tf_result *res, const char *source)
{
    const char *cls = tr_tf_failure_class(res);
    const char *verdict = res->outcome == TR_TF_FAILED      ? "FAILED"
                          : res->outcome == TR_TF_SUCCEEDED ? "succeeded"
                                                            : "no failure found";
    tr_tf_meta meta = {.source_ref = source};
    char *fingerprint = NULL;
    size_t i;

    fprintf(out, "%s: terraform %s %s (Terraform %s)\n", source,
            tr_tf_operation_name(res->operation), verdict,
            res->terraform_version ? res->terraform_version : "version unknown");
    fprintf(out, "  %zu error(s), %zu warning(s)", res->error_count, res->warning_count);
    if (res->change_summary_seen)
        fprintf(out, "; changes: %lld to add, %lld to change, %lld to destroy",
                res->changes_add, res->changes_change, res->changes_remove);
    fputc('\n', out);
    if (res->skipped_lines || res->oversized_lines || res->truncated_last_line)
        fprintf(out, "  (%zu non-JSON line(s) skipped, %zu over-long line(s) dropped%s)\n",
                res->skipped_lines, res->oversized_lines,
                res->truncated_last_line ? ", last line cut short" : "");
    if (res->address)
        fprintf(out, "Failing resource: %s%s%s\n", res->address,
                res->module ? " in " : "", res->module ? res->module : "");
    for (i = 0; i < res->diagnostic_count; i++)
        print_diagnostic(out, &res->diagnostics[i]);
    if (res->diagnostics_dropped)
        fprintf(out, "\n(%zu more diagnostic(s) not shown)\n", res->diagnostics_dropped);
    if (res->provisioner_output_count > 0) {
        fprintf(out, "\nProvisioner %s output of %s (last %zu line(s)):\n",
                res->provisioner ? res->provisioner : "",
                res->provisioner_address ? res->provisioner_address : "the run",
                res->provisioner_output_count);
        for (i = 0; i < res->provisioner_output_count; i++)
            fprintf(out, "  | %s\n", res->provisioner_output[i]);
    }
    if (cls && tr_tf_fingerprint(&fingerprint, res, &meta) == 0)
        fprintf(out, "\nIncident: %s, fingerprint %s\n", cls, fingerprint);
    tr_free(fingerprint);
}

int tr_tf_cli_run(const char *path_or_dash, FILE *out)
{
    int use_stdin = strcmp(path_or_dash, "-") == 0;
    const char *name = use_stdin ? "<stdin>" : path_or_dash;
    const char *base = strrchr(path_or_dash, '/');
    tr_tf_log_options opt = {0};
    tr_tf_result *res = NULL;
    tr_tf_log *log = NULL;
    FILE *in = use_stdin ? stdin : fopen(path_or_dash, "rb");
    char *chunk = NULL;
    int status = 0, rc;
    tr_error err;
    size_t n;

    if (in == NULL) {
        fprintf(stderr, "triaged terraform: %s: %s\n", name, strerror(errno));
        return 2;
    }
    opt.operation_hint = use_stdin ? TR_TF_OP_UNKNOWN
                                   : tr_tf_operation_guess(base ? base + 1 : path_or_dash);
    chunk = tr_malloc(CHUNK_BYTES);
    if (chunk == NULL || tr_tf_log_new(&log, &opt) != 0) {
        fprintf(stderr, "triaged terraform: out of memory\n");
        status = 1;
        goto cleanup;
    }
    while ((n = fread(chunk, 1, CHUNK_BYTES, in)) > 0) {
        if (tr_tf_log_feed(log, chunk, n) != 0) {
            fprintf(stderr, "triaged terraform: out of memory\n");
            status = 1;
            goto cleanup;
        }
    }
    if (ferror(in)) {
        fprintf(stderr, "triaged terraform: %s: %s\n", name, strerror(errno));
        status = 2;
        goto cleanup;
    }
    rc = tr_tf_log_finish(log, &res, &err);
    if (rc != 0) {
        fprintf(stderr, "triaged terraform: %s: %s\n", name, err.message);
        status = rc == TR_ENOMEM ? 1 : 2;
        goto cleanup;
    }
    tr_tf_cli_print(out, res, name);

cleanup:
    tr_tf_result_free(res);
    tr_tf_log_free(log);
    tr_free(chunk);
    if (!use_stdin)
        fclose(in);
    return status;
}
