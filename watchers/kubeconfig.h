/*
 * kubeconfig.h - where the Kubernetes watchers get their connection settings:
 * a kubeconfig file (YAML, read with libyaml into a small bounded node tree),
 * the in-cluster service account, or the "auto" rule that picks one of them.
 * It also holds the data half of exec credential plugins (the request put in
 * KUBERNETES_EXEC_INFO and the parsing of the plugin's stdout); running the
 * plugin is the watcher's job, off the loop.
 *
 * This module owns no long-lived state: every function hands back a freshly
 * allocated result that the caller frees. Nothing here logs; errors name the
 * file (and line for YAML errors) and what is missing.
 *
 * Only the entries the selected context uses are interpreted; KUBECONFIG
 * lists are not merged (the first file that exists is used), cluster
 * extensions (spec.cluster.config) are not read, and impersonation (as:) and
 * the legacy auth-provider are rejected with an error rather than ignored.
 */
#ifndef TR_KUBECONFIG_H
#define TR_KUBECONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define TR_KUBE_EXEC_API_V1 "client.authentication.k8s.io/v1"
#define TR_KUBE_EXEC_API_V1BETA1 "client.authentication.k8s.io/v1beta1"
#define TR_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* Caps on what input can grow. */
#define TR_KUBECONFIG_MAX_BYTES ((size_t)4 * 1024 * 1024)
#define TR_KUBE_TOKEN_MAX_BYTES ((size_t)64 * 1024)
#define TR_KUBE_EXEC_OUTPUT_MAX_BYTES ((size_t)1024 * 1024)

typedef enum tr_kube_interactive {
    TR_KUBE_INTERACTIVE_NEVER = 0,
    TR_KUBE_INTERACTIVE_IF_AVAILABLE = 1,
} tr_kube_interactive;

typedef struct tr_kube_exec_env {
    char *name;
    char *value;
} tr_kube_exec_env;

/* users[].user.exec. Paths with a '/' in command are resolved like files. */
typedef struct tr_kube_exec {
    char *api_version;            /* TR_KUBE_EXEC_API_V1 or TR_KUBE_EXEC_API_V1BETA1 */
    char *command;
    char **args;
    size_t args_count;
    tr_kube_exec_env *env;
    size_t env_count;
    char *install_hint;           /* NULL when absent */
    int provide_cluster_info;
    /* "Always" is rejected at load: the daemon never has a terminal. */
    tr_kube_interactive interactive_mode;
} tr_kube_exec;

/*
 * Everything needed to talk to one apiserver. Strings are NULL when unset.
 * When both a file and inline data exist for the CA or the client
 * certificate, only the data is kept (client-go gives data precedence).
 * File paths are absolute or as given; relative kubeconfig paths are
 * already resolved against the kubeconfig's directory.
 */
typedef struct tr_kube_conn {
    char *source;            /* the kubeconfig path, or "in-cluster" */
    int in_cluster;
    char *context_name;      /* NULL in-cluster */
    char *cluster_name;      /* NULL in-cluster */
    char *user_name;         /* NULL in-cluster or anonymous */
    char *server;            /* "https://host:port", no trailing '/' */
    char *tls_server_name;
    char *proxy_url;
    int insecure;            /* insecure-skip-tls-verify */
    char *ca_file;
    char *ca_pem;            /* decoded certificate-authority-data */
    size_t ca_pem_len;
    /*
     * The bearer token as read at load time. When token_file is set the
     * token rotates: re-read it with tr_kube_token_read before it expires
     * (client-go re-reads every minute) and on a 401.
     */
    char *token;
    char *token_file;
    char *client_cert_file;
    char *client_key_file;
    char *client_cert_pem;   /* decoded client-certificate-data */
    size_t client_cert_pem_len;
    char *client_key_pem;    /* decoded client-key-data */
    size_t client_key_pem_len;
    char *username;          /* basic auth, rare */
    char *password;
    char *namespace;         /* context namespace, or "default"; never NULL */
    tr_kube_exec *exec;      /* NULL when the user has no exec plugin */
} tr_kube_conn;

