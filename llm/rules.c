/*
 * rules.c - one function per failure class. Each reads the facts the
 * watchers record for that class (docs/incident-facts.md), names the object
 * the way an operator would ("container app of shop/checkout"), and turns
 * tell-tale phrases of the message (exit codes, "Insufficient cpu",
 * "manifest unknown", a probe's "connection refused") into the likely cause.
 * Facts that are absent are simply left out of the sentences.
 *
 * This file holds the helpers rules write with, the Terraform and generic
 * rules and the dispatch; the Kubernetes rules are in rules_kube.c.
 */
#include "rules.h"
#include "rules_internal.h"

#include "alloc.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ helpers */

const char *rules_fs(const rule_ctx *c, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->facts, name);

    return cJSON_IsString(v) && v->valuestring && v->valuestring[0] ? v->valuestring : NULL;
}

/* A fact as text whatever its JSON type ("137", "64Mi"); NULL when absent. */
const char *rules_fv(const rule_ctx *c, const char *name, char *tmp, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->facts, name);

    if (cJSON_IsString(v))
        return v->valuestring && v->valuestring[0] ? v->valuestring : NULL;
    if (cJSON_IsNumber(v)) {
        snprintf(tmp, size, "%.0f", v->valuedouble);
        return tmp;
    }
    return NULL;
}

int rules_fi(const rule_ctx *c, const char *name, long long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->facts, name);

    if (cJSON_IsNumber(v)) {
        *out = (long long)v->valuedouble;
        return 1;
    }
    if (cJSON_IsString(v) && v->valuestring && sscanf(v->valuestring, "%lld", out) == 1)
        return 1;
    return 0;
}

int rules_has(const char *text, const char *needle)
{
    return text != NULL && strcasestr(text, needle) != NULL;
}

void rules_put(rule_ctx *c, tr_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    if (c->rc != TR_OK)
        return;
    va_start(ap, fmt);
    rc = tr_buf_vprintf(b, fmt, ap);
    va_end(ap);
    if (rc != TR_OK)
        c->rc = rc;
}

static void list_add(rule_ctx *c, tr_buf *list, size_t *count, const char *fmt, va_list ap)
{
    tr_buf item = TR_BUF_INIT(TEXT_MAX);
    int rc = tr_buf_vprintf(&item, fmt, ap);

    if (rc == TR_OK)
        rc = tr_buf_puts(list, *count ? ",\"" : "\"");
    if (rc == TR_OK)
        rc = tr_buf_put_json_escaped(list, item.ptr ? item.ptr : "", item.len);
    if (rc == TR_OK)
        rc = tr_buf_putc(list, '"');
    if (rc == TR_OK)
        (*count)++;
    else if (c->rc == TR_OK)
        c->rc = rc;
    tr_buf_dispose(&item);
}

void rules_step(rule_ctx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    list_add(c, &c->steps, &c->step_count, fmt, ap);
    va_end(ap);
}

void rules_quote(rule_ctx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    list_add(c, &c->evidence, &c->evidence_count, fmt, ap);
    va_end(ap);
}

/* Evidence: the listed facts as "name: value", as recorded. */
void rules_quote_facts(rule_ctx *c, const char *const *names)
{
    char tmp[32];

    for (; *names; names++) {
        const char *v = rules_fv(c, *names, tmp, sizeof(tmp));

        if (v)
            rules_quote(c, "%s: %.1500s", *names, v);
    }
}

const char *rules_ns(const rule_ctx *c)
{
    return c->inc->namespace && c->inc->namespace[0] ? c->inc->namespace : "default";
}

const char *rules_container_phrase(const rule_ctx *c, char *out, size_t size)
{
    const char *container = rules_fs(c, "container");

    if (container)
        snprintf(out, size, "container %s of %s", container, c->object);
    else
        snprintf(out, size, "%s", c->object);
    return out;
}

