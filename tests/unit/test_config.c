#include "testutil.h"

#include "buf.h"
#include "config.h"
#include "error.h"

#include <stdbool.h>
#include <unistd.h>

#define EXAMPLE_PATH "config.example.toml"

static int load_text(tr_config **cfg, const char *text, tr_error *err)
{
    tr_error_clear(err);
    return tr_config_load_string(cfg, text, strlen(text), "t.toml", err);
}

static char *print_config(const tr_config *cfg)
{
    tr_buf out = TR_BUF_INIT(0);

    assert_int_equal(tr_config_print(cfg, &out), TR_OK);
    return tr_buf_detach(&out);
}

static char *write_temp_file(const char *content)
{
    char path[] = "/tmp/triaged-test-config-XXXXXX";
    int fd = mkstemp(path);
    size_t len = strlen(content);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    return tr_strdup(path);
}

static void test_config_defaults_match_design(void **state)
{
    tr_config *cfg = NULL;

    (void)state;
    assert_int_equal(tr_config_default(&cfg), TR_OK);
    assert_string_equal(cfg->daemon.state_dir, "./var");
    assert_string_equal(cfg->daemon.listen, "127.0.0.1:8080");
    assert_string_equal(cfg->daemon.api_token_file, "");
    assert_int_equal(cfg->daemon.log_level, TR_LOG_INFO);
    assert_int_equal(cfg->daemon.log_format, TR_LOG_TEXT);
    assert_int_equal(cfg->daemon.shutdown_timeout_ms, 10000);
    assert_int_equal(cfg->daemon.max_body_bytes, 1048576);
    assert_int_equal(cfg->daemon.header_timeout_ms, 10000);
    assert_int_equal(cfg->daemon.idle_timeout_ms, 60000);
    assert_true(cfg->kubernetes.enabled);
    assert_string_equal(cfg->kubernetes.kubeconfig, "auto");
    assert_string_equal(cfg->kubernetes.cluster_name, "default");
    assert_int_equal(cfg->kubernetes.namespaces.count, 0);
    assert_int_equal(cfg->kubernetes.exclude_namespaces.count, 1);
    assert_string_equal(cfg->kubernetes.exclude_namespaces.items[0], "kube-system");
    assert_false(cfg->kubernetes.leader_election);
    assert_int_equal(cfg->kubernetes.recovery_hold_ms, 10 * 60 * 1000);
    assert_int_equal(cfg->kubernetes.unhealthy_min_count, 3);
    assert_int_equal(cfg->kubernetes.restart_min_count, 2);
    assert_int_equal(cfg->kubernetes.image_pull_min_failures, 2);
    assert_int_equal(cfg->kubernetes.mount_min_count, 2);
    assert_int_equal(cfg->kubernetes.scheduling_grace_ms, 2 * 60 * 1000);
    assert_string_equal(cfg->daemon.public_url, "");
    assert_true(cfg->terraform.enabled);
    assert_string_equal(cfg->terraform.job_label, "triaged.io/terraform");
    assert_int_equal(cfg->terraform.rescan_interval_ms, 30000);
    assert_int_equal(cfg->terraform.settle_time_ms, 5000);
    assert_int_equal(cfg->terraform.max_log_bytes, 33554432);
    assert_int_equal(cfg->triage.log_tail_lines, 200);
    assert_int_equal(cfg->triage.log_max_bytes, 65536);
    assert_int_equal(cfg->triage.token_budget, 6000);
    assert_int_equal(cfg->triage.dedup_window_ms, 30 * 60 * 1000);
    assert_int_equal(cfg->llm.provider, TR_CONFIG_LLM_OPENAI);
    assert_string_equal(cfg->llm.base_url, "http://127.0.0.1:11434/v1");
    assert_string_equal(cfg->llm.model, "llama3.1");
    assert_string_equal(cfg->llm.api_key_env, "OPENAI_API_KEY");
    assert_string_equal(cfg->llm.api_version, "2024-06-01");
    assert_int_equal(cfg->llm.timeout_ms, 90000);
    assert_int_equal(cfg->llm.max_concurrency, 2);
    assert_int_equal(cfg->llm.max_calls_per_hour, 60);
    assert_int_equal(cfg->llm.max_tokens_per_day, 2000000);
    assert_int_equal(cfg->llm.structured_output, TR_CONFIG_OUTPUT_JSON_SCHEMA);
    assert_string_equal(cfg->llm.prompts_dir, "./prompts");
    assert_true(cfg->llm.temperature == 0.2);
    assert_int_equal(cfg->llm.max_output_tokens, 1024);
    assert_string_equal(cfg->gitops.url, "");
    assert_string_equal(cfg->gitops.branch, "main");
    assert_string_equal(cfg->gitops.token_env, "GIT_TOKEN");
    assert_string_equal(cfg->gitops.username, "x-access-token");
    assert_string_equal(cfg->gitops.author, "triaged <triaged@localhost>");
    assert_int_equal(cfg->gitops.fetch_interval_ms, 300000);
    assert_int_equal(cfg->forge.kind, TR_CONFIG_FORGE_NONE);
    assert_string_equal(cfg->forge.token_env, "FORGE_TOKEN");
    assert_int_equal(cfg->forge.labels.count, 1);
    assert_string_equal(cfg->forge.labels.items[0], "triaged");
    assert_true(cfg->forge.draft);
    assert_false(cfg->fixer.auto_pr);
    assert_true(cfg->fixer.min_confidence == 0.7);
    assert_int_equal(cfg->fixer.max_patch_lines, 200);
    assert_int_equal(cfg->notify_count, 0);
    tr_config_free(cfg);
}

