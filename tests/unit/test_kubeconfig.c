#include "testutil.h"

#include "buf.h"
#include "error.h"
#include "watchers/kubeconfig.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FIXTURES "../shared/fixtures/k8s/"

static const char ca_pem[] = "-----BEGIN CERTIFICATE-----\nMIIBtestCAtestCA\n"
                             "-----END CERTIFICATE-----\n";
static const char cert_pem[] = "-----BEGIN CERTIFICATE-----\nMIIBclientcert\n"
                               "-----END CERTIFICATE-----\n";
static const char key_pem[] = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIclientkey\n"
                              "-----END EC PRIVATE KEY-----\n";

static const char *const env_names[] = { "HOME", "KUBECONFIG", "KUBERNETES_SERVICE_HOST",
                                         "KUBERNETES_SERVICE_PORT" };
#define ENV_COUNT (sizeof(env_names) / sizeof(env_names[0]))

typedef struct fixture {
    char dir[64];
    char *saved_env[ENV_COUNT];
} fixture;

/* ------------------------------------------------------------ helpers */

static char *path_in(const fixture *fx, const char *name)
{
    tr_buf b = TR_BUF_INIT(0);

    assert_int_equal(tr_buf_printf(&b, "%s/%s", fx->dir, name), TR_OK);
    return tr_buf_detach(&b);
}

/* Writes dir/name (creating one level of subdirectory) and returns the path. */
static char *write_file(const fixture *fx, const char *name, const char *content)
{
    char *path = path_in(fx, name), *slash;
    FILE *f;

    slash = strrchr(path, '/');
    if (slash > path + strlen(fx->dir)) {
        *slash = '\0';
        (void)mkdir(path, 0700); /* may exist already */
        *slash = '/';
    }
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
    assert_int_equal(fclose(f), 0);
    return path;
}

static void remove_tree(const char *dir)
{
    struct dirent *entry;
    struct stat st;
    char path[512];
    DIR *d = opendir(dir);

    if (d == NULL)
        return;
    while ((entry = readdir(d)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(path);
        else
            (void)unlink(path);
    }
    closedir(d);
    (void)rmdir(dir);
}

static int setup(void **state)
{
    fixture *fx = tr_calloc(1, sizeof(*fx));
    size_t i;

    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/tr-kubeconfig-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    for (i = 0; i < ENV_COUNT; i++)
        fx->saved_env[i] = tr_strdup(getenv(env_names[i]));
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    unsetenv("KUBECONFIG");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    size_t i;

    for (i = 0; i < ENV_COUNT; i++) {
        if (fx->saved_env[i])
            setenv(env_names[i], fx->saved_env[i], 1);
        else
            unsetenv(env_names[i]);
        tr_free(fx->saved_env[i]);
    }
    remove_tree(fx->dir);
    tr_free(fx);
    return 0;
}

static char *b64(const char *text)
{
    size_t len = strlen(text);
    unsigned char *out = tr_malloc((len + 2) / 3 * 4 + 1);

    assert_non_null(out);
    EVP_EncodeBlock(out, (const unsigned char *)text, (int)len);
    return (char *)out;
}

static size_t read_fixture(const char *name, char *buf, size_t size)
{
    FILE *f = fopen(name, "rb");
    size_t len;

    assert_non_null(f);
    len = fread(buf, 1, size - 1, f);
    buf[len] = '\0';
    fclose(f);
    return len;
}

/* Load a kubeconfig from text that the test wrote into its directory. */
static int load_text(const fixture *fx, const char *yaml, const char *context,
                     tr_kube_conn **conn, tr_error *err, char **path_out)
{
    char *path = write_file(fx, "config", yaml);
    int rc = tr_kubeconfig_load(conn, path, context, err);

    if (path_out)
        *path_out = path;
    else
        tr_free(path);
    return rc;
}

static void assert_load_error(const fixture *fx, const char *yaml, const char *context,
                              int code, const char *message_after_path)
{
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };
    char *path, expected[1024];

    assert_int_equal(load_text(fx, yaml, context, &conn, &err, &path), code);
    assert_null(conn);
    snprintf(expected, sizeof(expected), "%s: %s", path, message_after_path);
    assert_string_equal(err.message, expected);
    tr_free(path);
}

static void assert_load_error_at(const fixture *fx, const char *yaml, int code, int line,
                                 const char *message)
{
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };
    char *path, expected[1024];

    assert_int_equal(load_text(fx, yaml, NULL, &conn, &err, &path), code);
    assert_null(conn);
    snprintf(expected, sizeof(expected), "%s:%d: %s", path, line, message);
    assert_string_equal(err.message, expected);
    tr_free(path);
}

static const char two_contexts[] =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: dev\n"
    "clusters:\n"
    "- name: dev-cluster\n"
    "  cluster:\n"
    "    server: https://dev.example:6443/\n"
    "    certificate-authority-data: %s\n"
    "- name: prod-cluster\n"
    "  cluster:\n"
    "    server: prod.example:443\n"
    "    insecure-skip-tls-verify: true\n"
    "    tls-server-name: api.prod.internal\n"
    "contexts:\n"
    "- name: dev\n"
    "  context: {cluster: dev-cluster, user: dev-user, namespace: team-a}\n"
    "- name: prod\n"
    "  context:\n"
    "    cluster: prod-cluster\n"
    "    user: prod-user\n"
    "users:\n"
    "- name: dev-user\n"
    "  user:\n"
    "    token: dev-token-123\n"
    "- name: prod-user\n"
    "  user:\n"
    "    client-certificate-data: %s\n"
    "    client-key-data: %s\n";

