/*
 * config.c - tr_config's life cycle: defaults, loading a file or a string,
 * comparing, freeing; and the checks that span several keys (listen vs
 * api_token_file, provider vs deployment, forge vs gitops, notifier kinds).
 *
 * When a required key is absent, its error carries the line of the key that
 * made it required (llm.provider for llm.deployment), else of its table.
 */
#include "config_internal.h"

#include "alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NOTIFY_MAX 64
#define REPO_MAX 64

static const cfg_section *find_section(const char *name)
{
    size_t i;

    for (i = 0; i < cfg_section_count; i++)
        if (strcmp(cfg_sections[i].name, name) == 0)
            return &cfg_sections[i];
    return NULL;
}

static int config_new_default(tr_config **out)
{
    tr_config *cfg;
    size_t i;
    int rc;

    *out = NULL;
    cfg = tr_calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return TR_ENOMEM;
    for (i = 0; i < cfg_section_count; i++) {
        rc = cfg_fields_default((char *)cfg + cfg_sections[i].offset, cfg_sections[i].fields,
                                cfg_sections[i].field_count);
        if (rc < 0) {
            tr_config_free(cfg);
            return rc;
        }
    }
    *out = cfg;
    return TR_OK;
}

int tr_config_default(tr_config **out)
{
    return config_new_default(out);
}

void tr_config_free(tr_config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < cfg->gitops.repo_count; i++)
        cfg_fields_free(&cfg->gitops.repos[i], cfg_repo_fields, cfg_repo_field_count);
    tr_free(cfg->gitops.repos);
    for (i = 0; i < cfg->notify_count; i++)
        cfg_fields_free(&cfg->notify[i], cfg_notify_fields, cfg_notify_field_count);
    tr_free(cfg->notify);
    for (i = 0; i < cfg_section_count; i++)
        cfg_fields_free((char *)cfg + cfg_sections[i].offset, cfg_sections[i].fields,
                        cfg_sections[i].field_count);
    tr_free(cfg->source);
    tr_free(cfg);
}

bool tr_config_equal(const tr_config *a, const tr_config *b)
{
    size_t i;

    for (i = 0; i < cfg_section_count; i++)
        if (!cfg_fields_equal((const char *)a + cfg_sections[i].offset,
                              (const char *)b + cfg_sections[i].offset, cfg_sections[i].fields,
                              cfg_sections[i].field_count))
            return false;
    if (a->gitops.repo_count != b->gitops.repo_count || a->notify_count != b->notify_count)
        return false;
    for (i = 0; i < a->gitops.repo_count; i++)
        if (!cfg_fields_equal(&a->gitops.repos[i], &b->gitops.repos[i], cfg_repo_fields,
                              cfg_repo_field_count))
            return false;
    for (i = 0; i < a->notify_count; i++)
        if (!cfg_fields_equal(&a->notify[i], &b->notify[i], cfg_notify_fields,
                              cfg_notify_field_count))
            return false;
    return true;
}

/* HOST:PORT, [V6]:PORT or :PORT; *loopback tells whether only this host can connect. */
static const char *parse_listen(const char *listen, bool *loopback)
{
    char host[256];
    const char *colon, *port;
    struct in_addr v4;
    struct in6_addr v6;
    size_t host_len, i;
    long port_number = 0;

    *loopback = false;
    if (listen[0] == '[') {
        colon = strchr(listen, ']');
        if (colon == NULL || colon[1] != ':')
            return "is not HOST:PORT (e.g. \"127.0.0.1:8080\" or \"[::1]:8080\")";
        host_len = (size_t)(colon - listen - 1);
        port = colon + 2;
        if (host_len >= sizeof(host))
            return "has a host name that is too long";
        memcpy(host, listen + 1, host_len);
        host[host_len] = '\0';
        if (inet_pton(AF_INET6, host, &v6) != 1)
            return "has an invalid IPv6 address between [ and ]";
        *loopback = IN6_IS_ADDR_LOOPBACK(&v6);
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL)
            return "is not HOST:PORT (e.g. \"127.0.0.1:8080\")";
        host_len = (size_t)(colon - listen);
        port = colon + 1;
        if (host_len >= sizeof(host))
            return "has a host name that is too long";
        memcpy(host, listen, host_len);
        host[host_len] = '\0';
        if (strchr(host, ':') != NULL)
            return "has an IPv6 address without brackets (write \"[::1]:8080\")";
        for (i = 0; i < host_len; i++)
            if (!((host[i] >= 'a' && host[i] <= 'z') || (host[i] >= 'A' && host[i] <= 'Z') ||
                  (host[i] >= '0' && host[i] <= '9') || host[i] == '.' || host[i] == '-'))
                return "has an invalid host name";
        if (inet_pton(AF_INET, host, &v4) == 1)
            *loopback = (ntohl(v4.s_addr) >> 24) == 127;
        else
            *loopback = strcmp(host, "localhost") == 0;
    }
    for (i = 0; port[i] != '\0'; i++) {
        if (port[i] < '0' || port[i] > '9' || i >= 5)
            return "has an invalid port (1 to 65535)";
        port_number = port_number * 10 + (port[i] - '0');
    }
    if (port_number < 1 || port_number > 65535)
        return "has an invalid port (1 to 65535)";
    return NULL;
}