static void test_config_empty_file_equals_defaults(void **state)
{
    tr_config *loaded = NULL, *defaults = NULL;
    tr_error err;

    (void)state;
    assert_int_equal(load_text(&loaded, "", &err), TR_OK);
    assert_int_equal(tr_config_default(&defaults), TR_OK);
    assert_true(tr_config_equal(loaded, defaults));
    tr_config_free(loaded);
    tr_config_free(defaults);
}

static void test_config_example_file_loads(void **state)
{
    tr_config *cfg = NULL;
    tr_error err;

    (void)state;
    tr_error_clear(&err);
    if (tr_config_load(&cfg, EXAMPLE_PATH, &err) != TR_OK)
        fail_msg("%s", err.message);
    assert_string_equal(cfg->daemon.state_dir, "./var");
    assert_string_equal(cfg->daemon.listen, "127.0.0.1:8080");
    assert_int_equal(cfg->llm.provider, TR_CONFIG_LLM_NONE);
    assert_string_equal(cfg->kubernetes.kubeconfig, "auto");
    assert_int_equal(cfg->notify_count, 1);
    assert_int_equal(cfg->notify[0].kind, TR_CONFIG_NOTIFY_LOG);
    assert_string_equal(cfg->notify[0].name, "log");
    assert_int_equal(cfg->notify[0].sources, TR_CONFIG_SOURCE_ALL);
    assert_string_equal(cfg->source, EXAMPLE_PATH);
    tr_config_free(cfg);
}

static void test_config_example_documents_every_printed_key(void **state)
{
    tr_config *cfg = NULL;
    tr_error err;
    char *printed, *example, *line, *save = NULL, key[132];
    FILE *file;
    long size;

    (void)state;
    assert_int_equal(tr_config_load(&cfg, EXAMPLE_PATH, &err), TR_OK);
    printed = print_config(cfg);
    file = fopen(EXAMPLE_PATH, "rb");
    assert_non_null(file);
    assert_int_equal(fseek(file, 0, SEEK_END), 0);
    size = ftell(file);
    rewind(file);
    example = tr_calloc(1, (size_t)size + 1);
    assert_int_equal(fread(example, 1, (size_t)size, file), (size_t)size);
    fclose(file);
    /* every `key = ` check-config prints appears in the example (set or commented) */
    for (line = strtok_r(printed, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '[' || sscanf(line, "%127s =", key) != 1)
            continue;
        strcat(key, " =");
        if (strstr(example, key) == NULL)
            fail_msg("config.example.toml does not document '%s'", key);
    }
    tr_free(example);
    tr_free(printed);
    tr_config_free(cfg);
}

typedef struct error_case {
    const char *text;
    const char *message;
} error_case;