static char *two_contexts_yaml(void)
{
    char *ca = b64(ca_pem), *cert = b64(cert_pem), *key = b64(key_pem);
    tr_buf b = TR_BUF_INIT(0);

    assert_int_equal(tr_buf_printf(&b, two_contexts, ca, cert, key), TR_OK);
    tr_free(ca);
    tr_free(cert);
    tr_free(key);
    return tr_buf_detach(&b);
}

/* ------------------------------------------------------------ kubeconfig */

static void test_load_token_user_from_current_context(void **state)
{
    fixture *fx = *state;
    char *yaml = two_contexts_yaml(), *path;
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };

    assert_int_equal(load_text(fx, yaml, NULL, &conn, &err, &path), TR_OK);
    assert_string_equal(conn->source, path);
    assert_string_equal(conn->context_name, "dev");
    assert_string_equal(conn->cluster_name, "dev-cluster");
    assert_string_equal(conn->user_name, "dev-user");
    assert_string_equal(conn->server, "https://dev.example:6443");
    assert_string_equal(conn->token, "dev-token-123");
    assert_string_equal(conn->namespace, "team-a");
    assert_int_equal(conn->ca_pem_len, strlen(ca_pem));
    assert_memory_equal(conn->ca_pem, ca_pem, strlen(ca_pem));
    assert_null(conn->ca_file);
    assert_int_equal(conn->insecure, 0);
    assert_null(conn->exec);
    assert_int_equal(conn->in_cluster, 0);
    tr_kube_conn_free(conn);
    tr_free(path);
    tr_free(yaml);
}

static void test_context_override_selects_cert_user_and_insecure_cluster(void **state)
{
    fixture *fx = *state;
    char *yaml = two_contexts_yaml();
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };

    assert_int_equal(load_text(fx, yaml, "prod", &conn, &err, NULL), TR_OK);
    assert_string_equal(conn->context_name, "prod");
    assert_string_equal(conn->server, "https://prod.example:443"); /* no scheme: https */
    assert_int_equal(conn->insecure, 1);
    assert_string_equal(conn->tls_server_name, "api.prod.internal");
    assert_string_equal(conn->namespace, "default");
    assert_null(conn->token);
    assert_int_equal(conn->client_cert_pem_len, strlen(cert_pem));
    assert_string_equal(conn->client_cert_pem, cert_pem);
    assert_int_equal(conn->client_key_pem_len, strlen(key_pem));
    assert_string_equal(conn->client_key_pem, key_pem);
    assert_null(conn->client_cert_file);
    tr_kube_conn_free(conn);
    tr_free(yaml);
}

static void test_relative_paths_resolve_against_kubeconfig_dir(void **state)
{
    fixture *fx = *state;
    char *config, *ca = write_file(fx, "kube/ca.crt", ca_pem);
    char *cert = write_file(fx, "kube/client.crt", cert_pem);
    char *key = write_file(fx, "kube/client.key", key_pem);
    char *token = write_file(fx, "kube/token", "  file-token-456\n\n");
    char *plugin = write_file(fx, "kube/plugin.sh", "#!/bin/sh\n");
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };

    config = write_file(fx, "kube/config",
                        "current-context: c\n"
                        "clusters: [{name: k, cluster: {server: 'https://k:6443', "
                        "certificate-authority: ca.crt}}]\n"
                        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                        "users:\n"
                        "- name: u\n"
                        "  user:\n"
                        "    tokenFile: token\n"
                        "    client-certificate: client.crt\n"
                        "    client-key: ./client.key\n"
                        "    exec:\n"
                        "      apiVersion: client.authentication.k8s.io/v1beta1\n"
                        "      command: ./plugin.sh\n");
    assert_int_equal(tr_kubeconfig_load(&conn, config, NULL, &err), TR_OK);
    assert_string_equal(conn->ca_file, ca);
    assert_string_equal(conn->client_cert_file, cert);
    assert_string_equal(conn->token_file, token);
    assert_string_equal(conn->token, "file-token-456");
    assert_non_null(strstr(conn->client_key_file, "/kube/./client.key"));
    assert_int_equal(access(conn->client_key_file, R_OK), 0);
    assert_non_null(strstr(conn->exec->command, "/kube/./plugin.sh"));
    assert_int_equal(strncmp(conn->exec->command, plugin, strlen(fx->dir)), 0);
    tr_kube_conn_free(conn);
    tr_free(config);
    tr_free(ca);
    tr_free(cert);
    tr_free(key);
    tr_free(token);
    tr_free(plugin);
}

static void test_missing_file_reference_names_the_path(void **state)
{
    fixture *fx = *state;
    char expected[256];

    snprintf(expected, sizeof(expected),
             "cluster \"k\": certificate-authority \"%s/nope.crt\": No such file or directory",
             fx->dir);
    assert_load_error(fx, "current-context: c\n"
                          "clusters: [{name: k, cluster: {server: h, certificate-authority: "
                          "nope.crt}}]\n"
                          "contexts: [{name: c, context: {cluster: k}}]\n",
                      NULL, TR_ECONFIG, expected);
}

