/*
 * config.h - triaged's configuration: the typed struct every other module
 * reads, loaded from one TOML file (config.example.toml documents every key).
 *
 * The loader is strict: unknown keys and tables, wrong types, bad durations,
 * bad enum names, out-of-range numbers and missing required values are all
 * errors reading `FILE:LINE: key: what is wrong` (a TOML syntax error reads
 * `FILE:LINE:COL: what is wrong`), with the full dotted key such as
 * `notify[1].kind` (arrays are indexed from 0, as in the file's order).
 *
 * Secrets never live in the file: keys ending in `_env` name an environment
 * variable, keys ending in `_file` name a file, and tr_config_secret_resolve()
 * reads the value when a module needs it. A key that would hold a secret
 * directly (`api_key`, `token`, `password`, ...) is refused with a message
 * pointing at the `_env` / `_file` key to use instead.
 *
 * Relative paths (state_dir, prompts_dir, log_dirs, every `*_file`) are kept
 * as written and resolved against the working directory when they are used.
 *
 * A loaded tr_config owns all of its strings; it is read-only afterwards and
 * freed with tr_config_free().
 */
#ifndef TR_CONFIG_H
#define TR_CONFIG_H

#include "buf.h"
#include "error.h"
#include "log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tr_config_strlist {
    char **items;
    size_t count;
} tr_config_strlist;

/* One HTTP header of [llm.headers] (value) or [llm.headers_env] (env var name). */
typedef struct tr_config_header {
    char *name;
    char *value;
} tr_config_header;

typedef struct tr_config_headers {
    tr_config_header *items;
    size_t count;
} tr_config_headers;

typedef enum tr_config_llm_provider {
    TR_CONFIG_LLM_OPENAI = 0, /* any OpenAI-compatible server (llama.cpp, Ollama, vLLM) */
    TR_CONFIG_LLM_AZURE = 1,
    TR_CONFIG_LLM_NONE = 2, /* rule-based analysis only */
} tr_config_llm_provider;

typedef enum tr_config_llm_output {
    TR_CONFIG_OUTPUT_JSON_SCHEMA = 0,
    TR_CONFIG_OUTPUT_JSON_OBJECT = 1,
    TR_CONFIG_OUTPUT_PROMPT = 2,
} tr_config_llm_output;

typedef enum tr_config_forge_kind {
    TR_CONFIG_FORGE_GITHUB = 0,
    TR_CONFIG_FORGE_GITLAB = 1,
    TR_CONFIG_FORGE_GITEA = 2,
    TR_CONFIG_FORGE_NONE = 3,
} tr_config_forge_kind;

typedef enum tr_config_notify_kind {
    TR_CONFIG_NOTIFY_SLACK = 0,
    TR_CONFIG_NOTIFY_TEAMS = 1,
    TR_CONFIG_NOTIFY_WEBHOOK = 2,
    TR_CONFIG_NOTIFY_LOG = 3,
} tr_config_notify_kind;

typedef enum tr_config_severity {
    TR_CONFIG_SEVERITY_INFO = 0,
    TR_CONFIG_SEVERITY_WARNING = 1,
    TR_CONFIG_SEVERITY_ERROR = 2,
    TR_CONFIG_SEVERITY_CRITICAL = 3,
} tr_config_severity;

/* Bits of tr_config_notify.sources. */
#define TR_CONFIG_SOURCE_KUBERNETES 1u
#define TR_CONFIG_SOURCE_TERRAFORM 2u
#define TR_CONFIG_SOURCE_ALL (TR_CONFIG_SOURCE_KUBERNETES | TR_CONFIG_SOURCE_TERRAFORM)

typedef struct tr_config_daemon {
    char *state_dir;
    char *listen;         /* HOST:PORT, [V6]:PORT or :PORT */
    char *api_token_file; /* "" = none; required when listen is not loopback */
    tr_log_level log_level;
    tr_log_format log_format;
    uint64_t shutdown_timeout_ms;
    int64_t max_body_bytes;
    uint64_t header_timeout_ms; /* a client must send its request head within this */
    uint64_t idle_timeout_ms;   /* keep-alive idle and write timeout */
    char *public_url;           /* "" = no links back to the API in notifications */
} tr_config_daemon;

