#include "tf_log.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"

#define DEFAULT_MAX_LINE ((size_t)1024 * 1024)
#define DEFAULT_MAX_DIAGNOSTICS 20
#define DEFAULT_MAX_OUTPUT_LINES 40
#define DEFAULT_MAX_TEXT ((size_t)8 * 1024)
#define DEFAULT_MAX_DOCUMENT ((size_t)4 * 1024 * 1024)
/* Snippet values kept per diagnostic (Terraform prints a handful at most). */
#define MAX_VALUES 10

/* One provisioner output line and the resource that printed it. */
typedef struct output_line {
    char *address;
    char *text;
} output_line;

struct tr_tf_log {
    tr_tf_log_options opt;
    tr_buf line;          /* the line being assembled across feeds */
    int line_overflow;    /* the current line passed max_line_bytes: drop it */
    tr_buf document;      /* raw input kept while it may be a validate -json document */
    int document_possible;
    int finished;
    int init_seen, plan_seen, apply_seen, init_success, outputs_seen;
    int ui_major_bad;
    int errored_seen;     /* an apply_errored named the failing resource */
    output_line *ring;    /* provisioner output, a ring of max_output_lines */
    size_t ring_start, ring_count;
    size_t output_total;
    tr_tf_result *res;
};

/* ------------------------------------------------------------ small helpers */

/* Copy at most cap bytes of s, cut on a UTF-8 boundary with a visible "..." when cut. */
static char *capped_dup(const char *s, size_t cap)
{
    size_t len, cut;
    char *out;

    if (s == NULL)
        return NULL;
    len = strlen(s);
    if (len <= cap)
        return tr_strndup(s, len);
    cut = cap > 3 ? cap - 3 : 0;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    out = tr_malloc(cut + 4);
    if (out == NULL)
        return NULL;
    memcpy(out, s, cut);
    memcpy(out + cut, "...", 4);
    return out;
}

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static int json_int(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    double v;

    if (!cJSON_IsNumber(item))
        return 0;
    v = item->valuedouble;
    if (v < 0 || v > 2147483647.0)
        return 0;
    return (int)v;
}

/* Replace *slot with a capped copy of s (when s is set); 0 or TR_ENOMEM. */
static int set_text(tr_tf_log *log, char **slot, const char *s)
{
    char *copy;

    if (s == NULL)
        return 0;
    copy = capped_dup(s, log->opt.max_text_bytes);
    if (copy == NULL)
        return TR_ENOMEM;
    tr_free(*slot);
    *slot = copy;
    return 0;
}

static void diagnostic_dispose(tr_tf_diagnostic *d)
{
    size_t i;

    tr_free(d->severity);
    tr_free(d->summary);
    tr_free(d->detail);
    tr_free(d->address);
    tr_free(d->filename);
    tr_free(d->snippet_context);
    tr_free(d->snippet_code);
    for (i = 0; i < d->value_count; i++) {
        tr_free(d->values[i].traversal);
        tr_free(d->values[i].statement);
    }
    tr_free(d->values);
    memset(d, 0, sizeof(*d));
}

void tr_tf_result_free(tr_tf_result *result)
{
    size_t i;

    if (result == NULL)
        return;
    for (i = 0; i < result->diagnostic_count; i++)
        diagnostic_dispose(&result->diagnostics[i]);
    tr_free(result->diagnostics);
    for (i = 0; i < result->provisioner_output_count; i++)
        tr_free(result->provisioner_output[i]);
    tr_free(result->provisioner_output);
    tr_free(result->terraform_version);
    tr_free(result->ui_version);
    tr_free(result->address);
    tr_free(result->module);
    tr_free(result->provisioner);
    tr_free(result->provisioner_address);
    tr_free(result);
}

/* ------------------------------------------------------------ message handlers */