static void test_missing_context_user_cluster_errors_say_what_is_missing(void **state)
{
    fixture *fx = *state;
    char *yaml = two_contexts_yaml();

    assert_load_error(fx, yaml, "staging", TR_ECONFIG, "context \"staging\" not found");
    tr_free(yaml);
    assert_load_error(fx, "current-context: y\n"
                          "clusters: [{name: k, cluster: {server: https://k}}]\n"
                          "contexts: [{name: y, context: {cluster: k, user: x}}]\n"
                          "users: [{name: other, user: {token: t}}]\n",
                      NULL, TR_ECONFIG, "user \"x\" of context \"y\" not found");
    assert_load_error(fx, "current-context: y\n"
                          "contexts: [{name: y, context: {cluster: gone, user: x}}]\n",
                      NULL, TR_ECONFIG, "cluster \"gone\" of context \"y\" not found");
    assert_load_error(fx, "clusters: []\n", NULL, TR_ECONFIG,
                      "no context given and current-context is not set");
    assert_load_error(fx, "current-context: y\n"
                          "clusters: [{name: k, cluster: {insecure-skip-tls-verify: true}}]\n"
                          "contexts: [{name: y, context: {cluster: k}}]\n",
                      NULL, TR_ECONFIG, "cluster \"k\" has no server");
}

static void test_insecure_with_ca_is_rejected(void **state)
{
    fixture *fx = *state;

    assert_load_error(fx, "current-context: y\n"
                          "clusters: [{name: k, cluster: {server: https://k, "
                          "insecure-skip-tls-verify: yes, certificate-authority-data: abcd}}]\n"
                          "contexts: [{name: y, context: {cluster: k}}]\n",
                      NULL, TR_ECONFIG, "cluster \"k\": insecure-skip-tls-verify cannot be "
                                        "combined with a certificate authority");
}

static void test_bad_certificate_data_is_rejected(void **state)
{
    fixture *fx = *state;
    char *not_pem = b64("hello, not a certificate"), yaml[512];

    assert_load_error(fx, "current-context: y\n"
                          "clusters: [{name: k, cluster: {server: https://k, "
                          "certificate-authority-data: 'LS0t*LS0'}}]\n"
                          "contexts: [{name: y, context: {cluster: k}}]\n",
                      NULL, TR_ECONFIG,
                      "cluster \"k\": certificate-authority-data is not valid base64");
    snprintf(yaml, sizeof(yaml), "current-context: y\n"
             "clusters: [{name: k, cluster: {server: https://k}}]\n"
             "contexts: [{name: y, context: {cluster: k, user: u}}]\n"
             "users: [{name: u, user: {client-certificate-data: %s, client-key-data: %s}}]\n",
             not_pem, not_pem);
    assert_load_error(fx, yaml, NULL, TR_ECONFIG, "user \"u\": client-certificate-data does not "
                                                  "decode to PEM (no -----BEGIN line)");
    tr_free(not_pem);
}

static void test_user_auth_conflicts_are_rejected(void **state)
{
    fixture *fx = *state;
    char *cert = b64(cert_pem), yaml[512];

    snprintf(yaml, sizeof(yaml), "current-context: y\n"
             "clusters: [{name: k, cluster: {server: https://k}}]\n"
             "contexts: [{name: y, context: {cluster: k, user: u}}]\n"
             "users: [{name: u, user: {client-certificate-data: %s}}]\n", cert);
    assert_load_error(fx, yaml, NULL, TR_ECONFIG,
                      "user \"u\" has a client certificate but no client key");
    assert_load_error(fx, "current-context: y\n"
                          "clusters: [{name: k, cluster: {server: https://k}}]\n"
                          "contexts: [{name: y, context: {cluster: k, user: u}}]\n"
                          "users: [{name: u, user: {token: t, username: a, password: b}}]\n",
                      NULL, TR_ECONFIG, "user \"u\": more than one authentication method "
                                        "(token and username/password)");
    /* A newline in a token would become an injected HTTP header line. */
    assert_load_error(fx, "current-context: y\n"
                          "clusters: [{name: k, cluster: {server: https://k}}]\n"
                          "contexts: [{name: y, context: {cluster: k, user: u}}]\n"
                          "users: [{name: u, user: {token: \"abc\\r\\nX-Evil: 1\"}}]\n",
                      NULL, TR_ECONFIG, "user \"u\": token contains control characters or "
                                        "spaces");
    tr_free(cert);
}

static const char exec_v1[] =
    "current-context: eks\n"
    "clusters:\n"
    "- name: eks-cluster\n"
    "  cluster: {server: 'https://eks.example', certificate-authority-data: %s}\n"
    "contexts:\n"
    "- name: eks\n"
    "  context: {cluster: eks-cluster, user: eks-user, namespace: apps}\n"
    "users:\n"
    "- name: eks-user\n"
    "  user:\n"
    "    exec:\n"
    "      apiVersion: client.authentication.k8s.io/%s\n"
    "      command: aws\n"
    "      args:\n"
    "      - eks\n"
    "      - get-token\n"
    "      - --cluster-name\n"
    "      - \"prod east\"\n"
    "      env:\n"
    "      - name: AWS_PROFILE\n"
    "        value: prod\n"
    "      - name: EMPTY\n"
    "      installHint: install the aws CLI\n"
    "      provideClusterInfo: %s\n"
    "%s";

