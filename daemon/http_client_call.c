/*
 * http_client_call.c - one call's side of the HTTP client: building the curl
 * easy handle from a tr_http_request, curl's header and body callbacks (caps
 * enforced there, on_headers/on_data delivered), and the Retry-After parser.
 * The loop side (multi-socket on libuv) is http_client.c; the structs they
 * share are in http_client_internal.h.
 */
#include "http_client_internal.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#include "alloc.h"

#ifndef TR_VERSION
#define TR_VERSION "0.0.0-dev"
#endif

#define MAX_REDIRECTS 5L

/* ---- curl's data callbacks --------------------------------------------- */

static int deliver_headers(tr_http_call *call)
{
    call->headers_seen = 1;
    if (call->on_headers == NULL)
        return 1;
    if (call->on_headers(call, call->status, call->userdata) != 0) {
        call->abort_code = TR_ECANCELLED;
        call->abort_msg = "aborted by the on_headers callback";
        return 0;
    }
    return !call->cancelled;
}

static int end_of_headers(tr_http_call *call)
{
    long status = 0;

    if (curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
        call->status = status;
    if (call->headers_seen || status < 200)
        return 1; /* trailers, or a 1xx interim response */
    if (call->follow_redirects && status >= 300 && status < 400 &&
        tr_http_call_header(call, "Location") != NULL)
        return 1; /* curl follows it; the next response is the real one */
    return deliver_headers(call);
}

static size_t on_curl_header(char *data, size_t size, size_t nitems, void *userp)
{
    tr_http_call *call = userp;
    size_t len = size * nitems;
    size_t n = len;
    const char *colon;
    const char *value;
    const char *value_end;
    const char *name_end;
    int rc;

    if (call->cancelled)
        return 0;
    call->last_activity_ms = uv_now(call->client->loop);
    while (n > 0 && (data[n - 1] == '\r' || data[n - 1] == '\n'))
        n--;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        tr_buf_clear(&call->headers); /* a new response (1xx, redirect) starts */
        return len;
    }
    if (n == 0)
        return end_of_headers(call) ? len : 0;
    colon = memchr(data, ':', n);
    if (colon == NULL)
        return len; /* obsolete line folding: ignored */
    name_end = colon;
    while (name_end > data && (name_end[-1] == ' ' || name_end[-1] == '\t'))
        name_end--;
    value = colon + 1;
    value_end = data + n;
    while (value < value_end && (*value == ' ' || *value == '\t'))
        value++;
    while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t'))
        value_end--;
    rc = tr_buf_put(&call->headers, data, (size_t)(name_end - data));
    if (rc == TR_OK)
        rc = tr_buf_putc(&call->headers, '\0');
    if (rc == TR_OK)
        rc = tr_buf_put(&call->headers, value, (size_t)(value_end - value));
    if (rc == TR_OK)
        rc = tr_buf_putc(&call->headers, '\0');
    if (rc != TR_OK) {
        call->abort_code = rc;
        call->abort_msg = rc == TR_ETOOBIG ? "response headers over the size cap" : "out of memory";
        return 0;
    }
    return len;
}

static size_t on_curl_write(char *data, size_t size, size_t nmemb, void *userp)
{
    tr_http_call *call = userp;
    size_t len = size * nmemb;
    int rc;

    if (call->cancelled)
        return 0;
    call->last_activity_ms = uv_now(call->client->loop);
    if (!call->headers_seen && !deliver_headers(call))
        return 0;
    if (call->on_data == NULL) {
        rc = tr_buf_put(&call->body, data, len);
        if (rc != TR_OK) {
            call->abort_code = rc;
            call->abort_msg = rc == TR_ETOOBIG ? "response body over the size cap"
                                               : "out of memory";
            return 0;
        }
        return len;
    }
    if (call->max_stream_bytes && len > call->max_stream_bytes - call->streamed_bytes) {
        call->abort_code = TR_ETOOBIG;
        call->abort_msg = "streamed response over the size cap";
        return 0;
    }
    call->streamed_bytes += len;
    if (len == 0)
        return 0;
    if (call->on_data(call, data, len, call->userdata) != 0) {
        call->abort_code = TR_ECANCELLED;
        call->abort_msg = "aborted by the on_data callback";
        return 0;
    }
    return call->cancelled ? 0 : len;
}