static int parse_diagnostic(tr_tf_log *log, const cJSON *diag, tr_tf_diagnostic *d)
{
    const cJSON *range = cJSON_GetObjectItemCaseSensitive(diag, "range");
    const cJSON *snippet = cJSON_GetObjectItemCaseSensitive(diag, "snippet");
    const cJSON *values, *value;
    const char *severity = json_str(diag, "severity");
    int rc;

    d->error = severity == NULL || strcmp(severity, "warning") != 0;
    if ((rc = set_text(log, &d->severity, severity ? severity : "error")) != 0 ||
        (rc = set_text(log, &d->summary, json_str(diag, "summary"))) != 0 ||
        (rc = set_text(log, &d->detail, json_str(diag, "detail"))) != 0 ||
        (rc = set_text(log, &d->address, json_str(diag, "address"))) != 0)
        return rc;
    if (cJSON_IsObject(range)) {
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(range, "start");
        const cJSON *end = cJSON_GetObjectItemCaseSensitive(range, "end");
        if ((rc = set_text(log, &d->filename, json_str(range, "filename"))) != 0)
            return rc;
        d->start_line = json_int(start, "line");
        d->start_column = json_int(start, "column");
        d->end_line = json_int(end, "line");
        d->end_column = json_int(end, "column");
    }
    if (!cJSON_IsObject(snippet))
        return 0;
    if ((rc = set_text(log, &d->snippet_context, json_str(snippet, "context"))) != 0 ||
        (rc = set_text(log, &d->snippet_code, json_str(snippet, "code"))) != 0)
        return rc;
    d->snippet_start_line = json_int(snippet, "start_line");
    values = cJSON_GetObjectItemCaseSensitive(snippet, "values");
    cJSON_ArrayForEach(value, values) {
        tr_tf_value *v;
        if (d->value_count == MAX_VALUES)
            break;
        if (d->values == NULL && (d->values = tr_calloc(MAX_VALUES, sizeof(*v))) == NULL)
            return TR_ENOMEM;
        v = &d->values[d->value_count++];
        if ((rc = set_text(log, &v->traversal, json_str(value, "traversal"))) != 0 ||
            (rc = set_text(log, &v->statement, json_str(value, "statement"))) != 0)
            return rc;
    }
    return 0;
}

/*
 * Keep a diagnostic. When the kept list is full an error displaces the last kept warning,
 * since the errors are what an incident is about; otherwise it is counted as dropped.
 */
static int on_diagnostic(tr_tf_log *log, const cJSON *diag)
{
    tr_tf_result *res = log->res;
    tr_tf_diagnostic d;
    size_t slot = res->diagnostic_count;
    int rc;

    if (!cJSON_IsObject(diag))
        return 0;
    memset(&d, 0, sizeof(d));
    if ((rc = parse_diagnostic(log, diag, &d)) != 0) {
        diagnostic_dispose(&d);
        return rc;
    }
    if (d.error)
        res->error_count++;
    else
        res->warning_count++;
    if (d.error && res->address == NULL && d.address != NULL &&
        (res->address = tr_strdup(d.address)) == NULL) {
        diagnostic_dispose(&d);
        return TR_ENOMEM;
    }
    if (slot == log->opt.max_diagnostics) {
        size_t i = slot;
        while (d.error && i > 0 && res->diagnostics[i - 1].error)
            i--;
        if (!d.error || i == 0) {
            res->diagnostics_dropped++;
            diagnostic_dispose(&d);
            return 0;
        }
        /* Drop the warning at i - 1, keeping the order of the others. */
        diagnostic_dispose(&res->diagnostics[i - 1]);
        memmove(&res->diagnostics[i - 1], &res->diagnostics[i],
                (slot - i) * sizeof(res->diagnostics[0]));
        res->diagnostic_count--;
        res->diagnostics_dropped++;
        slot--;
    }
    res->diagnostics[slot] = d;
    res->diagnostic_count++;
    return 0;
}

/* hook.resource.addr and .module of a hook message; NULL when absent. */
static const cJSON *hook_resource(const cJSON *msg)
{
    const cJSON *hook = cJSON_GetObjectItemCaseSensitive(msg, "hook");
    return cJSON_GetObjectItemCaseSensitive(hook, "resource");
}

static int on_apply_errored(tr_tf_log *log, const cJSON *msg)
{
    const cJSON *resource = hook_resource(msg);
    const char *addr = json_str(resource, "addr");
    const char *module = json_str(resource, "module");
    tr_tf_result *res = log->res;
    int rc;

    /* The first resource to fail is the one the run is about; it wins over a
     * diagnostic.address seen earlier, since apply_errored names it directly. */
    if (addr == NULL || log->errored_seen)
        return 0;
    log->errored_seen = 1;
    if ((rc = set_text(log, &res->address, addr)) != 0)
        return rc;
    if (module && *module)
        return set_text(log, &res->module, module);
    return 0;
}