static const error_case error_cases[] = {
    /* unknown keys and tables */
    {"[daemon]\nfoo = 1\n", "t.toml:2: daemon.foo: unknown key"},
    {"[bogus]\nx = 1\n", "t.toml:1: bogus: unknown table"},
    {"[llm.extra]\nx = 1\n", "t.toml:1: llm.extra: unknown table"},
    {"foo = 1\n", "t.toml:1: foo: unknown key (keys belong in a table such as [daemon])"},
    {"[[notify]]\nkind = \"log\"\ncolour = \"red\"\n", "t.toml:3: notify[0].colour: unknown key"},
    /* wrong types */
    {"[daemon]\nstate_dir = 5\n", "t.toml:2: daemon.state_dir: expected a string, got integer"},
    {"[kubernetes]\nenabled = \"yes\"\n",
     "t.toml:2: kubernetes.enabled: expected a boolean (true or false), got string"},
    {"[llm]\ntimeout = 90\n",
     "t.toml:2: llm.timeout: expected a duration string such as \"90s\", got integer"},
    {"[triage]\nlog_tail_lines = 2.5\n",
     "t.toml:2: triage.log_tail_lines: expected an integer, got float"},
    {"[kubernetes]\nnamespaces = \"default\"\n",
     "t.toml:2: kubernetes.namespaces: expected an array of strings, got string"},
    {"[kubernetes]\nnamespaces = [\"a\",\n  3]\n",
     "t.toml:3: kubernetes.namespaces[1]: expected a string, got integer"},
    {"daemon = 1\n", "t.toml:1: daemon: expected a table, got integer"},
    {"[notify]\nkind = \"log\"\n",
     "t.toml:1: notify: expected an array of tables ([[notify]]), got table"},
    {"[daemon]\n\"state_dir\\u0000x\" = \"a\"\n",
     "t.toml:2: daemon.<key with a NUL character>: unknown key"},
    {"[daemon]\nstate_dir = \"a\\u0000b\"\n",
     "t.toml:2: daemon.state_dir: must not contain a NUL character"},
    /* bad durations */
    {"[triage]\ndedup_window = \"30x\"\n",
     "t.toml:2: triage.dedup_window: \"30x\" is not a duration: unknown unit (use ms, s, m or h)"},
    {"[triage]\ndedup_window = \"30\"\n",
     "t.toml:2: triage.dedup_window: \"30\" is not a duration: it has no unit (use ms, s, m or "
     "h, e.g. \"90s\")"},
    {"[daemon]\nshutdown_timeout = \"-5s\"\n",
     "t.toml:2: daemon.shutdown_timeout: \"-5s\" is not a duration: it must not be negative"},
    {"[llm]\ntimeout = \"500ms\"\n", "t.toml:2: llm.timeout: must be at least 1s, got \"500ms\""},
    /* bad enums */
    {"[daemon]\nlog_level = \"verbose\"\n",
     "t.toml:2: daemon.log_level: \"verbose\" is not one of: error, warn, info, debug"},
    {"[daemon]\nlog_format = \"xml\"\n",
     "t.toml:2: daemon.log_format: \"xml\" is not one of: text, json"},
    {"[[notify]]\nkind = \"log\"\n[[notify]]\nkind = \"pager\"\n",
     "t.toml:4: notify[1].kind: \"pager\" is not one of: slack, teams, webhook, log"},
    {"[[notify]]\nkind = \"log\"\nsources = [\"kubernetes\", \"helm\"]\n",
     "t.toml:3: notify[0].sources[1]: \"helm\" is not one of: kubernetes, terraform"},
    {"[[notify]]\nkind = \"log\"\nmin_severity = \"fatal\"\n",
     "t.toml:3: notify[0].min_severity: \"fatal\" is not one of: info, warning, error, critical"},
    /* numbers out of range */
    {"[triage]\nlog_tail_lines = -5\n",
     "t.toml:2: triage.log_tail_lines: must be between 1 and 100000, got -5"},
    {"[fixer]\nmin_confidence = 1.5\n",
     "t.toml:2: fixer.min_confidence: must be between 0 and 1, got 1.5"},
    {"[llm]\ntemperature = -0.1\n", "t.toml:2: llm.temperature: must be between 0 and 2, got -0.1"},
    {"[[notify]]\nkind = \"log\"\nmax_attempts = 0\n",
     "t.toml:3: notify[0].max_attempts: must be between 1 and 100, got 0"},
    /* missing required values */
    {"[[notify]]\nkind = \"webhook\"\n",
     "t.toml:2: notify[0].url: required for kind = \"webhook\" (or url_env)"},
    {"[[notify]]\nkind = \"webhook\"\nurl = \"https://a.example\"\nurl_env = \"HOOK_URL\"\n",
     "t.toml:4: notify[0].url: set either url or url_env, not both"},
    {"[[notify]]\nname = \"x\"\n",
     "t.toml:1: notify[0].kind: required (slack, teams, webhook or log)"},
    {"[[notify]]\nkind = \"slack\"\n",
     "t.toml:2: notify[0].webhook_url_env: required for kind = \"slack\" (or bot_token_env with "
     "channel)"},
    {"[[notify]]\nkind = \"slack\"\nbot_token_env = \"SLACK_BOT_TOKEN\"\n",
     "t.toml:3: notify[0].channel: required with bot_token_env"},
    {"[[notify]]\nkind = \"teams\"\n",
     "t.toml:2: notify[0].webhook_url_env: required for kind = \"teams\""},
    {"[llm]\nprovider = \"azure\"\n",
     "t.toml:2: llm.deployment: required when llm.provider = \"azure\""},
    {"[llm]\nmodel = \"\"\n", "t.toml:2: llm.model: required when llm.provider = \"openai\""},
    {"[gitops]\n[[gitops.repos]]\nname = \"infra\"\n", "t.toml:2: gitops.repos[0].url: required"},
    {"[forge]\nkind = \"github\"\n", "t.toml:2: forge.repo: required when forge.kind = \"github\""},
    {"[forge]\nkind = \"gitlab\"\nrepo = \"g/p\"\n",
     "t.toml:2: forge.kind: \"gitlab\" needs a repository to patch: set gitops.url"},
    {"[fixer]\nauto_pr = true\n",
     "t.toml:2: fixer.auto_pr: needs a forge to open pull requests (set forge.kind)"},
    {"[daemon]\nstate_dir = \"\"\n", "t.toml:2: daemon.state_dir: must not be empty"},
    /* keys that belong to another kind, duplicates, conflicts */
    {"[[notify]]\nkind = \"log\"\nurl = \"https://a.example\"\n",
     "t.toml:3: notify[0].url: is not used by kind = \"log\""},
    {"[[notify]]\nkind = \"log\"\n[[notify]]\nkind = \"log\"\nname = \"log-0\"\n",
     "t.toml:5: notify[1].name: \"log-0\" is already used by notify[0]"},
    {"[llm]\napi_key_env = \"KEY\"\napi_key_file = \"/k\"\n",
     "t.toml:3: llm.api_key_file: set either llm.api_key_env or llm.api_key_file, not both"},
    {"[[notify]]\nkind = \"webhook\"\nurl = \"ftp://a.example\"\n",
     "t.toml:3: notify[0].url: must be an http:// or https:// URL"},
    /* secrets written into the file */
    {"[llm]\napi_key = \"sk-123\"\n",
     "t.toml:2: llm.api_key: secrets are not read from the config file; use llm.api_key_env or "
     "llm.api_key_file"},
    {"[forge]\ntoken = \"ghp_x\"\n",
     "t.toml:2: forge.token: secrets are not read from the config file; use forge.token_env"},
    {"[[notify]]\nkind = \"slack\"\nwebhook_url = \"https://hooks.slack.com/x\"\n",
     "t.toml:3: notify[0].webhook_url: secrets are not read from the config file; use "
     "notify[0].webhook_url_env"},
    {"[gitops]\npassword = \"hunter2\"\n",
     "t.toml:2: gitops.password: secrets are not read from the config file; put the value in an "
     "environment variable or a file and name it with a *_env or *_file key"},
    {"[llm.headers]\nAuthorization = \"Bearer abc\"\n",
     "t.toml:2: llm.headers.Authorization: looks like a credential; secrets are not read from the "
     "config file: use llm.headers_env.Authorization = \"ENV_VAR\""},
    /* listen */
    {"[daemon]\nlisten = \"0.0.0.0:8080\"\n",
     "t.toml:2: daemon.listen: \"0.0.0.0:8080\" is not a loopback address, so "
     "daemon.api_token_file is required (clients must present a token)"},
    {"[daemon]\nlisten = \":9000\"\n",
     "t.toml:2: daemon.listen: \":9000\" is not a loopback address, so daemon.api_token_file is "
     "required (clients must present a token)"},
    {"[daemon]\nlisten = \"127.0.0.1:99999\"\n",
     "t.toml:2: daemon.listen: \"127.0.0.1:99999\" has an invalid port (1 to 65535)"},
    {"[daemon]\nlisten = \"localhost\"\n",
     "t.toml:2: daemon.listen: \"localhost\" is not HOST:PORT (e.g. \"127.0.0.1:8080\")"},
};