/* Credentials printed by an exec plugin. */
typedef struct tr_kube_exec_cred {
    char *token;             /* NULL when a certificate pair is given instead */
    char *client_cert_pem;
    char *client_key_pem;
    int64_t expiration_ms;   /* ms since the epoch; 0 = no expiry, cache forever */
} tr_kube_exec_cred;

/*
 * Load the kubeconfig at path and select context (NULL or "" = the file's
 * current-context). On success *out is set; caller frees with
 * tr_kube_conn_free. Errors: TR_ENOTFOUND (no such file), TR_EIO, TR_ETOOBIG,
 * TR_EPARSE (YAML, with line), TR_ECONFIG (a missing or wrong entry, e.g.
 * `PATH: context "prod" not found`), TR_ENOMEM.
 * A tokenFile is read once here so that a missing file is reported early.
 */
int tr_kubeconfig_load(tr_kube_conn **out, const char *path, const char *context,
                       tr_error *err);

/*
 * The same from memory (tests, fuzzing). source names the input in errors
 * and in conn->source; relative paths resolve against base_dir (NULL = ".").
 */
int tr_kubeconfig_load_string(tr_kube_conn **out, const char *yaml, size_t len,
                              const char *source, const char *base_dir,
                              const char *context, tr_error *err);

/*
 * In-cluster settings from KUBERNETES_SERVICE_HOST/PORT and the service
 * account directory sa_dir (NULL = TR_KUBE_SA_DIR; tests pass their own).
 * The token must be readable; ca.crt is used when readable; namespace falls
 * back to "default". TR_ENOTFOUND when the environment says "not in a
 * cluster". Caller frees *out with tr_kube_conn_free.
 */
int tr_kubeconfig_in_cluster(tr_kube_conn **out, const char *sa_dir, tr_error *err);

/*
 * The lookup rule for the [kubernetes] kubeconfig setting:
 *   "auto" (or NULL) - in-cluster when KUBERNETES_SERVICE_HOST is set, else
 *                      the first existing file of $KUBECONFIG (a ':' list;
 *                      files are not merged), else ~/.kube/config;
 *   ""               - in-cluster only;
 *   anything else    - that file ("~/" expands to $HOME).
 * TR_ENOTFOUND with a one-line reason when nothing is configured, so the
 * daemon can report "Kubernetes unavailable" once and keep running.
 * sa_dir as for tr_kubeconfig_in_cluster. Caller frees *out.
 */
int tr_kubeconfig_resolve(tr_kube_conn **out, const char *setting, const char *context,
                          const char *sa_dir, tr_error *err);

/* Accepts NULL and half-built connections. */
void tr_kube_conn_free(tr_kube_conn *conn);

/*
 * Read a bearer token file: at most TR_KUBE_TOKEN_MAX_BYTES, surrounding
 * whitespace trimmed, no control characters inside (it goes into an HTTP
 * header). Caller frees *out with tr_free.
 */
int tr_kube_token_read(char **out, const char *path, tr_error *err);

/*
 * The ExecCredential JSON for the KUBERNETES_EXEC_INFO environment variable
 * of conn->exec: apiVersion, kind, spec.interactive=false, and spec.cluster
 * when provideClusterInfo is set (which reads conn->ca_file if there is one).
 * Caller frees *out with tr_free.
 */
int tr_kube_exec_request_json(char **out, const tr_kube_conn *conn, tr_error *err);

/*
 * Parse what the plugin printed on stdout. expected_api_version is the
 * apiVersion the plugin was configured with (NULL = accept v1 or v1beta1).
 * Needs status.token or both status.clientCertificateData and
 * status.clientKeyData; expirationTimestamp (RFC3339) is optional.
 * Caller frees *out with tr_kube_exec_cred_free.
 */
int tr_kube_exec_parse_response(tr_kube_exec_cred **out, const char *expected_api_version,
                                const char *json, size_t len, tr_error *err);

void tr_kube_exec_cred_free(tr_kube_exec_cred *cred);

#endif