static int on_provision_progress(tr_tf_log *log, const cJSON *msg)
{
    const cJSON *hook = cJSON_GetObjectItemCaseSensitive(msg, "hook");
    const char *output = json_str(hook, "output");
    const char *addr = json_str(hook_resource(msg), "addr");
    size_t cap = log->opt.max_output_lines, idx;
    output_line *slot;
    char *text, *address;

    if (output == NULL || cap == 0)
        return 0;
    text = capped_dup(output, log->opt.max_text_bytes);
    address = tr_strdup(addr ? addr : "");
    if (text == NULL || address == NULL) {
        tr_free(text);
        tr_free(address);
        return TR_ENOMEM;
    }
    if (log->ring_count == cap) {
        slot = &log->ring[log->ring_start];
        tr_free(slot->text);
        tr_free(slot->address);
        log->ring_start = (log->ring_start + 1) % cap;
        log->ring_count--;
    }
    idx = (log->ring_start + log->ring_count) % cap;
    log->ring[idx].text = text;
    log->ring[idx].address = address;
    log->ring_count++;
    log->output_total++;
    return 0;
}

static int on_provision_errored(tr_tf_log *log, const cJSON *msg)
{
    const cJSON *hook = cJSON_GetObjectItemCaseSensitive(msg, "hook");
    const cJSON *resource = hook_resource(msg);
    tr_tf_result *res = log->res;
    int rc;

    if (res->provisioner_address != NULL)
        return 0;
    if ((rc = set_text(log, &res->provisioner, json_str(hook, "provisioner"))) != 0 ||
        (rc = set_text(log, &res->provisioner_address, json_str(resource, "addr"))) != 0)
        return rc;
    return 0;
}

static void on_change_summary(tr_tf_log *log, const cJSON *msg)
{
    const cJSON *changes = cJSON_GetObjectItemCaseSensitive(msg, "changes");
    const char *op = json_str(changes, "operation");
    tr_tf_result *res = log->res;

    res->change_summary_seen = 1;
    res->changes_add = json_int(changes, "add");
    res->changes_change = json_int(changes, "change");
    res->changes_remove = json_int(changes, "remove");
    if (op && (strcmp(op, "apply") == 0 || strcmp(op, "destroy") == 0)) {
        log->apply_seen = 1;
        res->final_message_seen = 1;
    } else {
        log->plan_seen = 1;
    }
}

static int on_version(tr_tf_log *log, const cJSON *msg)
{
    const char *version = json_str(msg, "terraform");
    const char *ui = json_str(msg, "ui");
    int rc;

    if (version == NULL)
        version = json_str(msg, "tofu");
    if ((rc = set_text(log, &log->res->terraform_version, version)) != 0 ||
        (rc = set_text(log, &log->res->ui_version, ui)) != 0)
        return rc;
    /* The UI schema is versioned MAJOR.MINOR (0.1.0 in Terraform 0.15, 1.x since 1.0);
     * a newer major may mean anything, so it is refused rather than misread. */
    if (ui && (ui[0] < '0' || ui[0] > '1' || (ui[1] != '.' && ui[1] != '\0')))
        log->ui_major_bad = 1;
    return 0;
}

/* Hints in @message for logs from versions without typed init messages. */
static void on_message_text(tr_tf_log *log, const char *text)
{
    if (text == NULL)
        return;
    if (strncmp(text, "Initializing ", 13) == 0)
        log->init_seen = 1;
    else if (strncmp(text, "Terraform has been successfully initialized", 43) == 0)
        log->init_seen = log->init_success = 1;
    else if (strncmp(text, "Apply complete!", 15) == 0 ||
             strncmp(text, "Destroy complete!", 17) == 0)
        log->apply_seen = 1;
}