const char *rules_exit_meaning(long long code)
{
    switch (code) {
    case 0: return "the process exited successfully, yet it is restarted: it is not a "
                   "long-running process (check command/args and restartPolicy)";
    case 1: return "the application exited with a generic error, usually a configuration or "
                   "startup failure it logged";
    case 2: return "the command was misused (bad arguments or options)";
    case 126: return "the command is not executable (permissions or wrong binary)";
    case 127: return "the command was not found in the image (wrong command or entrypoint)";
    case 134: return "the process aborted (SIGABRT), e.g. a failed assertion";
    case 137: return "the process was killed with SIGKILL, usually by the OOM killer or a "
                     "failed liveness probe";
    case 139: return "the process crashed with a segmentation fault (SIGSEGV)";
    case 143: return "the process was terminated with SIGTERM and did not restart cleanly";
    default: return "the application exited with an error";
    }
}

/* ------------------------------------------------------------ terraform */

static const cJSON *pick_diagnostic(const cJSON *diags)
{
    const cJSON *d, *first_error = NULL;

    cJSON_ArrayForEach(d, diags)
    {
        const cJSON *sev = cJSON_GetObjectItemCaseSensitive(d, "severity");
        const cJSON *detail = cJSON_GetObjectItemCaseSensitive(d, "detail");

        if (cJSON_IsString(sev) && strcmp(sev->valuestring, "error") != 0)
            continue;
        if (first_error == NULL)
            first_error = d;
        if (cJSON_IsString(detail) && detail->valuestring[0])
            return d;
    }
    return first_error ? first_error : cJSON_GetArrayItem(diags, 0);
}

static const char *dstr(const cJSON *d, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, name);

    return cJSON_IsString(v) && v->valuestring && v->valuestring[0] ? v->valuestring : NULL;
}

