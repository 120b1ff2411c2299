/*
 * kubeconfig.c - kubeconfig loading and context selection, in-cluster
 * settings, the "auto" lookup rule, and the file and token reading they share.
 *
 * Only the selected context, its cluster and its user are interpreted, the
 * way client-go's clientcmd validates only what it uses. The YAML node tree
 * and its typed lookups are in kube_yaml.c; exec credential data is in
 * kube_exec.c.
 */
#include "kubeconfig.h"

#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "kube_yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ files */

static const char *errno_text(int errnum, char *buf, size_t size)
{
    return strerror_r(errnum, buf, size); /* GNU variant: returns the text */
}

/* Only regular files: a FIFO or a device named in a kubeconfig must not hang us. */
int tr_kubeconfig_read_file(const char *path, size_t cap, char **out, size_t *out_len,
                            tr_error *err)
{
    tr_buf data = TR_BUF_INIT(cap);
    char chunk[4096], ebuf[128];
    struct stat st;
    ssize_t got;
    int fd, rc = TR_OK;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return tr_error_set(err, errno == ENOENT ? TR_ENOTFOUND : TR_EIO, "%s: %s", path,
                            errno_text(errno, ebuf, sizeof(ebuf)));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = tr_error_set(err, TR_EIO, "%s: not a regular file", path);
        goto cleanup;
    }
    for (;;) {
        got = read(fd, chunk, sizeof(chunk));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = tr_error_set(err, TR_EIO, "%s: %s", path, errno_text(errno, ebuf, sizeof(ebuf)));
            goto cleanup;
        }
        if (got == 0)
            break;
        rc = tr_buf_put(&data, chunk, (size_t)got);
        if (rc == TR_ETOOBIG) {
            rc = tr_error_set(err, rc, "%s: larger than %zu bytes", path, cap);
            goto cleanup;
        }
        if (rc != TR_OK) {
            rc = tr_error_set(err, rc, "%s: out of memory", path);
            goto cleanup;
        }
    }
    *out_len = data.len;
    *out = data.len ? tr_buf_detach(&data) : tr_strdup("");
    if (*out == NULL)
        rc = tr_error_set(err, TR_ENOMEM, "%s: out of memory", path);
cleanup:
    tr_buf_dispose(&data);
    close(fd);
    return rc;
}

