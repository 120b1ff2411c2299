#include "tf_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "log.h"

#define MODULE "terraform"
#define DEFAULT_RESCAN_MS 30000
#define DEFAULT_SETTLE_MS 5000
#define DEFAULT_MAX_FILES 10000
#define DEFAULT_MAX_FILE_BYTES ((uint64_t)256 * 1024 * 1024)
#define MAX_WATCHES 64
#define TAIL_BYTES 65536
#define READ_CHUNK 65536
#define KICK_DELAY_MS 50

typedef struct tracked {
    char *path;
    char *workspace;
    int64_t size;
    int64_t mtime_ns;
    uint64_t ino;
    uint64_t changed_at_ms; /* loop time of the last change seen */
    int pending;            /* changed since last processed: waits to settle */
    int final;              /* its last line is a final message */
    int busy;               /* being read on the thread pool */
    int listed;             /* found by the current scan */
} tracked;

typedef struct watch {
    uv_fs_event_t handle;
    struct tr_tf_dir *owner;
    char *path;
} watch;

/* One file read on the thread pool; everything it needs is copied in. */
typedef struct job {
    uv_work_t work;
    struct tr_tf_dir *owner;
    char *path;
    tr_tf_log_options log_options;
    uint64_t max_bytes;
    int64_t bytes;
    char hash[65];
    tr_tf_result *res;
    int rc;              /* 0, TR_EIO (read), TR_ETOOBIG, or the parse error */
    tr_error err;
} job;

struct tr_tf_dir {
    tr_tf_dir_options opt;
    char **dirs;
    uv_timer_t rescan_timer, tick_timer, kick_timer;
    watch *watches[MAX_WATCHES];
    size_t watch_count;
    tracked *files;
    size_t file_count, file_alloc;
    int files_capped_logged;
    job *job;            /* the file in flight, or NULL */
    int open_handles;
    int stopping;
    void (*on_stopped)(void *userdata);
    void *stopped_userdata;
    tr_tf_dir_stats stats;
};

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int name_followed(const char *name)
{
    size_t len = strlen(name);

    if (name[0] == '.' || len == 0 || name[len - 1] == '~')
        return 0;
    if (len > 4 && (strcmp(name + len - 4, ".tmp") == 0 || strcmp(name + len - 4, ".swp") == 0))
        return 0;
    return !(len > 5 && strcmp(name + len - 5, ".part") == 0);
}

/* 1 when the last non-blank line of the file is a final Terraform message. */
static int ends_final(const char *path, int64_t size)
{
    char *buf;
    size_t want = size > TAIL_BYTES ? TAIL_BYTES : (size_t)size, end, start;
    ssize_t n;
    int fd, final = 0;

    if (want == 0 || (buf = tr_malloc(want)) == NULL)
        return 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    n = fd >= 0 ? pread(fd, buf, want, size - (int64_t)want) : -1;
    if (fd >= 0)
        close(fd);
    if (n > 0) {
        end = (size_t)n;
        while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == '\r' || buf[end - 1] == ' '))
            end--;
        start = end;
        while (start > 0 && buf[start - 1] != '\n')
            start--;
        if (end > start)
            final = tr_tf_line_is_final(buf + start, end - start);
    }
    tr_free(buf);
    return final;
}

static tracked *find_file(tr_tf_dir *d, const char *path)
{
    size_t i;

    for (i = 0; i < d->file_count; i++) {
        if (strcmp(d->files[i].path, path) == 0)
            return &d->files[i];
    }
    return NULL;
}

static void on_fs_event(uv_fs_event_t *handle, const char *filename, int events, int status);
static void on_handle_closed(uv_handle_t *handle);

static void add_watch(tr_tf_dir *d, const char *path)
{
    watch *w;
    size_t i;

    for (i = 0; i < d->watch_count; i++) {
        if (strcmp(d->watches[i]->path, path) == 0)
            return;
    }
    if (d->watch_count == MAX_WATCHES)
        return; /* the rescan still covers it */
    w = tr_calloc(1, sizeof(*w));
    if (w == NULL || (w->path = tr_strdup(path)) == NULL) {
        tr_free(w);
        return;
    }
    w->owner = d;
    if (uv_fs_event_init(d->opt.loop, &w->handle) != 0) {
        tr_free(w->path);
        tr_free(w);
        return;
    }
    w->handle.data = w;
    d->open_handles++;
    d->watches[d->watch_count++] = w;
    if (uv_fs_event_start(&w->handle, on_fs_event, path, 0) != 0)
        tr_log_warn(MODULE, "%s: no file events here, relying on the rescan", path);
}

