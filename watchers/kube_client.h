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
#include "kubeconfig.h"

typedef struct tr_kube_client tr_kube_client;

typedef struct tr_kube_client_options {
    const char *kubeconfig;  /* "auto", "" (in-cluster) or a path: see kubeconfig.h */
    const char *context;     /* NULL or "" = current-context */
    const char *sa_dir;      /* NULL = the standard service-account directory */
    uint64_t backoff_initial_ms;  /* 0 = 800 ms (client-go's reflector) */
    uint64_t backoff_max_ms;      /* 0 = 30 s */
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
 * TR_EUNAVAILABLE when no cluster is configured.
 */
int tr_kube_client_prepare(tr_kube_client *client, tr_http_request *req, const char *path,
                           tr_kube_prepared *prep, tr_error *err);
void tr_kube_prepared_dispose(tr_kube_prepared *prep);

/* Stop probing and cancel calls; frees the client once its handles close. */
void tr_kube_client_close(tr_kube_client *client);

#endif