/* Bearer tokens go into an HTTP header: printable ASCII without spaces only. */
int tr_kubeconfig_token_is_clean(const char *token)
{
    const unsigned char *p;

    for (p = (const unsigned char *)token; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return 0;
    return 1;
}

int tr_kube_token_read(char **out, const char *path, tr_error *err)
{
    char *data = NULL;
    size_t len = 0, start = 0;
    int rc;

    *out = NULL;
    rc = tr_kubeconfig_read_file(path, TR_KUBE_TOKEN_MAX_BYTES, &data, &len, err);
    if (rc != TR_OK)
        return rc;
    while (len > 0 && strchr(" \t\r\n\v\f", data[len - 1]) != NULL)
        len--;
    while (start < len && strchr(" \t\r\n\v\f", data[start]) != NULL)
        start++;
    /*
     * Empty first: the terminator below is then written only after a non-empty
     * read, which the analyzer can follow (it cannot see into tr_error_set, so it
     * takes a failed read for TR_OK with no buffer).
     */
    if (start == len) {
        tr_free(data);
        return tr_error_set(err, TR_EAUTH, "%s: token file is empty", path);
    }
    data[len] = '\0';
    if (memchr(data + start, '\0', len - start) || !tr_kubeconfig_token_is_clean(data + start)) {
        rc = tr_error_set(err, TR_EAUTH, "%s: token contains control characters or spaces",
                          path);
    } else {
        *out = tr_strndup(data + start, len - start);
        if (*out == NULL)
            rc = tr_error_set(err, TR_ENOMEM, "out of memory");
    }
    tr_free(data);
    return rc;
}

static char *join_path(const char *dir, const char *name)
{
    tr_buf path = TR_BUF_INIT(0);

    if (tr_buf_printf(&path, "%s/%s", dir, name) != TR_OK) {
        tr_buf_dispose(&path);
        return NULL;
    }
    return tr_buf_detach(&path);
}

/* ------------------------------------------------------------ values */

static int set_str(tr_kube_yaml_ctx *c, char **field, const char *value)
{
    if (value == NULL)
        return TR_OK;
    *field = tr_strdup(value);
    return *field ? TR_OK : tr_error_set(c->err, TR_ENOMEM, "out of memory");
}

/* Relative paths are relative to the kubeconfig's directory, as in kubectl. */
static int set_path(tr_kube_yaml_ctx *c, char **field, const char *key, const char *value)
{
    char ebuf[128];

    if (value == NULL)
        return TR_OK;
    *field = value[0] == '/' ? tr_strdup(value) : join_path(c->base_dir, value);
    if (*field == NULL)
        return tr_error_set(c->err, TR_ENOMEM, "out of memory");
    if (access(*field, R_OK) != 0)
        return tr_error_set(c->err, TR_ECONFIG, "%s: %s \"%s\": %s \"%s\": %s", c->source,
                            c->kind, c->name, key, *field, errno_text(errno, ebuf, sizeof(ebuf)));
    return TR_OK;
}

/* Strict base64 (whitespace from YAML line folding is skipped) that must hold PEM. */
static int set_pem(tr_kube_yaml_ctx *c, char **field, size_t *len_out, const char *key,
                   const char *b64)
{
    size_t i, n = 0, pad = 0;
    unsigned char *clean = NULL, *pem = NULL;
    int decoded, rc = TR_OK;

    if (b64 == NULL)
        return TR_OK;
    clean = tr_malloc(strlen(b64) + 1);
    if (clean == NULL)
        return tr_error_set(c->err, TR_ENOMEM, "out of memory");
    for (i = 0; b64[i]; i++)
        if (strchr(" \t\r\n", b64[i]) == NULL)
            clean[n++] = (unsigned char)b64[i];
    for (i = 0; i < n; i++) {
        if (clean[i] == '=' && i + 2 >= n && (i + 1 == n || clean[i + 1] == '='))
            pad++;
        else if (clean[i] == '=' || !strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                            "0123456789+/", clean[i]))
            break;
    }
    if (n == 0 || n % 4 != 0 || i != n || n > INT_MAX) {
        rc = tr_error_set(c->err, TR_ECONFIG, "%s: %s \"%s\": %s is not valid base64", c->source,
                          c->kind, c->name, key);
        goto cleanup;
    }
    pem = tr_malloc(n / 4 * 3 + 1);
    if (pem == NULL) {
        rc = tr_error_set(c->err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    decoded = EVP_DecodeBlock(pem, clean, (int)n);
    if (decoded < 0 || (size_t)decoded < pad) {
        rc = tr_error_set(c->err, TR_ECONFIG, "%s: %s \"%s\": %s is not valid base64", c->source,
                          c->kind, c->name, key);
        goto cleanup;
    }
    *len_out = (size_t)decoded - pad; /* EVP_DecodeBlock counts padding as zero bytes */
    pem[*len_out] = '\0';
    if (memmem(pem, *len_out, "-----BEGIN ", 11) == NULL) {
        rc = tr_error_set(c->err, TR_ECONFIG, "%s: %s \"%s\": %s does not decode to PEM "
                          "(no -----BEGIN line)", c->source, c->kind, c->name, key);
        goto cleanup;
    }
    *field = (char *)pem;
    pem = NULL;
cleanup:
    tr_free(pem);
    tr_free(clean);
    return rc;
}

static int set_server(tr_kube_yaml_ctx *c, tr_kube_conn *conn, const char *server)
{
    tr_buf url = TR_BUF_INIT(0);
    int rc;

    if (server == NULL)
        return tr_error_set(c->err, TR_ECONFIG, "%s: cluster \"%s\" has no server", c->source,
                            c->name);
    /* client-go assumes https for a bare host:port. */
    if (strstr(server, "://") == NULL)
        rc = tr_buf_printf(&url, "https://%s", server);
    else if (strncasecmp(server, "https://", 8) == 0 || strncasecmp(server, "http://", 7) == 0)
        rc = tr_buf_puts(&url, server);
    else
        return tr_error_set(c->err, TR_ECONFIG, "%s: cluster \"%s\": server \"%s\" is not an "
                            "http or https URL", c->source, c->name, server);
    while (rc == TR_OK && url.len > 0 && url.ptr[url.len - 1] == '/')
        url.ptr[--url.len] = '\0';
    if (rc == TR_OK && (conn->server = tr_buf_detach(&url)) == NULL)
        rc = TR_ENOMEM;
    tr_buf_dispose(&url);
    return rc == TR_OK ? TR_OK : tr_error_set(c->err, TR_ENOMEM, "out of memory");
}

/* ------------------------------------------------------------ kubeconfig */

static int load_cluster(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *root, tr_kube_conn *conn)
{
    const char *server, *ca_file, *ca_data, *tls_name, *proxy;
    const tr_kube_yaml_node *body;
    int rc;

    rc = tr_kube_yaml_find_named(c, root, "clusters", "cluster", conn->cluster_name, &body);
    if (rc == TR_ENOTFOUND)
        return tr_error_set(c->err, TR_ECONFIG, "%s: cluster \"%s\" of context \"%s\" not found",
                            c->source, conn->cluster_name, conn->context_name);
    c->kind = "cluster";
    c->name = conn->cluster_name;
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "server", &server);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "certificate-authority", &ca_file);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "certificate-authority-data", &ca_data);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "tls-server-name", &tls_name);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "proxy-url", &proxy);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_bool(c, body, "insecure-skip-tls-verify", &conn->insecure);
    if (rc != TR_OK)
        return rc;
    /* client-go's transport refuses this pair too: a pinned CA that is never checked. */
    if (conn->insecure && (ca_file || ca_data))
        return tr_error_set(c->err, TR_ECONFIG, "%s: cluster \"%s\": insecure-skip-tls-verify "
                            "cannot be combined with a certificate authority", c->source, c->name);
    rc = set_server(c, conn, server);
    if (rc == TR_OK)
        rc = ca_data ? set_pem(c, &conn->ca_pem, &conn->ca_pem_len, "certificate-authority-data",
                               ca_data)
                     : set_path(c, &conn->ca_file, "certificate-authority", ca_file);
    if (rc == TR_OK)
        rc = set_str(c, &conn->tls_server_name, tls_name);
    if (rc == TR_OK)
        rc = set_str(c, &conn->proxy_url, proxy);
    return rc;
}

