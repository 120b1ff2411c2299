/*
 * fake_llm_server.h - an OpenAI-compatible server for the llm tests: raw
 * HTTP/1.1 over libuv TCP on 127.0.0.1 (ephemeral port), in the test's loop.
 * It answers requests in order from a script of raw replies (built from the
 * recorded llama.cpp fixtures or the documented shapes), can hang (send
 * nothing) or cut a reply mid-way (send part, then close), and records every
 * request byte for byte. Header-only so each test binary stays one file.
 */
#ifndef FAKE_LLM_SERVER_H
#define FAKE_LLM_SERVER_H

#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "alloc.h"
#include "buf.h"

#define FAKE_MAX_REPLIES 16
#define FAKE_MAX_REQUESTS 32
#define FIXTURES "../shared/fixtures/openai"

typedef struct fake_reply {
    char *raw;     /* bytes to send; NULL with hang */
    int hang;      /* send nothing, keep the connection open */
    size_t cut_at; /* > 0: send this many bytes, then close */
} fake_reply;

typedef struct fake_conn fake_conn;

typedef struct fake_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    fake_reply replies[FAKE_MAX_REPLIES];
    int reply_count;
    int next_reply;
    tr_buf requests[FAKE_MAX_REQUESTS];
    int request_count;
    fake_conn *conns;
    int closing;
} fake_server;

struct fake_conn {
    uv_tcp_t tcp;
    fake_server *srv;
    tr_buf in;
    fake_conn *next;
    int closing;
};

typedef struct fake_write {
    uv_write_t req;
    char *data;
    fake_conn *conn;
    int close_after;
} fake_write;

static __attribute__((unused)) char *fake_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    tr_buf b = TR_BUF_INIT(0);
    char chunk[4096];
    size_t n;

    if (f == NULL)
        return NULL;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (tr_buf_put(&b, chunk, n) != 0)
            break;
    fclose(f);
    if (b.ptr == NULL)
        return tr_strdup("");
    return tr_buf_detach(&b);
}

/* A raw reply with Content-Length, status line and optional extra headers. */
static __attribute__((unused)) char *fake_http(int status, const char *extra_headers, const char *body)
{
    tr_buf b = TR_BUF_INIT(0);

    tr_buf_printf(&b,
                  "HTTP/1.1 %d X\r\nContent-Type: application/json; charset=utf-8\r\n"
                  "Content-Length: %zu\r\n%s\r\n%s",
                  status, strlen(body), extra_headers ? extra_headers : "", body);
    return tr_buf_detach(&b);
}

/* The recorded llama.cpp body of fixture NAME with its recorded status. */
static __attribute__((unused)) char *fake_fixture(const char *name, const char *extra_headers)
{
    char path[512];
    char *headers, *body, *raw;
    int status = 0;

    snprintf(path, sizeof(path), FIXTURES "/llama-server/%s.headers.txt", name);
    headers = fake_read_file(path);
    snprintf(path, sizeof(path), FIXTURES "/llama-server/%s.body.txt", name);
    body = fake_read_file(path);
    if (headers == NULL || body == NULL || sscanf(headers, "HTTP/1.1 %d", &status) != 1) {
        tr_free(headers);
        tr_free(body);
        return NULL;
    }
    raw = fake_http(status, extra_headers, body);
    tr_free(headers);
    tr_free(body);
    return raw;
}

/* A chat completion in llama.cpp's shape whose content is `content`. */
static __attribute__((unused)) char *fake_completion(const char *content, int prompt_tokens, int completion_tokens)
{
    tr_buf body = TR_BUF_INIT(0);
    char *raw;

    tr_buf_puts(&body, "{\"choices\":[{\"finish_reason\":\"stop\",\"index\":0,\"message\":"
                       "{\"role\":\"assistant\",\"content\":\"");
    tr_buf_put_json_escaped(&body, content, strlen(content));
    tr_buf_printf(&body,
                  "\"}}],\"created\":1795559527,\"model\":\"tiny-random-llama\","
                  "\"object\":\"chat.completion\",\"usage\":{\"completion_tokens\":%d,"
                  "\"prompt_tokens\":%d,\"total_tokens\":%d},\"id\":\"chatcmpl-x\"}",
                  completion_tokens, prompt_tokens, prompt_tokens + completion_tokens);
    raw = fake_http(200, NULL, tr_buf_cstr(&body));
    tr_buf_dispose(&body);
    return raw;
}

static __attribute__((unused)) void fake_add(fake_server *srv, char *raw)
{
    if (srv->reply_count < FAKE_MAX_REPLIES)
        srv->replies[srv->reply_count++].raw = raw;
    else
        tr_free(raw);
}

static __attribute__((unused)) void fake_add_hang(fake_server *srv)
{
    if (srv->reply_count < FAKE_MAX_REPLIES)
        srv->replies[srv->reply_count++].hang = 1;
}

