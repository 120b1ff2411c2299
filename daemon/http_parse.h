/*
 * http_parse.h - a socket-free HTTP/1.1 request parser over libhttp-parser
 * (Debian's http-parser 2.9.4).
 *
 * Bytes go in with any chunking; complete requests come out one at a time
 * (method, raw target, path, raw query, decoded query parameters, headers
 * looked up case-insensitively, body, keep-alive verdict). The parser owns
 * the request being assembled; a finished request is handed to the caller,
 * who owns it from then on.
 *
 * Every buffer input can grow is capped (tr_http_parse_limits) and every
 * refusal carries the HTTP status to answer with: 400 malformed, 413 body
 * too large (decided from Content-Length before any body byte is read, and
 * counted for chunked bodies), 414 target too long, 431 header section too
 * large or too many headers, 417 unknown Expect, 505 not HTTP/1.x. Once a
 * parser has failed it stays failed: the connection must be closed after
 * the error answer, since the stream position is no longer known.
 *
 * libhttp-parser also keeps a process-wide header cap (80 KiB by default):
 * a max_header_bytes above it is cut to it, still with 431.
 */
#ifndef TR_HTTP_PARSE_H
#define TR_HTTP_PARSE_H

#include <stddef.h>

#include "error.h"

typedef struct tr_http_parser tr_http_parser;
typedef struct tr_http_inbound tr_http_inbound;

#define TR_HTTP_PARSE_DEFAULT_MAX_HEADER_BYTES ((size_t)64 * 1024)
#define TR_HTTP_PARSE_DEFAULT_MAX_BODY_BYTES ((size_t)1024 * 1024)
#define TR_HTTP_PARSE_DEFAULT_MAX_HEADERS 100
#define TR_HTTP_PARSE_DEFAULT_MAX_URL_BYTES ((size_t)8 * 1024)

/* Zero fields take the defaults above. */
typedef struct tr_http_parse_limits {
    size_t max_header_bytes; /* request line + headers (+ trailers) */
    size_t max_body_bytes;
    size_t max_headers;
    size_t max_url_bytes;
    /*
     * Optional: the body cap of one request, decided once its path is known (0 keeps
     * max_body_bytes). Lets a route that takes big uploads (Terraform logs) accept more
     * than the rest of the API.
     */
    size_t (*body_limit)(const char *method, const char *path, void *userdata);
    void *body_limit_userdata;
} tr_http_parse_limits;

/* Where the parser is inside the current request. */
typedef enum tr_http_parse_state {
    TR_HTTP_PARSE_IDLE = 0, /* between requests: no byte of the next one yet */
    TR_HTTP_PARSE_HEADERS,  /* request line or headers under way */
    TR_HTTP_PARSE_BODY,     /* headers complete, body under way */
    TR_HTTP_PARSE_FAILED,
} tr_http_parse_state;

/* limits may be NULL. *out is freed by the caller with tr_http_parser_free. */
int tr_http_parser_new(tr_http_parser **out, const tr_http_parse_limits *limits);
void tr_http_parser_free(tr_http_parser *parser);

/*
 * Parse up to len bytes. Parsing stops right after the end of a request, so
 * *consumed may be less than len: the rest belongs to the next (pipelined)
 * request and must be fed again later. When a request completed, *out is
 * set and the caller owns it (tr_http_inbound_free); otherwise *out is NULL
 * and all bytes were used.
 *
 * Returns 0, or a negative TR_E* code with the message in err and the
 * status to answer with in tr_http_parser_error_status().
 */
int tr_http_parser_feed(tr_http_parser *parser, const char *data, size_t len,
                        size_t *consumed, tr_http_inbound **out, tr_error *err);

tr_http_parse_state tr_http_parser_state(const tr_http_parser *parser);

/* The HTTP status for the failure (400, 413, 414, 417, 431, 500, 505); 0 if none. */
int tr_http_parser_error_status(const tr_http_parser *parser);

/*
 * 1 once per request when its headers are complete, it carries
 * `Expect: 100-continue` and its body has not been read yet: the caller
 * then writes "HTTP/1.1 100 Continue" so the client sends the body.
 */
int tr_http_parser_take_continue(tr_http_parser *parser);

/* The method name ("GET"); never NULL. */
const char *tr_http_inbound_method(const tr_http_inbound *req);
/* The request target as sent ("/v1/x%20y?a=1"). */
const char *tr_http_inbound_target(const tr_http_inbound *req);
/* The path, still percent-encoded ("/v1/x%20y"); its escapes are known valid. */
const char *tr_http_inbound_path(const tr_http_inbound *req);
/* The raw query after '?' ("" when none). */
const char *tr_http_inbound_query(const tr_http_inbound *req);
/* First value of query parameter name, decoded; NULL when absent. */
const char *tr_http_inbound_param(const tr_http_inbound *req, const char *name);
size_t tr_http_inbound_param_count(const tr_http_inbound *req);
/* Decoded name and value of the i-th parameter in order; TR_ENOTFOUND past the end. */
int tr_http_inbound_param_at(const tr_http_inbound *req, size_t i, const char **name,
                             const char **value);
/* First header with that name, any case, trimmed; NULL when absent. */
const char *tr_http_inbound_header(const tr_http_inbound *req, const char *name);
size_t tr_http_inbound_header_count(const tr_http_inbound *req);
int tr_http_inbound_header_at(const tr_http_inbound *req, size_t i, const char **name,
                              const char **value);
/* The body (NUL-terminated for convenience, may contain NULs); never NULL. */
const char *tr_http_inbound_body(const tr_http_inbound *req, size_t *len);
/* 1 when the connection may carry another request after this one. */
int tr_http_inbound_keep_alive(const tr_http_inbound *req);
/* The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1. */
int tr_http_inbound_version_minor(const tr_http_inbound *req);
int tr_http_inbound_expects_continue(const tr_http_inbound *req);
void tr_http_inbound_free(tr_http_inbound *req);

/*
 * Percent-decode len bytes of s into *out (caller frees with tr_free).
 * plus_is_space turns '+' into ' ' (query strings). Fails with TR_EPARSE on
 * a bad escape or an encoded NUL.
 */
int tr_http_url_decode(char **out, const char *s, size_t len, int plus_is_space);

/* The standard reason phrase ("Not Found"); "Unknown" for unknown codes. */
const char *tr_http_reason(int status);

#endif
