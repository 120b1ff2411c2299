/*
 * kube_watcher.h - the Kubernetes watcher: one reflector per resource (list
 * + watch, kube_reflector.c) feeding the ingest (cache, classification and
 * incidents, kube_ingest.c), on top of one apiserver connection
 * (kube_client.c).
 *
 * Reflectors start the first time the apiserver answers. Core resources are
 * always watched; Argo CD and Flux resources only when API discovery shows
 * them (skipped quietly otherwise). Namespaces: exclude_namespaces is sent
 * to the apiserver as a field selector; an include list (namespaces) is
 * applied here, so that each resource has one cluster-wide reflector and a
 * relist is one consistent view.
 */
#ifndef TR_KUBE_WATCHER_H
#define TR_KUBE_WATCHER_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "error.h"
#include "health.h"
#include "http_client.h"
#include "kube_client.h"
#include "metrics.h"
#include "store.h"
#include "tf_ingest.h"

typedef struct tr_kube_watcher tr_kube_watcher;

/* An incident was created, reopened or resolved (outcome: TR_OBS_* or resolved). */
typedef void (*tr_kube_watcher_incident_cb)(int64_t incident_id, int outcome, void *userdata);

/*
 * Create the watcher; nothing is contacted before tr_kube_watcher_start.
 * Everything given is borrowed and must outlive the watcher. Release with
 * tr_kube_watcher_close.
 */
int tr_kube_watcher_new(tr_kube_watcher **out, uv_loop_t *loop, const tr_config *cfg,
                        tr_store *store, tr_http_client *http, tr_health *health,
                        tr_metrics *metrics, tr_kube_watcher_incident_cb on_incident,
                        void *userdata, tr_error *err);
int tr_kube_watcher_start(tr_kube_watcher *w);

/*
 * Read the logs of Kubernetes Jobs that run Terraform (`[terraform] job_label`) as
 * Terraform runs, into ingest (borrowed; outlives the watcher). Call before
 * tr_kube_watcher_start. See tf_kube.h.
 */
int tr_kube_watcher_set_terraform(tr_kube_watcher *w, const tr_tf_ingest *ingest, tr_error *err);

/* Number of reflectors running (for tests and /readyz detail). */
size_t tr_kube_watcher_reflectors(const tr_kube_watcher *w);

/*
 * The watcher's apiserver connection, borrowed (valid until
 * tr_kube_watcher_close): for read-only requests of other modules, e.g. the
 * evidence gatherer (kube_evidence.h). Close those before the watcher.
 */
tr_kube_client *tr_kube_watcher_client(tr_kube_watcher *w);

/*
 * Stop every reflector and discovery, persist what the ingest holds, close
 * the connection; memory goes once the loop has run the closes. Close it
 * before the HTTP client and the store. Accepts NULL.
 */
void tr_kube_watcher_close(tr_kube_watcher *w);

#endif