static void test_exec_plugin_v1_parsed_with_args_and_env(void **state)
{
    fixture *fx = *state;
    char *ca = b64(ca_pem), yaml[2048];
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };
    tr_kube_exec *exec;

    snprintf(yaml, sizeof(yaml), exec_v1, ca, "v1", "true", "      interactiveMode: Never\n");
    assert_int_equal(load_text(fx, yaml, NULL, &conn, &err, NULL), TR_OK);
    exec = conn->exec;
    assert_non_null(exec);
    assert_string_equal(exec->api_version, TR_KUBE_EXEC_API_V1);
    assert_string_equal(exec->command, "aws"); /* no '/': left for $PATH lookup */
    assert_int_equal(exec->args_count, 4);
    assert_string_equal(exec->args[0], "eks");
    assert_string_equal(exec->args[3], "prod east");
    assert_int_equal(exec->env_count, 2);
    assert_string_equal(exec->env[0].name, "AWS_PROFILE");
    assert_string_equal(exec->env[0].value, "prod");
    assert_string_equal(exec->env[1].name, "EMPTY");
    assert_string_equal(exec->env[1].value, "");
    assert_string_equal(exec->install_hint, "install the aws CLI");
    assert_int_equal(exec->provide_cluster_info, 1);
    assert_int_equal(exec->interactive_mode, TR_KUBE_INTERACTIVE_NEVER);
    assert_string_equal(conn->namespace, "apps");
    tr_kube_conn_free(conn);
    tr_free(ca);
}

static void test_exec_plugin_v1beta1_defaults_interactive_mode(void **state)
{
    fixture *fx = *state;
    char *ca = b64(ca_pem), yaml[2048];
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };

    snprintf(yaml, sizeof(yaml), exec_v1, ca, "v1beta1", "false", "");
    assert_int_equal(load_text(fx, yaml, NULL, &conn, &err, NULL), TR_OK);
    assert_string_equal(conn->exec->api_version, TR_KUBE_EXEC_API_V1BETA1);
    assert_int_equal(conn->exec->interactive_mode, TR_KUBE_INTERACTIVE_IF_AVAILABLE);
    assert_int_equal(conn->exec->provide_cluster_info, 0);
    tr_kube_conn_free(conn);

    snprintf(yaml, sizeof(yaml), exec_v1, ca, "v1", "false", "");
    assert_load_error(fx, yaml, NULL, TR_ECONFIG, "user \"eks-user\": exec interactiveMode must "
                                                  "be set for client.authentication.k8s.io/v1");
    snprintf(yaml, sizeof(yaml), exec_v1, ca, "v1", "false", "      interactiveMode: Always\n");
    assert_load_error(fx, yaml, NULL, TR_ECONFIG, "user \"eks-user\": exec interactiveMode "
                                                  "Always needs a terminal, and triaged runs "
                                                  "without one");
    snprintf(yaml, sizeof(yaml), exec_v1, ca, "v1alpha1", "false", "");
    assert_load_error(fx, yaml, NULL, TR_ECONFIG, "user \"eks-user\": exec apiVersion "
                      "\"client.authentication.k8s.io/v1alpha1\" is not supported (use "
                      "client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1)");
    tr_free(ca);
}

static void test_auth_provider_is_rejected_with_exec_advice(void **state)
{
    fixture *fx = *state;

    assert_load_error(fx, "current-context: gke\n"
                          "clusters: [{name: g, cluster: {server: https://g}}]\n"
                          "contexts: [{name: gke, context: {cluster: g, user: gu}}]\n"
                          "users:\n"
                          "- name: gu\n"
                          "  user:\n"
                          "    auth-provider:\n"
                          "      name: gcp\n"
                          "      config: {cmd-path: gcloud}\n",
                      NULL, TR_ECONFIG, "user \"gu\" uses auth-provider \"gcp\", which Kubernetes "
                      "clients no longer support; configure an exec plugin instead (e.g. "
                      "gke-gcloud-auth-plugin, kubelogin)");
}

static void test_malformed_yaml_reports_line(void **state)
{
    fixture *fx = *state;
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };
    char *path, prefix[128];

    /* The second ':' on line 3 is the classic "mapping values" mistake. */
    assert_int_equal(load_text(fx, "apiVersion: v1\nkind: Config\ncurrent-context: a: b\n", NULL,
                               &conn, &err, &path), TR_EPARSE);
    assert_null(conn);
    snprintf(prefix, sizeof(prefix), "%s:3:", path);
    assert_int_equal(strncmp(err.message, prefix, strlen(prefix)), 0);
    assert_non_null(strstr(err.message, "mapping values are not allowed"));
    tr_free(path);

    assert_load_error_at(fx, "current-context: &a x\nother: *a\n", TR_EPARSE, 2,
                         "YAML aliases are not supported");
    assert_load_error_at(fx, "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
                             "clusters: {name: k}\n", TR_ECONFIG, 3, "clusters must be a list");
    assert_load_error_at(fx, "current-context: c\ncurrent-context: d\n", TR_EPARSE, 2,
                         "duplicate key \"current-context\"");
}