/* ---- building a call ---------------------------------------------------- */

const char *http_method_name(tr_http_method method)
{
    switch (method) {
    case TR_HTTP_GET: return "GET";
    case TR_HTTP_POST: return "POST";
    case TR_HTTP_PUT: return "PUT";
    case TR_HTTP_PATCH: return "PATCH";
    case TR_HTTP_DELETE: return "DELETE";
    case TR_HTTP_HEAD: return "HEAD";
    }
    return NULL;
}

static int add_header(tr_http_call *call, const char *line)
{
    struct curl_slist *grown = curl_slist_append(call->req_headers, line);

    if (grown == NULL)
        return TR_ENOMEM;
    call->req_headers = grown;
    return TR_OK;
}

#define SETOPT(opt, val)                                                       \
    do {                                                                       \
        code = curl_easy_setopt(e, (opt), (val));                              \
        if (code != CURLE_OK) {                                                \
            optname = #opt;                                                    \
            goto cleanup;                                                      \
        }                                                                      \
    } while (0)

static int set_tls(CURL *e, const tr_http_request *req, tr_error *err)
{
    struct curl_blob blob;
    CURLcode code = CURLE_OK;
    const char *optname = NULL;

    if (req->ca_file || req->ca_pem)
        SETOPT(CURLOPT_CAPATH, (char *)NULL); /* only the given CA is trusted */
    if (req->ca_file)
        SETOPT(CURLOPT_CAINFO, req->ca_file);
    if (req->ca_pem) {
        blob.data = (void *)req->ca_pem;
        blob.len = strlen(req->ca_pem);
        blob.flags = CURL_BLOB_COPY;
        SETOPT(CURLOPT_CAINFO_BLOB, &blob);
    }
    if (req->client_cert_file)
        SETOPT(CURLOPT_SSLCERT, req->client_cert_file);
    if (req->client_cert_pem) {
        blob.data = (void *)req->client_cert_pem;
        blob.len = strlen(req->client_cert_pem);
        blob.flags = CURL_BLOB_COPY;
        SETOPT(CURLOPT_SSLCERT_BLOB, &blob);
        SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (req->client_key_file)
        SETOPT(CURLOPT_SSLKEY, req->client_key_file);
    if (req->client_key_pem) {
        blob.data = (void *)req->client_key_pem;
        blob.len = strlen(req->client_key_pem);
        blob.flags = CURL_BLOB_COPY;
        SETOPT(CURLOPT_SSLKEY_BLOB, &blob);
        SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (req->insecure_skip_verify) {
        SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
    }
cleanup:
    if (code == CURLE_OK)
        return TR_OK;
    return tr_error_set(err, code == CURLE_OUT_OF_MEMORY ? TR_ENOMEM : TR_EINVAL,
                        "%s: %s", optname, curl_easy_strerror(code));
}

static int set_method_and_body(CURL *e, tr_http_call *call, const tr_http_request *req,
                               tr_error *err)
{
    CURLcode code = CURLE_OK;
    const char *optname = NULL;
    int has_body = req->body_len > 0 || req->method == TR_HTTP_POST ||
                   req->method == TR_HTTP_PUT || req->method == TR_HTTP_PATCH;

    if (req->method == TR_HTTP_GET)
        SETOPT(CURLOPT_HTTPGET, 1L);
    else if (req->method == TR_HTTP_HEAD)
        SETOPT(CURLOPT_NOBODY, 1L);
    else if (req->method != TR_HTTP_POST)
        SETOPT(CURLOPT_CUSTOMREQUEST, http_method_name(req->method));
    if (has_body && req->method != TR_HTTP_GET && req->method != TR_HTTP_HEAD) {
        /* Our own copy: the request struct may be on the caller's stack. */
        call->req_body = tr_malloc(req->body_len + 1);
        if (call->req_body == NULL)
            return tr_error_set(err, TR_ENOMEM, "out of memory copying the request body");
        if (req->body_len)
            memcpy(call->req_body, req->body, req->body_len);
        call->req_body[req->body_len] = '\0';
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SETOPT(CURLOPT_POSTFIELDS, call->req_body);
        /* Servers that ignore Expect: 100-continue would cost a 1 s stall. */
        if (add_header(call, "Expect:") != TR_OK)
            return tr_error_set(err, TR_ENOMEM, "out of memory building headers");
    } else if (req->body_len > 0) {
        return tr_error_set(err, TR_EINVAL, "%s request with a body",
                            http_method_name(req->method));
    }
cleanup:
    if (code == CURLE_OK)
        return TR_OK;
    return tr_error_set(err, code == CURLE_OUT_OF_MEMORY ? TR_ENOMEM : TR_EINVAL,
                        "%s: %s", optname, curl_easy_strerror(code));
}

int http_call_setup(tr_http_call *call, const tr_http_request *req, tr_error *err)
{
    CURL *e;
    CURLcode code = CURLE_OK;
    const char *optname = NULL;
    size_t i;
    int rc;
    long connect_ms = req->connect_timeout_ms > 0 ? req->connect_timeout_ms
                                                  : TR_HTTP_DEFAULT_CONNECT_TIMEOUT_MS;

    call->easy = e = curl_easy_init();
    if (e == NULL)
        return tr_error_set(err, TR_ENOMEM, "curl_easy_init failed");
    for (i = 0; req->headers && req->headers[i]; i++) {
        if (add_header(call, req->headers[i]) != TR_OK)
            return tr_error_set(err, TR_ENOMEM, "out of memory building headers");
    }
    rc = set_method_and_body(e, call, req, err);
    if (rc != TR_OK)
        return rc;
    rc = set_tls(e, req, err);
    if (rc != TR_OK)
        return rc;

    SETOPT(CURLOPT_PRIVATE, (void *)call);
    SETOPT(CURLOPT_ERRORBUFFER, call->errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_URL, req->url);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
    SETOPT(CURLOPT_MAXREDIRS, MAX_REDIRECTS);
    SETOPT(CURLOPT_USERAGENT, req->user_agent ? req->user_agent : "triaged/" TR_VERSION);
    SETOPT(CURLOPT_ACCEPT_ENCODING, "");
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SETOPT(CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 0L);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    if (req->on_data == NULL)
        SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)call->body.max_len);
    else if (call->max_stream_bytes)
        SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)call->max_stream_bytes);
    if (call->req_headers)
        SETOPT(CURLOPT_HTTPHEADER, call->req_headers);
    if (req->basic_user) {
        SETOPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SETOPT(CURLOPT_USERNAME, req->basic_user);
        SETOPT(CURLOPT_PASSWORD, req->basic_password ? req->basic_password : "");
    }
    SETOPT(CURLOPT_HEADERFUNCTION, on_curl_header);
    SETOPT(CURLOPT_HEADERDATA, (void *)call);
    SETOPT(CURLOPT_WRITEFUNCTION, on_curl_write);
    SETOPT(CURLOPT_WRITEDATA, (void *)call);