static void test_config_errors_name_file_line_and_key(void **state)
{
    tr_config *cfg = NULL;
    tr_error err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        if (load_text(&cfg, error_cases[i].text, &err) != TR_ECONFIG)
            fail_msg("case %zu loaded: %s", i, error_cases[i].text);
        assert_null(cfg);
        assert_int_equal(err.code, TR_ECONFIG);
        if (strcmp(err.message, error_cases[i].message) != 0)
            fail_msg("case %zu:\n  want %s\n  got  %s", i, error_cases[i].message, err.message);
    }
}

static void test_config_valid_listen_addresses_load(void **state)
{
    static const char *const texts[] = {
        "[daemon]\nlisten = \"localhost:8080\"\n",
        "[daemon]\nlisten = \"[::1]:8080\"\n",
        "[daemon]\nlisten = \"127.0.0.2:1\"\n",
        "[daemon]\nlisten = \"0.0.0.0:8080\"\napi_token_file = \"/etc/triaged/token\"\n",
    };
    tr_config *cfg = NULL;
    tr_error err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        if (load_text(&cfg, texts[i], &err) != TR_OK)
            fail_msg("%s: %s", texts[i], err.message);
        tr_config_free(cfg);
    }
}

static void test_config_env_key_holding_a_secret_is_refused_without_echo(void **state)
{
    tr_config *cfg = NULL;
    tr_error err;

    (void)state;
    assert_int_equal(load_text(&cfg, "[llm]\napi_key_env = \"sk-live-abcdef123\"\n", &err),
                     TR_ECONFIG);
    assert_non_null(strstr(err.message, "t.toml:2: llm.api_key_env: is not an environment "
                                        "variable name"));
    assert_null(strstr(err.message, "sk-live-abcdef123"));
}

static void test_config_syntax_error_has_line_and_column(void **state)
{
    tr_config *cfg = NULL;
    tr_error err;
    int line = 0, column = 0, consumed = 0;

    (void)state;
    assert_int_equal(load_text(&cfg, "[daemon]\nlisten = \n", &err), TR_ECONFIG);
    assert_null(cfg);
    assert_int_equal(sscanf(err.message, "t.toml:%d:%d: %n", &line, &column, &consumed), 2);
    assert_int_equal(line, 2);
    assert_true(column > 0);
    assert_true(consumed > 0 && err.message[consumed] != '\0');
}