static int load_exec_list(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *exec, tr_kube_exec *out)
{
    const tr_kube_yaml_node *args = tr_kube_yaml_map_get(exec, "args");
    const tr_kube_yaml_node *env = tr_kube_yaml_map_get(exec, "env");
    const char *name, *value;
    size_t i;
    int rc = TR_OK;

    if (!tr_kube_yaml_is_null(args)) {
        if (args->kind != TR_KUBE_YAML_SEQ)
            return tr_kube_yaml_type_error(c, args, "exec args", "a list of strings");
        out->args = tr_calloc(args->count, sizeof(*out->args));
        if (out->args == NULL)
            return tr_error_set(c->err, TR_ENOMEM, "out of memory");
        for (i = 0; i < args->count; i++, out->args_count++) {
            if (args->items[i]->kind != TR_KUBE_YAML_SCALAR)
                return tr_kube_yaml_type_error(c, args->items[i], "exec args", "a list of strings");
            if ((rc = set_str(c, &out->args[i], args->items[i]->text)) != TR_OK)
                return rc;
        }
    }
    if (tr_kube_yaml_is_null(env))
        return TR_OK;
    if (env->kind != TR_KUBE_YAML_SEQ)
        return tr_kube_yaml_type_error(c, env, "exec env", "a list of {name, value}");
    out->env = tr_calloc(env->count, sizeof(*out->env));
    if (out->env == NULL)
        return tr_error_set(c->err, TR_ENOMEM, "out of memory");
    for (i = 0; i < env->count; i++, out->env_count++) {
        if (env->items[i]->kind != TR_KUBE_YAML_MAP)
            return tr_kube_yaml_type_error(c, env->items[i], "exec env", "a list of {name, value}");
        rc = tr_kube_yaml_get_str(c, env->items[i], "name", &name);
        if (rc == TR_OK)
            rc = tr_kube_yaml_get_str(c, env->items[i], "value", &value);
        if (rc != TR_OK)
            return rc;
        if (name == NULL)
            return tr_kube_yaml_type_error(c, env->items[i], "exec env name", "set");
        rc = set_str(c, &out->env[i].name, name);
        if (rc == TR_OK)
            rc = set_str(c, &out->env[i].value, value ? value : "");
        if (rc != TR_OK)
            return rc;
    }
    return TR_OK;
}