static int check_daemon(load_ctx *ctx, tr_config *cfg, const tr_toml_value *table)
{
    const tr_toml_value *node = cfg_node_or_table(table, "listen");
    const char *why;
    bool loopback = false;

    why = parse_listen(cfg->daemon.listen, &loopback);
    if (why != NULL)
        return cfg_fail(ctx, node, "daemon.listen", "\"%.80s\" %s", cfg->daemon.listen, why);
    if (!loopback && cfg->daemon.api_token_file[0] == '\0')
        return cfg_fail(ctx, node, "daemon.listen",
                        "\"%.80s\" is not a loopback address, so daemon.api_token_file is "
                        "required (clients must present a token)", cfg->daemon.listen);
    return TR_OK;
}

/* client-go's rule: a leader must try to renew several times before its Lease runs out. */
static int check_kubernetes(load_ctx *ctx, tr_config *cfg, const tr_toml_value *table)
{
    const tr_config_kubernetes *k = &cfg->kubernetes;

    if (k->renew_deadline_ms >= k->lease_duration_ms)
        return cfg_fail(ctx, cfg_node_or_table(table, "renew_deadline"),
                        "kubernetes.renew_deadline", "must be shorter than lease_duration");
    if (k->retry_period_ms >= k->renew_deadline_ms)
        return cfg_fail(ctx, cfg_node_or_table(table, "retry_period"),
                        "kubernetes.retry_period", "must be shorter than renew_deadline");
    return TR_OK;
}

static int set_string(load_ctx *ctx, char **dst, const char *value)
{
    char *copy = tr_strdup(value);

    if (copy == NULL)
        return cfg_fail_nomem(ctx);
    tr_free(*dst);
    *dst = copy;
    return TR_OK;
}

static bool headers_have(const tr_config_headers *headers, const char *name)
{
    size_t i;

    for (i = 0; i < headers->count; i++)
        if (strcasecmp(headers->items[i].name, name) == 0)
            return true;
    return false;
}

static int check_llm(load_ctx *ctx, tr_config *cfg, const tr_toml_value *table, uint64_t seen)
{
    const cfg_field *fields = find_section("llm")->fields;
    size_t count = find_section("llm")->field_count;
    tr_config_llm *llm = &cfg->llm;
    size_t i;

    for (i = 0; i < llm->headers_env.count; i++)
        if (headers_have(&llm->headers, llm->headers_env.items[i].name))
            return cfg_fail(ctx, cfg_node_or_table(table, "headers_env"), "llm.headers_env",
                            "header \"%s\" is also set in llm.headers",
                            llm->headers_env.items[i].name);
    if (llm->api_key_file[0] != '\0' && llm->api_key_env[0] != '\0') {
        /* the default api_key_env gives way to an api_key_file; two explicit ones conflict */
        if (cfg_was_seen(seen, fields, count, "api_key_env") && llm->provider != TR_CONFIG_LLM_NONE)
            return cfg_fail(ctx, cfg_node_or_table(table, "api_key_file"), "llm.api_key_file",
                            "set either llm.api_key_env or llm.api_key_file, not both");
        if (set_string(ctx, &llm->api_key_env, "") < 0)
            return TR_ENOMEM;
    }
    if (llm->provider == TR_CONFIG_LLM_NONE)
        return TR_OK;
    if (llm->provider == TR_CONFIG_LLM_AZURE && llm->deployment[0] == '\0')
        return cfg_fail(ctx, cfg_node_or_table(table, "provider"), "llm.deployment",
                        "required when llm.provider = \"azure\"");
    if (llm->provider == TR_CONFIG_LLM_OPENAI && llm->model[0] == '\0')
        return cfg_fail(ctx, cfg_node_or_table(table, "model"), "llm.model",
                        "required when llm.provider = \"openai\"");
    return TR_OK;
}