static void test_config_unreadable_file_reports_strerror(void **state)
{
    tr_config *cfg = NULL;
    tr_error err;

    (void)state;
    assert_int_equal(tr_config_load(&cfg, "/nonexistent/triaged.toml", &err), TR_ECONFIG);
    assert_null(cfg);
    assert_string_equal(err.message,
                        "/nonexistent/triaged.toml: cannot read: No such file or directory");
    assert_int_equal(tr_config_load(&cfg, "/tmp", &err), TR_ECONFIG);
    assert_string_equal(err.message, "/tmp: cannot read: Is a directory");
}

typedef struct duration_case {
    const char *text;
    uint64_t ms;
} duration_case;

static void test_config_duration_table(void **state)
{
    static const duration_case valid[] = {
        {"500ms", 500},    {"90s", 90000},          {"30m", 1800000},
        {"2h", 7200000},   {"1h30m", 5400000},      {"1h30m15s500ms", 5415500},
        {"0s", 0},         {"8760h", 31536000000ull}, {"1m1ms", 60001},
    };
    static const char *const invalid[] = {
        "", "30", "30x", "-5s", "1.5h", "30m1h", "1m1m", "8761h", "s", " 5s", "5 s", "5S",
        "99999999999999999999h", "5sec", "+5s", "1h-5m",
    };
    char text[64];
    const char *why;
    uint64_t ms;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        ms = 12345;
        if (tr_config_duration_parse(valid[i].text, &ms, &why) != TR_OK)
            fail_msg("\"%s\" refused: %s", valid[i].text, why);
        assert_int_equal(ms, valid[i].ms);
        tr_config_duration_format(ms, text, sizeof(text));
        assert_int_equal(tr_config_duration_parse(text, &ms, NULL), TR_OK);
        assert_int_equal(ms, valid[i].ms);
    }
    for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        why = NULL;
        if (tr_config_duration_parse(invalid[i], &ms, &why) != TR_EINVAL)
            fail_msg("\"%s\" accepted", invalid[i]);
        assert_non_null(why);
    }
    tr_config_duration_format(5400000, text, sizeof(text));
    assert_string_equal(text, "1h30m");
    tr_config_duration_format(90000, text, sizeof(text));
    assert_string_equal(text, "1m30s");
    tr_config_duration_format(500, text, sizeof(text));
    assert_string_equal(text, "500ms");
    tr_config_duration_format(0, text, sizeof(text));
    assert_string_equal(text, "0s");
}

static void test_config_secret_resolves_from_env_then_file(void **state)
{
    char *secret = NULL, *path;
    tr_error err;

    (void)state;
    path = write_temp_file("from-file\n");
    assert_int_equal(setenv("TR_TEST_SECRET", "from-env", 1), 0);
    assert_int_equal(tr_config_secret_resolve("TR_TEST_SECRET", path, &secret, &err), TR_OK);
    assert_string_equal(secret, "from-env");
    tr_secret_free(secret);
    assert_int_equal(unsetenv("TR_TEST_SECRET"), 0);
    assert_int_equal(tr_config_secret_resolve("TR_TEST_SECRET", path, &secret, &err), TR_OK);
    assert_string_equal(secret, "from-file");
    tr_secret_free(secret);
    assert_int_equal(tr_config_secret_resolve(NULL, path, &secret, &err), TR_OK);
    assert_string_equal(secret, "from-file");
    tr_secret_free(secret);
    assert_int_equal(unlink(path), 0);
    tr_free(path);
    path = write_temp_file("crlf\r\n");
    assert_int_equal(tr_config_secret_resolve("", path, &secret, &err), TR_OK);
    assert_string_equal(secret, "crlf");
    tr_secret_free(secret);
    assert_int_equal(unlink(path), 0);
    tr_free(path);
}

static void test_config_secret_missing_names_the_source(void **state)
{
    char *secret = NULL;
    tr_error err;

    (void)state;
    assert_int_equal(unsetenv("TR_TEST_MISSING"), 0);
    assert_int_equal(tr_config_secret_resolve("TR_TEST_MISSING", NULL, &secret, &err),
                     TR_ENOTFOUND);
    assert_null(secret);
    assert_string_equal(err.message, "environment variable TR_TEST_MISSING is not set");
    assert_int_equal(setenv("TR_TEST_MISSING", "", 1), 0);
    assert_int_equal(tr_config_secret_resolve("TR_TEST_MISSING", NULL, &secret, &err),
                     TR_ENOTFOUND);
    assert_string_equal(err.message, "environment variable TR_TEST_MISSING is empty");
    assert_int_equal(unsetenv("TR_TEST_MISSING"), 0);
    assert_int_equal(tr_config_secret_resolve(NULL, "/nonexistent/key", &secret, &err), TR_EIO);
    assert_string_equal(err.message, "/nonexistent/key: cannot read: No such file or directory");
    assert_int_equal(
        tr_config_secret_resolve("TR_TEST_MISSING", "/nonexistent/key", &secret, &err), TR_EIO);
    assert_string_equal(err.message, "environment variable TR_TEST_MISSING is not set and "
                                     "/nonexistent/key: cannot read: No such file or directory");
    assert_int_equal(tr_config_secret_resolve("", "", &secret, &err), TR_EINVAL);
    assert_null(secret);
}