static void test_type_errors_name_line_and_key(void **state)
{
    fixture *fx = *state;
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };
    char *path, expected[512];

    assert_int_equal(load_text(fx, "current-context: c\n"
                                   "contexts: [{name: c, context: {cluster: k}}]\n"
                                   "clusters:\n"
                                   "- name: k\n"
                                   "  cluster:\n"
                                   "    server: [not, a, string]\n", NULL, &conn, &err, &path),
                     TR_ECONFIG);
    snprintf(expected, sizeof(expected), "%s:6: cluster \"k\": server must be a string", path);
    assert_string_equal(err.message, expected);
    tr_free(path);
}

static void test_deep_nesting_is_bounded(void **state)
{
    tr_buf yaml = TR_BUF_INIT(0);
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };
    int i;

    (void)state;
    for (i = 0; i < 10000; i++)
        assert_int_equal(tr_buf_putc(&yaml, '['), TR_OK);
    assert_int_equal(tr_kubeconfig_load_string(&conn, yaml.ptr, yaml.len, "deep", NULL, NULL,
                                               &err), TR_ETOOBIG);
    assert_non_null(strstr(err.message, "nested deeper than 64 levels"));
    tr_buf_dispose(&yaml);
}

static void test_load_survives_allocation_failures(void **state)
{
    char *yaml = two_contexts_yaml();
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };
    long before = tr_alloc_live(), n;
    int rc;

    (void)state;
    for (n = 1; n < 500; n++) {
        tr_alloc_fail_after(n, 1);
        rc = tr_kubeconfig_load_string(&conn, yaml, strlen(yaml), "mem", NULL, "prod", &err);
        tr_alloc_fail_after(0, 0);
        if (rc == TR_OK)
            break;
        assert_int_equal(rc, TR_ENOMEM);
        assert_null(conn);
        assert_int_equal(tr_alloc_live(), before); /* nothing leaked on the failure path */
    }
    assert_int_equal(rc, TR_OK);
    assert_string_equal(conn->client_key_pem, key_pem);
    tr_kube_conn_free(conn);
    tr_free(yaml);
}

/* ------------------------------------------------------------ in-cluster and resolve */

static char *fake_service_account(const fixture *fx, int with_ca, int with_ns)
{
    char *dir = path_in(fx, "sa"), *f;

    f = write_file(fx, "sa/token", "eyJhbGciOi.sa-token\n");
    tr_free(f);
    if (with_ca) {
        f = write_file(fx, "sa/ca.crt", ca_pem);
        tr_free(f);
    }
    if (with_ns) {
        f = write_file(fx, "sa/namespace", "observability\n");
        tr_free(f);
    }
    return dir;
}

static void test_in_cluster_reads_token_ca_and_namespace(void **state)
{
    fixture *fx = *state;
    char *sa = fake_service_account(fx, 1, 1), *ca = path_in(fx, "sa/ca.crt");
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };

    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(tr_kubeconfig_in_cluster(&conn, sa, &err), TR_OK);
    assert_int_equal(conn->in_cluster, 1);
    assert_string_equal(conn->source, "in-cluster");
    assert_string_equal(conn->server, "https://10.96.0.1:443");
    assert_string_equal(conn->token, "eyJhbGciOi.sa-token");
    assert_non_null(strstr(conn->token_file, "/sa/token"));
    assert_string_equal(conn->ca_file, ca);
    assert_string_equal(conn->namespace, "observability");
    tr_kube_conn_free(conn);
    tr_free(ca);
    tr_free(sa);
}

static void test_in_cluster_ipv6_host_and_defaults(void **state)
{
    fixture *fx = *state;
    char *sa = fake_service_account(fx, 0, 0);
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };

    setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
    assert_int_equal(tr_kubeconfig_in_cluster(&conn, sa, &err), TR_OK);
    assert_string_equal(conn->server, "https://[fd00:10:96::1]:6443");
    assert_null(conn->ca_file);
    assert_string_equal(conn->namespace, "default");
    tr_kube_conn_free(conn);
    tr_free(sa);
}

static void test_in_cluster_failures(void **state)
{
    fixture *fx = *state;
    char *sa = path_in(fx, "no-such-sa"), expected[256];
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };

    assert_int_equal(tr_kubeconfig_in_cluster(&conn, sa, &err), TR_ENOTFOUND);
    assert_string_equal(err.message, "not in a cluster: KUBERNETES_SERVICE_HOST and "
                                     "KUBERNETES_SERVICE_PORT are not both set");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(tr_kubeconfig_in_cluster(&conn, sa, &err), TR_ENOTFOUND);
    snprintf(expected, sizeof(expected), "in-cluster service account token: %s/token: No such "
             "file or directory", sa);
    assert_string_equal(err.message, expected);
    setenv("KUBERNETES_SERVICE_PORT", "https", 1);
    assert_int_equal(tr_kubeconfig_in_cluster(&conn, sa, &err), TR_ECONFIG);
    assert_null(conn);
    tr_free(sa);
}

static const char minimal[] = "current-context: c\n"
                              "clusters: [{name: k, cluster: {server: 'https://%s'}}]\n"
                              "contexts: [{name: c, context: {cluster: k}}]\n";