static void track(tr_tf_dir *d, const char *path, const char *workspace, const struct stat *st)
{
    int64_t mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    uint64_t now = uv_now(d->opt.loop);
    tracked *t = find_file(d, path);

    if (t == NULL) {
        if (d->file_count == d->opt.max_files) {
            if (!d->files_capped_logged++)
                tr_log_warn(MODULE, "more than %zu files in log_dirs: new ones are ignored",
                            d->opt.max_files);
            return;
        }
        if (d->file_count == d->file_alloc) {
            size_t n = d->file_alloc ? d->file_alloc * 2 : 16;
            tracked *grown = tr_realloc(d->files, n * sizeof(*grown));
            if (grown == NULL)
                return;
            d->files = grown;
            d->file_alloc = n;
        }
        t = &d->files[d->file_count];
        memset(t, 0, sizeof(*t));
        t->path = tr_strdup(path);
        t->workspace = tr_strdup(workspace);
        if (t->path == NULL || t->workspace == NULL) {
            tr_free(t->path);
            tr_free(t->workspace);
            return;
        }
        d->file_count++;
        t->size = -1;
    }
    t->listed = 1;
    if (t->size == st->st_size && t->mtime_ns == mtime_ns && t->ino == (uint64_t)st->st_ino)
        return;
    t->size = st->st_size;
    t->mtime_ns = mtime_ns;
    t->ino = (uint64_t)st->st_ino;
    t->pending = 1;
    t->changed_at_ms = now;
    /* Unchanged for settle_time already (found at startup or by a late rescan). */
    if (wall_ms() - mtime_ns / 1000000 >= (int64_t)d->opt.settle_time_ms)
        t->changed_at_ms = now > d->opt.settle_time_ms ? now - d->opt.settle_time_ms : 0;
    t->final = ends_final(path, t->size);
}