static bool repo_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > 100 || name[0] == '.' || strcmp(name, "default") == 0)
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* What a [[gitops.repos]] entry leaves out comes from [gitops]. */
static int inherit_repo(load_ctx *ctx, tr_config_repo *repo, const tr_config_gitops *gitops,
                        uint64_t seen)
{
    static const char *const inherited[] = {"branch", "token_env", "ssh_key_file", "username",
                                            "allowed_paths", NULL};
    const cfg_field *gitops_fields = find_section("gitops")->fields;
    size_t gitops_count = find_section("gitops")->field_count, i;
    int repo_index, gitops_index;
    char *dst;
    const char *src;

    for (i = 0; inherited[i] != NULL; i++) {
        repo_index = cfg_field_index(cfg_repo_fields, cfg_repo_field_count, inherited[i]);
        gitops_index = cfg_field_index(gitops_fields, gitops_count, inherited[i]);
        if (seen & ((uint64_t)1 << repo_index))
            continue;
        dst = (char *)repo + cfg_repo_fields[repo_index].offset;
        src = (const char *)gitops + gitops_fields[gitops_index].offset;
        if (cfg_repo_fields[repo_index].kind == CFG_LIST) {
            if (cfg_strlist_copy((tr_config_strlist *)dst, (const tr_config_strlist *)src) < 0)
                return cfg_fail_nomem(ctx);
        } else if (set_string(ctx, (char **)dst, *(char *const *)src) < 0) {
            return TR_ENOMEM;
        }
    }
    return TR_OK;
}

static int load_repos(load_ctx *ctx, tr_config *cfg, const tr_toml_value *node)
{
    char prefix[64], key[CFG_KEY_MAX];
    const tr_toml_value *item;
    tr_config_repo *repo;
    uint64_t seen = 0;
    size_t i, j, n = tr_toml_count(node);
    int rc;

    if (tr_toml_type_of(node) != TR_TOML_ARRAY)
        return cfg_fail(ctx, node, "gitops.repos",
                        "expected an array of tables ([[gitops.repos]]), got %s",
                        tr_toml_type_name(tr_toml_type_of(node)));
    if (n > REPO_MAX)
        return cfg_fail(ctx, node, "gitops.repos", "more than %d repositories", REPO_MAX);
    if (n == 0)
        return TR_OK;
    cfg->gitops.repos = tr_calloc(n, sizeof(*cfg->gitops.repos));
    if (cfg->gitops.repos == NULL)
        return cfg_fail_nomem(ctx);
    cfg->gitops.repo_count = n;
    for (i = 0; i < n; i++) {
        repo = &cfg->gitops.repos[i];
        item = tr_toml_at(node, i);
        (void)snprintf(prefix, sizeof(prefix), "gitops.repos[%zu]", i);
        if (tr_toml_type_of(item) != TR_TOML_TABLE)
            return cfg_fail(ctx, item, prefix, "expected a table, got %s",
                            tr_toml_type_name(tr_toml_type_of(item)));
        rc = cfg_load_fields(ctx, repo, cfg_repo_fields, cfg_repo_field_count, item, prefix, 0,
                             NULL, &seen);
        if (rc < 0)
            return rc;
        for (j = 0; j < 2; j++) {
            if ((j == 0 ? repo->name : repo->url) == NULL) {
                (void)snprintf(key, sizeof(key), "%s.%s", prefix, j == 0 ? "name" : "url");
                return cfg_fail(ctx, item, key, "required");
            }
        }
        rc = inherit_repo(ctx, repo, &cfg->gitops, seen);
        if (rc < 0)
            return rc;
        (void)snprintf(key, sizeof(key), "%s.name", prefix);
        /* It names the clone's directory under state_dir: no path tricks. */
        if (!repo_name_ok(repo->name))
            return cfg_fail(ctx, tr_toml_get(item, "name"), key,
                            "\"%.80s\" must be letters, digits, '.', '_' or '-' (100 at most) "
                            "and not start with '.'", repo->name);
        for (j = 0; j < i; j++)
            if (strcmp(cfg->gitops.repos[j].name, repo->name) == 0)
                return cfg_fail(ctx, tr_toml_get(item, "name"), key,
                                "\"%s\" is already used by gitops.repos[%zu]", repo->name, j);
    }
    return TR_OK;
}