cleanup:
    if (code == CURLE_OK)
        return TR_OK;
    return tr_error_set(err, code == CURLE_OUT_OF_MEMORY ? TR_ENOMEM : TR_EINVAL,
                        "%s: %s", optname, curl_easy_strerror(code));
}

/* ---- Retry-After ------------------------------------------------------------ */

static const char *const month_names[12] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};
static const char *const day_names[7] = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
};

static int take_digits(const char **p, int count, int *out)
{
    int value = 0;
    int i;

    for (i = 0; i < count; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        value = value * 10 + ((*p)[i] - '0');
    }
    *p += count;
    *out = value;
    return 0;
}

static int take(const char **p, const char *literal)
{
    size_t len = strlen(literal);

    if (strncmp(*p, literal, len) != 0)
        return -1;
    *p += len;
    return 0;
}

static int take_month(const char **p, int *month)
{
    int i;

    for (i = 0; i < 12; i++) {
        if (take(p, month_names[i]) == 0) {
            *month = i;
            return 0;
        }
    }
    return -1;
}

/* "Sun" (long_form 0) or "Sunday" (long_form 1). */
static int take_day_name(const char **p, int long_form)
{
    int i;

    for (i = 0; i < 7; i++) {
        char short_name[4] = { day_names[i][0], day_names[i][1], day_names[i][2], '\0' };

        if (take(p, long_form ? day_names[i] : short_name) == 0)
            return 0;
    }
    return -1;
}