static int load_exec(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *exec, tr_kube_conn *conn)
{
    const char *api, *command, *hint, *mode;
    tr_kube_exec *out;
    int rc;

    out = conn->exec = tr_calloc(1, sizeof(*out));
    if (out == NULL)
        return tr_error_set(c->err, TR_ENOMEM, "out of memory");
    rc = tr_kube_yaml_get_str(c, exec, "apiVersion", &api);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, exec, "command", &command);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, exec, "installHint", &hint);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, exec, "interactiveMode", &mode);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_bool(c, exec, "provideClusterInfo", &out->provide_cluster_info);
    if (rc != TR_OK)
        return rc;
    if (api == NULL || (strcmp(api, TR_KUBE_EXEC_API_V1) != 0 &&
                        strcmp(api, TR_KUBE_EXEC_API_V1BETA1) != 0))
        return tr_error_set(c->err, TR_ECONFIG, "%s: user \"%s\": exec apiVersion \"%s\" is not "
                            "supported (use %s or %s)", c->source, c->name, api ? api : "",
                            TR_KUBE_EXEC_API_V1, TR_KUBE_EXEC_API_V1BETA1);
    if (command == NULL)
        return tr_error_set(c->err, TR_ECONFIG, "%s: user \"%s\": exec has no command",
                            c->source, c->name);
    /* v1beta1 defaults interactiveMode to IfAvailable; v1 makes it mandatory. */
    if (mode == NULL && strcmp(api, TR_KUBE_EXEC_API_V1) == 0)
        return tr_error_set(c->err, TR_ECONFIG, "%s: user \"%s\": exec interactiveMode must be "
                            "set for %s", c->source, c->name, api);
    if (mode == NULL || strcmp(mode, "IfAvailable") == 0)
        out->interactive_mode = TR_KUBE_INTERACTIVE_IF_AVAILABLE;
    else if (strcmp(mode, "Never") == 0)
        out->interactive_mode = TR_KUBE_INTERACTIVE_NEVER;
    else if (strcmp(mode, "Always") == 0)
        return tr_error_set(c->err, TR_ECONFIG, "%s: user \"%s\": exec interactiveMode Always "
                            "needs a terminal, and triaged runs without one", c->source, c->name);
    else
        return tr_error_set(c->err, TR_ECONFIG, "%s: user \"%s\": exec interactiveMode \"%s\" "
                            "is not Never, IfAvailable or Always", c->source, c->name, mode);
    rc = set_str(c, &out->api_version, api);
    /* Only a command with a '/' is a path; a bare name is looked up in $PATH. */
    if (rc == TR_OK)
        rc = strchr(command, '/') ? set_path(c, &out->command, "exec command", command)
                                  : set_str(c, &out->command, command);
    if (rc == TR_OK)
        rc = set_str(c, &out->install_hint, hint);
    if (rc == TR_OK)
        rc = load_exec_list(c, exec, out);
    return rc;
}

