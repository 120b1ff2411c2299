/*
 * kube_stream.c - watch stream splitting and line parsing.
 *
 * Lines that arrive whole inside one chunk are parsed straight from the
 * chunk (cJSON_ParseWithLength needs no terminator), so the common case
 * copies nothing; only a line cut by a chunk boundary is gathered in
 * s->partial. The cap applies to the gathered bytes and to whole lines
 * alike, so a server that never sends '\n' cannot grow memory.
 */
#include "kube_stream.h"

#include <string.h>

static const char *const type_names[] = { "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR" };

const char *tr_kube_event_type_name(tr_kube_event_type type)
{
    if ((unsigned)type < sizeof(type_names) / sizeof(type_names[0]))
        return type_names[type];
    return "UNKNOWN";
}

void tr_kube_stream_init(tr_kube_stream *s, size_t max_line_bytes)
{
    memset(s, 0, sizeof(*s));
    s->max_line_bytes = max_line_bytes ? max_line_bytes : TR_KUBE_STREAM_DEFAULT_MAX_LINE;
    /* +1: the cap is on the line, the buffer never holds the '\n'. */
    tr_buf_init(&s->partial, s->max_line_bytes + 1);
}

void tr_kube_stream_reset(tr_kube_stream *s)
{
    tr_buf_clear(&s->partial);
    s->lines = 0;
    s->events = 0;
    s->failed = 0;
}

void tr_kube_stream_dispose(tr_kube_stream *s)
{
    if (s == NULL)
        return;
    tr_buf_dispose(&s->partial);
    s->failed = 1;
}

