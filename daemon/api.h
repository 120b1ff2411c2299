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
#include <cjson/cJSON.h>

#include "dispatch.h"
#include "health.h"
#include "http_server.h"
#include "metrics.h"
#include "store.h"

typedef struct tr_api {
    tr_store *store;        /* borrowed */
    tr_health *health;      /* borrowed */
    tr_metrics *metrics;    /* borrowed */
    const char *api_token;  /* borrowed; NULL = no token required */
    tr_dispatch *dispatch;  /* borrowed; woken after a dead letter is retried; may be NULL */
    /* Called at each /metrics scrape to refresh gauges (may be NULL). */
    void (*before_scrape)(void *userdata);
    void *userdata;
} tr_api;

/*
 * Register every route on srv; api must outlive the server. Besides health,
 * readiness, metrics and the incidents:
 *   GET  /v1/deliveries/dead[?sink=&after=&limit=]  dead letters, oldest first
 *   POST /v1/deliveries/{id}/retry                  put one back in the queue
 */
int tr_api_register(tr_api *api, tr_http_server *srv, tr_error *err);

/*
 * Helpers every module that serves API routes uses (api.c, the Terraform
 * ingest, the notifier actions), so that the rules are the same everywhere.
 */

/*
 * The bearer-token rule: 1 when the request may go on (no token configured,
 * or `Authorization: Bearer <token>` matches, compared in constant time);
 * else the request has been answered 401 and 0 is returned.
 */
int tr_api_authorized(tr_http_req *req, const char *api_token);

/* Answer with root as JSON and free root (a 500 when it cannot be printed). */
void tr_api_respond_json(tr_http_req *req, int status, cJSON *root);

/* A positive decimal id ("42"); 0 when text is not one. */
int64_t tr_api_parse_id(const char *text);

/* The JSON form of an incident, as GET /v1/incidents/{id} shows it; caller owns it. */
cJSON *tr_api_incident_json(const tr_store_incident *inc);

/* The wall clock in milliseconds since the epoch. */
int64_t tr_api_now_ms(void);

/* RFC 3339 UTC with milliseconds ("2026-11-25T10:00:00.123Z") into out. */
void tr_api_format_time(int64_t ms, char *out, size_t size);

#endif
