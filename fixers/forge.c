/*
 * forge.c - the forge registry and the machinery the three forges share.
 *
 * An operation (tr_forge_op) is a small state machine of one to three HTTP
 * calls: open = create [-> list open PRs of the branch on "already exists"]
 * [-> add labels]; get = one GET with If-None-Match; find = one list; labels =
 * one call. The vtable only builds requests and parses replies, so adding a
 * forge never touches this file's flow nor another forge's file.
 *
 * Operations are linked in their forge so tr_forge_free can cancel them. A
 * cancelled operation is detached (op->forge = NULL) and finishes in the
 * HTTP client's on_done without touching the freed forge.
 *
 * Error texts are built from the api_url, the HTTP status and the forge's own
 * message, and scrubbed of the token in case a server echoes it.
 */
#include "forge.h"

#include "alloc.h"
#include "forge_reply.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FORGE_URL_MAX ((size_t)8 * 1024)
#define FORGE_BODY_MAX ((size_t)1024 * 1024)

struct tr_forge {
    const tr_forge_vtable *vt;
    tr_config_forge_kind kind;
    tr_http_client *http;
    char *api_url;
    char *repo;
    char *owner;
    char *name;
    tr_forge_site site;
    char *token;
    char *auth_header; /* holds the token: zeroed on free */
    char **labels;
    size_t label_count;
    bool draft;
    long timeout_ms;
    struct tr_forge_op *ops;
};

typedef enum op_step {
    STEP_OPEN = 0,
    STEP_OPEN_FIND,
    STEP_OPEN_LABELS,
    STEP_GET,
    STEP_FIND,
    STEP_LABELS,
} op_step;

typedef struct tr_forge_op {
    tr_forge *forge; /* NULL once the forge is freed */
    struct tr_forge_op *next;
    op_step step;
    tr_forge_done_cb done;
    void *userdata;
    tr_http_call *call;
    char *head;
    char **labels;
    size_t label_count;
    int64_t number;
    char *etag_sent;
    tr_forge_pr pr;
} tr_forge_op;

/* ------------------------------------------------------------ operations */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Replace every occurrence of the token in text with "***" (in place, shrinking). */
static void scrub_token(char *text, const char *token)
{
    size_t tlen = token ? strlen(token) : 0;
    char *p;

    if (tlen < 4)
        return; /* a token that short would mangle ordinary words */
    while ((p = strstr(text, token)) != NULL) {
        p[0] = p[1] = p[2] = '*'; /* the text stays terminated further on */
        memmove(p + 3, p + tlen, strlen(p + tlen) + 1);
    }
}

static void op_free(tr_forge_op *op)
{
    tr_free(op->head);
    for (size_t i = 0; i < op->label_count; i++)
        tr_free(op->labels[i]);
    tr_free(op->labels);
    tr_free(op->etag_sent);
    tr_forge_pr_clear(&op->pr);
    tr_free(op);
}

static void op_unlink(tr_forge_op *op)
{
    tr_forge_op **p;

    if (op->forge == NULL)
        return;
    for (p = &op->forge->ops; *p; p = &(*p)->next)
        if (*p == op) {
            *p = op->next;
            break;
        }
    op->forge = NULL;
}

/* End op: one done callback, then op is gone. */
static void op_finish(tr_forge_op *op, tr_forge_result *res)
{
    if (res->error == NULL)
        res->error = "";
    op_unlink(op);
    op->done(res, op->userdata);
    op_free(op);
}

static void op_finish_pr(tr_forge_op *op, long status)
{
    tr_forge_result res = {.code = TR_OK, .status = status, .pr = &op->pr};

    op_finish(op, &res);
}