static int check_notify(load_ctx *ctx, tr_config_notify *notify, const tr_toml_value *item,
                        const char *prefix)
{
    char key[CFG_KEY_MAX];

    switch (notify->kind) {
    case TR_CONFIG_NOTIFY_SLACK:
        if (notify->webhook_url_env[0] == '\0' && notify->bot_token_env[0] == '\0') {
            (void)snprintf(key, sizeof(key), "%s.webhook_url_env", prefix);
            return cfg_fail(ctx, cfg_node_or_table(item, "kind"), key,
                            "required for kind = \"slack\" (or bot_token_env with channel)");
        }
        if (notify->bot_token_env[0] != '\0' && notify->channel[0] == '\0') {
            (void)snprintf(key, sizeof(key), "%s.channel", prefix);
            return cfg_fail(ctx, cfg_node_or_table(item, "bot_token_env"), key,
                            "required with bot_token_env");
        }
        return TR_OK;
    case TR_CONFIG_NOTIFY_TEAMS:
        if (notify->webhook_url_env[0] == '\0') {
            (void)snprintf(key, sizeof(key), "%s.webhook_url_env", prefix);
            return cfg_fail(ctx, cfg_node_or_table(item, "kind"), key,
                            "required for kind = \"teams\"");
        }
        return TR_OK;
    case TR_CONFIG_NOTIFY_WEBHOOK:
        (void)snprintf(key, sizeof(key), "%s.url", prefix);
        if (notify->url[0] == '\0' && notify->url_env[0] == '\0')
            return cfg_fail(ctx, cfg_node_or_table(item, "kind"), key,
                            "required for kind = \"webhook\" (or url_env)");
        if (notify->url[0] != '\0' && notify->url_env[0] != '\0')
            return cfg_fail(ctx, cfg_node_or_table(item, "url_env"), key,
                            "set either url or url_env, not both");
        return TR_OK;
    case TR_CONFIG_NOTIFY_LOG:
        return TR_OK;
    }
    return TR_OK;
}

static int load_one_notify(load_ctx *ctx, tr_config *cfg, size_t index,
                           const tr_toml_value *item)
{
    char prefix[64], key[CFG_KEY_MAX], name[64];
    tr_config_notify *notify = &cfg->notify[index];
    uint64_t seen = 0;
    size_t j;
    int rc;

    (void)snprintf(prefix, sizeof(prefix), "notify[%zu]", index);
    (void)snprintf(key, sizeof(key), "%s.kind", prefix);
    rc = cfg_fields_default(notify, cfg_notify_fields, cfg_notify_field_count);
    if (rc < 0)
        return cfg_fail_nomem(ctx);
    if (tr_toml_type_of(item) != TR_TOML_TABLE)
        return cfg_fail(ctx, item, prefix, "expected a table, got %s",
                        tr_toml_type_name(tr_toml_type_of(item)));
    if (tr_toml_get(item, "kind") == NULL)
        return cfg_fail(ctx, item, key, "required (slack, teams, webhook or log)");
    /* kind first: it decides which other keys are allowed */
    rc = cfg_load_value(ctx, tr_toml_get(item, "kind"), key,
                        &cfg_notify_fields[cfg_field_index(cfg_notify_fields,
                                                           cfg_notify_field_count, "kind")],
                        (char *)&notify->kind);
    if (rc < 0)
        return rc;
    rc = cfg_load_fields(ctx, notify, cfg_notify_fields, cfg_notify_field_count, item, prefix,
                         1u << notify->kind, NULL, &seen);
    if (rc < 0)
        return rc;
    rc = check_notify(ctx, notify, item, prefix);
    if (rc < 0)
        return rc;
    if (notify->name[0] == '\0') {
        (void)snprintf(name, sizeof(name), "%s-%zu", cfg_notify_kind_names[notify->kind], index);
        if (set_string(ctx, &notify->name, name) < 0)
            return TR_ENOMEM;
    }
    for (j = 0; j < index; j++) {
        if (strcmp(cfg->notify[j].name, notify->name) == 0) {
            (void)snprintf(key, sizeof(key), "%s.name", prefix);
            return cfg_fail(ctx, cfg_node_or_table(item, "name"), key,
                            "\"%s\" is already used by notify[%zu]", notify->name, j);
        }
    }
    return TR_OK;
}

