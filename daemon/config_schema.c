/*
 * config_schema.c - every key of the configuration file, its type, limits
 * and default (the data behind config_internal.h), and the generic
 * default/free/compare operations over it.
 */
#include "config_internal.h"

#include "alloc.h"

#include <string.h>

#define SECOND_MS 1000.0
#define MAX_MS ((double)TR_CONFIG_DURATION_MAX_MS)

/* Field initialisers; ST is the section struct being described. */
#define S(k, m, fl, d) .key = (k), .kind = CFG_STRING, .flags = (fl), \
    .offset = offsetof(ST, m), .def_str = (d)
#define B(k, m, d) .key = (k), .kind = CFG_BOOL, .offset = offsetof(ST, m), .def_num = (d)
#define I(k, m, lo, hi, d) .key = (k), .kind = CFG_INT, .offset = offsetof(ST, m), \
    .min = (lo), .max = (hi), .def_num = (d)
#define R(k, m, lo, hi, d) .key = (k), .kind = CFG_FLOAT, .offset = offsetof(ST, m), \
    .min = (lo), .max = (hi), .def_num = (d)
#define D(k, m, lo, d) .key = (k), .kind = CFG_DURATION, .offset = offsetof(ST, m), \
    .min = (lo), .max = MAX_MS, .def_str = (d)
#define E(k, m, n, d) .key = (k), .kind = CFG_ENUM, .offset = offsetof(ST, m), \
    .names = (n), .def_num = (d)
#define L(k, m, d) .key = (k), .kind = CFG_LIST, .offset = offsetof(ST, m), .def_list = (d)
#define H(k, m, fl) .key = (k), .kind = CFG_HEADERS, .flags = (fl), .offset = offsetof(ST, m)

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const log_level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_format_names[] = {"text", "json", NULL};
static const char *const provider_names[] = {"openai", "azure", "none", NULL};
static const char *const output_names[] = {"json_schema", "json_object", "prompt", NULL};
static const char *const forge_names[] = {"github", "gitlab", "gitea", "none", NULL};
static const char *const severity_names[] = {"info", "warning", "error", "critical", NULL};
static const char *const source_names[] = {"kubernetes", "terraform", NULL};
const char *const cfg_notify_kind_names[] = {"slack", "teams", "webhook", "log", NULL};

static const char *const default_exclude_namespaces[] = {"kube-system", NULL};
static const char *const default_labels[] = {"triaged", NULL};

#define ST tr_config_daemon
static const cfg_field daemon_fields[] = {
    {S("state_dir", state_dir, CFG_NONEMPTY, "./var")},
    {S("listen", listen, CFG_NONEMPTY, "127.0.0.1:8080")},
    {S("api_token_file", api_token_file, CFG_FILE, "")},
    {E("log_level", log_level, log_level_names, TR_LOG_INFO)},
    {E("log_format", log_format, log_format_names, TR_LOG_TEXT)},
    {D("shutdown_timeout", shutdown_timeout_ms, 0, "10s")},
    {I("max_body_bytes", max_body_bytes, 1024, 1073741824.0, 1048576)},
    {D("header_timeout", header_timeout_ms, SECOND_MS, "10s")},
    {D("idle_timeout", idle_timeout_ms, SECOND_MS, "60s")},
    {S("public_url", public_url, CFG_HTTP, "")},
};
#undef ST

#define ST tr_config_kubernetes
static const cfg_field kubernetes_fields[] = {
    {B("enabled", enabled, 1)},
    {S("kubeconfig", kubeconfig, 0, "auto")},
    {S("context", context, 0, "")},
    {S("cluster_name", cluster_name, CFG_NONEMPTY, "default")},
    {L("namespaces", namespaces, NULL)},
    {L("exclude_namespaces", exclude_namespaces, default_exclude_namespaces)},
    {B("leader_election", leader_election, 0)},
    {S("lease_namespace", lease_namespace, 0, "")},
    {S("lease_name", lease_name, 0, "")},
    {D("lease_duration", lease_duration_ms, SECOND_MS, "15s")},
    {D("renew_deadline", renew_deadline_ms, SECOND_MS, "10s")},
    {D("retry_period", retry_period_ms, 100, "2s")},
    {D("recovery_hold", recovery_hold_ms, 0, "10m")},
    {I("unhealthy_min_count", unhealthy_min_count, 1, 1000, 3)},
    {I("restart_min_count", restart_min_count, 1, 1000, 2)},
    {I("image_pull_min_failures", image_pull_min_failures, 1, 1000, 2)},
    {I("mount_min_count", mount_min_count, 1, 1000, 2)},
    {D("scheduling_grace", scheduling_grace_ms, 0, "2m")},
};
#undef ST