static void op_fail(tr_forge_op *op, int code, bool retryable, int64_t retry_after_ms,
                    long status, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void op_fail(tr_forge_op *op, int code, bool retryable, int64_t retry_after_ms,
                    long status, const char *fmt, ...)
{
    char text[TR_ERROR_MSG_MAX];
    tr_forge_result res = {.code = code, .retryable = retryable,
                           .retry_after_ms = retry_after_ms, .status = status, .error = text};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (op->forge)
        scrub_token(text, op->forge->token);
    op_finish(op, &res);
}

/* How long a rate-limited reply asks us to wait; 0 when it does not say. */
static int64_t rate_limit_wait_ms(const tr_http_response *resp)
{
    const char *retry_after = tr_http_call_header(resp->call, "Retry-After");
    const char *reset = tr_http_call_header(resp->call, "X-RateLimit-Reset");
    int64_t now = now_ms(), wait_ms = 0;

    if (reset == NULL)
        reset = tr_http_call_header(resp->call, "RateLimit-Reset"); /* GitLab */
    if (retry_after && tr_http_retry_after_ms(retry_after, now, &wait_ms) == TR_OK)
        return wait_ms;
    if (reset) {
        char *end;
        long long epoch_s = strtoll(reset, &end, 10);

        if (end != reset && epoch_s > 0 && epoch_s < 1LL << 40)
            return epoch_s * 1000 > now ? epoch_s * 1000 - now : 0;
    }
    return 0;
}

static bool is_rate_limited(const tr_http_response *resp)
{
    const char *remaining = tr_http_call_header(resp->call, "X-RateLimit-Remaining");

    if (resp->status == 429)
        return true;
    return resp->status == 403 &&
           ((remaining && strcmp(remaining, "0") == 0) ||
            tr_http_call_header(resp->call, "Retry-After") != NULL);
}

/* A call that did not end in 2xx (or the expected 304): one of the three outcomes. */
static void op_fail_http(tr_forge_op *op, const tr_http_response *resp, const char *what)
{
    const tr_forge *f = op->forge;
    char msg[TR_FORGE_MESSAGE_MAX];
    long st = resp->status;

    if (resp->result != TR_OK) {
        bool cancelled = resp->result == TR_ECANCELLED;

        op_fail(op, resp->result, !cancelled, 0, 0, "%s: %s%s%s", what,
                cancelled ? "cancelled" : f->api_url, cancelled ? "" : ": ", 
                cancelled ? "" : resp->message);
        return;
    }
    tr_forge_reply_message(resp->body, resp->body_len, msg, sizeof(msg));
    if (*msg == '\0')
        snprintf(msg, sizeof(msg), "(no message)");
    if (is_rate_limited(resp)) {
        int64_t wait_ms = rate_limit_wait_ms(resp);

        op_fail(op, TR_ELIMIT, true, wait_ms, st,
                "%s: rate limited by %s (HTTP %ld), retry in %lld s: %s", what, f->api_url, st,
                (long long)((wait_ms + 999) / 1000), msg);
    } else if (st == 401 || st == 403) {
        op_fail(op, TR_EAUTH, false, 0, st, "forge token rejected by %s (HTTP %ld): %s",
                f->api_url, st, msg);
    } else if (st == 404) {
        op_fail(op, TR_ENOTFOUND, false, 0, st,
                "%s: %s repository %s (or the pull request) not found at %s (HTTP 404): %s",
                what, f->vt->display, f->repo, f->api_url, msg);
    } else if (st == 408 || st >= 500 || st < 200) {
        op_fail(op, TR_EUNAVAILABLE, true, 0, st, "%s: %s answered HTTP %ld: %s", what,
                f->api_url, st, msg);
    } else {
        op_fail(op, TR_EINVAL, false, 0, st, "%s: refused by %s (HTTP %ld): %s", what,
                f->api_url, st, msg);
    }
}

static void on_call_done(const tr_http_response *resp, void *userdata);

/* Send c for op (c is consumed); err says why when it could not be sent. */
static int op_send(tr_forge_op *op, tr_forge_call *c, int rc, tr_error *err)
{
    tr_forge *f = op->forge;
    const char *headers[16];
    size_t n = 0;
    tr_buf inm = TR_BUF_INIT(1024);
    tr_http_request req = {0};

    if (rc != TR_OK) {
        tr_error_set(err, rc, "%s: cannot build the request: %s", f->vt->display,
                     tr_strerror(rc));
        goto cleanup;
    }
    headers[n++] = f->auth_header;
    for (size_t i = 0; f->vt->headers && f->vt->headers[i] && n < 12; i++)
        headers[n++] = f->vt->headers[i];
    if (c->body.len > 0)
        headers[n++] = "Content-Type: application/json";
    if (op->step == STEP_GET && op->etag_sent) {
        rc = tr_buf_printf(&inm, "If-None-Match: %s", op->etag_sent);
        if (rc != TR_OK) {
            tr_error_set(err, rc, "%s: the ETag is too long", f->vt->display);
            goto cleanup;
        }
        headers[n++] = tr_buf_cstr(&inm);
    }
    headers[n] = NULL;
    req.method = c->method;
    req.url = tr_buf_cstr(&c->url);
    req.headers = headers;
    req.body = c->body.len ? c->body.ptr : NULL;
    req.body_len = c->body.len;
    req.timeout_ms = f->timeout_ms;
    req.max_response_bytes = TR_FORGE_MAX_REPLY_BYTES;
    req.on_done = on_call_done;
    req.userdata = op;
    rc = tr_http_client_send(f->http, &req, &op->call, err);
    if (rc != TR_OK)
        tr_error_prefix(err, "%s: ", f->vt->display);
cleanup:
    tr_buf_dispose(&inm);
    tr_buf_dispose(&c->url);
    tr_buf_dispose(&c->body);
    return rc;
}

/* Send the next call of a running op; a failure ends op (from the loop, in on_done). */
static void op_continue(tr_forge_op *op, tr_forge_call *c, int rc)
{
    tr_error err;

    rc = op_send(op, c, rc, &err);
    if (rc != TR_OK)
        op_fail(op, rc, rc == TR_EBUSY, 0, 0, "%s", err.message);
}

static void call_init(tr_forge_call *c)
{
    memset(c, 0, sizeof(*c));
    tr_buf_init(&c->url, FORGE_URL_MAX);
    tr_buf_init(&c->body, FORGE_BODY_MAX);
}

static void send_labels(tr_forge_op *op, op_step step)
{
    tr_forge_call c;
    int rc;

    call_init(&c);
    op->step = step;
    rc = op->forge->vt->add_labels(&op->forge->site, op->number,
                                   (const char *const *)op->labels, op->label_count, &c);
    op_continue(op, &c, rc);
}

/* The PR exists (created or reused): label it when needed, then finish. */
static void after_open(tr_forge_op *op, long status)
{
    const tr_forge_vtable *vt = op->forge->vt;

    op->number = op->pr.number;
    if (op->label_count > 0 && vt->add_labels && (!vt->labels_on_open || op->pr.reused))
        send_labels(op, STEP_OPEN_LABELS);
    else
        op_finish_pr(op, status);
}

static void on_open_reply(tr_forge_op *op, const tr_http_response *resp)
{
    tr_forge *f = op->forge;
    tr_error err;
    long st = resp->status;

    if (st >= 200 && st < 300) {
        if (tr_forge_parse_pr(f->kind, resp->body, resp->body_len, &op->pr, &err) != TR_OK)
            op_fail(op, err.code, true, 0, st, "open pull request: %s", err.message);
        else
            after_open(op, st);
    } else if (tr_forge_reply_is_duplicate(f->kind, st, resp->body, resp->body_len)) {
        tr_forge_call c;

        call_init(&c);
        op->step = STEP_OPEN_FIND;
        op_continue(op, &c, f->vt->find_pr_for_branch(&f->site, op->head, true, &c));
    } else {
        op_fail_http(op, resp, "open pull request");
    }
}

static void on_list_reply(tr_forge_op *op, const tr_http_response *resp)
{
    tr_error err;
    int rc;

    if (resp->status < 200 || resp->status >= 300) {
        op_fail_http(op, resp, "find pull request");
        return;
    }
    rc = tr_forge_parse_pr_list(op->forge->kind, resp->body, resp->body_len, op->head,
                                &op->pr, &err);
    if (rc == TR_ENOTFOUND && op->step == STEP_OPEN_FIND)
        op_fail(op, TR_ECONFLICT, true, 0, resp->status,
                "open pull request: %s says one exists for %s, but lists none open",
                op->forge->api_url, op->head);
    else if (rc != TR_OK)
        op_fail(op, rc, rc != TR_ENOTFOUND, 0, resp->status, "find pull request: %s",
                err.message);
    else if (op->step == STEP_OPEN_FIND) {
        op->pr.reused = true;
        after_open(op, resp->status);
    } else {
        op_finish_pr(op, resp->status);
    }
}

static void on_get_reply(tr_forge_op *op, const tr_http_response *resp)
{
    const char *etag = tr_http_call_header(resp->call, "ETag");
    tr_error err;

    if (resp->status == 304) {
        tr_forge_pr_clear(&op->pr);
        op->pr.number = op->number;
        op->pr.not_modified = true;
        op->pr.etag = tr_strdup(etag ? etag : op->etag_sent);
        op->pr.html_url = tr_strdup("");
        op->pr.head_branch = tr_strdup("");
        op->pr.merge_commit_sha = tr_strdup("");
        if (!op->pr.etag || !op->pr.html_url || !op->pr.head_branch || !op->pr.merge_commit_sha)
            op_fail(op, TR_ENOMEM, true, 0, 304, "out of memory");
        else
            op_finish_pr(op, 304);
    } else if (resp->status < 200 || resp->status >= 300) {
        op_fail_http(op, resp, "get pull request");
    } else if (tr_forge_parse_pr(op->forge->kind, resp->body, resp->body_len, &op->pr, &err) !=
               TR_OK) {
        op_fail(op, err.code, true, 0, resp->status, "get pull request %lld: %s",
                (long long)op->number, err.message);
    } else {
        tr_free(op->pr.etag);
        op->pr.etag = tr_strdup(etag ? etag : "");
        if (op->pr.etag == NULL)
            op_fail(op, TR_ENOMEM, true, 0, resp->status, "out of memory");
        else
            op_finish_pr(op, resp->status);
    }
}

static void on_labels_reply(tr_forge_op *op, const tr_http_response *resp)
{
    bool ok = resp->result == TR_OK && resp->status >= 200 && resp->status < 300;
    char msg[TR_FORGE_MESSAGE_MAX];

    if (op->step == STEP_LABELS) {
        if (ok) {
            tr_forge_result res = {.code = TR_OK, .status = resp->status};

            op_finish(op, &res);
        } else {
            op_fail_http(op, resp, "add labels");
        }
        return;
    }
    if (!ok) {
        /* the PR exists: a missing label is worth a warning, not a failed fix */
        tr_forge_reply_message(resp->body, resp->body_len, msg, sizeof(msg));
        scrub_token(msg, op->forge->token);
        tr_log_warn("forge", "pull request %s: labels not added (HTTP %ld): %s",
                    op->pr.html_url, resp->status, resp->result == TR_OK ? msg : resp->message);
    }
    op_finish_pr(op, resp->status);
}

static void on_call_done(const tr_http_response *resp, void *userdata)
{
    tr_forge_op *op = userdata;

    op->call = NULL;
    if (op->forge == NULL || resp->result != TR_OK) {
        if (op->forge == NULL) {
            tr_forge_result res = {.code = TR_ECANCELLED, .error = "cancelled: forge freed"};

            op_finish(op, &res);
        } else if (op->step == STEP_OPEN_LABELS && resp->result != TR_ECANCELLED) {
            on_labels_reply(op, resp);
        } else {
            op_fail_http(op, resp, "forge call");
        }
        return;
    }
    switch (op->step) {
    case STEP_OPEN:
        on_open_reply(op, resp);
        break;
    case STEP_OPEN_FIND:
    case STEP_FIND:
        on_list_reply(op, resp);
        break;
    case STEP_GET:
        on_get_reply(op, resp);
        break;
    case STEP_OPEN_LABELS:
    case STEP_LABELS:
        on_labels_reply(op, resp);
        break;
    }
}

static int copy_labels(tr_forge_op *op, const char *const *labels, size_t count, tr_error *err)
{
    if (count > TR_FORGE_MAX_LABELS)
        return tr_error_set(err, TR_EINVAL, "%zu labels, at most %d", count,
                            TR_FORGE_MAX_LABELS);
    if (count == 0)
        return TR_OK;
    op->labels = tr_calloc(count, sizeof(char *));
    if (op->labels == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    for (; op->label_count < count; op->label_count++) {
        if (labels[op->label_count] == NULL || *labels[op->label_count] == '\0')
            return tr_error_set(err, TR_EINVAL, "label %zu is empty", op->label_count);
        op->labels[op->label_count] = tr_strdup(labels[op->label_count]);
        if (op->labels[op->label_count] == NULL)
            return tr_error_set(err, TR_ENOMEM, "out of memory");
    }
    return TR_OK;
}

/* A new op linked into f, or NULL with err set. */
static tr_forge_op *op_new(tr_forge *f, op_step step, const char *head, tr_forge_done_cb done,
                           void *userdata, tr_error *err)
{
    tr_forge_op *op;

    if (f == NULL || done == NULL) {
        tr_error_set(err, TR_EINVAL, "forge and done callback are required");
        return NULL;
    }
    op = tr_calloc(1, sizeof(*op));
    if (op == NULL || (head && (op->head = tr_strdup(head)) == NULL)) {
        tr_free(op);
        tr_error_set(err, TR_ENOMEM, "out of memory");
        return NULL;
    }
    op->step = step;
    op->done = done;
    op->userdata = userdata;
    op->forge = f;
    op->next = f->ops;
    f->ops = op;
    return op;
}

/* Drop an op that never started (the caller gets the error, done never runs). */
static int op_abandon(tr_forge_op *op, int rc)
{
    op_unlink(op);
    op_free(op);
    return rc;
}

/*
 * Start op's first call. A failure to send is the start's error (done never
 * runs for it), so done never runs from inside the call that started op.
 */
static int op_start(tr_forge_op *op, tr_forge_call *c, int rc, tr_error *err)
{
    rc = op_send(op, c, rc, err);
    return rc == TR_OK ? TR_OK : op_abandon(op, rc);
}

int tr_forge_open_pr(tr_forge *f, const tr_forge_pr_request *req, tr_forge_done_cb done,
                     void *userdata, tr_error *err)
{
    tr_forge_pr_request eff;
    tr_forge_call c;
    tr_forge_op *op;
    int rc;

    if (req == NULL || req->head == NULL || !*req->head || req->base == NULL || !*req->base ||
        req->title == NULL || !*req->title)
        return tr_error_set(err, TR_EINVAL, "open pull request: head, base and title are "
                                            "required");
    op = op_new(f, STEP_OPEN, req->head, done, userdata, err);
    if (op == NULL)
        return err ? err->code : TR_ENOMEM;
    if (req->labels)
        rc = copy_labels(op, req->labels, req->label_count, err);
    else
        rc = copy_labels(op, (const char *const *)f->labels, f->label_count, err);
    if (rc != TR_OK)
        return op_abandon(op, rc);
    eff = *req;
    eff.body = req->body ? req->body : "";
    eff.labels = (const char *const *)op->labels;
    eff.label_count = op->label_count;
    eff.draft = req->draft < 0 ? f->draft : req->draft != 0;
    call_init(&c);
    return op_start(op, &c, f->vt->open_pr(&f->site, &eff, &c), err);
}

int tr_forge_get_pr(tr_forge *f, int64_t number, const char *etag, tr_forge_done_cb done,
                    void *userdata, tr_error *err)
{
    tr_forge_call c;
    tr_forge_op *op;

    if (number < 1)
        return tr_error_set(err, TR_EINVAL, "get pull request: number %lld is not positive",
                            (long long)number);
    if (etag && strpbrk(etag, "\r\n"))
        return tr_error_set(err, TR_EINVAL, "get pull request: the ETag holds a line break");
    op = op_new(f, STEP_GET, NULL, done, userdata, err);
    if (op == NULL)
        return err ? err->code : TR_ENOMEM;
    op->number = number;
    if (etag && *etag && (op->etag_sent = tr_strdup(etag)) == NULL)
        return op_abandon(op, tr_error_set(err, TR_ENOMEM, "out of memory"));
    call_init(&c);
    return op_start(op, &c, f->vt->get_pr(&f->site, number, &c), err);
}

int tr_forge_find_pr_for_branch(tr_forge *f, const char *head, tr_forge_done_cb done,
                                void *userdata, tr_error *err)
{
    tr_forge_call c;
    tr_forge_op *op;

    if (head == NULL || *head == '\0')
        return tr_error_set(err, TR_EINVAL, "find pull request: no branch");
    op = op_new(f, STEP_FIND, head, done, userdata, err);
    if (op == NULL)
        return err ? err->code : TR_ENOMEM;
    call_init(&c);
    return op_start(op, &c, f->vt->find_pr_for_branch(&f->site, head, false, &c), err);
}

int tr_forge_add_labels(tr_forge *f, int64_t number, const char *const *labels, size_t count,
                        tr_forge_done_cb done, void *userdata, tr_error *err)
{
    tr_forge_call c;
    tr_forge_op *op;
    int rc;

    if (number < 1 || count == 0)
        return tr_error_set(err, TR_EINVAL, "add labels: need a PR number and labels");
    op = op_new(f, STEP_LABELS, NULL, done, userdata, err);
    if (op == NULL)
        return err ? err->code : TR_ENOMEM;
    if (f->vt->add_labels == NULL)
        return op_abandon(op, tr_error_set(err, TR_EINVAL, "%s: adding labels is not supported",
                                           f->vt->display));
    rc = copy_labels(op, labels, count, err);
    if (rc != TR_OK)
        return op_abandon(op, rc);
    op->number = number;
    call_init(&c);
    return op_start(op, &c,
                    f->vt->add_labels(&f->site, number, (const char *const *)op->labels,
                                      op->label_count, &c),
                    err);
}

/* ------------------------------------------------------------ registry */

/* Owner/name shape: no empty part, only characters forges allow in paths. */
static int check_repo(const tr_forge_vtable *vt, const char *repo, tr_error *err)
{
    const char *slash = repo ? strrchr(repo, '/') : NULL;
    bool digits = repo && *repo && strspn(repo, "0123456789") == strlen(repo);
    bool shape_ok = vt->nested_repo ? (slash != NULL || digits)
                                    : (slash != NULL && strchr(repo, '/') == slash);

    if (repo == NULL || *repo == '\0')
        return tr_error_set(err, TR_ECONFIG, "forge.repo is not set (\"owner/name\")");
    if (strspn(repo, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") !=
            strlen(repo) ||
        repo[0] == '/' || repo[strlen(repo) - 1] == '/' || strstr(repo, "//"))
        return tr_error_set(err, TR_ECONFIG, "forge.repo \"%s\" is not \"owner/name\"", repo);
    if (!shape_ok)
        return tr_error_set(err, TR_ECONFIG, "forge.repo \"%s\" is not \"owner/name\"%s", repo,
                            vt->nested_repo ? " (nor \"group/sub/name\" nor a project id)" : "");
    return TR_OK;
}

static int build_api_url(tr_forge *f, const tr_config_forge *cfg, tr_error *err)
{
    const char *given = cfg->api_url && *cfg->api_url ? cfg->api_url : f->vt->default_api_url;
    tr_buf b = TR_BUF_INIT(FORGE_URL_MAX);
    int rc;

    if (*given == '\0')
        return tr_error_set(err, TR_ECONFIG, "forge.api_url is required for %s (no public "
                                             "default)", f->vt->kind);
    if ((strncmp(given, "https://", 8) != 0 && strncmp(given, "http://", 7) != 0) ||
        strpbrk(given, " \t\r\n?#"))
        return tr_error_set(err, TR_ECONFIG, "forge.api_url \"%s\" is not an http(s) URL",
                            given);
    rc = tr_buf_puts(&b, given);
    while (rc == TR_OK && b.len > 8 && b.ptr[b.len - 1] == '/')
        b.ptr[--b.len] = '\0';
    /* "https://gitlab.example.com" is what people paste; the API lives below it */
    if (rc == TR_OK && *f->vt->api_path && strstr(b.ptr, f->vt->api_path) == NULL)
        rc = tr_buf_puts(&b, f->vt->api_path);
    if (rc != TR_OK) {
        tr_buf_dispose(&b);
        return tr_error_set(err, rc, "forge.api_url: %s", tr_strerror(rc));
    }
    f->api_url = tr_buf_detach(&b);
    return TR_OK;
}

static int copy_config(tr_forge *f, const tr_config_forge *cfg, tr_error *err)
{
    const char *slash = strrchr(cfg->repo, '/');

    f->repo = tr_strdup(cfg->repo);
    f->owner = slash ? tr_strndup(cfg->repo, (size_t)(slash - cfg->repo)) : tr_strdup("");
    f->name = tr_strdup(slash ? slash + 1 : cfg->repo);
    if (f->repo == NULL || f->owner == NULL || f->name == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    if (cfg->labels.count > TR_FORGE_MAX_LABELS)
        return tr_error_set(err, TR_ECONFIG, "forge.labels: %zu labels, at most %d",
                            cfg->labels.count, TR_FORGE_MAX_LABELS);
    if (cfg->labels.count > 0) {
        f->labels = tr_calloc(cfg->labels.count, sizeof(char *));
        if (f->labels == NULL)
            return tr_error_set(err, TR_ENOMEM, "out of memory");
    }
    for (; f->label_count < cfg->labels.count; f->label_count++)
        if ((f->labels[f->label_count] = tr_strdup(cfg->labels.items[f->label_count])) == NULL)
            return tr_error_set(err, TR_ENOMEM, "out of memory");
    f->draft = cfg->draft;
    f->site.api_url = f->api_url;
    f->site.repo = f->repo;
    f->site.owner = f->owner;
    f->site.name = f->name;
    return TR_OK;
}

static int take_token(tr_forge *f, const tr_config_forge *cfg, const char *token, tr_error *err)
{
    tr_buf b = TR_BUF_INIT(TR_CONFIG_SECRET_MAX_BYTES + 256);
    int rc;

    if (token) {
        f->token = tr_strdup(token);
        if (f->token == NULL)
            return tr_error_set(err, TR_ENOMEM, "out of memory");
    } else {
        rc = tr_config_secret_resolve(cfg->token_env, NULL, &f->token, err);
        if (rc != TR_OK) {
            tr_error_prefix(err, "forge.token_env: ");
            return rc == TR_ENOMEM ? rc : (err ? (err->code = TR_ECONFIG) : TR_ECONFIG);
        }
    }
    if (*f->token == '\0' || strpbrk(f->token, "\r\n"))
        return tr_error_set(err, TR_ECONFIG, "forge.token_env: the token is %s",
                            *f->token ? "more than one line" : "empty");
    rc = tr_buf_printf(&b, f->vt->auth_format, f->token);
    if (rc != TR_OK) {
        tr_buf_dispose(&b);
        return tr_error_set(err, rc, "out of memory");
    }
    f->auth_header = tr_buf_detach(&b);
    return TR_OK;
}

int tr_forge_create(tr_forge **out, const tr_config_forge *cfg, tr_http_client *http,
                    const char *token, tr_error *err)
{
    tr_forge *f;
    int rc;

    *out = NULL;
    if (cfg == NULL || http == NULL)
        return tr_error_set(err, TR_EINVAL, "forge: config and HTTP client are required");
    if (tr_forge_vtable_of(cfg->kind) == NULL)
        return tr_error_set(err, TR_ECONFIG, "forge.kind: no forge configured");
    f = tr_calloc(1, sizeof(*f));
    if (f == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    f->vt = tr_forge_vtable_of(cfg->kind);
    f->kind = cfg->kind;
    f->http = http;
    f->timeout_ms = TR_FORGE_DEFAULT_TIMEOUT_MS;
    rc = check_repo(f->vt, cfg->repo, err);
    if (rc == TR_OK)
        rc = build_api_url(f, cfg, err);
    if (rc == TR_OK)
        rc = copy_config(f, cfg, err);
    if (rc == TR_OK)
        rc = take_token(f, cfg, token, err);
    if (rc != TR_OK) {
        tr_forge_free(f);
        return rc;
    }
    *out = f;
    return TR_OK;
}

void tr_forge_free(tr_forge *f)
{
    if (f == NULL)
        return;
    while (f->ops) {
        tr_forge_op *op = f->ops;

        /* detached: its on_done finishes it with TR_ECANCELLED, later, from the loop */
        op_unlink(op);
        if (op->call)
            tr_http_call_cancel(op->call);
    }
    for (size_t i = 0; i < f->label_count; i++)
        tr_free(f->labels[i]);
    tr_free(f->labels);
    tr_secret_free(f->token);
    tr_secret_free(f->auth_header);
    tr_free(f->api_url);
    tr_free(f->repo);
    tr_free(f->owner);
    tr_free(f->name);
    tr_free(f);
}

void tr_forge_set_timeout(tr_forge *f, long timeout_ms)
{
    f->timeout_ms = timeout_ms > 0 ? timeout_ms : TR_FORGE_DEFAULT_TIMEOUT_MS;
}

const char *tr_forge_kind(const tr_forge *f)
{
    return f->vt->kind;
}
