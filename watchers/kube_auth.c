/*
 * kube_auth.c - exec credential plugins on the loop.
 *
 * A run owns its libuv handles (process, stdout and stderr pipes, timeout
 * timer) and frees itself once all four are closed. The source points at
 * its current run and the run back at the source; closing the source kills
 * the process and cuts that link, so a run that outlives its source only
 * cleans up after itself.
 *
 * The credential is refreshed before it expires (a tenth of its lifetime,
 * at most a minute early) in the background while the old one still works,
 * so requests are not held up by a plugin that takes seconds (aws eks
 * get-token does).
 */
#include "kube_auth.h"

#include "alloc.h"
#include "buf.h"
#include "log.h"

#include <signal.h>
#include <string.h>
#include <time.h>

extern char **environ;

#define STDERR_KEEP_BYTES 4096
#define EARLY_REFRESH_MAX_MS 60000

typedef struct waiter {
    tr_kube_auth_cb cb;
    void *userdata;
    struct waiter *next;
} waiter;

typedef struct run run;

struct tr_kube_auth {
    uv_loop_t *loop;
    const tr_kube_conn *conn;
    uint64_t timeout_ms;
    tr_kube_exec_cred *cred;
    int64_t fetched_ms;
    int rejected;
    run *running;
    waiter *waiters;
    waiter *delivering;   /* callbacks being called; tr_kube_auth_cancel looks here too */
    size_t waiter_count;
    unsigned long runs;
};

struct run {
    tr_kube_auth *auth;   /* NULL once the source is closed */
    uv_process_t process;
    uv_pipe_t out;
    uv_pipe_t errp;
    uv_timer_t timer;
    int open_handles;
    int exited, out_eof, err_eof;
    int64_t exit_status;
    int term_signal;
    int timed_out;
    int too_big;
    int finished;
    tr_buf stdout_buf;
    tr_buf stderr_buf;
};

static int64_t wall_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int usable(const tr_kube_auth *auth, int64_t now)
{
    return auth->cred && !auth->rejected &&
           (auth->cred->expiration_ms == 0 || now < auth->cred->expiration_ms);
}

static int needs_refresh(const tr_kube_auth *auth, int64_t now)
{
    int64_t lifetime, early;

    if (!usable(auth, now))
        return 1;
    if (auth->cred->expiration_ms == 0)
        return 0;
    lifetime = auth->cred->expiration_ms - auth->fetched_ms;
    early = lifetime > 0 ? lifetime / 10 : 0;
    if (early > EARLY_REFRESH_MAX_MS)
        early = EARLY_REFRESH_MAX_MS;
    return now >= auth->cred->expiration_ms - early;
}

const tr_kube_exec_cred *tr_kube_auth_current(const tr_kube_auth *auth)
{
    return usable(auth, wall_ms()) ? auth->cred : NULL;
}

unsigned long tr_kube_auth_runs(const tr_kube_auth *auth)
{
    return auth->runs;
}

void tr_kube_auth_invalidate(tr_kube_auth *auth)
{
    if (auth)
        auth->rejected = 1;
}

static void run_free(run *r)
{
    tr_buf_dispose(&r->stdout_buf);
    if (r->stderr_buf.ptr)
        memset(r->stderr_buf.ptr, 0, r->stderr_buf.len);
    tr_buf_dispose(&r->stderr_buf);
    tr_free(r);
}

static void on_run_handle_closed(uv_handle_t *handle)
{
    run *r = handle->data;

    if (--r->open_handles == 0)
        run_free(r);
}

static void run_close(run *r)
{
    uv_handle_t *handles[] = { (uv_handle_t *)&r->process, (uv_handle_t *)&r->out,
                               (uv_handle_t *)&r->errp, (uv_handle_t *)&r->timer };
    size_t i;

    for (i = 0; i < 4; i++)
        if (!uv_is_closing(handles[i]))
            uv_close(handles[i], on_run_handle_closed);
}

/* Call every queued callback once; they may queue again or cancel others. */
static void deliver(tr_kube_auth *auth, int rc, const char *message)
{
    auth->delivering = auth->waiters;
    auth->waiters = NULL;
    auth->waiter_count = 0;
    while (auth->delivering) {
        waiter *w = auth->delivering;

        auth->delivering = w->next;
        w->cb(rc, message, w->userdata);
        tr_free(w);
    }
}