static void scan_dir(tr_tf_dir *d, const char *path, int depth)
{
    const char *slash = strrchr(path, '/');
    const char *workspace = slash && slash[1] ? slash + 1 : path;
    tr_buf child = TR_BUF_INIT(8192);
    struct dirent *ent;
    struct stat st;
    DIR *dir = opendir(path);

    if (dir == NULL)
        return;
    if (depth == 0)
        add_watch(d, path);
    while ((ent = readdir(dir)) != NULL) {
        if (!name_followed(ent->d_name))
            continue;
        tr_buf_clear(&child);
        if (tr_buf_printf(&child, "%s/%s", path, ent->d_name) != 0 || stat(child.ptr, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth == 0) {
            add_watch(d, child.ptr);
            scan_dir(d, child.ptr, 1);
        } else if (S_ISREG(st.st_mode)) {
            track(d, child.ptr, workspace, &st);
        }
    }
    closedir(dir);
    tr_buf_dispose(&child);
}

static void start_next(tr_tf_dir *d);

void tr_tf_dir_scan(tr_tf_dir *d)
{
    size_t i, kept = 0;

    if (d->stopping)
        return;
    d->stats.scans++;
    for (i = 0; i < d->file_count; i++)
        d->files[i].listed = 0;
    for (i = 0; i < d->opt.dir_count; i++)
        scan_dir(d, d->dirs[i], 0);
    /* Forget deleted files (a later file with the same path is new content anyway). */
    for (i = 0; i < d->file_count; i++) {
        if (!d->files[i].listed && !d->files[i].busy) {
            tr_free(d->files[i].path);
            tr_free(d->files[i].workspace);
            continue;
        }
        d->files[kept++] = d->files[i];
    }
    d->file_count = kept;
    start_next(d);
}

/* ------------------------------------------------------------ reading a file */

static void work_read(uv_work_t *req)
{
    job *j = req->data;
    unsigned char digest[32];
    unsigned int digest_len = 0, i;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    tr_tf_log *log = NULL;
    char *chunk = tr_malloc(READ_CHUNK);
    FILE *f = fopen(j->path, "rb");
    size_t n;

    if (md == NULL || chunk == NULL || f == NULL ||
        EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        tr_tf_log_new(&log, &j->log_options) != 0) {
        j->rc = tr_error_set(&j->err, f == NULL ? TR_EIO : TR_ENOMEM, "%s: %s", j->path,
                             f == NULL ? strerror(errno) : "out of memory");
        goto cleanup;
    }
    while ((n = fread(chunk, 1, READ_CHUNK, f)) > 0) {
        j->bytes += (int64_t)n;
        if ((uint64_t)j->bytes > j->max_bytes) {
            j->rc = tr_error_set(&j->err, TR_ETOOBIG, "%s: larger than %llu bytes", j->path,
                                 (unsigned long long)j->max_bytes);
            goto cleanup;
        }
        if (EVP_DigestUpdate(md, chunk, n) != 1 || tr_tf_log_feed(log, chunk, n) != 0) {
            j->rc = tr_error_set(&j->err, TR_ENOMEM, "%s: out of memory", j->path);
            goto cleanup;
        }
    }
    if (ferror(f)) {
        j->rc = tr_error_set(&j->err, TR_EIO, "%s: read error", j->path);
        goto cleanup;
    }
    if (EVP_DigestFinal_ex(md, digest, &digest_len) != 1) {
        j->rc = tr_error_set(&j->err, TR_ERROR, "%s: SHA-256 failed", j->path);
        goto cleanup;
    }
    for (i = 0; i < digest_len && i < 32; i++)
        snprintf(j->hash + 2 * i, 3, "%02x", digest[i]);
    j->rc = tr_tf_log_finish(log, &j->res, &j->err);
    if (j->rc == TR_EPARSE)
        j->rc = TR_OK; /* a file that is not a log is still a file seen: res stays NULL */

cleanup:
    if (f)
        fclose(f);
    tr_free(chunk);
    tr_tf_log_free(log);
    EVP_MD_CTX_free(md);
}

static void maybe_finish_stop(tr_tf_dir *d);

static void record(tr_tf_dir *d, job *j, tracked *t)
{
    tr_tf_meta meta = {.workspace = t->workspace, .source_ref = j->path};
    int64_t now = wall_ms();
    tr_error err;
    int seen = 0;

    if (tr_store_tf_file_seen(d->opt.ingest->store, j->path, j->bytes, j->hash, &seen, &err) != 0)
        goto store_error;
    if (seen) {
        d->stats.already_seen++;
        return;
    }
    if (j->res == NULL) {
        d->stats.unparsable++;
        tr_log_warn(MODULE, "%s: %s", j->path, j->err.message);
    } else if (tr_tf_ingest_result(d->opt.ingest, j->res, &meta, now, NULL, &err) != 0) {
        goto store_error;
    } else {
        d->stats.processed++;
    }
    if (tr_store_tf_file_mark(d->opt.ingest->store, j->path, j->bytes, j->hash, now, &err) != 0)
        goto store_error;
    return;

store_error:
    d->stats.errors++;
    tr_log_error(MODULE, "%s: %s", j->path, err.message);
}

static void after_read(uv_work_t *req, int status)
{
    job *j = req->data;
    tr_tf_dir *d = j->owner;
    tracked *t = d->stopping ? NULL : find_file(d, j->path);

    d->job = NULL;
    if (t) {
        t->busy = 0;
        if (status != 0 || (j->rc != 0 && j->rc != TR_ETOOBIG)) {
            d->stats.errors++;
            tr_log_warn(MODULE, "%s", j->err.message);
            t->pending = 0; /* retried when the file changes again */
        } else if (j->rc == TR_ETOOBIG) {
            d->stats.errors++;
            tr_log_warn(MODULE, "%s (skipped)", j->err.message);
            t->pending = 0;
        } else if (j->bytes != t->size) {
            t->changed_at_ms = uv_now(d->opt.loop); /* grew while being read: settle again */
        } else {
            t->pending = 0;
            record(d, j, t);
        }
    }
    tr_tf_result_free(j->res);
    tr_free(j->path);
    tr_free(j);
    if (d->stopping)
        maybe_finish_stop(d);
    else
        start_next(d);
}

static void start_next(tr_tf_dir *d)
{
    uint64_t now = uv_now(d->opt.loop);
    size_t i;
    job *j;

    if (d->job || d->stopping)
        return;
    for (i = 0; i < d->file_count; i++) {
        tracked *t = &d->files[i];
        if (!t->pending || t->busy ||
            (!t->final && now - t->changed_at_ms < d->opt.settle_time_ms))
            continue;
        j = tr_calloc(1, sizeof(*j));
        if (j == NULL || (j->path = tr_strdup(t->path)) == NULL) {
            tr_free(j);
            return;
        }
        j->owner = d;
        j->log_options = d->opt.log_options;
        if (j->log_options.operation_hint == TR_TF_OP_UNKNOWN) {
            const char *base = strrchr(t->path, '/');
            j->log_options.operation_hint = tr_tf_operation_guess(base ? base + 1 : t->path);
        }
        j->max_bytes = d->opt.max_file_bytes;
        j->work.data = j;
        if (uv_queue_work(d->opt.loop, &j->work, work_read, after_read) != 0) {
            tr_free(j->path);
            tr_free(j);
            return;
        }
        t->busy = 1;
        d->job = j;
        return;
    }
}

/* ------------------------------------------------------------ timers and events */

static void on_rescan(uv_timer_t *timer)
{
    tr_tf_dir_scan(timer->data);
}

static void on_tick(uv_timer_t *timer)
{
    tr_tf_dir *d = timer->data;
    size_t i;

    /* A settling file may still be growing: look at it again before deciding. */
    for (i = 0; i < d->file_count; i++) {
        tracked *t = &d->files[i];
        struct stat st;
        if (t->pending && !t->busy && stat(t->path, &st) == 0)
            track(d, t->path, t->workspace, &st);
    }
    start_next(d);
}

static void on_fs_event(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    watch *w = handle->data;
    tr_tf_dir *d = w->owner;

    if (!d->stopping && !uv_is_active((uv_handle_t *)&d->kick_timer))
        (void)uv_timer_start(&d->kick_timer, on_rescan, KICK_DELAY_MS, 0);
}

int tr_tf_dir_start(tr_tf_dir **out, const tr_tf_dir_options *options, tr_error *err)
{
    tr_tf_dir *d;
    uint64_t tick;
    size_t i;

    *out = NULL;
    if (options->loop == NULL || options->ingest == NULL || options->ingest->store == NULL)
        return tr_error_set(err, TR_EINVAL, "terraform log_dirs: no loop or store");
    d = tr_calloc(1, sizeof(*d));
    if (d == NULL)
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    d->opt = *options;
    d->opt.dirs = NULL;
    if (d->opt.rescan_interval_ms == 0)
        d->opt.rescan_interval_ms = DEFAULT_RESCAN_MS;
    if (d->opt.settle_time_ms == 0)
        d->opt.settle_time_ms = DEFAULT_SETTLE_MS;
    if (d->opt.max_files == 0)
        d->opt.max_files = DEFAULT_MAX_FILES;
    if (d->opt.max_file_bytes == 0)
        d->opt.max_file_bytes = DEFAULT_MAX_FILE_BYTES;
    d->dirs = tr_calloc(options->dir_count + 1, sizeof(char *));
    for (i = 0; d->dirs && i < options->dir_count; i++) {
        size_t len = strlen(options->dirs[i]);
        while (len > 1 && options->dirs[i][len - 1] == '/')
            len--;
        if ((d->dirs[i] = tr_strndup(options->dirs[i], len)) == NULL)
            break;
        if (access(d->dirs[i], R_OK | X_OK) != 0)
            tr_log_warn(MODULE, "log_dirs: %s: %s (watched for when it appears)", d->dirs[i],
                        strerror(errno));
    }
    if (d->dirs == NULL || i < options->dir_count) {
        for (i = 0; d->dirs && i < options->dir_count; i++)
            tr_free(d->dirs[i]);
        tr_free(d->dirs);
        tr_free(d);
        return tr_error_set(err, TR_ENOMEM, "out of memory");
    }
    uv_timer_init(options->loop, &d->rescan_timer);
    uv_timer_init(options->loop, &d->tick_timer);
    uv_timer_init(options->loop, &d->kick_timer);
    d->rescan_timer.data = d->tick_timer.data = d->kick_timer.data = d;
    d->open_handles = 3;
    tick = d->opt.settle_time_ms / 4;
    tick = tick < 20 ? 20 : tick > 1000 ? 1000 : tick;
    (void)uv_timer_start(&d->rescan_timer, on_rescan, d->opt.rescan_interval_ms,
                         d->opt.rescan_interval_ms);
    (void)uv_timer_start(&d->tick_timer, on_tick, tick, tick);
    tr_tf_dir_scan(d);
    *out = d;
    return 0;
}

void tr_tf_dir_get_stats(const tr_tf_dir *d, tr_tf_dir_stats *out)
{
    *out = d->stats;
}

static void maybe_finish_stop(tr_tf_dir *d)
{
    size_t i;

    if (d->open_handles > 0 || d->job)
        return;
    for (i = 0; i < d->file_count; i++) {
        tr_free(d->files[i].path);
        tr_free(d->files[i].workspace);
    }
    tr_free(d->files);
    for (i = 0; i < d->opt.dir_count; i++)
        tr_free(d->dirs[i]);
    tr_free(d->dirs);
    if (d->on_stopped)
        d->on_stopped(d->stopped_userdata);
    tr_free(d);
}

static void on_handle_closed(uv_handle_t *handle)
{
    tr_tf_dir *d;

    if (handle->type == UV_FS_EVENT) {
        watch *w = handle->data;
        d = w->owner;
        tr_free(w->path);
        tr_free(w);
    } else {
        d = handle->data;
    }
    d->open_handles--;
    maybe_finish_stop(d);
}

void tr_tf_dir_stop(tr_tf_dir *d, void (*on_stopped)(void *userdata), void *userdata)
{
    size_t i;

    if (d == NULL || d->stopping)
        return;
    d->stopping = 1;
    d->on_stopped = on_stopped;
    d->stopped_userdata = userdata;
    uv_close((uv_handle_t *)&d->rescan_timer, on_handle_closed);
    uv_close((uv_handle_t *)&d->tick_timer, on_handle_closed);
    uv_close((uv_handle_t *)&d->kick_timer, on_handle_closed);
    for (i = 0; i < d->watch_count; i++)
        uv_close((uv_handle_t *)&d->watches[i]->handle, on_handle_closed);
    d->watch_count = 0;
}