static void rule_terraform(rule_ctx *c)
{
    static const char *const keys[] = {"operation", "workspace", "address", "run_id",
                                       "run_url", NULL};
    const cJSON *d = pick_diagnostic(cJSON_GetObjectItemCaseSensitive(c->facts, "diagnostics"));
    const char *op = rules_fs(c, "operation") ? rules_fs(c, "operation") : "run";
    const char *ws = rules_fs(c, "workspace") ? rules_fs(c, "workspace") : rules_ns(c);
    const char *summary = dstr(d, "summary"), *detail = dstr(d, "detail");
    const char *file = dstr(d, "filename");
    const char *address = dstr(d, "address") ? dstr(d, "address") : rules_fs(c, "address");
    const cJSON *line = cJSON_GetObjectItemCaseSensitive(d, "start_line");
    const cJSON *prov = cJSON_GetObjectItemCaseSensitive(c->facts, "provisioner_output");

    if (strcmp(c->inc->failure_class, "TerraformRunErrored") == 0 && summary == NULL) {
        rules_put(c, &c->summary, "HCP Terraform run %s in workspace %s errored",
                  rules_fs(c, "run_id") ? rules_fs(c, "run_id") : "", ws);
        rules_put(c, &c->root,
                  "The run errored; the notification carries no log. Open %s for the "
                  "diagnostics.",
                  rules_fs(c, "run_url") ? rules_fs(c, "run_url") : "the run");
        rules_step(c, "Open the run in HCP Terraform and read its error");
        c->severity = "error";
        c->confidence = 0.3;
        rules_quote_facts(c, keys);
        return;
    }
    rules_put(c, &c->summary, "terraform %s failed in workspace %s: %s", op, ws,
              summary ? summary : (c->inc->title ? c->inc->title : "error"));
    if (address)
        rules_put(c, &c->summary, " (%s)", address);
    else if (file)
        rules_put(c, &c->summary, " (%s%s%.0f)", file, cJSON_IsNumber(line) ? ":" : "",
                  cJSON_IsNumber(line) ? line->valuedouble : 0.0);
    c->confidence = 0.7;
    if (rules_has(summary, "provisioner")) {
        rules_put(c, &c->root, "The provisioner of %s failed, so the apply stopped.",
                  address ? address : "the resource");
        rules_step(c, "Fix the command the provisioner runs (its output is in the evidence), then "
                      "apply again; the resource is tainted and will be recreated");
    } else if (rules_has(summary, "Invalid value for variable")) {
        rules_put(c, &c->root, "A variable's value fails its validation rule.");
        rules_step(c, "Pass a value that satisfies the validation rule (tfvars, -var or the "
                      "workspace variables)");
    } else if (rules_has(summary, "undeclared input variable")) {
        rules_put(c, &c->root,
                  "The configuration references an input variable that is not "
                  "declared.");
        rules_step(c, "Declare the variable with a variable block, or fix the reference's name");
    } else if (rules_has(summary, "provider packages") || rules_has(summary, "install provider") ||
               rules_has(summary, "dependency lock file")) {
        rules_put(c, &c->root,
                  "Terraform could not install the providers: the registry is "
                  "unreachable or the lock file does not match the configuration.");
        rules_step(c, "Check network access to the provider registry (or configure a mirror), then "
                      "terraform init -upgrade to refresh the lock file");
        c->confidence = 0.8;
    } else if (rules_has(summary, "precondition") || rules_has(summary, "postcondition")) {
        rules_put(c, &c->root, "A custom condition of %s is not met.",
                  address ? address : "a resource");
        rules_step(c, "Change the inputs so the condition holds (its error message says how)");
        c->confidence = 0.85;
    } else if (rules_has(summary, "Invalid expression") ||
               rules_has(summary, "Unsupported argument") ||
               rules_has(summary, "Argument or block definition required") ||
               rules_has(summary, "Invalid block") || rules_has(summary, "syntax")) {
        rules_put(c, &c->root, "The configuration has a syntax or structure error%s%s.",
                  file ? " in " : "", file ? file : "");
        rules_step(c, "Fix the HCL at the position shown, then run terraform validate");
        c->confidence = 0.8;
    } else {
        rules_put(c, &c->root, "Terraform reported an error during %s.", op);
        c->confidence = 0.5;
        rules_step(c, "Read the full diagnostic and fix the configuration or the provider's input");
    }
    if (detail)
        rules_put(c, &c->root, " Terraform: %.1500s", detail);
    if (file)
        rules_quote(c, "%s:%.0f: %s", file, cJSON_IsNumber(line) ? line->valuedouble : 0.0,
                    summary ? summary : "");
    if (dstr(d, "snippet"))
        rules_quote(c, "%.500s", dstr(d, "snippet"));
    if (cJSON_IsArray(prov) && cJSON_GetArraySize(prov) > 0) {
        const cJSON *last = cJSON_GetArrayItem(prov, cJSON_GetArraySize(prov) - 1);

        if (cJSON_IsString(last))
            rules_quote(c, "provisioner output: %.500s", last->valuestring);
    } else if (cJSON_IsString(prov) && prov->valuestring[0]) {
        rules_quote(c, "provisioner output: %.500s", prov->valuestring);
    }
    rules_step(c, "Rerun terraform %s after the fix and confirm it succeeds", op);
    c->severity = "error";
    rules_quote_facts(c, keys);
}

static void rule_generic(rule_ctx *c)
{
    const char *msg = c->inc->message;

    rules_put(c, &c->summary, "%s on %s %s",
              c->inc->failure_class ? c->inc->failure_class : "failure",
              c->inc->kind ? c->inc->kind : "object", c->object);
    if (msg)
        rules_put(c, &c->summary, ": %.200s", msg);
    rules_put(c, &c->root, "No rule knows this failure class; the latest signal says: %.1000s",
              msg ? msg : "(no message)");
    rules_step(c, "Inspect the object and its recent events");
    if (msg)
        rules_quote(c, "%.1500s", msg);
    c->severity = "warning";
    c->confidence = 0.2;
}

