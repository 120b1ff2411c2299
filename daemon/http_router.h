/*
 * http_router.h - private to http_server.c: the route table of the inbound
 * HTTP server and the routing of one request by method and path pattern
 * (the public side is tr_http_server_route() in http_server.h).
 *
 * A tr_http_router is embedded in the server (zeroed = no routes) and owns
 * its routes until tr_http_router_dispose(). A tr_http_router_params is
 * embedded in each request and owns copies of the request's path
 * parameters, because a request may outlive the server and its routes.
 *
 * Loop thread only.
 */
#ifndef TR_HTTP_ROUTER_H
#define TR_HTTP_ROUTER_H

#include <stddef.h>

#include "http_server.h"

/* Path segments in a pattern or a request path; longer paths answer 404. */
#define TR_HTTP_ROUTER_MAX_SEGMENTS 64

typedef struct tr_http_router_route tr_http_router_route;

typedef struct tr_http_router {
    tr_http_router_route *routes;
    size_t route_count;
} tr_http_router;

typedef struct tr_http_router_params {
    size_t count;
    char *names[TR_HTTP_ROUTER_MAX_SEGMENTS];
    char *values[TR_HTTP_ROUTER_MAX_SEGMENTS]; /* percent-decoded */
} tr_http_router_params;

/*
 * Add a route (the rules are those of tr_http_server_route). TR_EINVAL for
 * a NULL argument, a pattern not starting with '/' or with too many
 * segments; TR_ENOMEM.
 */
int tr_http_router_add(tr_http_router *router, const char *method, const char *pattern,
                       tr_http_handler handler, void *userdata);

/* Frees every route; the router is empty (and reusable) afterwards. */
void tr_http_router_dispose(tr_http_router *router);

/*
 * Route req: fill params (req's own, freed with req) from the best route
 * and call its handler, or answer req itself: 404 when no route has the
 * path, 405 with an Allow header when routes have the path but not the
 * method, 500 when out of memory. Either way req has been handed on.
 */
void tr_http_router_dispatch(const tr_http_router *router, tr_http_req *req,
                             tr_http_router_params *params);

/* The value of {name}, borrowed from params, or NULL. */
const char *tr_http_router_param(const tr_http_router_params *params, const char *name);

/* Frees the names and values; accepts a zeroed or partly filled params. */
void tr_http_router_params_dispose(tr_http_router_params *params);

#endif