static int on_message(tr_tf_log *log, const cJSON *msg)
{
    const char *type = json_str(msg, "type");

    on_message_text(log, json_str(msg, "@message"));
    if (type == NULL)
        return 0;
    if (strcmp(type, "version") == 0)
        return on_version(log, msg);
    if (strcmp(type, "diagnostic") == 0)
        return on_diagnostic(log, cJSON_GetObjectItemCaseSensitive(msg, "diagnostic"));
    if (strcmp(type, "init_output") == 0) {
        const char *code = json_str(msg, "message_code");
        log->init_seen = 1;
        if (code && strcmp(code, "output_init_success_message") == 0)
            log->init_success = log->res->final_message_seen = 1;
        return 0;
    }
    if (strcmp(type, "change_summary") == 0) {
        on_change_summary(log, msg);
        return 0;
    }
    if (strcmp(type, "outputs") == 0) {
        log->outputs_seen = 1;
        return 0;
    }
    if (strcmp(type, "planned_change") == 0 || strcmp(type, "resource_drift") == 0) {
        log->plan_seen = 1;
        return 0;
    }
    if (strncmp(type, "apply_", 6) == 0 || strncmp(type, "provision_", 10) == 0)
        log->apply_seen = 1;
    if (strcmp(type, "apply_errored") == 0)
        return on_apply_errored(log, msg);
    if (strcmp(type, "provision_progress") == 0)
        return on_provision_progress(log, msg);
    if (strcmp(type, "provision_errored") == 0)
        return on_provision_errored(log, msg);
    return 0;
}

/* A `terraform validate -json` document: {"format_version", "valid", "diagnostics": [...]}. */
static int on_validate_document(tr_tf_log *log, const cJSON *doc)
{
    const cJSON *diag;
    int rc;

    cJSON_ArrayForEach(diag, cJSON_GetObjectItemCaseSensitive(doc, "diagnostics")) {
        if ((rc = on_diagnostic(log, diag)) != 0)
            return rc;
    }
    log->res->messages++;
    log->res->final_message_seen = 1;
    log->res->operation = TR_TF_OP_VALIDATE;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "valid")))
        log->res->outcome = TR_TF_SUCCEEDED;
    return 0;
}

/* ------------------------------------------------------------ lines */

/* A Terraform UI message is an object with a string "type" or "@message". */
static int is_ui_message(const cJSON *msg)
{
    return cJSON_IsObject(msg) && (json_str(msg, "type") || json_str(msg, "@message"));
}

static int keep_for_document(tr_tf_log *log, const char *data, size_t len)
{
    int rc;

    if (!log->document_possible)
        return 0;
    rc = tr_buf_put(&log->document, data, len);
    if (rc == 0)
        rc = tr_buf_putc(&log->document, '\n');
    if (rc == TR_ETOOBIG) {
        /* Too big for a validate document: stop keeping it, nothing is lost but that. */
        log->document_possible = 0;
        tr_buf_dispose(&log->document);
        return 0;
    }
    return rc;
}

static int process_line(tr_tf_log *log, const char *data, size_t len, int last)
{
    tr_tf_result *res = log->res;
    const char *start;
    cJSON *msg;
    int rc;

    while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == ' ' || data[len - 1] == '\t'))
        len--;
    start = data;
    while (start < data + len && (*start == ' ' || *start == '\t'))
        start++;
    if (start == data + len)
        return 0;
    res->lines++;
    if ((rc = keep_for_document(log, data, len)) != 0)
        return rc;
    if (*start != '{') {
        res->skipped_lines++;
        return 0;
    }
    msg = cJSON_ParseWithLength(start, (size_t)(data + len - start));
    if (!is_ui_message(msg)) {
        cJSON_Delete(msg);
        if (last)
            res->truncated_last_line = 1;
        res->skipped_lines++;
        return 0;
    }
    res->messages++;
    /* A line-per-message log is not a validate document. */
    log->document_possible = 0;
    tr_buf_dispose(&log->document);
    rc = on_message(log, msg);
    cJSON_Delete(msg);
    return rc;
}

int tr_tf_log_feed(tr_tf_log *log, const char *data, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t part = nl ? (size_t)(nl - data) : len;
        int rc = 0;

        if (log->line_overflow) {
            /* Inside an over-long line: skip to its end. */
        } else if (log->line.len + part > log->opt.max_line_bytes) {
            log->line_overflow = 1;
            tr_buf_clear(&log->line);
        } else if (nl && log->line.len == 0) {
            rc = process_line(log, data, part, 0);
        } else if ((rc = tr_buf_put(&log->line, data, part)) == 0 && nl) {
            rc = process_line(log, log->line.ptr, log->line.len, 0);
            tr_buf_clear(&log->line);
        }
        if (rc != 0)
            return rc;
        if (nl && log->line_overflow) {
            log->res->oversized_lines++;
            log->line_overflow = 0;
        }
        data += part + (nl ? 1 : 0);
        len -= part + (nl ? 1 : 0);
    }
    return 0;
}