static const struct {
    const char *name;
    rules_fn fn;
} rules[] = {
    {"TerraformInitFailed", rule_terraform},
    {"TerraformPlanFailed", rule_terraform},
    {"TerraformApplyFailed", rule_terraform},
    {"TerraformValidateFailed", rule_terraform},
    {"TerraformRunErrored", rule_terraform},
};

static rules_fn find_rule(const char *cls)
{
    rules_fn fn;

    if (cls == NULL)
        return rule_generic;
    fn = rules_kube_find(cls);
    if (fn != NULL)
        return fn;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if (strcmp(rules[i].name, cls) == 0)
            return rules[i].fn;
    return rule_generic;
}

int tr_rules_analyze(const tr_store_incident *incident, tr_llm_reply **out, tr_error *err)
{
    rule_ctx c;
    cJSON *facts = NULL;
    tr_llm_reply *r = NULL;

    *out = NULL;
    memset(&c, 0, sizeof(c));
    c.inc = incident;
    tr_buf_init(&c.summary, TEXT_MAX);
    tr_buf_init(&c.root, TEXT_MAX);
    tr_buf_init(&c.steps, 64 * 1024);
    tr_buf_init(&c.evidence, 64 * 1024);
    if (incident->facts_json)
        facts = cJSON_Parse(incident->facts_json);
    c.facts = cJSON_IsObject(facts) ? facts : NULL;
    if (incident->namespace && incident->namespace[0])
        snprintf(c.object, sizeof(c.object), "%s/%s", incident->namespace,
                 incident->name ? incident->name : "");
    else
        snprintf(c.object, sizeof(c.object), "%s", incident->name ? incident->name : "");
    if (tr_buf_putc(&c.steps, '[') != TR_OK || tr_buf_putc(&c.evidence, '[') != TR_OK)
        c.rc = TR_ENOMEM;
    if (c.rc == TR_OK)
        find_rule(incident->failure_class)(&c);
    /* Sentences are capped; a cut one is still better than no analysis. */
    if (c.rc == TR_ETOOBIG)
        c.rc = TR_OK;
    if (c.rc == TR_OK && (tr_buf_putc(&c.steps, ']') != TR_OK ||
                          tr_buf_putc(&c.evidence, ']') != TR_OK))
        c.rc = TR_ENOMEM;
    if (c.rc == TR_OK && c.summary.len == 0)
        c.rc = tr_buf_puts(&c.summary, "failure");
    if (c.rc == TR_OK && c.root.len == 0)
        c.rc = tr_buf_puts(&c.root, "unknown");
    if (c.rc == TR_OK && (r = tr_calloc(1, sizeof(*r))) == NULL)
        c.rc = TR_ENOMEM;
    if (c.rc == TR_OK) {
        r->summary = tr_buf_detach(&c.summary);
        r->root_cause = tr_buf_detach(&c.root);
        r->remediation_json = tr_buf_detach(&c.steps);
        r->evidence_json = tr_buf_detach(&c.evidence);
        r->remediation_count = c.step_count;
        r->evidence_count = c.evidence_count;
        r->severity = tr_strdup(c.severity ? c.severity : "warning");
        r->patch = tr_strdup("");
        r->confidence = c.confidence;
        if (!r->summary || !r->root_cause || !r->remediation_json || !r->evidence_json ||
            !r->severity || !r->patch)
            c.rc = TR_ENOMEM;
    }
    tr_buf_dispose(&c.summary);
    tr_buf_dispose(&c.root);
    tr_buf_dispose(&c.steps);
    tr_buf_dispose(&c.evidence);
    cJSON_Delete(facts);
    if (c.rc != TR_OK) {
        tr_llm_reply_free(r);
        return tr_error_set(err, c.rc, "rules: out of memory");
    }
    *out = r;
    return TR_OK;
}
