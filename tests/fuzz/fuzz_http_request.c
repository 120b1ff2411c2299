/*
 * fuzz_http_request.c - libFuzzer target for http_parse: the same input is
 * fed whole, byte by byte and split at a point chosen by the input, and
 * every accessor of every request that comes out is read. The split must
 * not change the outcome: the same requests, then an error or not. (Which
 * error may differ when the input has two faults: libhttp-parser reports a
 * header name only once it is complete, so a byte-by-byte feed can hit the
 * header-count cap before the bad byte that a whole feed trips on first.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "http_parse.h"

typedef struct outcome {
    size_t requests;
    int status;
    size_t body_bytes;
} outcome;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch(const tr_http_inbound *req, outcome *out)
{
    const char *name, *value;
    size_t i, len = 0;
    volatile size_t sink = 0;

    sink += strlen(tr_http_inbound_method(req));
    sink += strlen(tr_http_inbound_target(req));
    sink += strlen(tr_http_inbound_path(req));
    sink += strlen(tr_http_inbound_query(req));
    for (i = 0; tr_http_inbound_param_at(req, i, &name, &value) == TR_OK; i++) {
        sink += strlen(name) + strlen(value);
        if (tr_http_inbound_param(req, name) == NULL)
            abort();
    }
    for (i = 0; tr_http_inbound_header_at(req, i, &name, &value) == TR_OK; i++) {
        sink += strlen(name) + strlen(value);
        if (tr_http_inbound_header(req, name) == NULL)
            abort();
    }
    (void)tr_http_inbound_body(req, &len);
    sink += (size_t)tr_http_inbound_keep_alive(req) + (size_t)tr_http_inbound_expects_continue(req);
    sink += (size_t)tr_http_inbound_version_minor(req);
    (void)sink;
    out->requests++;
    out->body_bytes += len;
}

static void run(const uint8_t *data, size_t size, size_t chunk, size_t split, outcome *out)
{
    tr_http_parse_limits limits = { 2048, 4096, 16, 512, NULL, NULL };
    tr_http_parser *parser = NULL;
    size_t off = 0;
    tr_error err;

    memset(out, 0, sizeof(*out));
    if (tr_http_parser_new(&parser, &limits) != TR_OK)
        abort();
    while (off < size) {
        size_t end = off + chunk < size ? off + chunk : size;
        size_t used = 0;
        tr_http_inbound *req = NULL;
        if (split > off && split < end)
            end = split;
        if (tr_http_parser_feed(parser, (const char *)data + off, end - off, &used, &req,
                                &err) != TR_OK) {
            out->status = tr_http_parser_error_status(parser);
            if (out->status < 400 || out->status > 505)
                abort();
            break;
        }
        (void)tr_http_parser_take_continue(parser);
        (void)tr_http_parser_state(parser);
        if (req) {
            touch(req, out);
            tr_http_inbound_free(req);
        }
        off += used;
    }
    tr_http_parser_free(parser);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    outcome whole, bytes, split;

    if (size == 0)
        return 0;
    run(data, size, size, 0, &whole);
    run(data, size, 1, 0, &bytes);
    run(data, size, size, data[0] % size, &split);
    if (whole.requests != bytes.requests || !whole.status != !bytes.status ||
        whole.body_bytes != bytes.body_bytes)
        abort();
    if (whole.requests != split.requests || !whole.status != !split.status)
        abort();
    return 0;
}