static char *write_minimal(const fixture *fx, const char *name, const char *server)
{
    char text[256];

    snprintf(text, sizeof(text), minimal, server);
    return write_file(fx, name, text);
}

static void test_resolve_auto_order(void **state)
{
    fixture *fx = *state;
    char *sa = fake_service_account(fx, 0, 0), *env_cfg, *home_cfg, *list;
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };
    tr_buf b = TR_BUF_INIT(0);

    env_cfg = write_minimal(fx, "env/config", "from-env");
    home_cfg = write_minimal(fx, ".kube/config", "from-home");
    setenv("HOME", fx->dir, 1);

    /* Nothing set but HOME: ~/.kube/config. */
    assert_int_equal(tr_kubeconfig_resolve(&conn, "auto", NULL, sa, &err), TR_OK);
    assert_string_equal(conn->server, "https://from-home");
    assert_string_equal(conn->source, home_cfg);
    tr_kube_conn_free(conn);

    /* $KUBECONFIG wins over HOME; missing entries of the list are skipped. */
    assert_int_equal(tr_buf_printf(&b, "%s/missing:%s", fx->dir, env_cfg), TR_OK);
    list = tr_buf_detach(&b);
    setenv("KUBECONFIG", list, 1);
    assert_int_equal(tr_kubeconfig_resolve(&conn, NULL, NULL, sa, &err), TR_OK);
    assert_string_equal(conn->server, "https://from-env");
    tr_kube_conn_free(conn);

    /* In-cluster wins over both. */
    setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(tr_kubeconfig_resolve(&conn, "auto", NULL, sa, &err), TR_OK);
    assert_int_equal(conn->in_cluster, 1);
    tr_kube_conn_free(conn);

    tr_free(list);
    tr_free(env_cfg);
    tr_free(home_cfg);
    tr_free(sa);
}

static void test_resolve_reports_nothing_configured(void **state)
{
    fixture *fx = *state;
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };

    setenv("HOME", fx->dir, 1); /* no .kube/config there */
    assert_int_equal(tr_kubeconfig_resolve(&conn, "auto", NULL, NULL, &err), TR_ENOTFOUND);
    assert_null(conn);
    assert_string_equal(err.message, "no kubeconfig: $KUBECONFIG unset, ~/.kube/config missing, "
                                     "not in a cluster");
    setenv("KUBECONFIG", "/nonexistent/a:/nonexistent/b", 1);
    assert_int_equal(tr_kubeconfig_resolve(&conn, "auto", NULL, NULL, &err), TR_ENOTFOUND);
    assert_string_equal(err.message, "no kubeconfig: no file of $KUBECONFIG "
                                     "(/nonexistent/a:/nonexistent/b) exists, not in a cluster");
    /* "" means in-cluster only, even with a kubeconfig around. */
    assert_int_equal(tr_kubeconfig_resolve(&conn, "", NULL, NULL, &err), TR_ENOTFOUND);
    assert_string_equal(err.message, "kubeconfig \"\" means in-cluster, but not in a cluster: "
                        "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not both set");
}

static void test_resolve_explicit_path_and_tilde(void **state)
{
    fixture *fx = *state;
    char *cfg = write_minimal(fx, "clusters/one.yaml", "explicit");
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };

    setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1); /* ignored for an explicit path */
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(tr_kubeconfig_resolve(&conn, cfg, NULL, NULL, &err), TR_OK);
    assert_string_equal(conn->server, "https://explicit");
    tr_kube_conn_free(conn);
    setenv("HOME", fx->dir, 1);
    assert_int_equal(tr_kubeconfig_resolve(&conn, "~/clusters/one.yaml", "c", NULL, &err), TR_OK);
    assert_string_equal(conn->source, cfg);
    tr_kube_conn_free(conn);
    assert_int_equal(tr_kubeconfig_resolve(&conn, "~/clusters/two.yaml", NULL, NULL, &err),
                     TR_ENOTFOUND);
    tr_free(cfg);
}

/* ------------------------------------------------------------ token files */

static void test_token_read_trims_and_validates(void **state)
{
    fixture *fx = *state;
    char *path = write_file(fx, "t1", "\n\t tok.en-1 \r\n"), *token = NULL;
    tr_error err = { 0 };
    char *big, *big_path, expected[256];

    assert_int_equal(tr_kube_token_read(&token, path, &err), TR_OK);
    assert_string_equal(token, "tok.en-1");
    tr_free(token);
    tr_free(path);

    path = write_file(fx, "t2", " \n");
    assert_int_equal(tr_kube_token_read(&token, path, &err), TR_EAUTH);
    assert_null(token);
    tr_free(path);

    /* a zero-byte file: the read that the empty-token check must see before any write */
    path = write_file(fx, "t0", "");
    assert_int_equal(tr_kube_token_read(&token, path, &err), TR_EAUTH);
    assert_null(token);
    snprintf(expected, sizeof(expected), "%s: token file is empty", path);
    assert_string_equal(err.message, expected);
    tr_free(path);

    path = write_file(fx, "t3", "abc\ndef\n");
    assert_int_equal(tr_kube_token_read(&token, path, &err), TR_EAUTH);
    tr_free(path);

    big = tr_malloc(TR_KUBE_TOKEN_MAX_BYTES + 2);
    assert_non_null(big);
    memset(big, 'a', TR_KUBE_TOKEN_MAX_BYTES + 1);
    big[TR_KUBE_TOKEN_MAX_BYTES + 1] = '\0';
    big_path = write_file(fx, "t4", big);
    assert_int_equal(tr_kube_token_read(&token, big_path, &err), TR_ETOOBIG);
    tr_free(big_path);
    tr_free(big);
}