/* Every key away from its default, every notifier kind, repos and headers. */
static const char full_config[] =
    "[daemon]\nstate_dir = \"/var/lib/triaged\"\nlisten = \"0.0.0.0:9090\"\n"
    "api_token_file = \"/etc/triaged/token\"\nlog_level = \"debug\"\nlog_format = \"json\"\n"
    "shutdown_timeout = \"1m30s\"\nmax_body_bytes = 2048\nheader_timeout = \"3s\"\n"
    "idle_timeout = \"2m\"\n"
    "[kubernetes]\nenabled = false\nkubeconfig = \"/k/config\"\ncontext = \"prod\"\n"
    "cluster_name = \"eu-1\"\nnamespaces = [\"a\", \"b \\\"q\\\" \\\\ \\t\"]\n"
    "exclude_namespaces = []\n"
    "[terraform]\nenabled = false\nlog_dirs = [\"./tf\"]\nwebhook_hmac_key_file = \"hmac.key\"\n"
    "tfc_token_env = \"TFC_TOKEN\"\njob_label = \"x/y\"\nrescan_interval = \"2s\"\n"
    "settle_time = \"0s\"\n"
    "[triage]\nlog_tail_lines = 7\nlog_max_bytes = 4096\ntoken_budget = 9000\n"
    "dedup_window = \"2h\"\n"
    "[llm]\nprovider = \"azure\"\nbase_url = \"https://my.openai.azure.com\"\nmodel = \"\"\n"
    "api_key_env = \"\"\napi_key_file = \"/run/secrets/llm\"\ndeployment = \"gpt4o\"\n"
    "api_version = \"2025-01-01\"\ntimeout = \"2m\"\nmax_concurrency = 3\n"
    "max_calls_per_hour = 5\nmax_tokens_per_day = 100000\nstructured_output = \"prompt\"\n"
    "prompts_dir = \"/p\"\ntemperature = 0.1\nmax_output_tokens = 333\n"
    "[llm.headers]\nX-Team = \"platform\"\n\"X.Odd\" = \"v\"\n"
    "[llm.headers_env]\nAuthorization = \"GW_AUTH\"\n"
    "[gitops]\nurl = \"https://git.example.com/deploy.git\"\nbranch = \"prod\"\n"
    "token_env = \"\"\nssh_key_file = \"/k/id\"\nusername = \"bot\"\nallowed_paths = [\"apps/\"]\n"
    "author = \"me <me@x>\"\nfetch_interval = \"1m\"\n"
    "[[gitops.repos]]\nname = \"infra\"\nurl = \"git@github.com:e/infra.git\"\n"
    "[[gitops.repos]]\nname = \"tf\"\nurl = \"/srv/tf\"\nbranch = \"b\"\nallowed_paths = []\n"
    "[forge]\nkind = \"gitea\"\napi_url = \"https://gitea.example.com/api/v1\"\nrepo = \"o/r\"\n"
    "token_env = \"GITEA\"\nlabels = []\ndraft = false\n"
    "[fixer]\nauto_pr = true\nmin_confidence = 0.95\nmax_patch_lines = 10\n"
    "[[notify]]\nkind = \"slack\"\nbot_token_env = \"SLACK_BOT\"\nchannel = \"#ops\"\n"
    "signing_secret_env = \"SLACK_SIGN\"\nnamespaces = [\"prod\"]\nmin_severity = \"error\"\n"
    "sources = [\"terraform\"]\nrate_limit = \"0s\"\nmax_attempts = 3\n"
    "[[notify]]\nkind = \"teams\"\nwebhook_url_env = \"TEAMS_URL\"\n"
    "[[notify]]\nkind = \"webhook\"\nname = \"hook\"\nurl = \"https://h.example/x\"\n"
    "hmac_secret_env = \"HOOK_SECRET\"\nmin_severity = \"critical\"\n"
    "[[notify]]\nkind = \"log\"\n";

static void assert_round_trip(const tr_config *cfg)
{
    tr_config *again = NULL;
    tr_error err;
    char *printed, *printed_again;

    printed = print_config(cfg);
    if (load_text(&again, printed, &err) != TR_OK)
        fail_msg("printed config does not load: %s\n%s", err.message, printed);
    assert_true(tr_config_equal(cfg, again));
    printed_again = print_config(again);
    assert_string_equal(printed, printed_again);
    tr_free(printed_again);
    tr_free(printed);
    tr_config_free(again);
}

static void test_config_print_loads_back_to_equal_config(void **state)
{
    tr_config *cfg = NULL, *defaults = NULL;
    tr_error err;

    (void)state;
    if (load_text(&cfg, full_config, &err) != TR_OK)
        fail_msg("%s", err.message);
    assert_int_equal(tr_config_default(&defaults), TR_OK);
    assert_false(tr_config_equal(cfg, defaults));
    assert_round_trip(cfg);
    assert_round_trip(defaults);
    tr_config_free(cfg);
    tr_config_free(defaults);
    assert_int_equal(tr_config_load(&cfg, EXAMPLE_PATH, &err), TR_OK);
    assert_round_trip(cfg);
    tr_config_free(cfg);
}

