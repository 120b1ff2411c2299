/*
 * http_parse.c - HTTP/1.1 request parsing over libhttp-parser.
 *
 * libhttp-parser streams callbacks; this module gathers them into one
 * tr_http_inbound at a time. Parsing is paused from on_message_complete so
 * that http_parser_execute() returns right at the end of a request: the
 * bytes after it (a pipelined request) stay with the caller, who feeds them
 * again once the first request has been answered.
 *
 * Callbacks cannot return our error codes, so a callback that refuses input
 * records the status and message in the parser and returns nonzero; feed()
 * then reports that instead of libhttp-parser's generic HPE_CB_* error.
 */
#include "http_parse.h"

#include <http_parser.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "buf.h"

/* http_parser_parse_url() keeps offsets in uint16_t. */
#define URL_HARD_MAX ((size_t)UINT16_MAX)

typedef struct kv {
    char *name;
    char *value;
} kv;

struct tr_http_inbound {
    const char *method;
    int minor;
    int keep_alive;
    int expects_continue;
    char *target;
    char *path;
    char *query;
    kv *params;
    size_t param_count;
    kv *headers;
    size_t header_count;
    size_t header_alloc;
    tr_buf body;
};

struct tr_http_parser {
    http_parser hp;
    tr_http_parse_limits limits;
    tr_http_inbound *cur;  /* being assembled; owned here */
    tr_http_inbound *done; /* complete, not yet handed out */
    tr_buf url;
    tr_buf field;
    tr_buf value;
    int in_value;         /* the last header callback was a value */
    int headers_done;
    size_t header_bytes;  /* bytes seen by the url/header callbacks */
    /* Stream offsets, so that the header span (request target to the end of
     * the last header byte seen, whitespace included) does not depend on how
     * the input was chunked. */
    const char *feed_data;
    unsigned long long feed_offset; /* stream offset of feed_data[0] */
    unsigned long long url_offset;  /* stream offset of the target's first byte */
    int continue_pending;
    int status;           /* != 0 once failed */
    int code;             /* TR_E* of the failure */
    char message[256];
};

static http_parser_settings settings;

