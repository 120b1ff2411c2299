/*
 * gitrepo_async.c - tr_gitrepo, the GitOps repository as an object on the
 * loop: a FIFO of jobs run one at a time on the libuv thread pool, sync
 * requests coalesced, status and backoff kept on the loop thread.
 *
 * One job at a time per repository is what makes the blocking functions
 * safe to use from other modules: a sync may delete the work tree and clone
 * it again, which must never happen under a reader or the fixer's commit.
 *
 * Closing: queued jobs are dropped with TR_ECANCELLED; the running job
 * cannot be interrupted by libuv once started, so the cancel flag asks
 * libgit2's progress callbacks to stop, and the object is freed in the
 * after-work callback (libuv calls it, with UV_ECANCELED when the job never
 * started) and the timer's close callback, whichever comes last.
 */
#include "gitrepo_internal.h"

#include <string.h>
#include <time.h>

#include "alloc.h"
#include "config.h"
#include "log.h"

#define JOBS_MAX 64
#define WAITERS_MAX 64
#define BACKOFF_BASE_MS 5000u
#define BACKOFF_CAP_MS (10u * 60u * 1000u)

typedef struct job {
    int is_sync;
    tr_gitrepo_work_fn work;
    tr_gitrepo_done_fn done;
    void *user_data;
    int status;
    struct job *next;
} job;

typedef struct waiter {
    tr_gitrepo_sync_cb cb;
    void *user_data;
} waiter;