#define ST tr_config_terraform
static const cfg_field terraform_fields[] = {
    {B("enabled", enabled, 1)},
    {L("log_dirs", log_dirs, NULL)},
    {S("webhook_hmac_key_file", webhook_hmac_key_file, CFG_FILE, "")},
    {S("tfc_token_env", tfc_token_env, CFG_ENV, "")},
    {S("tfc_base_url", tfc_base_url, CFG_NONEMPTY, "https://app.terraform.io")},
    {S("job_label", job_label, CFG_NONEMPTY, "triaged.io/terraform")},
    {D("rescan_interval", rescan_interval_ms, SECOND_MS, "30s")},
    {D("settle_time", settle_time_ms, 0, "5s")},
    {I("max_log_bytes", max_log_bytes, 65536, 1073741824.0, 33554432)},
};
#undef ST

#define ST tr_config_triage
static const cfg_field triage_fields[] = {
    {I("log_tail_lines", log_tail_lines, 1, 100000, 200)},
    {I("log_max_bytes", log_max_bytes, 1024, 67108864.0, 65536)},
    {I("token_budget", token_budget, 256, 10000000, 6000)},
    {D("dedup_window", dedup_window_ms, SECOND_MS, "30m")},
};
#undef ST

#define ST tr_config_llm
static const cfg_field llm_fields[] = {
    {E("provider", provider, provider_names, TR_CONFIG_LLM_OPENAI)},
    {S("base_url", base_url, CFG_URL | CFG_HTTP, "http://127.0.0.1:11434/v1")},
    {S("model", model, 0, "llama3.1")},
    {S("api_key_env", api_key_env, CFG_ENV, "OPENAI_API_KEY")},
    {S("api_key_file", api_key_file, CFG_FILE, "")},
    {S("deployment", deployment, 0, "")},
    {S("api_version", api_version, CFG_NONEMPTY, "2024-06-01")},
    {D("timeout", timeout_ms, SECOND_MS, "90s")},
    {I("max_concurrency", max_concurrency, 1, 64, 2)},
    {I("max_calls_per_hour", max_calls_per_hour, 1, 1000000, 60)},
    {I("max_tokens_per_day", max_tokens_per_day, 1, 1e12, 2000000)},
    {E("structured_output", structured_output, output_names, TR_CONFIG_OUTPUT_JSON_SCHEMA)},
    {S("prompts_dir", prompts_dir, CFG_NONEMPTY, "./prompts")},
    {R("temperature", temperature, 0, 2, 0.2)},
    {I("max_output_tokens", max_output_tokens, 1, 1000000, 1024)},
    {H("headers", headers, 0)},
    {H("headers_env", headers_env, CFG_ENV)},
};
#undef ST

#define ST tr_config_gitops
static const cfg_field gitops_fields[] = {
    {S("url", url, CFG_URL, "")},
    {S("branch", branch, CFG_NONEMPTY, "main")},
    {S("token_env", token_env, CFG_ENV, "GIT_TOKEN")},
    {S("ssh_key_file", ssh_key_file, CFG_FILE, "")},
    {S("username", username, CFG_NONEMPTY, "x-access-token")},
    {L("allowed_paths", allowed_paths, NULL)},
    {S("author", author, CFG_NONEMPTY, "triaged <triaged@localhost>")},
    {D("fetch_interval", fetch_interval_ms, SECOND_MS, "5m")},
};
#undef ST

/* Repos have no defaults of their own: what they leave out comes from [gitops]. */
#define ST tr_config_repo
const cfg_field cfg_repo_fields[] = {
    {S("name", name, CFG_NONEMPTY, "")},
    {S("url", url, CFG_URL | CFG_NONEMPTY, "")},
    {S("branch", branch, CFG_NONEMPTY, "")},
    {S("token_env", token_env, CFG_ENV, "")},
    {S("ssh_key_file", ssh_key_file, CFG_FILE, "")},
    {S("username", username, CFG_NONEMPTY, "")},
    {L("allowed_paths", allowed_paths, NULL)},
};
const size_t cfg_repo_field_count = COUNT(cfg_repo_fields);
#undef ST