/* The first line of the plugin's stderr, for the error message. */
static void first_line(const tr_buf *b, char *out, size_t cap)
{
    size_t n = 0;

    while (n < b->len && n + 1 < cap && b->ptr[n] != '\n' && b->ptr[n] != '\r')
        n++;
    memcpy(out, b->ptr ? b->ptr : "", n);
    out[n] = '\0';
}

static void run_finished(run *r)
{
    tr_kube_auth *auth = r->auth;
    const tr_kube_exec *exec;
    tr_kube_exec_cred *cred = NULL;
    tr_error err = { 0 };
    char line[256];
    int rc = TR_OK;

    run_close(r);
    if (auth == NULL)
        return;
    auth->running = NULL;
    exec = auth->conn->exec;
    first_line(&r->stderr_buf, line, sizeof(line));
    /* rc set apart from tr_error_set: only the parse branch below can leave it TR_OK. */
    if (r->timed_out) {
        rc = TR_ETIMEOUT;
        tr_error_set(&err, rc, "exec plugin \"%s\" did not finish within %llu ms",
                     exec->command, (unsigned long long)auth->timeout_ms);
    } else if (r->too_big) {
        rc = TR_ETOOBIG;
        tr_error_set(&err, rc, "exec plugin \"%s\" printed more than %zu bytes", exec->command,
                     TR_KUBE_EXEC_OUTPUT_MAX_BYTES);
    } else if (r->term_signal) {
        rc = TR_EAUTH;
        tr_error_set(&err, rc, "exec plugin \"%s\" was killed by signal %d%s%s", exec->command,
                     r->term_signal, line[0] ? ": " : "", line);
    } else if (r->exit_status != 0) {
        rc = TR_EAUTH;
        tr_error_set(&err, rc, "exec plugin \"%s\" exited with status %lld%s%s", exec->command,
                     (long long)r->exit_status, line[0] ? ": " : "", line);
    } else {
        rc = tr_kube_exec_parse_response(&cred, exec->api_version, tr_buf_cstr(&r->stdout_buf),
                                         r->stdout_buf.len, &err);
    }
    if (r->stdout_buf.ptr)
        memset(r->stdout_buf.ptr, 0, r->stdout_buf.len);
    if (rc == TR_OK) {
        tr_kube_exec_cred_free(auth->cred);
        auth->cred = cred;
        auth->fetched_ms = wall_ms();
        auth->rejected = 0;
        tr_log_debug("kubernetes", "exec plugin \"%s\" gave a %s%s", exec->command,
                     cred->token ? "token" : "client certificate",
                     cred->expiration_ms ? " with an expiry" : "");
    } else {
        tr_log_warn("kubernetes", "%s", err.message);
    }
    deliver(auth, rc, err.message);
}

static void maybe_finished(run *r)
{
    if (!r->finished && r->exited && r->out_eof && r->err_eof) {
        r->finished = 1;
        run_finished(r);
    }
}

static void on_exit_cb(uv_process_t *process, int64_t exit_status, int term_signal)
{
    run *r = process->data;

    r->exited = 1;
    r->exit_status = exit_status;
    r->term_signal = term_signal;
    maybe_finished(r);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536]; /* loop thread only; consumed before the next read */

    (void)suggested;
    buf->base = slab;
    buf->len = sizeof(slab);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    run *r = stream->data;
    int is_out = stream == (uv_stream_t *)&r->out;

    if (nread > 0) {
        if (is_out) {
            if (tr_buf_put(&r->stdout_buf, buf->base, (size_t)nread) != TR_OK && !r->too_big) {
                r->too_big = 1;
                (void)uv_process_kill(&r->process, SIGKILL);
            }
        } else if (r->stderr_buf.len < STDERR_KEEP_BYTES) {
            size_t room = STDERR_KEEP_BYTES - r->stderr_buf.len;

            (void)tr_buf_put(&r->stderr_buf, buf->base, (size_t)nread < room ? (size_t)nread
                                                                                : room);
        }
        return;
    }
    if (nread == 0)
        return;
    /* EOF or a read error: either way this pipe is done. */
    (void)uv_read_stop(stream);
    if (is_out)
        r->out_eof = 1;
    else
        r->err_eof = 1;
    maybe_finished(r);
}