static int load_user(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *root, tr_kube_conn *conn)
{
    static const char *const impersonation[] = { "as", "as-uid", "as-groups", "as-user-extra" };
    const char *token, *token_file, *cert, *cert_data, *key, *key_data, *user, *pass, *provider;
    const tr_kube_yaml_node *body, *node;
    size_t i;
    int rc;

    rc = tr_kube_yaml_find_named(c, root, "users", "user", conn->user_name, &body);
    if (rc == TR_ENOTFOUND)
        return tr_error_set(c->err, TR_ECONFIG, "%s: user \"%s\" of context \"%s\" not found",
                            c->source, conn->user_name, conn->context_name);
    if (rc != TR_OK)
        return rc;
    c->kind = "user";
    c->name = conn->user_name;
    if ((rc = tr_kube_yaml_get_map(c, body, "auth-provider", &node)) != TR_OK)
        return rc;
    if (node != NULL) {
        if ((rc = tr_kube_yaml_get_str(c, node, "name", &provider)) != TR_OK)
            return rc;
        return tr_error_set(c->err, TR_ECONFIG, "%s: user \"%s\" uses auth-provider \"%s\", which "
                            "Kubernetes clients no longer support; configure an exec plugin "
                            "instead (e.g. gke-gcloud-auth-plugin, kubelogin)", c->source, c->name,
                            provider ? provider : "");
    }
    for (i = 0; i < sizeof(impersonation) / sizeof(impersonation[0]); i++)
        if (!tr_kube_yaml_is_null(tr_kube_yaml_map_get(body, impersonation[i])))
            return tr_error_set(c->err, TR_ECONFIG, "%s: user \"%s\": impersonation (%s) is not "
                                "supported", c->source, c->name, impersonation[i]);
    rc = tr_kube_yaml_get_str(c, body, "token", &token);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "tokenFile", &token_file);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "client-certificate", &cert);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "client-certificate-data", &cert_data);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "client-key", &key);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "client-key-data", &key_data);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "username", &user);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "password", &pass);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_map(c, body, "exec", &node);
    if (rc != TR_OK)
        return rc;
    if ((token || token_file) && (user || pass))
        return tr_error_set(c->err, TR_ECONFIG, "%s: user \"%s\": more than one authentication "
                            "method (token and username/password)", c->source, c->name);
    if ((cert || cert_data) != (key || key_data))
        return tr_error_set(c->err, TR_ECONFIG, "%s: user \"%s\" has a client %s but no client %s",
                            c->source, c->name, key || key_data ? "key" : "certificate",
                            key || key_data ? "certificate" : "key");
    if (token && !tr_kubeconfig_token_is_clean(token))
        return tr_error_set(c->err, TR_ECONFIG, "%s: user \"%s\": token contains control "
                            "characters or spaces", c->source, c->name);
    rc = set_str(c, &conn->token, token);
    if (rc == TR_OK)
        rc = set_path(c, &conn->token_file, "tokenFile", token_file);
    if (rc == TR_OK && token == NULL && conn->token_file) {
        rc = tr_kube_token_read(&conn->token, conn->token_file, c->err);
        if (rc != TR_OK)
            tr_error_prefix(c->err, "%s: user \"%s\": tokenFile: ", c->source, c->name);
    }
    if (rc == TR_OK)
        rc = cert_data ? set_pem(c, &conn->client_cert_pem, &conn->client_cert_pem_len,
                                 "client-certificate-data", cert_data)
                       : set_path(c, &conn->client_cert_file, "client-certificate", cert);
    if (rc == TR_OK)
        rc = key_data ? set_pem(c, &conn->client_key_pem, &conn->client_key_pem_len,
                                "client-key-data", key_data)
                      : set_path(c, &conn->client_key_file, "client-key", key);
    if (rc == TR_OK)
        rc = set_str(c, &conn->username, user);
    if (rc == TR_OK)
        rc = set_str(c, &conn->password, pass);
    if (rc == TR_OK && node != NULL)
        rc = load_exec(c, node, conn);
    return rc;
}