#define ST tr_config_forge
static const cfg_field forge_fields[] = {
    {E("kind", kind, forge_names, TR_CONFIG_FORGE_NONE)},
    {S("api_url", api_url, CFG_URL | CFG_HTTP, "")},
    {S("repo", repo, 0, "")},
    {S("token_env", token_env, CFG_ENV, "FORGE_TOKEN")},
    {L("labels", labels, default_labels)},
    {B("draft", draft, 1)},
};
#undef ST

#define ST tr_config_fixer
static const cfg_field fixer_fields[] = {
    {B("auto_pr", auto_pr, 0)},
    {R("min_confidence", min_confidence, 0, 1, 0.7)},
    {I("max_patch_lines", max_patch_lines, 1, 100000, 200)},
    {D("poll_interval", poll_interval_ms, SECOND_MS, "60s")},
    {L("namespaces", namespaces, NULL)},
    {.key = "severities", .kind = CFG_FLAGS, .offset = offsetof(ST, severities),
     .names = severity_names, .def_num = 0xF},
};
#undef ST

#define SLACK (1u << TR_CONFIG_NOTIFY_SLACK)
#define TEAMS (1u << TR_CONFIG_NOTIFY_TEAMS)
#define WEBHOOK (1u << TR_CONFIG_NOTIFY_WEBHOOK)

#define ST tr_config_notify
const cfg_field cfg_notify_fields[] = {
    {E("kind", kind, cfg_notify_kind_names, TR_CONFIG_NOTIFY_LOG)},
    {S("name", name, 0, "")},
    {S("webhook_url_env", webhook_url_env, CFG_ENV, ""), .kinds = SLACK | TEAMS},
    {S("url", url, CFG_URL | CFG_HTTP, ""), .kinds = WEBHOOK},
    {S("url_env", url_env, CFG_ENV, ""), .kinds = WEBHOOK},
    {S("hmac_secret_env", hmac_secret_env, CFG_ENV, ""), .kinds = WEBHOOK},
    {S("bot_token_env", bot_token_env, CFG_ENV, ""), .kinds = SLACK},
    {S("channel", channel, 0, ""), .kinds = SLACK},
    {S("signing_secret_env", signing_secret_env, CFG_ENV, ""), .kinds = SLACK},
    {L("namespaces", namespaces, NULL)},
    {E("min_severity", min_severity, severity_names, TR_CONFIG_SEVERITY_INFO)},
    {.key = "sources", .kind = CFG_FLAGS, .offset = offsetof(ST, sources),
     .names = source_names, .def_num = TR_CONFIG_SOURCE_ALL},
    {D("rate_limit", rate_limit_ms, 0, "10m")},
    {I("max_attempts", max_attempts, 1, 100, 8)},
};
const size_t cfg_notify_field_count = COUNT(cfg_notify_fields);
#undef ST

#define SECTION(n, f) {#n, offsetof(tr_config, n), f, COUNT(f)}
const cfg_section cfg_sections[] = {
    SECTION(daemon, daemon_fields),   SECTION(kubernetes, kubernetes_fields),
    SECTION(terraform, terraform_fields), SECTION(triage, triage_fields),
    SECTION(llm, llm_fields),         SECTION(gitops, gitops_fields),
    SECTION(forge, forge_fields),     SECTION(fixer, fixer_fields),
};
const size_t cfg_section_count = COUNT(cfg_sections);

void cfg_strlist_free(tr_config_strlist *list)
{
    size_t i;

    for (i = 0; i < list->count; i++)
        tr_free(list->items[i]);
    tr_free(list->items);
    list->items = NULL;
    list->count = 0;
}

int cfg_strlist_copy(tr_config_strlist *dst, const tr_config_strlist *src)
{
    size_t i;

    cfg_strlist_free(dst);
    if (src->count == 0)
        return TR_OK;
    dst->items = tr_calloc(src->count, sizeof(*dst->items));
    if (dst->items == NULL)
        return TR_ENOMEM;
    for (i = 0; i < src->count; i++) {
        dst->items[i] = tr_strdup(src->items[i]);
        /* count tracks what is allocated, so a failure here frees cleanly */
        if (dst->items[i] == NULL)
            return TR_ENOMEM;
        dst->count = i + 1;
    }
    return TR_OK;
}

static void headers_free(tr_config_headers *headers)
{
    size_t i;

    for (i = 0; i < headers->count; i++) {
        tr_free(headers->items[i].name);
        tr_free(headers->items[i].value);
    }
    tr_free(headers->items);
    headers->items = NULL;
    headers->count = 0;
}