/* ------------------------------------------------------------ lifecycle */

int tr_tf_log_new(tr_tf_log **out, const tr_tf_log_options *options)
{
    tr_tf_log *log;

    *out = NULL;
    log = tr_calloc(1, sizeof(*log));
    if (log == NULL)
        return TR_ENOMEM;
    if (options)
        log->opt = *options;
    if (log->opt.max_line_bytes == 0)
        log->opt.max_line_bytes = DEFAULT_MAX_LINE;
    if (log->opt.max_diagnostics == 0)
        log->opt.max_diagnostics = DEFAULT_MAX_DIAGNOSTICS;
    if (log->opt.max_output_lines == 0)
        log->opt.max_output_lines = DEFAULT_MAX_OUTPUT_LINES;
    if (log->opt.max_text_bytes < 16)
        log->opt.max_text_bytes = DEFAULT_MAX_TEXT;
    if (log->opt.max_document_bytes == 0)
        log->opt.max_document_bytes = DEFAULT_MAX_DOCUMENT;
    tr_buf_init(&log->line, log->opt.max_line_bytes + 1);
    tr_buf_init(&log->document, log->opt.max_document_bytes);
    log->document_possible = 1;
    log->res = tr_calloc(1, sizeof(*log->res));
    log->ring = tr_calloc(log->opt.max_output_lines, sizeof(*log->ring));
    if (log->res)
        log->res->diagnostics = tr_calloc(log->opt.max_diagnostics,
                                          sizeof(*log->res->diagnostics));
    if (log->res == NULL || log->ring == NULL || log->res->diagnostics == NULL) {
        tr_tf_log_free(log);
        return TR_ENOMEM;
    }
    *out = log;
    return 0;
}

void tr_tf_log_free(tr_tf_log *log)
{
    size_t i;

    if (log == NULL)
        return;
    for (i = 0; log->ring && i < log->ring_count; i++) {
        output_line *l = &log->ring[(log->ring_start + i) % log->opt.max_output_lines];
        tr_free(l->text);
        tr_free(l->address);
    }
    tr_free(log->ring);
    tr_buf_dispose(&log->line);
    tr_buf_dispose(&log->document);
    tr_tf_result_free(log->res);
    tr_free(log);
}

/* Move the failing provisioner's lines (or all lines when none failed) into the result. */
static int take_output(tr_tf_log *log)
{
    tr_tf_result *res = log->res;
    const char *want = res->provisioner_address;
    size_t i, kept = 0;

    if (log->ring_count == 0)
        return 0;
    res->provisioner_output = tr_calloc(log->ring_count, sizeof(char *));
    if (res->provisioner_output == NULL)
        return TR_ENOMEM;
    for (i = 0; i < log->ring_count; i++) {
        output_line *l = &log->ring[(log->ring_start + i) % log->opt.max_output_lines];
        if (want && strcmp(l->address, want) != 0)
            continue;
        res->provisioner_output[kept++] = l->text;
        l->text = NULL;
    }
    res->provisioner_output_count = kept;
    res->provisioner_output_dropped = log->output_total - log->ring_count;
    return 0;
}

static void decide(tr_tf_log *log)
{
    tr_tf_result *res = log->res;

    if (res->operation != TR_TF_OP_VALIDATE) {
        if (log->apply_seen)
            res->operation = TR_TF_OP_APPLY;
        else if (log->plan_seen)
            res->operation = TR_TF_OP_PLAN;
        else if (log->init_seen)
            res->operation = TR_TF_OP_INIT;
        else
            res->operation = log->opt.operation_hint;
    }
    if (log->outputs_seen && log->apply_seen)
        res->final_message_seen = 1;
    if (res->error_count > 0)
        res->outcome = TR_TF_FAILED;
    else if (res->change_summary_seen || log->outputs_seen || log->init_success)
        res->outcome = TR_TF_SUCCEEDED;
}