static void test_config_loads_every_key_of_the_full_config(void **state)
{
    tr_config *cfg = NULL;
    tr_error err;

    (void)state;
    if (load_text(&cfg, full_config, &err) != TR_OK)
        fail_msg("%s", err.message);
    assert_int_equal(cfg->daemon.shutdown_timeout_ms, 90000);
    assert_string_equal(cfg->kubernetes.namespaces.items[1], "b \"q\" \\ \t");
    assert_int_equal(cfg->llm.provider, TR_CONFIG_LLM_AZURE);
    assert_int_equal(cfg->llm.headers.count, 2);
    assert_string_equal(cfg->llm.headers.items[1].name, "X.Odd");
    assert_string_equal(cfg->llm.headers_env.items[0].value, "GW_AUTH");
    /* repos inherit what they leave out from [gitops] */
    assert_int_equal(cfg->gitops.repo_count, 2);
    assert_string_equal(cfg->gitops.repos[0].branch, "prod");
    assert_string_equal(cfg->gitops.repos[0].username, "bot");
    assert_string_equal(cfg->gitops.repos[0].ssh_key_file, "/k/id");
    assert_int_equal(cfg->gitops.repos[0].allowed_paths.count, 1);
    assert_string_equal(cfg->gitops.repos[1].branch, "b");
    assert_int_equal(cfg->gitops.repos[1].allowed_paths.count, 0);
    assert_int_equal(cfg->notify_count, 4);
    assert_string_equal(cfg->notify[0].name, "slack-0");
    assert_int_equal(cfg->notify[0].sources, TR_CONFIG_SOURCE_TERRAFORM);
    assert_int_equal(cfg->notify[0].rate_limit_ms, 0);
    assert_int_equal(cfg->notify[0].min_severity, TR_CONFIG_SEVERITY_ERROR);
    assert_string_equal(cfg->notify[1].name, "teams-1");
    assert_string_equal(cfg->notify[2].name, "hook");
    assert_string_equal(cfg->notify[3].name, "log-3");
    assert_true(cfg->fixer.min_confidence == 0.95);
    tr_config_free(cfg);
}

static void test_config_api_key_file_replaces_default_env(void **state)
{
    tr_config *cfg = NULL;
    tr_error err;

    (void)state;
    assert_int_equal(load_text(&cfg, "[llm]\napi_key_file = \"/run/key\"\n", &err), TR_OK);
    assert_string_equal(cfg->llm.api_key_env, "");
    assert_string_equal(cfg->llm.api_key_file, "/run/key");
    tr_config_free(cfg);
    /* provider = "none" needs nothing else */
    assert_int_equal(load_text(&cfg, "[llm]\nprovider = \"none\"\nmodel = \"\"\n", &err), TR_OK);
    tr_config_free(cfg);
}

static void test_config_url_mask(void **state)
{
    static const char *const cases[][2] = {
        {"https://user:pass@host.example/p?token=abc&x=1#frag",
         "https://***@host.example/p?token=***&x=***#***"},
        {"https://ghp_secret@github.com/o/r.git", "https://***@github.com/o/r.git"},
        {"http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"},
        {"https://h.example/hook?sig", "https://h.example/hook?***"},
        {"https://h.example?a=1&&b", "https://h.example?a=***&&***"},
        {"git@github.com:o/r.git", "git@github.com:o/r.git"},
        {"/srv/repo", "/srv/repo"},
    };
    tr_buf out = TR_BUF_INIT(0);
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tr_buf_clear(&out);
        assert_int_equal(tr_config_url_mask(&out, cases[i][0]), TR_OK);
        assert_string_equal(tr_buf_cstr(&out), cases[i][1]);
    }
    tr_buf_dispose(&out);
}