static int select_context(tr_kube_yaml_ctx *c, const tr_kube_yaml_node *root, const char *context,
                          tr_kube_conn *conn)
{
    const char *cluster, *user, *ns;
    const tr_kube_yaml_node *body;
    int rc;

    if (context == NULL || context[0] == '\0') {
        if ((rc = tr_kube_yaml_get_str(c, root, "current-context", &context)) != TR_OK)
            return rc;
        if (context == NULL)
            return tr_error_set(c->err, TR_ECONFIG, "%s: no context given and current-context "
                                "is not set", c->source);
    }
    rc = tr_kube_yaml_find_named(c, root, "contexts", "context", context, &body);
    if (rc == TR_ENOTFOUND)
        return tr_error_set(c->err, TR_ECONFIG, "%s: context \"%s\" not found", c->source,
                            context);
    c->kind = "context";
    c->name = context;
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "cluster", &cluster);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "user", &user);
    if (rc == TR_OK)
        rc = tr_kube_yaml_get_str(c, body, "namespace", &ns);
    if (rc != TR_OK)
        return rc;
    if (cluster == NULL)
        return tr_error_set(c->err, TR_ECONFIG, "%s: context \"%s\" has no cluster", c->source,
                            context);
    rc = set_str(c, &conn->context_name, context);
    if (rc == TR_OK)
        rc = set_str(c, &conn->cluster_name, cluster);
    if (rc == TR_OK)
        rc = set_str(c, &conn->user_name, user); /* no user: anonymous, as kubectl allows */
    if (rc == TR_OK)
        rc = set_str(c, &conn->namespace, ns ? ns : "default");
    return rc;
}