static void test_token_read_refuses_fifo_without_blocking(void **state)
{
    fixture *fx = *state;
    char *path = path_in(fx, "fifo"), *token = NULL, expected[256];
    tr_error err = { 0 };

    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(tr_kube_token_read(&token, path, &err), TR_EIO);
    snprintf(expected, sizeof(expected), "%s: not a regular file", path);
    assert_string_equal(err.message, expected);
    tr_free(path);
}

/* ------------------------------------------------------------ exec credentials */

static tr_kube_conn *exec_conn(const fixture *fx, const char *version, const char *provide)
{
    char *ca = b64(ca_pem), yaml[2048];
    tr_kube_conn *conn = NULL;
    tr_error err = { 0 };

    snprintf(yaml, sizeof(yaml), exec_v1, ca, version, provide,
             "      interactiveMode: IfAvailable\n");
    assert_int_equal(load_text(fx, yaml, NULL, &conn, &err, NULL), TR_OK);
    tr_free(ca);
    return conn;
}

static void test_exec_request_matches_client_go_fixture(void **state)
{
    char fixture_text[4096], *json = NULL;
    tr_kube_conn *conn = exec_conn(*state, "v1beta1", "false");
    cJSON *want, *got;
    tr_error err = { 0 };

    read_fixture(FIXTURES "exec-credential-v1beta1-request-from-client-go-test.json",
                 fixture_text, sizeof(fixture_text));
    assert_int_equal(tr_kube_exec_request_json(&json, conn, &err), TR_OK);
    want = cJSON_Parse(fixture_text);
    got = cJSON_Parse(json);
    assert_non_null(want);
    assert_non_null(got);
    assert_true(cJSON_Compare(want, got, 1));
    cJSON_Delete(want);
    cJSON_Delete(got);
    tr_free(json);
    tr_kube_conn_free(conn);
}

static void test_exec_request_carries_cluster_info(void **state)
{
    tr_kube_conn *conn = exec_conn(*state, "v1", "true");
    char *json = NULL, *ca = b64(ca_pem);
    const cJSON *cluster;
    tr_error err = { 0 };
    cJSON *got;

    assert_int_equal(tr_kube_exec_request_json(&json, conn, &err), TR_OK);
    got = cJSON_Parse(json);
    assert_non_null(got);
    assert_string_equal(cJSON_GetObjectItem(got, "apiVersion")->valuestring, TR_KUBE_EXEC_API_V1);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(got, "spec"),
                                                  "interactive")));
    cluster = cJSON_GetObjectItem(cJSON_GetObjectItem(got, "spec"), "cluster");
    assert_non_null(cluster);
    assert_string_equal(cJSON_GetObjectItem(cluster, "server")->valuestring,
                        "https://eks.example");
    assert_string_equal(cJSON_GetObjectItem(cluster, "certificate-authority-data")->valuestring,
                        ca);
    assert_null(cJSON_GetObjectItem(cluster, "insecure-skip-tls-verify"));
    cJSON_Delete(got);
    tr_free(json);
    tr_free(ca);
    tr_kube_conn_free(conn);
}

static void test_exec_response_fixture_gives_token(void **state)
{
    char text[4096];
    size_t len;
    tr_kube_exec_cred *cred = NULL;
    tr_error err = { 0 };

    (void)state;
    len = read_fixture(FIXTURES "exec-credential-v1beta1-response-token-from-client-go-test.json",
                       text, sizeof(text));
    assert_int_equal(tr_kube_exec_parse_response(&cred, TR_KUBE_EXEC_API_V1BETA1, text, len,
                                                 &err), TR_OK);
    assert_string_equal(cred->token, "foo-bar");
    assert_null(cred->client_cert_pem);
    assert_int_equal(cred->expiration_ms, 0);
    tr_kube_exec_cred_free(cred);

    /* The same output from a plugin configured for v1 is a mismatch. */
    assert_int_equal(tr_kube_exec_parse_response(&cred, TR_KUBE_EXEC_API_V1, text, len, &err),
                     TR_EPARSE);
    assert_null(cred);
    assert_string_equal(err.message, "exec plugin output: apiVersion "
                        "\"client.authentication.k8s.io/v1beta1\" does not match the configured "
                        "\"client.authentication.k8s.io/v1\"");
}