struct tr_gitrepo {
    uv_loop_t *loop;
    tr_gitrepo_spec spec; /* every string owned; token wiped on free */
    uv_work_t work_req;
    uv_timer_t timer;
    job *head, *tail;
    size_t queued;
    job *running;
    job *sync_job; /* the queued or running sync that new requests join */
    waiter waiters[WAITERS_MAX];
    size_t waiter_count;
    volatile int cancel_flag; /* set on the loop, polled by libgit2 callbacks */
    tr_error sync_err;        /* written by the work thread, read in after-work */
    char sync_head[TR_GITREPO_OID_HEX];
    tr_gitrepo_status status;
    uint64_t interval_ms;
    int periodic;
    uint32_t rng;
    int closing;
    int timer_closed;
    int dispatching;
    void (*closed_cb)(void *user_data);
    void *closed_user_data;
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* 5 s doubling per failure, capped at 10 min, +-20 % jitter (xorshift32). */
static uint64_t backoff_ms(tr_gitrepo *repo)
{
    unsigned failures = repo->status.consecutive_failures;
    uint64_t delay = BACKOFF_BASE_MS;
    unsigned i;

    for (i = 1; i < failures && delay < BACKOFF_CAP_MS; i++)
        delay *= 2;
    if (delay > BACKOFF_CAP_MS)
        delay = BACKOFF_CAP_MS;
    repo->rng ^= repo->rng << 13;
    repo->rng ^= repo->rng >> 17;
    repo->rng ^= repo->rng << 5;
    return delay * 4 / 5 + (uint64_t)(repo->rng % 1000u) * (delay * 2 / 5) / 1000u;
}

static void spec_free(tr_gitrepo_spec *spec)
{
    tr_free((char *)spec->name);
    tr_free((char *)spec->url);
    tr_free((char *)spec->branch);
    tr_free((char *)spec->username);
    tr_secret_free((char *)spec->token);
    tr_free((char *)spec->ssh_key_file);
    tr_free((char *)spec->work_dir);
}

static int copy_field(const char **dst, const char *src, const char *fallback)
{
    *dst = tr_strdup(src && src[0] ? src : fallback);
    return *dst ? 0 : TR_ENOMEM;
}

static void maybe_free(tr_gitrepo *repo)
{
    void (*closed_cb)(void *) = repo->closed_cb;
    void *closed_user_data = repo->closed_user_data;

    if (!repo->closing || repo->running || !repo->timer_closed || repo->dispatching)
        return;
    spec_free(&repo->spec);
    tr_free(repo);
    if (closed_cb)
        closed_cb(closed_user_data);
}

static void on_timer_closed(uv_handle_t *handle)
{
    tr_gitrepo *repo = handle->data;
    repo->timer_closed = 1;
    maybe_free(repo);
}

/* ------------------------------------------------------------ jobs */

static void on_work(uv_work_t *req)
{
    tr_gitrepo *repo = req->data;
    job *current = repo->running;

    if (current->is_sync) {
        tr_error_clear(&repo->sync_err);
        current->status = tr_gitrepo_sync_blocking(&repo->spec, &repo->cancel_flag,
                                                   repo->sync_head, &repo->sync_err);
    } else {
        current->status = current->work(&repo->spec, current->user_data);
    }
}

static void on_after_work(uv_work_t *req, int uv_status);

static void pump(tr_gitrepo *repo)
{
    job *next;
    int rc;

    while (!repo->running && repo->head && !repo->closing) {
        next = repo->head;
        repo->head = next->next;
        if (!repo->head)
            repo->tail = NULL;
        repo->queued--;
        repo->running = next;
        rc = uv_queue_work(repo->loop, &repo->work_req, on_work, on_after_work);
        if (rc == 0)
            return;
        /* Cannot happen with a valid loop; finish the job as failed, never hang. */
        tr_log_error("gitrepo", "repo %s: uv_queue_work: %s", repo->spec.name, uv_strerror(rc));
        next->status = TR_ERROR;
        on_after_work(&repo->work_req, 0);
    }
}

static void schedule_next(tr_gitrepo *repo, int failed);

static void finish_sync(tr_gitrepo *repo, job *done_job)
{
    waiter waiters[WAITERS_MAX];
    size_t count = repo->waiter_count, i;
    int status = done_job->status;
    tr_error err;

    memcpy(waiters, repo->waiters, count * sizeof(waiters[0]));
    repo->waiter_count = 0;
    repo->sync_job = NULL;
    err = repo->sync_err;
    if (status == 0) {
        memcpy(repo->status.head, repo->sync_head, sizeof(repo->status.head));
        repo->status.last_fetch_ms = wall_ms();
        repo->status.last_error[0] = '\0';
        repo->status.consecutive_failures = 0;
        repo->status.next_retry_ms = 0;
    } else if (status != TR_ECANCELLED) {
        if (!err.message[0])
            tr_error_set(&err, status, "repo %s: sync failed: %s", repo->spec.name,
                         tr_strerror(status));
        memcpy(repo->status.last_error, err.message, sizeof(repo->status.last_error));
        repo->status.consecutive_failures++;
        repo->status.next_retry_ms = uv_now(repo->loop) + backoff_ms(repo);
        tr_log_warn("gitrepo", "%s (failure %u)", err.message,
                    repo->status.consecutive_failures);
    }
    if (!repo->closing)
        schedule_next(repo, status != 0);
    for (i = 0; i < count; i++)
        waiters[i].cb(repo, status, status == 0 ? NULL : &err, waiters[i].user_data);
}

static void on_after_work(uv_work_t *req, int uv_status)
{
    tr_gitrepo *repo = req->data;
    job *done_job = repo->running;

    if (uv_status == UV_ECANCELED)
        done_job->status = TR_ECANCELLED;
    repo->running = NULL;
    repo->dispatching = 1;
    if (done_job->is_sync) {
        if (uv_status == UV_ECANCELED)
            tr_error_set(&repo->sync_err, TR_ECANCELLED, "repo %s: sync cancelled",
                         repo->spec.name);
        finish_sync(repo, done_job);
    } else if (done_job->done) {
        done_job->done(repo, done_job->status, done_job->user_data);
    }
    tr_free(done_job);
    repo->dispatching = 0;
    if (repo->closing)
        maybe_free(repo);
    else
        pump(repo);
}

static int enqueue(tr_gitrepo *repo, job *new_job)
{
    if (repo->queued >= JOBS_MAX)
        return TR_EBUSY;
    if (repo->tail)
        repo->tail->next = new_job;
    else
        repo->head = new_job;
    repo->tail = new_job;
    repo->queued++;
    pump(repo);
    return 0;
}

/* ------------------------------------------------------------ public */

int tr_gitrepo_new(tr_gitrepo **out, uv_loop_t *loop, const tr_gitrepo_spec *spec,
                   tr_error *err)
{
    tr_gitrepo *repo;
    int rc;

    *out = NULL;
    if (!loop || !spec || !spec->url || !spec->url[0] || !spec->work_dir || !spec->work_dir[0])
        return tr_error_set(err, TR_EINVAL, "gitrepo: loop, url and work_dir are required");
    if (!(repo = tr_calloc(1, sizeof(*repo))))
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    if (copy_field(&repo->spec.name, spec->name, "gitops") ||
        copy_field(&repo->spec.url, spec->url, "") ||
        copy_field(&repo->spec.branch, spec->branch, "main") ||
        copy_field(&repo->spec.username, spec->username, TR_GITREPO_DEFAULT_USERNAME) ||
        copy_field(&repo->spec.token, spec->token, "") ||
        copy_field(&repo->spec.ssh_key_file, spec->ssh_key_file, "") ||
        copy_field(&repo->spec.work_dir, spec->work_dir, "")) {
        spec_free(&repo->spec);
        tr_free(repo);
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    }
    repo->loop = loop;
    repo->work_req.data = repo;
    repo->rng = (uint32_t)(wall_ms() ^ (uintptr_t)repo) | 1u;
    rc = uv_timer_init(loop, &repo->timer);
    if (rc != 0) {
        spec_free(&repo->spec);
        tr_free(repo);
        return tr_error_set(err, TR_ERROR, "gitrepo: uv_timer_init: %s", uv_strerror(rc));
    }
    repo->timer.data = repo;
    *out = repo;
    return 0;
}

int tr_gitrepo_sync(tr_gitrepo *repo, tr_gitrepo_sync_cb cb, void *user_data)
{
    int rc;

    if (repo->closing)
        return TR_ECANCELLED;
    if (cb && repo->waiter_count >= WAITERS_MAX)
        return TR_EBUSY;
    if (!repo->sync_job) {
        job *new_job = tr_calloc(1, sizeof(*new_job));
        if (!new_job)
            return TR_ENOMEM;
        new_job->is_sync = 1;
        repo->sync_job = new_job;
        if ((rc = enqueue(repo, new_job)) < 0) {
            repo->sync_job = NULL;
            tr_free(new_job);
            return rc;
        }
    }
    if (cb) {
        repo->waiters[repo->waiter_count].cb = cb;
        repo->waiters[repo->waiter_count].user_data = user_data;
        repo->waiter_count++;
    }
    return 0;
}

int tr_gitrepo_fetch_if_older(tr_gitrepo *repo, uint64_t max_age_ms, tr_gitrepo_sync_cb cb,
                              void *user_data)
{
    uint64_t now = wall_ms();
    int rc;

    if (repo->closing)
        return TR_ECANCELLED;
    if (!repo->sync_job) {
        if (repo->status.consecutive_failures > 0 &&
            uv_now(repo->loop) < repo->status.next_retry_ms)
            return 1; /* backing off: the caller reads last_error */
        if (repo->status.last_fetch_ms && now >= repo->status.last_fetch_ms &&
            now - repo->status.last_fetch_ms < max_age_ms)
            return 1;
    }
    rc = tr_gitrepo_sync(repo, cb, user_data);
    return rc < 0 ? rc : 0;
}

static void on_timer(uv_timer_t *timer)
{
    tr_gitrepo *repo = timer->data;
    int rc = tr_gitrepo_sync(repo, NULL, NULL);
    if (rc < 0 && rc != TR_ECANCELLED)
        tr_log_warn("gitrepo", "repo %s: periodic sync not queued: %s", repo->spec.name,
                    tr_strerror(rc));
}

static void schedule_next(tr_gitrepo *repo, int failed)
{
    uint64_t delay;

    if (!repo->periodic)
        return;
    delay = failed ? repo->status.next_retry_ms - uv_now(repo->loop) : repo->interval_ms;
    repo->status.next_retry_ms = uv_now(repo->loop) + delay;
    (void)uv_timer_start(&repo->timer, on_timer, delay, 0); /* cannot fail on a live timer */
}

int tr_gitrepo_start_periodic(tr_gitrepo *repo, uint64_t interval_ms)
{
    if (repo->closing)
        return TR_ECANCELLED;
    if (interval_ms < 1000)
        interval_ms = 1000;
    repo->periodic = 1;
    repo->interval_ms = interval_ms;
    return uv_timer_start(&repo->timer, on_timer, 0, 0) == 0 ? 0 : TR_ERROR;
}

int tr_gitrepo_queue_work(tr_gitrepo *repo, tr_gitrepo_work_fn work, tr_gitrepo_done_fn done,
                          void *user_data)
{
    job *new_job;
    int rc;

    if (repo->closing)
        return TR_ECANCELLED;
    if (!work)
        return TR_EINVAL;
    if (!(new_job = tr_calloc(1, sizeof(*new_job))))
        return TR_ENOMEM;
    new_job->work = work;
    new_job->done = done;
    new_job->user_data = user_data;
    if ((rc = enqueue(repo, new_job)) < 0)
        tr_free(new_job);
    return rc;
}

void tr_gitrepo_get_status(const tr_gitrepo *repo, tr_gitrepo_status *out)
{
    *out = repo->status;
    out->syncing = repo->sync_job != NULL;
}

const tr_gitrepo_spec *tr_gitrepo_spec_get(const tr_gitrepo *repo)
{
    return &repo->spec;
}

void tr_gitrepo_close(tr_gitrepo *repo, void (*closed_cb)(void *user_data), void *user_data)
{
    tr_error cancelled;
    job *queued;

    if (!repo || repo->closing)
        return;
    repo->closing = 1;
    repo->cancel_flag = 1;
    repo->closed_cb = closed_cb;
    repo->closed_user_data = user_data;
    if (repo->running)
        (void)uv_cancel((uv_req_t *)&repo->work_req); /* fails once started: then we wait */
    tr_error_set(&cancelled, TR_ECANCELLED, "repo %s: closed", repo->spec.name);
    repo->dispatching = 1;
    while ((queued = repo->head)) {
        repo->head = queued->next;
        repo->queued--;
        if (queued->is_sync) {
            size_t i, count = repo->waiter_count;
            repo->waiter_count = 0;
            repo->sync_job = NULL;
            for (i = 0; i < count; i++)
                repo->waiters[i].cb(repo, TR_ECANCELLED, &cancelled, repo->waiters[i].user_data);
        } else if (queued->done) {
            queued->done(repo, TR_ECANCELLED, queued->user_data);
        }
        tr_free(queued);
    }
    repo->tail = NULL;
    repo->dispatching = 0;
    uv_close((uv_handle_t *)&repo->timer, on_timer_closed);
}
