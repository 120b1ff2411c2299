/*
 * kube_reflector.h - list+watch of one Kubernetes resource (client-go's
 * reflector): a paged LIST delivered to the consumer as one sync batch, then
 * a WATCH from the list's resourceVersion, forever, on the loop.
 *
 * What the consumer sees:
 *   on_sync_begin, on_object(ADDED, item) for every listed object,
 *   on_sync_end  - a complete, consistent view: objects the consumer holds
 *                  that were not in this batch vanished while we were not
 *                  watching (a 410 gap, a restart) and should be dropped;
 *   then on_object(ADDED|MODIFIED|DELETED, obj) per watch event.
 * A sync may be abandoned half-way (a page failed); the next on_sync_begin
 * starts it over, and on_sync_end only ever follows a complete list.
 *
 * Protocol rules (../shared/PROTOCOLS.md 1.1): the first list asks for
 * resourceVersion "0" (watch cache), pages with limit/continue; the watch
 * sends allowWatchBookmarks=true and a timeoutSeconds drawn from
 * [300, 600); BOOKMARK only advances the stored resourceVersion, which is an
 * opaque string kept in memory. Expired (ERROR 410 in the stream, or HTTP
 * 410) relists with resourceVersion "" (a quorum read), so nothing is
 * missed. Clean end of a watch re-watches at once; connection errors, 429
 * and 5xx back off (800 ms doubling to 30 s, +0..100% jitter, reset after
 * 2 minutes without failures) and re-watch; 401 asks the client to refresh
 * its credentials; 403 logs one line naming the missing permission, marks
 * the health component DEGRADED and retries every 5 minutes. A malformed
 * stream is logged with its line number and re-watched from the last
 * resourceVersion that was processed.
 *
 * Health component (default "kubernetes/<resource>"): STARTING until the
 * first sync, OK after, UNAVAILABLE while reconnecting, DEGRADED on 403 or
 * when the resource is not served.
 */
#ifndef TR_KUBE_REFLECTOR_H
#define TR_KUBE_REFLECTOR_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "health.h"
#include "http_client.h"
#include "kube_client.h"
#include "kube_stream.h"
#include "metrics.h"

typedef struct tr_kube_reflector tr_kube_reflector;

/* object is borrowed: valid only during the call. type is never BOOKMARK or ERROR. */
typedef struct tr_kube_reflector_callbacks {
    void (*on_sync_begin)(void *userdata);
    void (*on_object)(tr_kube_event_type type, const cJSON *object, void *userdata);
    void (*on_sync_end)(void *userdata);
    /*
     * Optional: begin = 1 before the objects of one list page or one read of the watch
     * stream are delivered, begin = 0 after (always paired, also when the consumer closed
     * the reflector in between), so the consumer can write them in one store batch.
     */
    void (*on_burst)(int begin, void *userdata);
} tr_kube_reflector_callbacks;

typedef struct tr_kube_reflector_options {
    const char *group;              /* "" or NULL = the core group ("/api/v1/...") */
    const char *version;            /* "v1" */
    const char *resource;           /* plural: "pods", "events", "applications" */
    const char *namespace;          /* NULL or "" = all namespaces */
    /* All-namespaces only: sent as fieldSelector metadata.namespace!=x,... */
    const char *const *exclude_namespaces;
    size_t exclude_count;
    const char *field_selector;     /* e.g. "type=Warning" for events; NULL = none */
    const char *label_selector;
    const char *health_component;   /* NULL = "kubernetes/<resource>[/<namespace>]" */
    tr_health *health;              /* optional, borrowed */
    tr_metrics *metrics;            /* optional, borrowed */
    tr_kube_reflector_callbacks callbacks;
    void *userdata;
    /* Tuning; 0 = the default in brackets. */
    size_t page_limit;              /* [500] */
    size_t max_page_bytes;          /* [64 MiB] cap on one LIST page */
    size_t max_line_bytes;          /* [16 MiB] cap on one watch line */
    unsigned watch_timeout_min_s;   /* [300] */
    unsigned watch_timeout_max_s;   /* [600] exclusive */
    uint64_t backoff_initial_ms;    /* [800] */
    uint64_t backoff_max_ms;        /* [30000] */
    uint64_t backoff_reset_ms;      /* [120000] */
    uint64_t forbidden_retry_ms;    /* [300000] 403 and 404 */
} tr_kube_reflector_options;

/*
 * Create a reflector; nothing is sent before tr_kube_reflector_start.
 * Everything in options is copied except health, metrics and userdata.
 * client and http are borrowed and must outlive the reflector. Caller
 * releases it with tr_kube_reflector_close.
 */
int tr_kube_reflector_new(tr_kube_reflector **out, uv_loop_t *loop, tr_kube_client *client,
                          tr_http_client *http, const tr_kube_reflector_options *options,
                          tr_error *err);

int tr_kube_reflector_start(tr_kube_reflector *r);

/* A complete list has been delivered at least once. */
int tr_kube_reflector_synced(const tr_kube_reflector *r);

/* The last processed resourceVersion (opaque), or NULL. Borrowed. */
const char *tr_kube_reflector_resource_version(const tr_kube_reflector *r);

/* Complete lists delivered so far (the initial one and every relist). */
unsigned long tr_kube_reflector_syncs(const tr_kube_reflector *r);

/*
 * Cancel what is in flight and release the reflector once its call and
 * timer are gone (run the loop). No callback runs after this returns.
 * Accepts NULL.
 */
void tr_kube_reflector_close(tr_kube_reflector *r);

#endif