static void on_timeout(uv_timer_t *timer)
{
    run *r = timer->data;

    r->timed_out = 1;
    if (!r->exited) {
        (void)uv_process_kill(&r->process, SIGKILL);
        return;
    }
    /* Exited, but a child of the plugin still holds its stdout open: stop waiting. */
    r->out_eof = r->err_eof = 1;
    maybe_finished(r);
}

/* environ + the plugin's env + KUBERNETES_EXEC_INFO. Caller frees with free_env. */
static char **build_env(const tr_kube_exec *exec, const char *info, tr_error *err)
{
    size_t base = 0, i, n = 0;
    char **env;
    tr_buf b = TR_BUF_INIT(0);

    while (environ && environ[base])
        base++;
    env = tr_calloc(base + exec->env_count + 2, sizeof(*env));
    if (env == NULL)
        goto nomem;
    for (i = 0; i < base; i++) {
        size_t j;
        const char *eq = strchr(environ[i], '=');
        size_t name_len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int overridden = strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21) == 0;

        for (j = 0; j < exec->env_count && !overridden; j++)
            overridden = strlen(exec->env[j].name) == name_len &&
                         strncmp(exec->env[j].name, environ[i], name_len) == 0;
        if (!overridden && (env[n++] = tr_strdup(environ[i])) == NULL)
            goto nomem;
    }
    for (i = 0; i < exec->env_count; i++) {
        tr_buf_clear(&b);
        if (tr_buf_printf(&b, "%s=%s", exec->env[i].name, exec->env[i].value) != TR_OK ||
            (env[n++] = tr_buf_detach(&b)) == NULL)
            goto nomem;
    }
    tr_buf_clear(&b);
    if (tr_buf_printf(&b, "KUBERNETES_EXEC_INFO=%s", info) != TR_OK ||
        (env[n++] = tr_buf_detach(&b)) == NULL)
        goto nomem;
    tr_buf_dispose(&b);
    return env;
nomem:
    tr_buf_dispose(&b);
    for (i = 0; env && env[i]; i++)
        tr_free(env[i]);
    tr_free(env);
    tr_error_set(err, TR_ENOMEM, "out of memory building the exec plugin environment");
    return NULL;
}

static void free_env(char **env)
{
    size_t i;

    for (i = 0; env && env[i]; i++)
        tr_free(env[i]);
    tr_free(env);
}

static int start_run(tr_kube_auth *auth, tr_error *err)
{
    const tr_kube_exec *exec = auth->conn->exec;
    uv_process_options_t opts;
    uv_stdio_container_t stdio[3];
    char **args = NULL, **env = NULL, *info = NULL;
    run *r = NULL;
    size_t i;
    int rc, uerr;

    rc = tr_kube_exec_request_json(&info, auth->conn, err);
    if (rc != TR_OK)
        return rc;
    env = build_env(exec, info, err);
    args = tr_calloc(exec->args_count + 2, sizeof(*args));
    r = tr_calloc(1, sizeof(*r));
    if (env == NULL || args == NULL || r == NULL) {
        rc = env ? tr_error_set(err, TR_ENOMEM, "out of memory starting the exec plugin")
                 : TR_ENOMEM;
        tr_free(r);
        goto cleanup;
    }
    args[0] = exec->command;
    for (i = 0; i < exec->args_count; i++)
        args[i + 1] = exec->args[i];
    tr_buf_init(&r->stdout_buf, TR_KUBE_EXEC_OUTPUT_MAX_BYTES);
    tr_buf_init(&r->stderr_buf, STDERR_KEEP_BYTES + 1);
    r->auth = auth;
    (void)uv_pipe_init(auth->loop, &r->out, 0);   /* cannot fail */
    (void)uv_pipe_init(auth->loop, &r->errp, 0);
    (void)uv_timer_init(auth->loop, &r->timer);
    r->out.data = r->errp.data = r->timer.data = r->process.data = r;
    r->open_handles = 4;
    memset(&opts, 0, sizeof(opts));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&r->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&r->errp;
    opts.file = exec->command;
    opts.args = args;
    opts.env = env;
    opts.stdio = stdio;
    opts.stdio_count = 3;
    opts.exit_cb = on_exit_cb;
    uerr = uv_spawn(auth->loop, &r->process, &opts);
    if (uerr != 0) {
        /* The handle is initialised even when the spawn fails: close it like the rest. */
        r->auth = NULL;
        run_close(r);
        rc = tr_error_set(err, TR_EAUTH, "exec plugin \"%s\" could not be started: %s%s%s",
                          exec->command, uv_strerror(uerr),
                          exec->install_hint ? "; " : "",
                          exec->install_hint ? exec->install_hint : "");
        goto cleanup;
    }
    (void)uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
    (void)uv_read_start((uv_stream_t *)&r->errp, on_alloc, on_read);
    (void)uv_timer_start(&r->timer, on_timeout, auth->timeout_ms, 0);
    auth->running = r;
    auth->runs++;
cleanup:
    if (info) {
        memset(info, 0, strlen(info));
        tr_free(info);
    }
    free_env(env);
    tr_free(args);
    return rc;
}