static __attribute__((unused)) void fake_add_cut(fake_server *srv, char *raw, size_t cut_at)
{
    if (srv->reply_count < FAKE_MAX_REPLIES) {
        srv->replies[srv->reply_count].raw = raw;
        srv->replies[srv->reply_count++].cut_at = cut_at;
    } else {
        tr_free(raw);
    }
}

static __attribute__((unused)) void fake_on_conn_closed(uv_handle_t *h)
{
    fake_conn *c = h->data;
    fake_server *srv = c->srv;
    fake_conn **p;

    for (p = &srv->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    tr_buf_dispose(&c->in);
    tr_free(c);
}

static __attribute__((unused)) void fake_conn_close(fake_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, fake_on_conn_closed);
}

static __attribute__((unused)) void fake_on_written(uv_write_t *req, int status)
{
    fake_write *w = (fake_write *)req;

    (void)status;
    if (w->close_after)
        fake_conn_close(w->conn);
    tr_free(w->data);
    tr_free(w);
}

static __attribute__((unused)) void fake_send(fake_conn *c, const char *data, size_t len, int close_after)
{
    fake_write *w = tr_calloc(1, sizeof(*w));
    uv_buf_t buf;

    w->data = tr_strndup(data, len);
    w->conn = c;
    w->close_after = close_after;
    buf = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, fake_on_written) != 0) {
        tr_free(w->data);
        tr_free(w);
        fake_conn_close(c);
    }
}

/* Length of a complete request at the start of in, 0 when more is needed. */
static __attribute__((unused)) size_t fake_request_len(const tr_buf *in)
{
    const char *end = in->ptr ? strstr(in->ptr, "\r\n\r\n") : NULL;
    const char *cl;
    size_t head, body = 0;

    if (end == NULL)
        return 0;
    head = (size_t)(end - in->ptr) + 4;
    cl = strcasestr(in->ptr, "\r\nContent-Length:");
    if (cl && cl < end)
        body = (size_t)strtoul(cl + 17, NULL, 10);
    return in->len >= head + body ? head + body : 0;
}

static __attribute__((unused)) void fake_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    buf->base = tr_malloc(size);
    buf->len = buf->base ? size : 0;
}

static __attribute__((unused)) void fake_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    fake_conn *c = stream->data;
    fake_server *srv = c->srv;
    size_t len;

    if (nread < 0) {
        tr_free(buf->base);
        fake_conn_close(c);
        return;
    }
    tr_buf_put(&c->in, buf->base, (size_t)nread);
    tr_free(buf->base);
    while ((len = fake_request_len(&c->in)) > 0) {
        fake_reply *r;
        int index = srv->next_reply < srv->reply_count ? srv->next_reply : srv->reply_count - 1;

        if (srv->request_count < FAKE_MAX_REQUESTS) {
            tr_buf_init(&srv->requests[srv->request_count], 0);
            tr_buf_put(&srv->requests[srv->request_count], c->in.ptr, len);
            srv->request_count++;
        }
        tr_buf_consume(&c->in, len);
        srv->next_reply++;
        if (index < 0)
            return;
        r = &srv->replies[index];
        if (r->hang)
            return;
        if (r->cut_at > 0)
            fake_send(c, r->raw, r->cut_at < strlen(r->raw) ? r->cut_at : strlen(r->raw), 1);
        else
            fake_send(c, r->raw, strlen(r->raw), 0);
    }
}

static __attribute__((unused)) void fake_on_connection(uv_stream_t *listener, int status)
{
    fake_server *srv = listener->data;
    fake_conn *c;

    if (status != 0)
        return;
    c = tr_calloc(1, sizeof(*c));
    c->srv = srv;
    tr_buf_init(&c->in, 0);
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    c->next = srv->conns;
    srv->conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, fake_alloc, fake_on_read) != 0)
        fake_conn_close(c);
}

static __attribute__((unused)) int fake_start(fake_server *srv, uv_loop_t *loop)
{
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof(bound);

    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&srv->listener, 16, fake_on_connection) != 0 ||
        uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len) != 0)
        return -1;
    srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

/* The n-th request received, as bytes ("" when there is none). */
static __attribute__((unused)) const char *fake_request(const fake_server *srv, int n)
{
    return n < srv->request_count ? tr_buf_cstr(&srv->requests[n]) : "";
}

/* Close everything; the caller runs the loop afterwards. */
static __attribute__((unused)) void fake_stop(fake_server *srv)
{
    for (fake_conn *c = srv->conns; c; c = c->next)
        fake_conn_close(c);
    uv_close((uv_handle_t *)&srv->listener, NULL);
    for (int i = 0; i < srv->reply_count; i++)
        tr_free(srv->replies[i].raw);
    for (int i = 0; i < srv->request_count; i++)
        tr_buf_dispose(&srv->requests[i]);
}

#endif