typedef struct tr_config_kubernetes {
    bool enabled;
    /* "auto" (default), "" (in-cluster) or a path: see tr_config_kubeconfig_path(). */
    char *kubeconfig;
    char *context;
    char *cluster_name;
    tr_config_strlist namespaces; /* empty = all */
    tr_config_strlist exclude_namespaces;
    bool leader_election;          /* one active replica through a coordination Lease */
    char *lease_namespace;         /* "" = the pod's namespace, else "default" */
    char *lease_name;              /* "" = triaged-<cluster_name> */
    uint64_t lease_duration_ms;
    uint64_t renew_deadline_ms;
    uint64_t retry_period_ms;
    uint64_t recovery_hold_ms;     /* healthy this long before an incident resolves */
    int64_t unhealthy_min_count;   /* probe failures before Unhealthy */
    int64_t restart_min_count;     /* restarts before a crash counts without BackOff */
    int64_t image_pull_min_failures;
    int64_t mount_min_count;       /* FailedMount occurrences */
    uint64_t scheduling_grace_ms;  /* unschedulable this long before FailedScheduling counts */
} tr_config_kubernetes;

typedef struct tr_config_terraform {
    bool enabled;
    tr_config_strlist log_dirs;
    char *webhook_hmac_key_file; /* "" = /hooks/terraform-cloud disabled */
    char *tfc_token_env;
    char *tfc_base_url;  /* HCP Terraform or a Terraform Enterprise host */
    char *job_label;
    uint64_t rescan_interval_ms;
    uint64_t settle_time_ms;
    int64_t max_log_bytes; /* largest run log taken over HTTP or read from a Job */
} tr_config_terraform;

typedef struct tr_config_triage {
    int64_t log_tail_lines;
    int64_t log_max_bytes;
    int64_t token_budget;
    uint64_t dedup_window_ms;
} tr_config_triage;

typedef struct tr_config_llm {
    tr_config_llm_provider provider;
    char *base_url;
    char *model;
    char *api_key_env;  /* "" when api_key_file is used */
    char *api_key_file;
    char *deployment;   /* azure */
    char *api_version;  /* azure */
    uint64_t timeout_ms;
    int64_t max_concurrency;
    int64_t max_calls_per_hour;
    int64_t max_tokens_per_day;
    tr_config_llm_output structured_output;
    char *prompts_dir;
    double temperature;
    int64_t max_output_tokens;
    tr_config_headers headers;     /* extra headers, values are not secrets */
    tr_config_headers headers_env; /* extra headers whose value is read from env */
} tr_config_llm;

/* One [[gitops.repos]]; keys it does not set are inherited from [gitops]. */
typedef struct tr_config_repo {
    char *name;
    char *url;
    char *branch;
    char *token_env;
    char *ssh_key_file;
    char *username;
    tr_config_strlist allowed_paths;
} tr_config_repo;

typedef struct tr_config_gitops {
    char *url; /* "" = no GitOps repository */
    char *branch;
    char *token_env;    /* used for https URLs */
    char *ssh_key_file; /* used for ssh URLs */
    char *username;     /* https user name sent with the token */
    tr_config_strlist allowed_paths;
    char *author;
    uint64_t fetch_interval_ms;
    tr_config_repo *repos;
    size_t repo_count;
} tr_config_gitops;

typedef struct tr_config_forge {
    tr_config_forge_kind kind;
    char *api_url; /* "" = the public default of the kind */
    char *repo;
    char *token_env;
    tr_config_strlist labels;
    bool draft;
} tr_config_forge;

typedef struct tr_config_fixer {
    bool auto_pr;
    double min_confidence;
    int64_t max_patch_lines;
    uint64_t poll_interval_ms;     /* how often open PRs are polled */
    tr_config_strlist namespaces;  /* auto_pr only here; empty = all */
    unsigned severities;           /* bits 1 << tr_config_severity auto_pr takes; never 0 */
} tr_config_fixer;

typedef struct tr_config_notify {
    tr_config_notify_kind kind;
    char *name; /* unique; default "<kind>-<index>" */
    char *webhook_url_env;    /* slack, teams */
    char *url;                /* webhook */
    char *url_env;            /* webhook */
    char *hmac_secret_env;    /* webhook */
    char *bot_token_env;      /* slack */
    char *channel;            /* slack */
    char *signing_secret_env; /* slack */
    tr_config_strlist namespaces; /* empty = all */
    tr_config_severity min_severity;
    unsigned sources; /* TR_CONFIG_SOURCE_* bits, never 0 */
    uint64_t rate_limit_ms;
    int64_t max_attempts;
} tr_config_notify;