int tr_kube_auth_wait(tr_kube_auth *auth, tr_kube_auth_cb cb, void *userdata, tr_error *err)
{
    int64_t now = wall_ms();
    waiter *w;
    int rc;

    if (!needs_refresh(auth, now))
        return TR_OK;
    if (auth->running == NULL) {
        rc = start_run(auth, err);
        if (rc != TR_OK)
            return usable(auth, now) ? TR_OK : rc;
    }
    if (usable(auth, now))
        return TR_OK; /* early refresh in the background */
    if (auth->waiter_count >= TR_KUBE_AUTH_MAX_WAITERS)
        return tr_error_set(err, TR_ELIMIT, "too many requests waiting for the exec plugin");
    w = tr_calloc(1, sizeof(*w));
    if (w == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    w->cb = cb;
    w->userdata = userdata;
    w->next = auth->waiters;
    auth->waiters = w;
    auth->waiter_count++;
    return TR_EBUSY;
}

static void cancel_in(waiter **list, void *userdata, size_t *count)
{
    while (*list) {
        waiter *w = *list;

        if (w->userdata == userdata) {
            *list = w->next;
            tr_free(w);
            if (count)
                (*count)--;
        } else {
            list = &w->next;
        }
    }
}

void tr_kube_auth_cancel(tr_kube_auth *auth, void *userdata)
{
    if (auth == NULL)
        return;
    cancel_in(&auth->waiters, userdata, &auth->waiter_count);
    cancel_in(&auth->delivering, userdata, NULL);
}

int tr_kube_auth_new(tr_kube_auth **out, uv_loop_t *loop, const tr_kube_conn *conn,
                     uint64_t timeout_ms, tr_error *err)
{
    tr_kube_auth *auth;

    *out = NULL;
    if (conn == NULL || conn->exec == NULL)
        return tr_error_set(err, TR_EINVAL, "kubernetes: the user has no exec plugin");
    auth = tr_calloc(1, sizeof(*auth));
    if (auth == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    auth->loop = loop;
    auth->conn = conn;
    auth->timeout_ms = timeout_ms ? timeout_ms : TR_KUBE_AUTH_DEFAULT_TIMEOUT_MS;
    *out = auth;
    return TR_OK;
}

void tr_kube_auth_close(tr_kube_auth *auth)
{
    waiter *w;

    if (auth == NULL)
        return;
    if (auth->running) {
        auth->running->auth = NULL;
        if (!auth->running->exited)
            (void)uv_process_kill(&auth->running->process, SIGKILL);
        auth->running = NULL;
    }
    while ((w = auth->waiters) != NULL) {
        auth->waiters = w->next;
        tr_free(w);
    }
    while ((w = auth->delivering) != NULL) {
        auth->delivering = w->next;
        tr_free(w);
    }
    if (auth->cred && auth->cred->token)
        memset(auth->cred->token, 0, strlen(auth->cred->token));
    tr_kube_exec_cred_free(auth->cred);
    tr_free(auth);
}