static int fail(tr_http_parser *p, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(tr_http_parser *p, int status, int code, const char *fmt, ...)
{
    va_list ap;

    if (p->status == 0) {
        p->status = status;
        p->code = code;
        va_start(ap, fmt);
        vsnprintf(p->message, sizeof(p->message), fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void request_free(tr_http_inbound *req)
{
    size_t i;

    if (req == NULL)
        return;
    for (i = 0; i < req->param_count; i++) {
        tr_free(req->params[i].name);
        tr_free(req->params[i].value);
    }
    for (i = 0; i < req->header_count; i++) {
        tr_free(req->headers[i].name);
        tr_free(req->headers[i].value);
    }
    tr_free(req->params);
    tr_free(req->headers);
    tr_free(req->target);
    tr_free(req->path);
    tr_free(req->query);
    tr_buf_dispose(&req->body);
    tr_free(req);
}

void tr_http_inbound_free(tr_http_inbound *req)
{
    request_free(req);
}

/* Decodes into out (room for len + 1 bytes) or only checks when out is NULL. */
static int decode_into(char *out, size_t *out_len, const char *s, size_t len, int plus)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\0')
            return TR_EPARSE;
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return TR_EPARSE;
            hi = tr_hex_value((unsigned char)s[i + 1]);
            lo = tr_hex_value((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return TR_EPARSE;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (plus && c == '+') {
            c = ' ';
        }
        if (out)
            out[n] = c;
        n++;
    }
    if (out)
        out[n] = '\0';
    if (out_len)
        *out_len = n;
    return TR_OK;
}

int tr_http_url_decode(char **out, const char *s, size_t len, int plus_is_space)
{
    char *dst;
    int rc;

    *out = NULL;
    if (len == SIZE_MAX)
        return TR_EINVAL;
    dst = tr_malloc(len + 1);
    if (dst == NULL)
        return TR_ENOMEM;
    rc = decode_into(dst, NULL, s, len, plus_is_space);
    if (rc != TR_OK) {
        tr_free(dst);
        return rc;
    }
    *out = dst;
    return TR_OK;
}

static tr_http_parser *of(http_parser *hp)
{
    return (tr_http_parser *)hp->data;
}

static int count_header_bytes(tr_http_parser *p, const char *at, size_t len)
{
    unsigned long long end = p->feed_offset + (unsigned long long)(at - p->feed_data) + len;

    p->header_bytes += len;
    if (p->header_bytes > p->limits.max_header_bytes ||
        (!p->headers_done && end - p->url_offset > p->limits.max_header_bytes))
        return fail(p, 431, TR_ETOOBIG, "request header section exceeds %zu bytes",
                    p->limits.max_header_bytes);
    return 0;
}

static int on_message_begin(http_parser *hp)
{
    tr_http_parser *p = of(hp);

    request_free(p->cur);
    p->cur = tr_calloc(1, sizeof(*p->cur));
    if (p->cur == NULL)
        return fail(p, 500, TR_ENOMEM, "out of memory");
    tr_buf_init(&p->cur->body, p->limits.max_body_bytes);
    tr_buf_clear(&p->url);
    tr_buf_clear(&p->field);
    tr_buf_clear(&p->value);
    p->in_value = 0;
    p->headers_done = 0;
    p->header_bytes = 0;
    p->continue_pending = 0;
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
    tr_http_parser *p = of(hp);

    if (p->url.len == 0)
        p->url_offset = p->feed_offset + (unsigned long long)(at - p->feed_data);
    if (count_header_bytes(p, at, len) != 0)
        return -1;
    if (p->url.len + len > p->limits.max_url_bytes)
        return fail(p, 414, TR_ETOOBIG, "request target exceeds %zu bytes",
                    p->limits.max_url_bytes);
    if (tr_buf_put(&p->url, at, len) != TR_OK)
        return fail(p, 500, TR_ENOMEM, "out of memory");
    return 0;
}

static char *trimmed_dup(const char *s, size_t len)
{
    while (len > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    return tr_strndup(s, len);
}

static int flush_header(tr_http_parser *p)
{
    tr_http_inbound *req = p->cur;
    kv *slot;

    if (!p->in_value)
        return 0;
    p->in_value = 0;
    if (req->header_count >= p->limits.max_headers)
        return fail(p, 431, TR_ETOOBIG, "more than %zu request headers",
                    p->limits.max_headers);
    if (req->header_count == req->header_alloc) {
        size_t n = req->header_alloc ? req->header_alloc * 2 : 16;
        kv *grown = tr_realloc(req->headers, n * sizeof(*grown));
        if (grown == NULL)
            return fail(p, 500, TR_ENOMEM, "out of memory");
        req->headers = grown;
        req->header_alloc = n;
    }
    slot = &req->headers[req->header_count];
    slot->name = tr_strndup(p->field.ptr ? p->field.ptr : "", p->field.len);
    slot->value = trimmed_dup(p->value.ptr ? p->value.ptr : "", p->value.len);
    if (slot->name == NULL || slot->value == NULL) {
        tr_free(slot->name);
        tr_free(slot->value);
        return fail(p, 500, TR_ENOMEM, "out of memory");
    }
    req->header_count++;
    tr_buf_clear(&p->field);
    tr_buf_clear(&p->value);
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    tr_http_parser *p = of(hp);

    if (count_header_bytes(p, at, len) != 0)
        return -1;
    if (p->headers_done)
        return 0; /* a chunked trailer: counted against the cap, not kept */
    if (flush_header(p) != 0)
        return -1;
    if (tr_buf_put(&p->field, at, len) != TR_OK)
        return fail(p, 500, TR_ENOMEM, "out of memory");
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    tr_http_parser *p = of(hp);
    size_t i;

    if (count_header_bytes(p, at, len) != 0)
        return -1;
    if (p->headers_done)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)at[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(p, 400, TR_EPARSE, "control character in header value");
    }
    p->in_value = 1;
    if (tr_buf_put(&p->value, at, len) != TR_OK)
        return fail(p, 500, TR_ENOMEM, "out of memory");
    return 0;
}

static int add_param(tr_http_inbound *req, const char *s, size_t len, size_t *alloc)
{
    const char *eq = memchr(s, '=', len);
    size_t name_len = eq ? (size_t)(eq - s) : len;
    kv item = { NULL, NULL };
    int rc;

    rc = tr_http_url_decode(&item.name, s, name_len, 1);
    if (rc == TR_OK)
        rc = eq ? tr_http_url_decode(&item.value, eq + 1, len - name_len - 1, 1)
                : ((item.value = tr_strdup("")) ? TR_OK : TR_ENOMEM);
    if (rc == TR_OK && req->param_count == *alloc) {
        size_t n = *alloc ? *alloc * 2 : 8;
        kv *grown = tr_realloc(req->params, n * sizeof(*grown));
        if (grown == NULL) {
            rc = TR_ENOMEM;
        } else {
            req->params = grown;
            *alloc = n;
        }
    }
    if (rc != TR_OK) {
        tr_free(item.name);
        tr_free(item.value);
        return rc;
    }
    req->params[req->param_count++] = item;
    return TR_OK;
}

static int parse_query(tr_http_parser *p, const char *q, size_t len)
{
    size_t alloc = 0, start = 0, i;
    int rc;

    for (i = 0; i <= len; i++) {
        if (i < len && q[i] != '&')
            continue;
        if (i > start) {
            rc = add_param(p->cur, q + start, i - start, &alloc);
            if (rc == TR_ENOMEM)
                return fail(p, 500, TR_ENOMEM, "out of memory");
            if (rc != TR_OK)
                return fail(p, 400, TR_EPARSE, "bad percent-escape in query string");
        }
        start = i + 1;
    }
    return 0;
}

static int parse_target(tr_http_parser *p)
{
    tr_http_inbound *req = p->cur;
    const char *url = tr_buf_cstr(&p->url);
    struct http_parser_url u;
    const char *path = "/", *query = "";
    size_t path_len = 1, query_len = 0;

    req->target = tr_strndup(url, p->url.len);
    if (req->target == NULL)
        return fail(p, 500, TR_ENOMEM, "out of memory");
    if (strcmp(url, "*") == 0 && p->hp.method == HTTP_OPTIONS) {
        path = "*";
    } else {
        http_parser_url_init(&u);
        if (p->url.len == 0 || http_parser_parse_url(url, p->url.len, 0, &u) != 0)
            return fail(p, 400, TR_EPARSE, "malformed request target");
        if (u.field_set & (1 << UF_PATH)) {
            path = url + u.field_data[UF_PATH].off;
            path_len = u.field_data[UF_PATH].len;
        }
        if (u.field_set & (1 << UF_QUERY)) {
            query = url + u.field_data[UF_QUERY].off;
            query_len = u.field_data[UF_QUERY].len;
        }
        if (path[0] != '/')
            return fail(p, 400, TR_EPARSE, "request path must start with '/'");
    }
    if (decode_into(NULL, NULL, path, path_len, 0) != TR_OK)
        return fail(p, 400, TR_EPARSE, "bad percent-escape in request path");
    req->path = tr_strndup(path, path_len);
    req->query = tr_strndup(query, query_len);
    if (req->path == NULL || req->query == NULL)
        return fail(p, 500, TR_ENOMEM, "out of memory");
    return parse_query(p, query, query_len);
}

static int on_headers_complete(http_parser *hp)
{
    tr_http_parser *p = of(hp);
    tr_http_inbound *req = p->cur;
    const char *expect;
    int has_body;

    if (flush_header(p) != 0)
        return -1;
    p->headers_done = 1;
    if (hp->http_major != 1)
        return fail(p, 505, TR_EPARSE, "HTTP/%u.%u is not supported", hp->http_major,
                    hp->http_minor);
    if (hp->method == HTTP_CONNECT)
        return fail(p, 400, TR_EPARSE, "CONNECT is not supported");
    req->method = http_method_str((enum http_method)hp->method);
    req->minor = hp->http_minor;
    if (parse_target(p) != 0)
        return -1;
    has_body = (hp->flags & F_CHUNKED) != 0 ||
               ((hp->flags & F_CONTENTLENGTH) && hp->content_length > 0);
    if (p->limits.body_limit != NULL) {
        size_t cap = p->limits.body_limit(req->method, tr_http_inbound_path(req),
                                          p->limits.body_limit_userdata);

        req->body.max_len = cap != 0 ? cap : p->limits.max_body_bytes;
    }
    if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > req->body.max_len)
        return fail(p, 413, TR_ETOOBIG, "request body of %llu bytes exceeds %zu",
                    (unsigned long long)hp->content_length, req->body.max_len);
    expect = tr_http_inbound_header(req, "Expect");
    if (expect != NULL && req->minor >= 1) {
        if (strcasecmp(expect, "100-continue") != 0)
            return fail(p, 417, TR_EPARSE, "unsupported expectation");
        req->expects_continue = 1;
        p->continue_pending = has_body;
    }
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
    tr_http_parser *p = of(hp);
    int rc;

    p->continue_pending = 0;
    rc = tr_buf_put(&p->cur->body, at, len);
    if (rc == TR_ETOOBIG)
        return fail(p, 413, TR_ETOOBIG, "request body exceeds %zu bytes",
                    p->cur->body.max_len);
    if (rc != TR_OK)
        return fail(p, 500, TR_ENOMEM, "out of memory");
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    tr_http_parser *p = of(hp);

    /* A request that asks to switch protocols gets an HTTP answer and the
     * connection ends: what follows it is not HTTP we could parse. */
    p->cur->keep_alive = http_should_keep_alive(hp) && !hp->upgrade;
    p->done = p->cur;
    p->cur = NULL;
    p->headers_done = 0;
    p->continue_pending = 0;
    http_parser_pause(hp, 1);
    return 0;
}

static http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int tr_http_parser_new(tr_http_parser **out, const tr_http_parse_limits *limits)
{
    tr_http_parser *p;

    *out = NULL;
    p = tr_calloc(1, sizeof(*p));
    if (p == NULL)
        return TR_ENOMEM;
    if (limits)
        p->limits = *limits;
    if (p->limits.max_header_bytes == 0)
        p->limits.max_header_bytes = TR_HTTP_PARSE_DEFAULT_MAX_HEADER_BYTES;
    if (p->limits.max_body_bytes == 0)
        p->limits.max_body_bytes = TR_HTTP_PARSE_DEFAULT_MAX_BODY_BYTES;
    if (p->limits.max_headers == 0)
        p->limits.max_headers = TR_HTTP_PARSE_DEFAULT_MAX_HEADERS;
    if (p->limits.max_url_bytes == 0)
        p->limits.max_url_bytes = TR_HTTP_PARSE_DEFAULT_MAX_URL_BYTES;
    if (p->limits.max_url_bytes > URL_HARD_MAX)
        p->limits.max_url_bytes = URL_HARD_MAX;
    tr_buf_init(&p->url, p->limits.max_url_bytes);
    tr_buf_init(&p->field, p->limits.max_header_bytes);
    tr_buf_init(&p->value, p->limits.max_header_bytes);
    http_parser_init(&p->hp, HTTP_REQUEST);
    p->hp.data = p;
    *out = p;
    return TR_OK;
}

void tr_http_parser_free(tr_http_parser *p)
{
    if (p == NULL)
        return;
    request_free(p->cur);
    request_free(p->done);
    tr_buf_dispose(&p->url);
    tr_buf_dispose(&p->field);
    tr_buf_dispose(&p->value);
    tr_free(p);
}

static int report(tr_http_parser *p, tr_error *err)
{
    return tr_error_set(err, p->code, "%d %s: %s", p->status, tr_http_reason(p->status),
                        p->message);
}

int tr_http_parser_feed(tr_http_parser *p, const char *data, size_t len,
                        size_t *consumed, tr_http_inbound **out, tr_error *err)
{
    enum http_errno errno_hp;
    size_t n;

    *consumed = 0;
    *out = NULL;
    if (p->status != 0)
        return report(p, err);
    if (len == 0)
        return TR_OK; /* libhttp-parser reads 0 bytes as end of stream */
    if (HTTP_PARSER_ERRNO(&p->hp) == HPE_PAUSED)
        http_parser_pause(&p->hp, 0);
    p->feed_data = data;
    n = http_parser_execute(&p->hp, &settings, data, len);
    p->feed_offset += n;
    errno_hp = HTTP_PARSER_ERRNO(&p->hp);
    if (errno_hp != HPE_OK && errno_hp != HPE_PAUSED) {
        if (errno_hp == HPE_HEADER_OVERFLOW)
            fail(p, 431, TR_ETOOBIG, "request header section too large");
        else
            fail(p, 400, TR_EPARSE, "malformed request: %s", http_errno_description(errno_hp));
        return report(p, err);
    }
    if (n == 0 && p->done == NULL) {
        fail(p, 400, TR_EPARSE, "malformed request: parser made no progress");
        return report(p, err);
    }
    *consumed = n;
    *out = p->done;
    p->done = NULL;
    return TR_OK;
}

tr_http_parse_state tr_http_parser_state(const tr_http_parser *p)
{
    if (p->status != 0)
        return TR_HTTP_PARSE_FAILED;
    if (p->cur == NULL)
        return TR_HTTP_PARSE_IDLE;
    return p->headers_done ? TR_HTTP_PARSE_BODY : TR_HTTP_PARSE_HEADERS;
}

int tr_http_parser_error_status(const tr_http_parser *p)
{
    return p->status;
}

int tr_http_parser_take_continue(tr_http_parser *p)
{
    int pending = p->continue_pending && p->status == 0;

    p->continue_pending = 0;
    return pending;
}

const char *tr_http_inbound_method(const tr_http_inbound *req)
{
    return req->method ? req->method : "";
}

const char *tr_http_inbound_target(const tr_http_inbound *req)
{
    return req->target ? req->target : "";
}

const char *tr_http_inbound_path(const tr_http_inbound *req)
{
    return req->path ? req->path : "/";
}

const char *tr_http_inbound_query(const tr_http_inbound *req)
{
    return req->query ? req->query : "";
}

const char *tr_http_inbound_param(const tr_http_inbound *req, const char *name)
{
    size_t i;

    for (i = 0; i < req->param_count; i++)
        if (strcmp(req->params[i].name, name) == 0)
            return req->params[i].value;
    return NULL;
}

size_t tr_http_inbound_param_count(const tr_http_inbound *req)
{
    return req->param_count;
}

int tr_http_inbound_param_at(const tr_http_inbound *req, size_t i, const char **name,
                             const char **value)
{
    if (i >= req->param_count)
        return TR_ENOTFOUND;
    *name = req->params[i].name;
    *value = req->params[i].value;
    return TR_OK;
}

const char *tr_http_inbound_header(const tr_http_inbound *req, const char *name)
{
    size_t i;

    for (i = 0; i < req->header_count; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

size_t tr_http_inbound_header_count(const tr_http_inbound *req)
{
    return req->header_count;
}

int tr_http_inbound_header_at(const tr_http_inbound *req, size_t i, const char **name,
                              const char **value)
{
    if (i >= req->header_count)
        return TR_ENOTFOUND;
    *name = req->headers[i].name;
    *value = req->headers[i].value;
    return TR_OK;
}

const char *tr_http_inbound_body(const tr_http_inbound *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return tr_buf_cstr(&req->body);
}

int tr_http_inbound_keep_alive(const tr_http_inbound *req)
{
    return req->keep_alive;
}

int tr_http_inbound_version_minor(const tr_http_inbound *req)
{
    return req->minor;
}

int tr_http_inbound_expects_continue(const tr_http_inbound *req)
{
    return req->expects_continue;
}

const char *tr_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