typedef struct tr_config {
    char *source; /* file name the config came from (for messages) */
    tr_config_daemon daemon;
    tr_config_kubernetes kubernetes;
    tr_config_terraform terraform;
    tr_config_triage triage;
    tr_config_llm llm;
    tr_config_gitops gitops;
    tr_config_forge forge;
    tr_config_fixer fixer;
    tr_config_notify *notify;
    size_t notify_count;
} tr_config;

/*
 * All defaults (kubernetes enabled, no notifier). *out is owned by the
 * caller (tr_config_free). Returns 0 or TR_ENOMEM.
 */
int tr_config_default(tr_config **out);

/*
 * Load the file at path. On success *out is owned by the caller
 * (tr_config_free); on failure *out is NULL, err holds the message and the
 * return is TR_ECONFIG (TR_ENOMEM when memory ran out).
 */
int tr_config_load(tr_config **out, const char *path, tr_error *err);

/* Same from text; name_for_errors stands in for FILE in messages. */
int tr_config_load_string(tr_config **out, const char *text, size_t len,
                          const char *name_for_errors, tr_error *err);

void tr_config_free(tr_config *cfg);

/* Field-by-field comparison (the source name is not compared). */
bool tr_config_equal(const tr_config *a, const tr_config *b);

/*
 * Append the effective configuration to out as TOML that loads back to an
 * equal config (except URLs that carried credentials, which are masked).
 * No secret value is printed: `*_env` keys show the variable name with
 * `# set` / `# not set`, `*_file` keys the path with `# readable` / `# missing`.
 */
int tr_config_print(const tr_config *cfg, tr_buf *out);

/*
 * Append url to out with credentials masked: the userinfo of
 * scheme://user:pass@host becomes `***`, every query value becomes `***`
 * (`?token=***&b=***`), and a fragment becomes `#***`.
 */
int tr_config_url_mask(tr_buf *out, const char *url);

/*
 * Durations are a sequence of <number><unit>, units h, m, s, ms from the
 * largest to the smallest ("500ms", "90s", "1h30m"), at most 8760h.
 * Returns 0 and *ms_out, or TR_EINVAL with *why_out (static text) saying what
 * is wrong; why_out may be NULL.
 */
#define TR_CONFIG_DURATION_MAX_MS ((uint64_t)8760 * 3600 * 1000)
int tr_config_duration_parse(const char *text, uint64_t *ms_out, const char **why_out);
/* The shortest text that parses back to ms ("1h30m", "500ms", "0s"). */
void tr_config_duration_format(uint64_t ms, char *out, size_t size);

/*
 * Read a secret: the environment variable env_name when it is set and not
 * empty, else the contents of file_path (one trailing newline stripped).
 * Either may be NULL or "". On success *out is owned by the caller, who frees
 * it with tr_secret_free. Errors name the variable and/or file, never the
 * value: TR_ENOTFOUND (not set, no file), TR_EIO (file unreadable),
 * TR_ETOOBIG (file over 64 KiB), TR_EINVAL (nothing configured).
 */
#define TR_CONFIG_SECRET_MAX_BYTES ((size_t)64 * 1024)
int tr_config_secret_resolve(const char *env_name, const char *file_path, char **out,
                             tr_error *err);
/* Zero then free a secret from tr_config_secret_resolve; NULL is fine. */
void tr_secret_free(char *secret);

/*
 * Where the Kubernetes client configuration comes from, for the value of
 * kubernetes.kubeconfig: "" means in-cluster (*path_out NULL); "auto" means
 * in-cluster when KUBERNETES_SERVICE_HOST is set, else the first file of
 * $KUBECONFIG, else ~/.kube/config; anything else is that path. A non-NULL
 * *path_out is owned by the caller (tr_free). Returns 0, TR_ENOMEM, or
 * TR_ENOTFOUND when "auto" finds none of the three (no cluster to watch).
 */
int tr_config_kubeconfig_path(const char *setting, char **path_out, tr_error *err);

#endif
