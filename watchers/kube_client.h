/*
 * kube_client.h - the connection to one Kubernetes apiserver: which server,
 * with which TLS material and credentials (from kubeconfig.c), and whether
 * it answers right now.
 *
 * The client resolves the [kubernetes] kubeconfig setting, probes
 * GET /version, and keeps retrying with capped, jittered exponential backoff
 * while the cluster is absent or unreachable. It reports each change of
 * reachability once (a log line and the "kubernetes" health component), not
 * every retry, so a daemon started on a laptop with no cluster says so once
 * and goes on serving its API and Terraform inputs.
 *
 * The watchers build their requests with tr_kube_client_prepare(), which
 * fills in the URL, TLS options and the Authorization header.
 */
#ifndef TR_KUBE_CLIENT_H
#define TR_KUBE_CLIENT_H

#include <stdint.h>
#include <uv.h>

#include "error.h"
#include "health.h"
#include "http_client.h"
#include "kube_auth.h"
#include "kubeconfig.h"

typedef struct tr_kube_client tr_kube_client;

typedef struct tr_kube_client_options {
    const char *kubeconfig;  /* "auto", "" (in-cluster) or a path: see kubeconfig.h */
    const char *context;     /* NULL or "" = current-context */
    const char *sa_dir;      /* NULL = the standard service-account directory */
    uint64_t backoff_initial_ms;  /* 0 = 800 ms (client-go's reflector) */
    uint64_t backoff_max_ms;      /* 0 = 30 s */
    uint64_t exec_timeout_ms;     /* exec credential plugin; 0 = TR_KUBE_AUTH_DEFAULT_TIMEOUT_MS */
    /* Called on the loop each time the cluster becomes reachable or not. */
    void (*on_state)(tr_kube_client *client, int connected, void *userdata);
    void *userdata;
} tr_kube_client_options;

/*
 * Create a client; nothing is contacted before tr_kube_client_start. http
 * and health are borrowed and must outlive the client. Caller releases it
 * with tr_kube_client_close.
 */
int tr_kube_client_new(tr_kube_client **out, uv_loop_t *loop, tr_http_client *http,
                       tr_health *health, const tr_kube_client_options *options,
                       tr_error *err);

/* Begin resolving and probing; returns at once. */
int tr_kube_client_start(tr_kube_client *client);

/* Connected (the last probe got an answer from the apiserver)? */
int tr_kube_client_connected(const tr_kube_client *client);

/* The apiserver's gitVersion from the last probe ("v1.20.2"), or NULL. */
const char *tr_kube_client_server_version(const tr_kube_client *client);

/*
 * What tr_kube_client_prepare fills in for one request: the URL and the
 * header lines req points at. Owned by the caller; the HTTP client copies
 * everything at send, so it may be disposed right after
 * tr_http_client_send().
 */
typedef struct tr_kube_prepared {
    char *url;
    char *auth_header;
    const char *headers[4];
} tr_kube_prepared;

/*
 * Fill req's url, TLS options and headers for a request to path (e.g.
 * "/api/v1/pods?watch=1"). The caller sets method, callbacks and timeouts.
 * TR_EUNAVAILABLE when no cluster is configured; TR_EBUSY when the user
 * logs in with an exec plugin whose credential is not ready: call
 * tr_kube_client_auth_wait() before preparing.
 */
int tr_kube_client_prepare(tr_kube_client *client, tr_http_request *req, const char *path,
                           tr_kube_prepared *prep, tr_error *err);
void tr_kube_prepared_dispose(tr_kube_prepared *prep);

/*
 * Make sure credentials are ready for tr_kube_client_prepare. TR_OK: ready
 * now (always, without an exec plugin; cb is not called). TR_EBUSY: the exec
 * plugin runs and cb(rc, message, userdata) is called when it ends.
 * TR_EUNAVAILABLE: no cluster configured yet. Other codes: the plugin could
 * not be started (message in err); cb is not called.
 */
int tr_kube_client_auth_wait(tr_kube_client *client, tr_kube_auth_cb cb, void *userdata,
                             tr_error *err);

/* Drop queued auth callbacks of userdata (a watcher being closed). */
void tr_kube_client_auth_cancel(tr_kube_client *client, void *userdata);

/*
 * The apiserver answered 401: forget the exec plugin's cached credential so
 * that the next tr_kube_client_auth_wait runs the plugin again.
 */
void tr_kube_client_auth_rejected(tr_kube_client *client);

/* Times the exec plugin was started (0 without one). */
unsigned long tr_kube_client_exec_runs(const tr_kube_client *client);

/*
 * API discovery: does GET /apis/<group>/<version> (or /api/<version> for
 * group "" or NULL) list resource? Used to skip Argo CD and Flux quietly
 * when their CRDs are absent. cb runs once, later, from the loop: rc TR_OK
 * with served 1 or 0 (404 counts as "not served"), or an error (TR_EAUTH
 * for 401/403, TR_EUNAVAILABLE, TR_EHTTP, TR_EPARSE) with a message.
 */
typedef struct tr_kube_discovery tr_kube_discovery;
typedef void (*tr_kube_discover_cb)(int rc, int served, const char *message, void *userdata);

/*
 * Start a discovery. *out (may be NULL) is a handle valid until cb has run,
 * for tr_kube_discover_cancel. On failure cb never runs.
 */
int tr_kube_discover(tr_kube_discovery **out, tr_kube_client *client, tr_http_client *http,
                     const char *group, const char *version, const char *resource,
                     tr_kube_discover_cb cb, void *userdata, tr_error *err);

/* Stop a discovery before its callback: cb will not run. Not from inside cb. */
void tr_kube_discover_cancel(tr_kube_discovery *d);

/*
 * Stop probing and cancel calls; frees the client once its handles close.
 * Close the watchers built on the client first.
 */
void tr_kube_client_close(tr_kube_client *client);

#endif