static int take_time(const char **p, struct tm *tm)
{
    if (take_digits(p, 2, &tm->tm_hour) || take(p, ":") || take_digits(p, 2, &tm->tm_min) ||
        take(p, ":") || take_digits(p, 2, &tm->tm_sec))
        return -1;
    return 0;
}

/* The three HTTP-date forms of RFC 9110 section 5.6.7, exactly. */
static int parse_http_date(const char *s, time_t *out)
{
    struct tm tm;
    const char *p = s;
    int ok;

    memset(&tm, 0, sizeof(tm));
    /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
    ok = take_day_name(&p, 0) == 0 && take(&p, ", ") == 0 &&
         take_digits(&p, 2, &tm.tm_mday) == 0 && take(&p, " ") == 0 &&
         take_month(&p, &tm.tm_mon) == 0 && take(&p, " ") == 0 &&
         take_digits(&p, 4, &tm.tm_year) == 0 && take(&p, " ") == 0 &&
         take_time(&p, &tm) == 0 && take(&p, " GMT") == 0 && *p == '\0';
    if (!ok) {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        p = s;
        ok = take_day_name(&p, 1) == 0 && take(&p, ", ") == 0 &&
             take_digits(&p, 2, &tm.tm_mday) == 0 && take(&p, "-") == 0 &&
             take_month(&p, &tm.tm_mon) == 0 && take(&p, "-") == 0 &&
             take_digits(&p, 2, &tm.tm_year) == 0 && take(&p, " ") == 0 &&
             take_time(&p, &tm) == 0 && take(&p, " GMT") == 0 && *p == '\0';
        if (ok)
            tm.tm_year += tm.tm_year < 70 ? 2000 : 1900;
    }
    if (!ok) {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        p = s;
        ok = take_day_name(&p, 0) == 0 && take(&p, " ") == 0 &&
             take_month(&p, &tm.tm_mon) == 0 && take(&p, " ") == 0;
        if (ok && *p == ' ') {
            p++;
            ok = take_digits(&p, 1, &tm.tm_mday) == 0;
        } else if (ok) {
            ok = take_digits(&p, 2, &tm.tm_mday) == 0;
        }
        ok = ok && take(&p, " ") == 0 && take_time(&p, &tm) == 0 && take(&p, " ") == 0 &&
             take_digits(&p, 4, &tm.tm_year) == 0 && *p == '\0';
    }
    if (!ok || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60 || tm.tm_year < 1970)
        return -1;
    tm.tm_year -= 1900;
    *out = timegm(&tm);
    return *out == (time_t)-1 ? -1 : 0;
}

int tr_http_retry_after_ms(const char *value, int64_t now_ms, int64_t *out_ms)
{
    char text[64];
    const char *start;
    const char *end;
    size_t len;
    time_t when;
    int64_t seconds = 0;
    const char *p;

    if (value == NULL || out_ms == NULL)
        return TR_EINVAL;
    start = value;
    while (*start == ' ' || *start == '\t')
        start++;
    end = start + strlen(start);
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    len = (size_t)(end - start);
    if (len == 0 || len >= sizeof(text))
        return TR_EINVAL;
    memcpy(text, start, len);
    text[len] = '\0';

    if (isdigit((unsigned char)text[0])) {
        for (p = text; *p; p++) {
            if (!isdigit((unsigned char)*p))
                return TR_EINVAL;
            /* A wait past ~30 years is nonsense, not a schedule. */
            seconds = seconds * 10 + (*p - '0');
            if (seconds > (int64_t)1000 * 1000 * 1000)
                return TR_EINVAL;
        }
        *out_ms = seconds * 1000;
        return TR_OK;
    }
    if (parse_http_date(text, &when) != 0)
        return TR_EINVAL;
    *out_ms = (int64_t)when * 1000 - now_ms;
    if (*out_ms < 0)
        *out_ms = 0;
    return TR_OK;
}