static int field_default(char *at, const cfg_field *field)
{
    const char *why = NULL;
    size_t n;

    switch (field->kind) {
    case CFG_STRING:
        *(char **)at = tr_strdup(field->def_str);
        return *(char **)at == NULL ? TR_ENOMEM : TR_OK;
    case CFG_BOOL:
        *(bool *)at = field->def_num != 0;
        return TR_OK;
    case CFG_INT:
        *(int64_t *)at = (int64_t)field->def_num;
        return TR_OK;
    case CFG_FLOAT:
        *(double *)at = field->def_num;
        return TR_OK;
    case CFG_DURATION:
        /* the defaults are constants above; a typo there is a bug: fail loudly */
        return tr_config_duration_parse(field->def_str, (uint64_t *)at, &why);
    case CFG_ENUM:
        *(int *)at = (int)field->def_num;
        return TR_OK;
    case CFG_FLAGS:
        *(unsigned *)at = (unsigned)field->def_num;
        return TR_OK;
    case CFG_LIST: {
        tr_config_strlist *list = (tr_config_strlist *)at;

        for (n = 0; field->def_list != NULL && field->def_list[n] != NULL; n++)
            continue;
        if (n == 0)
            return TR_OK;
        list->items = tr_calloc(n, sizeof(*list->items));
        if (list->items == NULL)
            return TR_ENOMEM;
        for (list->count = 0; list->count < n; list->count++) {
            list->items[list->count] = tr_strdup(field->def_list[list->count]);
            if (list->items[list->count] == NULL)
                return TR_ENOMEM;
        }
        return TR_OK;
    }
    case CFG_HEADERS:
        return TR_OK;
    }
    return TR_EINVAL;
}

int cfg_fields_default(void *base, const cfg_field *fields, size_t count)
{
    size_t i;
    int rc;

    for (i = 0; i < count; i++) {
        rc = field_default((char *)base + fields[i].offset, &fields[i]);
        if (rc < 0)
            return rc;
    }
    return TR_OK;
}

void cfg_fields_free(void *base, const cfg_field *fields, size_t count)
{
    size_t i;
    char *at;

    for (i = 0; i < count; i++) {
        at = (char *)base + fields[i].offset;
        if (fields[i].kind == CFG_STRING) {
            tr_free(*(char **)at);
            *(char **)at = NULL;
        } else if (fields[i].kind == CFG_LIST) {
            cfg_strlist_free((tr_config_strlist *)at);
        } else if (fields[i].kind == CFG_HEADERS) {
            headers_free((tr_config_headers *)at);
        }
    }
}

static bool str_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool field_equal(const char *a, const char *b, const cfg_field *field)
{
    size_t i;

    switch (field->kind) {
    case CFG_STRING:
        return str_equal(*(char *const *)a, *(char *const *)b);
    case CFG_BOOL:
        return *(const bool *)a == *(const bool *)b;
    case CFG_INT:
        return *(const int64_t *)a == *(const int64_t *)b;
    case CFG_FLOAT:
        return *(const double *)a == *(const double *)b;
    case CFG_DURATION:
        return *(const uint64_t *)a == *(const uint64_t *)b;
    case CFG_ENUM:
        return *(const int *)a == *(const int *)b;
    case CFG_FLAGS:
        return *(const unsigned *)a == *(const unsigned *)b;
    case CFG_LIST: {
        const tr_config_strlist *la = (const tr_config_strlist *)a;
        const tr_config_strlist *lb = (const tr_config_strlist *)b;

        if (la->count != lb->count)
            return false;
        for (i = 0; i < la->count; i++)
            if (!str_equal(la->items[i], lb->items[i]))
                return false;
        return true;
    }
    case CFG_HEADERS: {
        const tr_config_headers *ha = (const tr_config_headers *)a;
        const tr_config_headers *hb = (const tr_config_headers *)b;

        if (ha->count != hb->count)
            return false;
        for (i = 0; i < ha->count; i++)
            if (!str_equal(ha->items[i].name, hb->items[i].name) ||
                !str_equal(ha->items[i].value, hb->items[i].value))
                return false;
        return true;
    }
    }
    return false;
}

bool cfg_fields_equal(const void *a, const void *b, const cfg_field *fields, size_t count)
{
    size_t i;

    for (i = 0; i < count; i++)
        if (!field_equal((const char *)a + fields[i].offset, (const char *)b + fields[i].offset,
                         &fields[i]))
            return false;
    return true;
}