int tr_tf_log_finish(tr_tf_log *log, tr_tf_result **out, tr_error *err)
{
    int rc = 0;

    *out = NULL;
    if (log->finished)
        return tr_error_set(err, TR_EINVAL, "terraform log: already finished");
    log->finished = 1;
    if (log->line.len > 0 && !log->line_overflow)
        rc = process_line(log, log->line.ptr, log->line.len, 1);
    else if (log->line_overflow)
        log->res->oversized_lines++;
    if (rc != 0)
        return tr_error_set(err, rc, "terraform log: %s", tr_strerror(rc));
    if (log->res->messages == 0 && log->document_possible && log->document.len > 0) {
        cJSON *doc = cJSON_ParseWithLength(log->document.ptr, log->document.len);
        if (cJSON_IsObject(doc) && cJSON_GetObjectItemCaseSensitive(doc, "format_version") &&
            cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(doc, "valid"))) {
            log->res->skipped_lines = 0;
            log->res->truncated_last_line = 0;
            rc = on_validate_document(log, doc);
        }
        cJSON_Delete(doc);
        if (rc != 0)
            return tr_error_set(err, rc, "terraform log: %s", tr_strerror(rc));
    }
    if (log->res->messages == 0)
        return tr_error_set(err, TR_EPARSE,
                            "not a Terraform -json log: none of its %zu lines is a Terraform "
                            "UI message (run terraform with -json)",
                            log->res->lines);
    if (log->ui_major_bad)
        return tr_error_set(err, TR_EPARSE,
                            "terraform log: unsupported machine-readable UI version %s",
                            log->res->ui_version);
    if ((rc = take_output(log)) != 0)
        return tr_error_set(err, rc, "terraform log: %s", tr_strerror(rc));
    decide(log);
    *out = log->res;
    log->res = NULL;
    return 0;
}

int tr_tf_log_parse(tr_tf_result **out, const char *data, size_t len,
                    const tr_tf_log_options *options, tr_error *err)
{
    tr_tf_log *log = NULL;
    int rc;

    *out = NULL;
    if ((rc = tr_tf_log_new(&log, options)) != 0)
        return tr_error_set(err, rc, "terraform log: %s", tr_strerror(rc));
    if ((rc = tr_tf_log_feed(log, data, len)) != 0)
        rc = tr_error_set(err, rc, "terraform log: %s", tr_strerror(rc));
    else
        rc = tr_tf_log_finish(log, out, err);
    tr_tf_log_free(log);
    return rc;
}

/* ------------------------------------------------------------ names */

int tr_tf_line_is_final(const char *line, size_t len)
{
    cJSON *msg = cJSON_ParseWithLength(line, len);
    const char *type = json_str(msg, "type");
    int final = 0;

    if (type && strcmp(type, "change_summary") == 0) {
        const char *op =
            json_str(cJSON_GetObjectItemCaseSensitive(msg, "changes"), "operation");
        final = op && (strcmp(op, "apply") == 0 || strcmp(op, "destroy") == 0);
    } else if (type && strcmp(type, "outputs") == 0) {
        final = 1;
    } else if (type && strcmp(type, "init_output") == 0) {
        const char *code = json_str(msg, "message_code");
        final = code && strcmp(code, "output_init_success_message") == 0;
    }
    cJSON_Delete(msg);
    return final;
}

const char *tr_tf_operation_name(int operation)
{
    switch (operation) {
    case TR_TF_OP_INIT: return "init";
    case TR_TF_OP_VALIDATE: return "validate";
    case TR_TF_OP_PLAN: return "plan";
    case TR_TF_OP_APPLY: return "apply";
    default: return "unknown";
    }
}

tr_tf_operation tr_tf_operation_guess(const char *text)
{
    static const struct {
        const char *word;
        tr_tf_operation op;
    } words[] = {
        {"validate", TR_TF_OP_VALIDATE}, {"init", TR_TF_OP_INIT},
        {"apply", TR_TF_OP_APPLY}, {"destroy", TR_TF_OP_APPLY}, {"plan", TR_TF_OP_PLAN},
    };
    size_t i;

    if (text == NULL)
        return TR_TF_OP_UNKNOWN;
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasestr(text, words[i].word))
            return words[i].op;
    }
    return TR_TF_OP_UNKNOWN;
}