int tr_kubeconfig_load_string(tr_kube_conn **out, const char *yaml, size_t len,
                              const char *source, const char *base_dir,
                              const char *context, tr_error *err)
{
    tr_kube_yaml_ctx c = { source ? source : "<kubeconfig>", base_dir ? base_dir : ".", err, NULL,
                           NULL };
    tr_kube_conn *conn = NULL;
    tr_kube_yaml_node *root = NULL;
    int rc;

    *out = NULL;
    if (yaml == NULL) /* libyaml asserts on a NULL input */
        yaml = "";
    if (len > TR_KUBECONFIG_MAX_BYTES)
        return tr_error_set(err, TR_ETOOBIG, "%s: larger than %zu bytes", c.source,
                            TR_KUBECONFIG_MAX_BYTES);
    rc = tr_kube_yaml_parse(&c, yaml, len, &root);
    if (rc != TR_OK)
        return rc;
    if (!tr_kube_yaml_is_null(root) && root->kind != TR_KUBE_YAML_MAP) {
        rc = tr_error_set(err, TR_ECONFIG, "%s:%zu: a kubeconfig must be a mapping", c.source,
                          root->line);
        goto cleanup;
    }
    conn = tr_calloc(1, sizeof(*conn));
    if (conn == NULL || (conn->source = tr_strdup(c.source)) == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = select_context(&c, root, context, conn);
    if (rc == TR_OK)
        rc = load_cluster(&c, root, conn);
    if (rc == TR_OK && conn->user_name)
        rc = load_user(&c, root, conn);
    if (rc == TR_OK) {
        *out = conn;
        conn = NULL;
    }
cleanup:
    tr_kube_conn_free(conn);
    tr_kube_yaml_free(root);
    return rc;
}

int tr_kubeconfig_load(tr_kube_conn **out, const char *path, const char *context,
                       tr_error *err)
{
    char cwd[PATH_MAX];
    char *data = NULL, *dir = NULL;
    const char *slash = strrchr(path, '/');
    size_t len = 0;
    int rc;

    *out = NULL;
    rc = tr_kubeconfig_read_file(path, TR_KUBECONFIG_MAX_BYTES, &data, &len, err);
    if (rc != TR_OK)
        return rc;
    /* Resolve against an absolute directory so the paths survive a later chdir. */
    if (slash == path)
        dir = tr_strdup("/");
    else if (path[0] == '/')
        dir = tr_strndup(path, (size_t)(slash - path));
    else if (getcwd(cwd, sizeof(cwd)) == NULL)
        dir = slash ? tr_strndup(path, (size_t)(slash - path)) : tr_strdup(".");
    else if (slash) {
        tr_buf joined = TR_BUF_INIT(0);
        if (tr_buf_printf(&joined, "%s/%.*s", cwd, (int)(slash - path), path) == TR_OK)
            dir = tr_buf_detach(&joined);
        tr_buf_dispose(&joined);
    } else {
        dir = tr_strdup(cwd);
    }
    if (dir == NULL)
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
    else
        rc = tr_kubeconfig_load_string(out, data, len, path, dir, context, err);
    tr_free(dir);
    tr_free(data);
    return rc;
}

/* ------------------------------------------------------------ in-cluster */

int tr_kubeconfig_in_cluster(tr_kube_conn **out, const char *sa_dir, tr_error *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    tr_kube_conn *conn = NULL;
    tr_buf url = TR_BUF_INIT(0);
    char *ca = NULL, *ns = NULL;
    int rc;

    *out = NULL;
    if (sa_dir == NULL)
        sa_dir = TR_KUBE_SA_DIR;
    if (host == NULL || !*host || port == NULL || !*port)
        return tr_error_set(err, TR_ENOTFOUND, "not in a cluster: KUBERNETES_SERVICE_HOST and "
                            "KUBERNETES_SERVICE_PORT are not both set");
    if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 || atoi(port) < 1 ||
        atoi(port) > 65535 || strpbrk(host, "/@[]? \t\r\n") != NULL)
        return tr_error_set(err, TR_ECONFIG, "in-cluster: KUBERNETES_SERVICE_HOST \"%s\" / "
                            "KUBERNETES_SERVICE_PORT \"%s\" do not form an address", host, port);
    conn = tr_calloc(1, sizeof(*conn));
    rc = conn ? TR_OK : TR_ENOMEM;
    if (rc == TR_OK) /* an IPv6 literal needs brackets before the port */
        rc = tr_buf_printf(&url, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
                           port);
    if (rc == TR_OK && ((conn->server = tr_buf_detach(&url)) == NULL ||
                        (conn->source = tr_strdup("in-cluster")) == NULL ||
                        (conn->token_file = join_path(sa_dir, "token")) == NULL ||
                        (ca = join_path(sa_dir, "ca.crt")) == NULL))
        rc = TR_ENOMEM;
    if (rc != TR_OK) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    conn->in_cluster = 1;
    rc = tr_kube_token_read(&conn->token, conn->token_file, err);
    if (rc != TR_OK) {
        tr_error_prefix(err, "in-cluster service account token: ");
        goto cleanup;
    }
    /* client-go also goes on without the CA when ca.crt is unreadable. */
    if (access(ca, R_OK) == 0) {
        conn->ca_file = ca;
        ca = NULL;
    }
    if ((ns = join_path(sa_dir, "namespace")) == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = tr_kube_token_read(&conn->namespace, ns, err);
    if (rc == TR_ENOMEM)
        goto cleanup;
    if (rc != TR_OK) {
        tr_error_clear(err);
        rc = TR_OK;
        if ((conn->namespace = tr_strdup("default")) == NULL) {
            rc = tr_error_set(err, TR_ENOMEM, "out of memory");
            goto cleanup;
        }
    }
    *out = conn;
    conn = NULL;
cleanup:
    tr_buf_dispose(&url);
    tr_free(ns);
    tr_free(ca);
    tr_kube_conn_free(conn);
    return rc;
}

static int file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

/* The first existing file in a ':' list (copied into *out), or NULL. */
static int first_existing(const char *list, char **out)
{
    const char *start = list, *end;

    *out = NULL;
    while (*start) {
        end = strchr(start, ':');
        if (end == NULL)
            end = start + strlen(start);
        if (end > start) {
            *out = tr_strndup(start, (size_t)(end - start));
            if (*out == NULL)
                return TR_ENOMEM;
            if (file_exists(*out))
                return TR_OK;
            tr_free(*out);
            *out = NULL;
        }
        start = *end ? end + 1 : end;
    }
    return TR_OK;
}

int tr_kubeconfig_resolve(tr_kube_conn **out, const char *setting, const char *context,
                          const char *sa_dir, tr_error *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *list = getenv("KUBECONFIG");
    const char *home = getenv("HOME");
    char *path = NULL;
    int rc;

    *out = NULL;
    if (setting != NULL && setting[0] == '\0') {
        rc = tr_kubeconfig_in_cluster(out, sa_dir, err);
        if (rc != TR_OK)
            tr_error_prefix(err, "kubeconfig \"\" means in-cluster, but ");
        return rc;
    }
    if (setting != NULL && strcmp(setting, "auto") != 0) {
        if (strncmp(setting, "~/", 2) == 0 && home && *home)
            path = join_path(home, setting + 2);
        else
            path = tr_strdup(setting);
        if (path == NULL)
            return tr_error_set(err, TR_ENOMEM, "out of memory");
        rc = tr_kubeconfig_load(out, path, context, err);
        tr_free(path);
        return rc;
    }
    if (host != NULL && host[0] != '\0')
        return tr_kubeconfig_in_cluster(out, sa_dir, err);
    if (list != NULL && list[0] != '\0') {
        if (first_existing(list, &path) != TR_OK)
            return tr_error_set(err, TR_ENOMEM, "out of memory");
        if (path == NULL)
            return tr_error_set(err, TR_ENOTFOUND, "no kubeconfig: no file of $KUBECONFIG (%s) "
                                "exists, not in a cluster", list);
    } else if (home != NULL && home[0] != '\0') {
        path = join_path(home, ".kube/config");
        if (path == NULL)
            return tr_error_set(err, TR_ENOMEM, "out of memory");
        if (!file_exists(path)) {
            tr_free(path);
            path = NULL;
        }
    }
    if (path == NULL)
        return tr_error_set(err, TR_ENOTFOUND, "no kubeconfig: $KUBECONFIG unset, "
                            "~/.kube/config missing, not in a cluster");
    rc = tr_kubeconfig_load(out, path, context, err);
    tr_free(path);
    return rc;
}

void tr_kube_conn_free(tr_kube_conn *conn)
{
    size_t i;

    if (conn == NULL)
        return;
    if (conn->exec) {
        for (i = 0; i < conn->exec->args_count; i++)
            tr_free(conn->exec->args[i]);
        for (i = 0; i < conn->exec->env_count; i++) {
            tr_free(conn->exec->env[i].name);
            tr_free(conn->exec->env[i].value);
        }
        tr_free(conn->exec->args);
        tr_free(conn->exec->env);
        tr_free(conn->exec->api_version);
        tr_free(conn->exec->command);
        tr_free(conn->exec->install_hint);
        tr_free(conn->exec);
    }
    tr_free(conn->source);
    tr_free(conn->context_name);
    tr_free(conn->cluster_name);
    tr_free(conn->user_name);
    tr_free(conn->server);
    tr_free(conn->tls_server_name);
    tr_free(conn->proxy_url);
    tr_free(conn->ca_file);
    tr_free(conn->ca_pem);
    tr_free(conn->token);
    tr_free(conn->token_file);
    tr_free(conn->client_cert_file);
    tr_free(conn->client_key_file);
    tr_free(conn->client_cert_pem);
    tr_free(conn->client_key_pem);
    tr_free(conn->username);
    tr_free(conn->password);
    tr_free(conn->namespace);
    tr_free(conn);
}