static void test_exec_response_cert_pair_and_expiry(void **state)
{
    tr_buf json = TR_BUF_INIT(0);
    tr_kube_exec_cred *cred = NULL;
    tr_error err = { 0 };
    struct tm tm = { 0 };

    (void)state;
    assert_int_equal(tr_buf_puts(&json, "{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                                        "\"kind\":\"ExecCredential\",\"status\":{"
                                        "\"expirationTimestamp\":\"2024-02-29T23:30:00.250-01:30\","
                                        "\"clientCertificateData\":\""), TR_OK);
    assert_int_equal(tr_buf_put_json_escaped(&json, cert_pem, strlen(cert_pem)), TR_OK);
    assert_int_equal(tr_buf_puts(&json, "\",\"clientKeyData\":\""), TR_OK);
    assert_int_equal(tr_buf_put_json_escaped(&json, key_pem, strlen(key_pem)), TR_OK);
    assert_int_equal(tr_buf_puts(&json, "\"}}"), TR_OK);
    assert_int_equal(tr_kube_exec_parse_response(&cred, NULL, json.ptr, json.len, &err), TR_OK);
    assert_null(cred->token);
    assert_string_equal(cred->client_cert_pem, cert_pem);
    assert_string_equal(cred->client_key_pem, key_pem);
    /* 23:30 at -01:30 is 01:00 UTC the next day (2024 is a leap year). */
    tm.tm_year = 2024 - 1900;
    tm.tm_mon = 2;
    tm.tm_mday = 1;
    tm.tm_hour = 1;
    assert_int_equal(cred->expiration_ms, (int64_t)timegm(&tm) * 1000 + 250);
    tr_kube_exec_cred_free(cred);
    tr_buf_dispose(&json);
}

static void assert_bad_response(const char *json, const char *message)
{
    tr_kube_exec_cred *cred = NULL;
    tr_error err = { 0 };

    assert_int_equal(tr_kube_exec_parse_response(&cred, NULL, json, strlen(json), &err),
                     TR_EPARSE);
    assert_null(cred);
    assert_string_equal(err.message, message);
}

#define ENVELOPE                                                                        \
    "\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\""

static void test_exec_response_rejects_invalid_output(void **state)
{
    (void)state;
    assert_bad_response("Error: please run aws sso login", "exec plugin output is not a JSON "
                                                            "object");
    assert_bad_response("{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"Pod\"}",
                        "exec plugin output: kind is \"Pod\", want ExecCredential");
    assert_bad_response("{\"apiVersion\":\"v1\",\"kind\":\"ExecCredential\",\"status\":{}}",
                        "exec plugin output: apiVersion \"v1\" is not supported");
    assert_bad_response("{" ENVELOPE "}", "exec plugin output has no status object");
    assert_bad_response("{" ENVELOPE ",\"status\":{\"token\":\"\"}}",
                        "exec plugin output has neither status.token nor "
                        "status.clientCertificateData/clientKeyData");
    assert_bad_response("{" ENVELOPE ",\"status\":{\"token\":42}}",
                        "exec plugin output: status.token is not a string");
    assert_bad_response("{" ENVELOPE ",\"status\":{\"clientCertificateData\":\"-----BEGIN x\"}}",
                        "exec plugin output has only one of status.clientCertificateData and "
                        "status.clientKeyData");
    assert_bad_response("{" ENVELOPE ",\"status\":{\"token\":\"a b\"}}",
                        "exec plugin output: status.token contains control characters or spaces");
    assert_bad_response("{" ENVELOPE ",\"status\":{\"token\":\"t\","
                        "\"expirationTimestamp\":\"2023-02-29T00:00:00Z\"}}",
                        "exec plugin output: expirationTimestamp \"2023-02-29T00:00:00Z\" is not "
                        "an RFC 3339 time");
    assert_bad_response("{" ENVELOPE ",\"status\":{\"token\":\"t\","
                        "\"expirationTimestamp\":\"2023-01-01 00:00:00Z\"}}",
                        "exec plugin output: expirationTimestamp \"2023-01-01 00:00:00Z\" is not "
                        "an RFC 3339 time");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_load_token_user_from_current_context),
        T(test_context_override_selects_cert_user_and_insecure_cluster),
        T(test_relative_paths_resolve_against_kubeconfig_dir),
        T(test_missing_file_reference_names_the_path),
        T(test_missing_context_user_cluster_errors_say_what_is_missing),
        T(test_insecure_with_ca_is_rejected),
        T(test_bad_certificate_data_is_rejected),
        T(test_user_auth_conflicts_are_rejected),
        T(test_exec_plugin_v1_parsed_with_args_and_env),
        T(test_exec_plugin_v1beta1_defaults_interactive_mode),
        T(test_auth_provider_is_rejected_with_exec_advice),
        T(test_malformed_yaml_reports_line),
        T(test_type_errors_name_line_and_key),
        T(test_deep_nesting_is_bounded),
        T(test_load_survives_allocation_failures),
        T(test_in_cluster_reads_token_ca_and_namespace),
        T(test_in_cluster_ipv6_host_and_defaults),
        T(test_in_cluster_failures),
        T(test_resolve_auto_order),
        T(test_resolve_reports_nothing_configured),
        T(test_resolve_explicit_path_and_tilde),
        T(test_token_read_trims_and_validates),
        T(test_token_read_refuses_fifo_without_blocking),
        T(test_exec_request_matches_client_go_fixture),
        T(test_exec_request_carries_cluster_info),
        T(test_exec_response_fixture_gives_token),
        T(test_exec_response_cert_pair_and_expiry),
        T(test_exec_response_rejects_invalid_output),
#undef T
    };

    TR_RUN_TESTS("kubeconfig", tests);
}