static int is_blank(const char *p, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

/* Quote at most 60 bytes of a bad value, with control bytes shown as '?'. */
static void excerpt(char *out, size_t cap, const char *text, size_t len)
{
    size_t i, n = len < 60 ? len : 60;

    for (i = 0; i < n && i + 4 < cap; i++)
        out[i] = (unsigned char)text[i] < 0x20 || (unsigned char)text[i] == 0x7f ? '?' : text[i];
    if (n < len && i + 4 < cap) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

int tr_kube_event_parse(const char *line, size_t len, size_t line_number, tr_kube_event *event,
                        cJSON **root_out, tr_error *err)
{
    const char *end = NULL;
    const cJSON *type, *object;
    char shown[80];
    cJSON *root;
    size_t i;

    *root_out = NULL;
    memset(event, 0, sizeof(*event));
    event->line = line_number;
    root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (root == NULL) {
        size_t at = end && end >= line && end <= line + len ? (size_t)(end - line) : 0;

        excerpt(shown, sizeof(shown), line, len);
        return tr_error_set(err, TR_EPARSE, "watch stream line %zu: not valid JSON (at byte %zu): "
                            "%s", line_number, at + 1, shown);
    }
    if (end && !is_blank(end, len - (size_t)(end - line))) {
        cJSON_Delete(root);
        return tr_error_set(err, TR_EPARSE, "watch stream line %zu: extra data after the JSON "
                            "value", line_number);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return tr_error_set(err, TR_EPARSE, "watch stream line %zu: not a JSON object",
                            line_number);
    }
    type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsString(type)) {
        cJSON_Delete(root);
        return tr_error_set(err, TR_EPARSE, "watch stream line %zu: no \"type\" string",
                            line_number);
    }
    for (i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (strcmp(type->valuestring, type_names[i]) == 0)
            break;
    if (i == sizeof(type_names) / sizeof(type_names[0])) {
        excerpt(shown, sizeof(shown), type->valuestring, strlen(type->valuestring));
        cJSON_Delete(root);
        return tr_error_set(err, TR_EPARSE, "watch stream line %zu: unknown event type \"%s\"",
                            line_number, shown);
    }
    object = cJSON_GetObjectItemCaseSensitive(root, "object");
    if (object == NULL) {
        cJSON_Delete(root);
        return tr_error_set(err, TR_EPARSE, "watch stream line %zu: %s event without \"object\"",
                            line_number, type_names[i]);
    }
    if (!cJSON_IsObject(object)) {
        cJSON_Delete(root);
        return tr_error_set(err, TR_EPARSE, "watch stream line %zu: %s event whose \"object\" is "
                            "not a JSON object", line_number, type_names[i]);
    }
    event->type = (tr_kube_event_type)i;
    event->object = object;
    *root_out = root;
    return TR_OK;
}

static int deliver(tr_kube_stream *s, const char *line, size_t len, tr_kube_event_cb cb,
                   void *userdata, tr_error *err)
{
    tr_kube_event event;
    cJSON *root = NULL;
    int rc, stop;

    s->lines++;
    if (is_blank(line, len))
        return TR_OK;
    rc = tr_kube_event_parse(line, len, s->lines, &event, &root, err);
    if (rc != TR_OK)
        return rc;
    s->events++;
    stop = cb(&event, userdata);
    cJSON_Delete(root);
    if (stop)
        return tr_error_set(err, TR_ECANCELLED, "watch stream line %zu: stopped by the consumer",
                            s->lines);
    return TR_OK;
}

static int too_long(tr_kube_stream *s, tr_error *err)
{
    return tr_error_set(err, TR_ETOOBIG, "watch stream line %zu: longer than %zu bytes",
                        s->lines + 1, s->max_line_bytes);
}

int tr_kube_stream_feed(tr_kube_stream *s, const char *data, size_t len, tr_kube_event_cb cb,
                        void *userdata, tr_error *err)
{
    const char *p = data, *end = data + len;
    int rc = TR_OK;

    if (s->failed)
        return tr_error_set(err, TR_EINVAL, "watch stream: fed after an error");
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t piece = (size_t)((nl ? nl : end) - p);

        if (s->partial.len + piece > s->max_line_bytes) {
            rc = too_long(s, err);
            break;
        }
        if (nl == NULL) {
            rc = tr_buf_put(&s->partial, p, piece);
            if (rc != TR_OK)
                rc = rc == TR_ETOOBIG ? too_long(s, err)
                                      : tr_error_set(err, rc, "watch stream: out of memory");
            break;
        }
        if (s->partial.len == 0) {
            rc = deliver(s, p, piece, cb, userdata, err);
        } else {
            rc = tr_buf_put(&s->partial, p, piece);
            if (rc == TR_OK)
                rc = deliver(s, s->partial.ptr, s->partial.len, cb, userdata, err);
            else
                rc = rc == TR_ETOOBIG ? too_long(s, err)
                                      : tr_error_set(err, rc, "watch stream: out of memory");
            tr_buf_clear(&s->partial);
        }
        if (rc != TR_OK)
            break;
        p = nl + 1;
    }
    if (rc != TR_OK) {
        s->failed = 1;
        tr_buf_clear(&s->partial);
    }
    return rc;
}

int tr_kube_stream_finish(tr_kube_stream *s, tr_error *err)
{
    size_t pending = s->partial.len;

    if (s->failed)
        return TR_OK;
    if (pending && !is_blank(s->partial.ptr, pending)) {
        tr_buf_clear(&s->partial);
        s->failed = 1;
        return tr_error_set(err, TR_EPARSE, "watch stream line %zu: truncated last line "
                            "(%zu bytes without a newline at the end of the stream)",
                            s->lines + 1, pending);
    }
    tr_buf_clear(&s->partial);
    return TR_OK;
}

void tr_kube_status_read(const cJSON *status, tr_kube_status *out)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(status, "code");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(status, "reason");
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(status, "message");

    out->code = cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble < 1000
                    ? (long)code->valuedouble : 0;
    out->reason = cJSON_IsString(reason) ? reason->valuestring : "";
    out->message = cJSON_IsString(message) ? message->valuestring : "";
}

int tr_kube_status_is_expired(const tr_kube_status *status)
{
    return status->code == 410 || strcmp(status->reason, "Expired") == 0 ||
           strcmp(status->reason, "Gone") == 0;
}