static int load_notify(load_ctx *ctx, tr_config *cfg, const tr_toml_value *node)
{
    size_t i, n;
    int rc;

    if (tr_toml_type_of(node) != TR_TOML_ARRAY)
        return cfg_fail(ctx, node, "notify", "expected an array of tables ([[notify]]), got %s",
                        tr_toml_type_name(tr_toml_type_of(node)));
    n = tr_toml_count(node);
    if (n > NOTIFY_MAX)
        return cfg_fail(ctx, node, "notify", "more than %d notifiers", NOTIFY_MAX);
    if (n == 0)
        return TR_OK;
    cfg->notify = tr_calloc(n, sizeof(*cfg->notify));
    if (cfg->notify == NULL)
        return cfg_fail_nomem(ctx);
    cfg->notify_count = n;
    for (i = 0; i < n; i++) {
        rc = load_one_notify(ctx, cfg, i, tr_toml_at(node, i));
        if (rc < 0)
            return rc;
    }
    return TR_OK;
}

static int check_cross(load_ctx *ctx, tr_config *cfg, const tr_toml_value *root)
{
    const tr_toml_value *forge = tr_toml_get(root, "forge");
    const tr_toml_value *fixer = tr_toml_get(root, "fixer");
    const cfg_section *section = find_section("forge");
    const char *kind = section->fields[cfg_field_index(section->fields, section->field_count,
                                                       "kind")].names[cfg->forge.kind];

    if (cfg->fixer.auto_pr && cfg->forge.kind == TR_CONFIG_FORGE_NONE)
        return cfg_fail(ctx, cfg_node_or_table(fixer, "auto_pr"), "fixer.auto_pr",
                        "needs a forge to open pull requests (set forge.kind)");
    if (cfg->forge.kind == TR_CONFIG_FORGE_NONE)
        return TR_OK;
    if (cfg->forge.repo[0] == '\0')
        return cfg_fail(ctx, cfg_node_or_table(forge, "kind"), "forge.repo",
                        "required when forge.kind = \"%s\"", kind);
    if (cfg->gitops.url[0] == '\0' && cfg->gitops.repo_count == 0)
        return cfg_fail(ctx, cfg_node_or_table(forge, "kind"), "forge.kind",
                        "\"%s\" needs a repository to patch: set gitops.url", kind);
    return TR_OK;
}

static int load_section(load_ctx *ctx, tr_config *cfg, size_t index, const tr_toml_value *table)
{
    const cfg_section *section = &cfg_sections[index];
    const tr_toml_value *repos;
    uint64_t seen = 0;
    bool is_gitops = strcmp(section->name, "gitops") == 0;
    int rc;

    if (tr_toml_type_of(table) != TR_TOML_TABLE)
        return cfg_fail(ctx, table, section->name, "expected a table, got %s",
                        tr_toml_type_name(tr_toml_type_of(table)));
    rc = cfg_load_fields(ctx, (char *)cfg + section->offset, section->fields,
                         section->field_count, table, section->name, 0,
                         is_gitops ? "repos" : NULL, &seen);
    if (rc < 0)
        return rc;
    if (strcmp(section->name, "daemon") == 0)
        return check_daemon(ctx, cfg, table);
    if (strcmp(section->name, "llm") == 0)
        return check_llm(ctx, cfg, table, seen);
    if (strcmp(section->name, "kubernetes") == 0)
        return check_kubernetes(ctx, cfg, table);
    repos = is_gitops ? tr_toml_get(table, "repos") : NULL;
    if (repos != NULL)
        return load_repos(ctx, cfg, repos);
    return TR_OK;
}

