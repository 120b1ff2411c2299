/*
 * http_router.c - routes of the inbound HTTP server: patterns split into
 * segments once at registration, request paths split and percent-decoded
 * per request, and the most literal matching route wins.
 *
 * The Allow list of a 405 is built from every route whose pattern matches
 * the path, so it names exactly the methods that would have been served
 * (GET brings HEAD along, as the server answers HEAD for GET routes).
 */
#include "http_router.h"

#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "http_parse.h"

struct tr_http_router_route {
    char *method;
    char **segments; /* "{id}" for parameters */
    size_t segment_count;
    size_t literal_count;
    tr_http_handler handler;
    void *userdata;
};

static void route_clear(tr_http_router_route *r)
{
    size_t i;

    for (i = 0; i < r->segment_count; i++)
        tr_free(r->segments[i]);
    tr_free(r->segments);
    tr_free(r->method);
}

/* "/a/{id}/b" -> "a", "{id}", "b"; "/" -> "". Returns the count or -1 (too many, no memory). */
static long split_path(const char *path, char **out, int decode)
{
    const char *seg = path + 1;
    long n = 0;

    for (;;) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        int rc;
        if (n == TR_HTTP_ROUTER_MAX_SEGMENTS)
            goto fail;
        rc = decode ? tr_http_url_decode(&out[n], seg, len, 0)
                    : ((out[n] = tr_strndup(seg, len)) ? TR_OK : TR_ENOMEM);
        if (rc != TR_OK)
            goto fail;
        n++;
        if (end == NULL)
            return n;
        seg = end + 1;
    }
fail:
    while (n > 0)
        tr_free(out[--n]);
    return -1;
}

static int is_param(const char *segment)
{
    size_t len = strlen(segment);

    return len > 2 && segment[0] == '{' && segment[len - 1] == '}';
}

int tr_http_router_add(tr_http_router *router, const char *method, const char *pattern,
                       tr_http_handler handler, void *userdata)
{
    char *segments[TR_HTTP_ROUTER_MAX_SEGMENTS];
    tr_http_router_route r = { 0 }, *grown;
    long n, i;

    if (method == NULL || pattern == NULL || pattern[0] != '/' || handler == NULL)
        return TR_EINVAL;
    n = split_path(pattern, segments, 0);
    if (n < 0)
        return TR_EINVAL;
    r.segments = tr_calloc((size_t)n, sizeof(char *));
    r.method = tr_strdup(method);
    grown = tr_realloc(router->routes, (router->route_count + 1) * sizeof(*grown));
    if (grown)
        router->routes = grown;
    if (r.segments == NULL || r.method == NULL || grown == NULL) {
        for (i = 0; i < n; i++)
            tr_free(segments[i]);
        route_clear(&r);
        return TR_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        r.segments[i] = segments[i];
        r.literal_count += !is_param(segments[i]);
    }
    r.segment_count = (size_t)n;
    r.handler = handler;
    r.userdata = userdata;
    router->routes[router->route_count++] = r;
    return TR_OK;
}

static int route_matches(const tr_http_router_route *r, char **segments, size_t count)
{
    size_t i;

    if (r->segment_count != count)
        return 0;
    for (i = 0; i < count; i++) {
        if (is_param(r->segments[i]) ? segments[i][0] == '\0'
                                     : strcmp(r->segments[i], segments[i]) != 0)
            return 0;
    }
    return 1;
}

/* Path parameters are copied: the request may outlive the server. */
static int take_params(tr_http_router_params *params, const tr_http_router_route *r,
                       char **segments)
{
    size_t i;

    for (i = 0; i < r->segment_count; i++) {
        size_t len = strlen(r->segments[i]);
        if (!is_param(r->segments[i]))
            continue;
        params->names[params->count] = tr_strndup(r->segments[i] + 1, len - 2);
        params->values[params->count] = segments[i];
        segments[i] = NULL;
        params->count++;
        if (params->names[params->count - 1] == NULL)
            return TR_ENOMEM;
    }
    return TR_OK;
}

void tr_http_router_dispatch(const tr_http_router *router, tr_http_req *req,
                             tr_http_router_params *params)
{
    const char *method = tr_http_req_method(req);
    int head = strcmp(method, "HEAD") == 0;
    char *segments[TR_HTTP_ROUTER_MAX_SEGMENTS];
    const tr_http_router_route *best = NULL;
    tr_buf allow = TR_BUF_INIT(1024);
    long n, i;
    size_t k;

    n = split_path(tr_http_req_path(req), segments, 1);
    if (n < 0) {
        (void)tr_http_respond_error(req, 404, NULL, "no such path");
        return;
    }
    for (k = 0; k < router->route_count; k++) {
        const tr_http_router_route *r = &router->routes[k];
        int same = strcmp(r->method, method) == 0 || (head && strcmp(r->method, "GET") == 0);
        if (!route_matches(r, segments, (size_t)n))
            continue;
        if (same && (best == NULL || r->literal_count > best->literal_count))
            best = r;
        if (!strstr(tr_buf_cstr(&allow), r->method))
            (void)tr_buf_printf(&allow, "%s%s", allow.len ? ", " : "", r->method);
        if (strcmp(r->method, "GET") == 0 && !strstr(tr_buf_cstr(&allow), "HEAD"))
            (void)tr_buf_puts(&allow, ", HEAD");
    }
    if (best != NULL && take_params(params, best, segments) != TR_OK) {
        best = NULL;
        (void)tr_http_respond_error(req, 500, NULL, "out of memory");
    } else if (best != NULL) {
        best->handler(req, best->userdata);
    } else if (allow.len > 0) {
        (void)tr_http_req_add_header(req, "Allow", allow.ptr);
        (void)tr_http_respond_error(req, 405, NULL, "method not allowed for this path");
    } else {
        (void)tr_http_respond_error(req, 404, NULL, "no such path");
    }
    for (i = 0; i < n; i++)
        tr_free(segments[i]);
    tr_buf_dispose(&allow);
}

const char *tr_http_router_param(const tr_http_router_params *params, const char *name)
{
    size_t i;

    for (i = 0; i < params->count; i++)
        if (strcmp(params->names[i], name) == 0)
            return params->values[i];
    return NULL;
}

void tr_http_router_params_dispose(tr_http_router_params *params)
{
    size_t i;

    for (i = 0; i < params->count; i++) {
        tr_free(params->names[i]);
        tr_free(params->values[i]);
    }
    params->count = 0;
}

void tr_http_router_dispose(tr_http_router *router)
{
    size_t i;

    for (i = 0; i < router->route_count; i++)
        route_clear(&router->routes[i]);
    tr_free(router->routes);
    router->routes = NULL;
    router->route_count = 0;
}
