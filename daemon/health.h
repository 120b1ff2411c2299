/*
 * health.h - the daemon's readiness record: one line per component (store,
 * http, each watcher, the LLM) with a state and a human detail, served by
 * GET /readyz and exported as metrics.
 *
 * Readiness rule: the daemon is ready when no component is still STARTING
 * and none is FAILED. A component that is UNAVAILABLE (a cluster that does
 * not answer, an LLM that is down) is reported in the detail but does not
 * make the daemon unready: the API and the other inputs keep working, and
 * taking the pod out of service would not bring the cluster back.
 */
#ifndef TR_HEALTH_H
#define TR_HEALTH_H

#include "buf.h"

typedef enum tr_health_state {
    TR_HEALTH_OK,
    TR_HEALTH_STARTING,    /* e.g. initial list of a watch in progress */
    TR_HEALTH_DEGRADED,    /* working, with a problem (a 403 on one resource) */
    TR_HEALTH_UNAVAILABLE, /* not reachable; retrying with backoff */
    TR_HEALTH_DISABLED,    /* turned off in the config or not configured */
    TR_HEALTH_FAILED,      /* cannot work (the store did not open) */
} tr_health_state;

#define TR_HEALTH_MAX_COMPONENTS 32

typedef struct tr_health tr_health;

/* Caller frees with tr_health_free. */
int tr_health_new(tr_health **out);
void tr_health_free(tr_health *health);

/*
 * Set a component's state and detail (copied). Components past
 * TR_HEALTH_MAX_COMPONENTS are refused with TR_ELIMIT.
 */
int tr_health_set(tr_health *health, const char *component, tr_health_state state,
                  const char *detail);
/* TR_ENOTFOUND when the component was never set. */
int tr_health_get(const tr_health *health, const char *component, tr_health_state *state_out);

/* Mark the whole daemon as stopping: not ready from now on. */
void tr_health_set_stopping(tr_health *health);
int tr_health_is_ready(const tr_health *health);

const char *tr_health_state_name(tr_health_state state);

/* {"ready":true,"components":{"store":{"state":"ok","detail":"..."},...}} */
int tr_health_render_json(const tr_health *health, tr_buf *out);

/* Calls fn for each component (for metrics). */
void tr_health_each(const tr_health *health,
                    void (*fn)(const char *component, tr_health_state state, void *userdata),
                    void *userdata);

#endif
