/*
 * kube_stream.h - the newline-delimited JSON of a Kubernetes watch response,
 * split and parsed incrementally: bytes arrive in any chunking (one byte at a
 * time, or many lines in one chunk) and complete lines come out as
 * {type, object} events.
 *
 * A splitter owns only the bytes of the line it has not seen the end of yet,
 * bounded by max_line_bytes. Each line is parsed with cJSON and validated:
 * a known type, and an object that is a JSON object. The first bad line
 * stops the stream with an error naming its line number; the caller drops
 * the connection and re-watches from the last resourceVersion it processed,
 * so nothing after the bad line is trusted.
 */
#ifndef TR_KUBE_STREAM_H
#define TR_KUBE_STREAM_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "error.h"

#define TR_KUBE_STREAM_DEFAULT_MAX_LINE ((size_t)16 * 1024 * 1024)

typedef enum tr_kube_event_type {
    TR_KUBE_ADDED = 0,
    TR_KUBE_MODIFIED,
    TR_KUBE_DELETED,
    TR_KUBE_BOOKMARK,
    TR_KUBE_ERROR,
} tr_kube_event_type;

/* One watch event. object is borrowed: valid only during the callback. */
typedef struct tr_kube_event {
    tr_kube_event_type type;
    const cJSON *object;
    size_t line;          /* 1-based line number in the stream */
} tr_kube_event;

/* Return 0 to go on, non-zero to stop feeding (tr_kube_stream_feed returns TR_ECANCELLED). */
typedef int (*tr_kube_event_cb)(const tr_kube_event *event, void *userdata);

typedef struct tr_kube_stream {
    tr_buf partial;       /* bytes of the unfinished line */
    size_t max_line_bytes;
    size_t lines;         /* lines completed so far, blank ones included */
    size_t events;        /* events delivered */
    int failed;           /* a bad line was seen: the stream is dead */
} tr_kube_stream;

/* Set up a splitter; max_line_bytes 0 = TR_KUBE_STREAM_DEFAULT_MAX_LINE. */
void tr_kube_stream_init(tr_kube_stream *s, size_t max_line_bytes);

/*
 * Feed bytes; calls cb once per complete non-blank line, in order. Returns
 * TR_OK, TR_EPARSE (a bad line: err says "watch stream line N: ..."),
 * TR_ETOOBIG (a line longer than the cap), TR_ENOMEM, or TR_ECANCELLED (cb
 * asked to stop). After an error the splitter refuses more input.
 */
int tr_kube_stream_feed(tr_kube_stream *s, const char *data, size_t len, tr_kube_event_cb cb,
                        void *userdata, tr_error *err);

/*
 * The stream ended. TR_OK when it ended on a line boundary; TR_EPARSE
 * ("truncated last line") when bytes of an unfinished line remain: they are
 * reported, not parsed.
 */
int tr_kube_stream_finish(tr_kube_stream *s, tr_error *err);

/* Forget everything (a new connection); keeps the cap. */
void tr_kube_stream_reset(tr_kube_stream *s);
void tr_kube_stream_dispose(tr_kube_stream *s);

/*
 * Parse one line (without its '\n') into an event. On success *root_out is
 * the parsed document, owned by the caller (cJSON_Delete), and event->object
 * points into it. Errors name line_number.
 */
int tr_kube_event_parse(const char *line, size_t len, size_t line_number, tr_kube_event *event,
                        cJSON **root_out, tr_error *err);

/* "ADDED", "MODIFIED", ... */
const char *tr_kube_event_type_name(tr_kube_event_type type);

/*
 * The fields of a metav1.Status (the object of an ERROR event, or the body
 * of an HTTP error). Borrowed from status; absent fields are 0 / "".
 */
typedef struct tr_kube_status {
    long code;
    const char *reason;
    const char *message;
} tr_kube_status;

void tr_kube_status_read(const cJSON *status, tr_kube_status *out);

/* A Status that means "your resourceVersion is too old": code 410 or reason Expired/Gone. */
int tr_kube_status_is_expired(const tr_kube_status *status);

#endif
