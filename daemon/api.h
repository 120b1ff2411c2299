/*
 * api.h - the daemon's HTTP API (DESIGN.md "HTTP API"): health, readiness,
 * metrics and the /v1 resources, registered on a tr_http_server.
 *
 * Routes under /v1 need `Authorization: Bearer <token>` when the daemon was given a
 * token (it must be, whenever it listens beyond loopback); the token is
 * compared in constant time and never logged.
 */
#ifndef TR_API_H
#define TR_API_H

#include <stdint.h>

#include "health.h"
#include "http_server.h"
#include "metrics.h"
#include "store.h"

typedef struct tr_api {
    tr_store *store;        /* borrowed */
    tr_health *health;      /* borrowed */
    tr_metrics *metrics;    /* borrowed */
    const char *api_token;  /* borrowed; NULL = no token required */
    /* Called at each /metrics scrape to refresh gauges (may be NULL). */
    void (*before_scrape)(void *userdata);
    void *userdata;
} tr_api;

/* Register every route on srv; api must outlive the server. */
int tr_api_register(tr_api *api, tr_http_server *srv, tr_error *err);

/* RFC 3339 UTC with milliseconds ("2026-11-25T10:00:00.123Z") into out. */
void tr_api_format_time(int64_t ms, char *out, size_t size);

#endif