static int load_root(load_ctx *ctx, tr_config *cfg, const tr_toml_value *root)
{
    const tr_toml_value *node;
    const char *name;
    size_t i, j;
    int rc;

    for (i = 0; i < tr_toml_count(root); i++) {
        name = cfg_key_at(root, i);
        node = tr_toml_at(root, i);
        if (strcmp(name, "notify") == 0) {
            rc = load_notify(ctx, cfg, node);
            if (rc < 0)
                return rc;
            continue;
        }
        for (j = 0; j < cfg_section_count; j++)
            if (strcmp(name, cfg_sections[j].name) == 0)
                break;
        if (j == cfg_section_count) {
            if (tr_toml_type_of(node) == TR_TOML_TABLE)
                return cfg_fail(ctx, node, name, "unknown table");
            return cfg_fail(ctx, node, name, "unknown key (keys belong in a table such as "
                                             "[daemon])");
        }
        rc = load_section(ctx, cfg, j, node);
        if (rc < 0)
            return rc;
    }
    /* a section left out keeps its defaults, which must pass the same checks */
    if (tr_toml_get(root, "daemon") == NULL) {
        rc = check_daemon(ctx, cfg, NULL);
        if (rc < 0)
            return rc;
    }
    return check_cross(ctx, cfg, root);
}

int tr_config_load_string(tr_config **out, const char *text, size_t len,
                          const char *name_for_errors, tr_error *err)
{
    load_ctx ctx = {name_for_errors != NULL ? name_for_errors : "<config>", err};
    tr_error parse_err = {0, ""};
    tr_toml_value *root = NULL;
    tr_config *cfg = NULL;
    int rc;

    *out = NULL;
    rc = tr_toml_parse(&root, text, len, &parse_err);
    if (rc == TR_ENOMEM) {
        rc = cfg_fail_nomem(&ctx);
        goto cleanup;
    }
    if (rc < 0) {
        /* the parser's syntax errors start with "LINE:COLUMN: " */
        rc = tr_error_set(err, TR_ECONFIG, rc == TR_EPARSE ? "%s:%s" : "%s: %s", ctx.file,
                          parse_err.message);
        goto cleanup;
    }
    rc = config_new_default(&cfg);
    if (rc < 0) {
        rc = cfg_fail_nomem(&ctx);
        goto cleanup;
    }
    cfg->source = tr_strdup(ctx.file);
    if (cfg->source == NULL) {
        rc = cfg_fail_nomem(&ctx);
        goto cleanup;
    }
    rc = load_root(&ctx, cfg, root);
    if (rc < 0)
        goto cleanup;
    *out = cfg;
    cfg = NULL;
cleanup:
    tr_config_free(cfg);
    tr_toml_free(root);
    return rc;
}

int tr_config_load(tr_config **out, const char *path, tr_error *err)
{
    tr_buf text = TR_BUF_INIT(TR_TOML_MAX_INPUT);
    char chunk[16384];
    size_t n;
    FILE *file;
    int rc;

    *out = NULL;
    file = fopen(path, "rb");
    if (file == NULL)
        return tr_error_set(err, TR_ECONFIG, "%s: cannot read: %s", path, strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), file)) > 0) {
        rc = tr_buf_put(&text, chunk, n);
        if (rc < 0) {
            rc = tr_error_set(err, rc == TR_ENOMEM ? TR_ENOMEM : TR_ECONFIG,
                              "%s: cannot read: %s", path,
                              rc == TR_ENOMEM ? "out of memory" : "file is larger than 16 MiB");
            goto cleanup;
        }
    }
    if (ferror(file)) {
        rc = tr_error_set(err, TR_ECONFIG, "%s: cannot read: %s", path, strerror(errno));
        goto cleanup;
    }
    rc = tr_config_load_string(out, text.ptr != NULL ? text.ptr : "", text.len, path, err);
cleanup:
    (void)fclose(file); /* read-only: nothing to lose on close */
    tr_buf_dispose(&text);
    return rc;
}