static void test_config_print_never_shows_a_secret(void **state)
{
    static const char text[] =
        "[daemon]\napi_token_file = \"%s\"\n"
        "[llm]\nbase_url = \"https://bob:pa55word@llm.example/v1?api-key=k3y-value\"\n"
        "api_key_env = \"TR_TEST_LLM_KEY\"\n"
        "[gitops]\nurl = \"https://x-access-token:gh0-token@git.example/d.git\"\n"
        "token_env = \"TR_TEST_UNSET_TOKEN\"\nssh_key_file = \"/nonexistent/id\"\n"
        "[[notify]]\nkind = \"webhook\"\nurl = \"https://h.example/x?token=w3bhook\"\n"
        "hmac_secret_env = \"TR_TEST_HMAC\"\n";
    char config_text[sizeof(text) + 64], *printed, *token_path;
    tr_config *cfg = NULL;
    tr_error err;

    (void)state;
    token_path = write_temp_file("t0ken-in-file\n");
    (void)snprintf(config_text, sizeof(config_text), text, token_path);
    assert_int_equal(setenv("TR_TEST_LLM_KEY", "sk-env-secret-value", 1), 0);
    assert_int_equal(setenv("TR_TEST_HMAC", "hmac-env-secret", 1), 0);
    assert_int_equal(unsetenv("TR_TEST_UNSET_TOKEN"), 0);
    if (load_text(&cfg, config_text, &err) != TR_OK)
        fail_msg("%s", err.message);
    printed = print_config(cfg);
    assert_null(strstr(printed, "pa55word"));
    assert_null(strstr(printed, "bob"));
    assert_null(strstr(printed, "k3y-value"));
    assert_null(strstr(printed, "gh0-token"));
    assert_null(strstr(printed, "w3bhook"));
    assert_null(strstr(printed, "sk-env-secret-value"));
    assert_null(strstr(printed, "hmac-env-secret"));
    assert_null(strstr(printed, "t0ken-in-file"));
    assert_non_null(strstr(printed, "base_url = \"https://***@llm.example/v1?api-key=***\"\n"));
    assert_non_null(strstr(printed, "api_key_env = \"TR_TEST_LLM_KEY\"  # set\n"));
    assert_non_null(strstr(printed, "hmac_secret_env = \"TR_TEST_HMAC\"  # set\n"));
    assert_non_null(strstr(printed, "token_env = \"TR_TEST_UNSET_TOKEN\"  # not set\n"));
    assert_non_null(strstr(printed, "ssh_key_file = \"/nonexistent/id\"  # missing\n"));
    assert_non_null(strstr(printed, "  # readable\n"));
    assert_int_equal(unsetenv("TR_TEST_LLM_KEY"), 0);
    assert_int_equal(unsetenv("TR_TEST_HMAC"), 0);
    assert_int_equal(unlink(token_path), 0);
    tr_free(token_path);
    tr_free(printed);
    tr_config_free(cfg);
}

static void test_config_kubeconfig_lookup(void **state)
{
    char *path = NULL;
    tr_error err;

    (void)state;
    assert_int_equal(tr_config_kubeconfig_path("", &path, &err), TR_OK);
    assert_null(path);
    assert_int_equal(tr_config_kubeconfig_path("/etc/kube.yaml", &path, &err), TR_OK);
    assert_string_equal(path, "/etc/kube.yaml");
    tr_free(path);
    assert_int_equal(setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1), 0);
    assert_int_equal(tr_config_kubeconfig_path("auto", &path, &err), TR_OK);
    assert_null(path);
    assert_int_equal(unsetenv("KUBERNETES_SERVICE_HOST"), 0);
    assert_int_equal(setenv("KUBECONFIG", "/a/one:/b/two", 1), 0);
    assert_int_equal(tr_config_kubeconfig_path("auto", &path, &err), TR_OK);
    assert_string_equal(path, "/a/one");
    tr_free(path);
    assert_int_equal(unsetenv("KUBECONFIG"), 0);
    assert_int_equal(setenv("HOME", "/nonexistent-home", 1), 0);
    assert_int_equal(tr_config_kubeconfig_path("auto", &path, &err), TR_ENOTFOUND);
    assert_null(path);
    assert_non_null(strstr(err.message, "/nonexistent-home/.kube/config does not exist"));
}

static void test_config_survives_allocation_failures(void **state)
{
    tr_config *cfg = NULL;
    tr_error err;
    long n;
    int rc;

    (void)state;
    for (n = 1; n < 2000; n++) {
        tr_alloc_fail_after(n, 1);
        rc = tr_config_load_string(&cfg, full_config, sizeof(full_config) - 1, "t.toml", &err);
        tr_alloc_fail_after(0, 0);
        if (rc == TR_OK) {
            tr_config_free(cfg);
            return;
        }
        assert_int_equal(rc, TR_ENOMEM);
        assert_null(cfg);
    }
    fail_msg("still failing after %ld allocations", n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults_match_design),
        cmocka_unit_test(test_config_empty_file_equals_defaults),
        cmocka_unit_test(test_config_example_file_loads),
        cmocka_unit_test(test_config_example_documents_every_printed_key),
        cmocka_unit_test(test_config_errors_name_file_line_and_key),
        cmocka_unit_test(test_config_valid_listen_addresses_load),
        cmocka_unit_test(test_config_env_key_holding_a_secret_is_refused_without_echo),
        cmocka_unit_test(test_config_syntax_error_has_line_and_column),
        cmocka_unit_test(test_config_unreadable_file_reports_strerror),
        cmocka_unit_test(test_config_duration_table),
        cmocka_unit_test(test_config_secret_resolves_from_env_then_file),
        cmocka_unit_test(test_config_secret_missing_names_the_source),
        cmocka_unit_test(test_config_print_loads_back_to_equal_config),
        cmocka_unit_test(test_config_loads_every_key_of_the_full_config),
        cmocka_unit_test(test_config_api_key_file_replaces_default_env),
        cmocka_unit_test(test_config_url_mask),
        cmocka_unit_test(test_config_print_never_shows_a_secret),
        cmocka_unit_test(test_config_kubeconfig_lookup),
        cmocka_unit_test(test_config_survives_allocation_failures),
    };

    TR_RUN_TESTS("config", tests);
}
