/*
 * patch_check.c - the post-apply checks of patch.h: YAML still parses and defines the same
 * objects; Terraform files stay fmt-clean and the module validates. Each check becomes one
 * tr_patch_check_item whose text goes into the PR body and onto the incident.
 *
 * Terraform runs as a child process with a deadline (SIGKILL when it passes), stdin fed from
 * memory and output captured up to a cap, so a hung or chatty terraform never blocks the
 * thread-pool worker for long. init runs with -get=false and -plugin-dir pointing at an empty
 * directory: it never downloads anything, because the configuration comes from a model and a
 * provider is an executable that validate would run.
 */
#include "patch_internal.h"

#include "alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#define MAX_OUTPUT_BYTES 16384
#define MAX_CHECK_TEXT 2048
#define MAX_YAML_EVENTS 1000000
#define MAX_YAML_DEPTH 128
#define MAX_YAML_OBJECTS 1000

extern char **environ;

int tr_patch_add_check(tr_patch_result *res, const char *name, tr_patch_check_status status,
                       const char *fmt, ...)
{
    tr_buf text = TR_BUF_INIT(MAX_CHECK_TEXT);
    tr_patch_check_item *bigger;
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = tr_buf_vprintf(&text, fmt, ap);
    va_end(ap);
    if (rc == TR_ETOOBIG) /* cut, visibly: a long terraform diagnostic is still worth a line */
        rc = TR_OK;
    bigger = rc == TR_OK ? tr_realloc(res->checks, (res->check_count + 1) * sizeof(*bigger))
                         : NULL;
    if (bigger == NULL) {
        tr_buf_dispose(&text);
        return TR_ENOMEM;
    }
    res->checks = bigger;
    bigger[res->check_count].name = tr_strdup(name);
    bigger[res->check_count].status = status;
    bigger[res->check_count].text = tr_buf_detach(&text);
    if (bigger[res->check_count].name == NULL || bigger[res->check_count].text == NULL) {
        tr_free(bigger[res->check_count].name);
        tr_free(bigger[res->check_count].text);
        return TR_ENOMEM;
    }
    res->check_count++;
    return TR_OK;
}

/* ------------------------------------------------------------------ YAML */

enum { KEY_OTHER, KEY_KIND, KEY_METADATA, KEY_NAME };

typedef struct ynode {
    int is_map;
    int expect_key;
    int key;      /* the last key read in this mapping */
    int via_key;  /* the parent's key this container is the value of */
} ynode;

typedef struct yobjects {
    char **ids;   /* "kind/name" per document that has either */
    size_t count;
    size_t docs;
    char error[256];
} yobjects;

static void yobjects_dispose(yobjects *y)
{
    size_t i;

    for (i = 0; i < y->count; i++)
        tr_free(y->ids[i]);
    tr_free(y->ids);
    memset(y, 0, sizeof(*y));
}

static int classify_key(const char *s)
{
    return strcmp(s, "kind") == 0 ? KEY_KIND : strcmp(s, "metadata") == 0 ? KEY_METADATA
                                                 : strcmp(s, "name") == 0 ? KEY_NAME : KEY_OTHER;
}

static int push_id(yobjects *y, const char *kind, const char *name)
{
    tr_buf id = TR_BUF_INIT(0);
    char **bigger;

    if (kind == NULL && name == NULL)
        return TR_OK;
    if (y->count >= MAX_YAML_OBJECTS)
        return TR_ETOOBIG;
    bigger = tr_realloc(y->ids, (y->count + 1) * sizeof(char *));
    if (bigger == NULL)
        return TR_ENOMEM;
    y->ids = bigger;
    if (tr_buf_printf(&id, "%s/%s", kind ? kind : "?", name ? name : "?") != TR_OK) {
        tr_buf_dispose(&id);
        return TR_ENOMEM;
    }
    y->ids[y->count++] = tr_buf_detach(&id);
    return TR_OK;
}

/* A scalar in value position: the document's kind or its metadata.name. */
static int take_value(ynode *stack, size_t depth, const char *value, char **kind, char **name)
{
    char **slot = NULL;

    if (depth == 1 && stack[0].key == KEY_KIND)
        slot = kind;
    else if (depth == 2 && stack[0].is_map && stack[1].via_key == KEY_METADATA &&
             stack[1].key == KEY_NAME)
        slot = name;
    if (slot == NULL || *slot != NULL)
        return TR_OK;
    *slot = tr_strdup(value);
    return *slot ? TR_OK : TR_ENOMEM;
}

/* 0 when every document parses (ids collected), TR_EPARSE with y->error otherwise. */
static int yaml_objects(yobjects *y, const char *data, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    ynode stack[MAX_YAML_DEPTH];
    size_t depth = 0, events = 0;
    char *kind = NULL, *name = NULL;
    int rc = TR_OK, done = 0;

    memset(y, 0, sizeof(*y));
    if (!yaml_parser_initialize(&parser))
        return TR_ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    while (!done && rc == TR_OK) {
        ynode *top = depth ? &stack[depth - 1] : NULL;
        int is_key = top && top->is_map && top->expect_key, via = top ? top->key : KEY_OTHER;

        if (!yaml_parser_parse(&parser, &ev)) {
            snprintf(y->error, sizeof(y->error), "line %zu column %zu: %s",
                     parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                     parser.problem ? parser.problem : "parse error");
            rc = TR_EPARSE;
            break;
        }
        if (++events > MAX_YAML_EVENTS) {
            snprintf(y->error, sizeof(y->error), "more than %d YAML events", MAX_YAML_EVENTS);
            rc = TR_EPARSE;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_END_EVENT:
            y->docs++;
            rc = push_id(y, kind, name);
            tr_free(kind);
            tr_free(name);
            kind = name = NULL;
            break;
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (top != NULL && top->is_map) {
                top->expect_key = !is_key;
                if (is_key)
                    top->key = ev.type == YAML_SCALAR_EVENT
                                   ? classify_key((const char *)ev.data.scalar.value)
                                   : KEY_OTHER;
            }
            if (ev.type == YAML_SCALAR_EVENT && !is_key)
                rc = take_value(stack, depth, (const char *)ev.data.scalar.value, &kind, &name);
            if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT) {
                if (depth == MAX_YAML_DEPTH) {
                    snprintf(y->error, sizeof(y->error), "nested deeper than %d",
                             MAX_YAML_DEPTH);
                    rc = TR_EPARSE;
                    break;
                }
                stack[depth].is_map = ev.type == YAML_MAPPING_START_EVENT;
                stack[depth].expect_key = 1;
                stack[depth].key = KEY_OTHER;
                stack[depth].via_key = is_key ? KEY_OTHER : via;
                depth++;
            }
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    tr_free(kind);
    tr_free(name);
    yaml_parser_delete(&parser);
    if (rc != TR_OK) {
        char keep[sizeof(y->error)];

        memcpy(keep, y->error, sizeof(keep));
        yobjects_dispose(y);
        memcpy(y->error, keep, sizeof(keep));
    }
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int join_ids(tr_buf *out, const yobjects *y)
{
    size_t i;
    int rc = TR_OK;

    for (i = 0; i < y->count && rc == TR_OK; i++)
        rc = tr_buf_printf(out, "%s%s", i ? ", " : "", y->ids[i]);
    return rc == TR_ETOOBIG ? TR_OK : rc;
}

int tr_patch_check_yaml(tr_patch_result *res, const char *path, const char *old_data,
                        size_t old_len, const char *new_data, size_t new_len)
{
    yobjects before, after;
    tr_buf a = TR_BUF_INIT(512), b = TR_BUF_INIT(512);
    int old_rc = TR_EPARSE, new_rc, rc, same;
    size_t i;

    memset(&before, 0, sizeof(before));
    if (old_data != NULL && (old_rc = yaml_objects(&before, old_data, old_len)) == TR_ENOMEM)
        return TR_ENOMEM;
    if ((new_rc = yaml_objects(&after, new_data, new_len)) == TR_ENOMEM) {
        yobjects_dispose(&before);
        return TR_ENOMEM;
    }
    if (new_rc != TR_OK) {
        rc = old_data != NULL && old_rc != TR_OK
                 ? tr_patch_add_check(res, "yaml", TR_PATCH_CHECK_SKIPPED, "%s: not plain YAML "
                                      "before the patch either (a template?): not checked", path)
                 : tr_patch_add_check(res, "yaml", TR_PATCH_CHECK_FAILED, "%s: no longer parses "
                                      "as YAML after the patch: %s", path, after.error);
        goto cleanup;
    }
    if (after.count > 1)
        qsort(after.ids, after.count, sizeof(char *), cmp_str);
    if (join_ids(&b, &after) != TR_OK) {
        rc = TR_ENOMEM;
        goto cleanup;
    }
    if (old_data == NULL || old_rc != TR_OK) {
        rc = tr_patch_add_check(res, "yaml", TR_PATCH_CHECK_PASSED, "%s: %zu document(s) parse "
                                "(%s) [%s]", path, after.docs, old_data ? "did not parse before"
                                : "new file", tr_buf_cstr(&b));
        goto cleanup;
    }
    if (before.count > 1)
        qsort(before.ids, before.count, sizeof(char *), cmp_str);
    same = before.count == after.count;
    for (i = 0; same && i < before.count; i++)
        same = strcmp(before.ids[i], after.ids[i]) == 0;
    if (join_ids(&a, &before) != TR_OK) {
        rc = TR_ENOMEM;
        goto cleanup;
    }
    if (same)
        rc = tr_patch_add_check(res, "yaml", TR_PATCH_CHECK_PASSED, "%s: %zu document(s) parse; "
                                "kinds and names unchanged [%s]", path, after.docs,
                                tr_buf_cstr(&b));
    else
        rc = tr_patch_add_check(res, "yaml", TR_PATCH_CHECK_FAILED, "%s: the patch changes "
                                "which objects the file defines (kind/name before [%s], after "
                                "[%s]); a fix must not rename, retype, add or remove objects",
                                path, tr_buf_cstr(&a), tr_buf_cstr(&b));
cleanup:
    tr_buf_dispose(&a);
    tr_buf_dispose(&b);
    yobjects_dispose(&before);
    yobjects_dispose(&after);
    return rc;
}

/* ------------------------------------------------------------------ terraform */

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* environ plus the variables that keep terraform quiet and offline (no checkpoint call). */
static char **child_env(void)
{
    static const char *const extra[] = {"TF_IN_AUTOMATION=1", "TF_INPUT=0",
                                        "CHECKPOINT_DISABLE=1"};
    size_t n = 0, i;
    char **env;

    while (environ && environ[n])
        n++;
    env = tr_calloc(n + 4, sizeof(char *));
    if (env == NULL)
        return NULL;
    for (i = 0; i < n; i++)
        env[i] = environ[i];
    for (i = 0; i < 3; i++)
        env[n + i] = (char *)extra[i];
    return env;
}

/* Feed what stdin still needs and read output until EOF or the deadline. */
static int pump(int in_fd, int out_fd, const char *in, size_t in_len, tr_buf *output,
                long deadline)
{
    size_t written = 0;
    char chunk[4096];

    if (in_len == 0 && in_fd >= 0) {
        close(in_fd);
        in_fd = -1;
    }
    for (;;) {
        struct pollfd fds[2] = {{out_fd, POLLIN, 0}, {in_fd, POLLOUT, 0}};
        long left = deadline - now_ms();
        int n;

        if (left <= 0)
            return TR_ETIMEOUT;
        n = poll(fds, in_fd >= 0 ? 2 : 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return TR_EIO;
        if (in_fd >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(in_fd, in + written, in_len - written);

            if (w > 0)
                written += (size_t)w;
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                written = in_len; /* the child stopped reading: its exit status will say */
            if (written == in_len) {
                close(in_fd);
                in_fd = -1;
            }
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(out_fd, chunk, sizeof(chunk));

            if (r == 0)
                break;
            if (r > 0)
                (void)tr_buf_put(output, chunk, (size_t)r); /* past the cap: dropped */
            else if (errno != EAGAIN && errno != EINTR)
                break;
        }
    }
    if (in_fd >= 0)
        close(in_fd);
    return TR_OK;
}

/*
 * Run argv with in on stdin, stdout+stderr captured into output. *status is the exit status.
 * TR_ENOTFOUND when the binary is not there, TR_ETIMEOUT (child killed), TR_EIO.
 */
static int run_cmd(char *const argv[], const char *in, size_t in_len, int timeout_ms,
                   tr_buf *output, int *status)
{
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, rc = TR_EIO, spawned, wstatus = 0;
    posix_spawn_file_actions_t fa;
    char **env = child_env();
    long deadline = now_ms() + timeout_ms;
    pid_t pid = -1;

    *status = -1;
    if (env == NULL)
        return TR_ENOMEM;
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0)
        goto cleanup;
    (void)fcntl(in_pipe[1], F_SETFL, O_NONBLOCK); /* a full pipe must not block the pump */
    if (posix_spawn_file_actions_init(&fa) != 0)
        goto cleanup;
    (void)posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
    (void)posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    (void)posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 2);
    spawned = posix_spawnp(&pid, argv[0], &fa, NULL, argv, env);
    (void)posix_spawn_file_actions_destroy(&fa);
    if (spawned != 0) {
        rc = spawned == ENOENT ? TR_ENOTFOUND : TR_EIO;
        goto cleanup;
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    in_pipe[0] = out_pipe[1] = -1;
    rc = pump(in_pipe[1], out_pipe[0], in, in_len, output, deadline);
    in_pipe[1] = -1; /* pump closed it */
    while (rc == TR_OK && waitpid(pid, &wstatus, WNOHANG) == 0) {
        struct timespec ten_ms = {0, 10000000};

        if (now_ms() >= deadline)
            rc = TR_ETIMEOUT;
        else
            (void)nanosleep(&ten_ms, NULL);
    }
    if (rc != TR_OK) {
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, &wstatus, 0);
    } else {
        *status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    }
cleanup:
    if (in_pipe[0] >= 0)
        close(in_pipe[0]);
    if (in_pipe[1] >= 0)
        close(in_pipe[1]);
    if (out_pipe[0] >= 0)
        close(out_pipe[0]);
    if (out_pipe[1] >= 0)
        close(out_pipe[1]);
    tr_free(env);
    return rc;
}

/* terraform's output minus the CLI-configuration warning box it prints on some hosts. */
static const char *tf_output(const tr_buf *out)
{
    static const char cli_problems[] = "There are some problems with the CLI configuration";
    const char *s = tr_buf_cstr(out);
    const char *box_end;

    if (strncmp(s, cli_problems, sizeof(cli_problems) - 1) == 0 &&
        (box_end = strstr(s, "\xe2\x95\xb5\n")) != NULL) /* "╵" closes the box */
        s = box_end + 4;
    while (*s == '\n')
        s++;
    return s;
}

static const char *tf_bin(const tr_patch_options *opts)
{
    return opts->terraform_bin && opts->terraform_bin[0] ? opts->terraform_bin : "terraform";
}

static int tf_timeout(const tr_patch_options *opts)
{
    return opts->terraform_timeout_ms > 0 ? opts->terraform_timeout_ms
                                          : TR_PATCH_DEFAULT_TERRAFORM_TIMEOUT_MS;
}

static int fmt_run(const tr_patch_options *opts, const char *data, size_t len, tr_buf *out,
                   int *status)
{
    char *argv[] = {(char *)tf_bin(opts), "fmt", "-check", "-diff", "-no-color", "-", NULL};

    return run_cmd(argv, data, len, tf_timeout(opts), out, status);
}

int tr_patch_check_tf_fmt(tr_patch_result *res, const tr_patch_options *opts, const char *path,
                          const char *old_data, size_t old_len, const char *new_data,
                          size_t new_len)
{
    tr_buf out = TR_BUF_INIT(MAX_OUTPUT_BYTES), old_out = TR_BUF_INIT(MAX_OUTPUT_BYTES);
    int status = -1, old_status = -1, rc;

    rc = fmt_run(opts, new_data, new_len, &out, &status);
    if (rc == TR_ENOTFOUND)
        rc = tr_patch_add_check(res, "terraform fmt", TR_PATCH_CHECK_SKIPPED, "%s: terraform "
                                "not found: fmt/validate skipped", path);
    else if (rc != TR_OK)
        rc = tr_patch_add_check(res, "terraform fmt", TR_PATCH_CHECK_SKIPPED, "%s: fmt skipped: "
                                "%s", path, rc == TR_ETIMEOUT ? "terraform timed out"
                                : "terraform could not be run");
    else if (status == 0)
        rc = tr_patch_add_check(res, "terraform fmt", TR_PATCH_CHECK_PASSED,
                                "%s: terraform fmt -check passed", path);
    else if (old_data != NULL && fmt_run(opts, old_data, old_len, &old_out, &old_status) ==
             TR_OK && old_status != 0)
        rc = tr_patch_add_check(res, "terraform fmt", TR_PATCH_CHECK_SKIPPED, "%s: was not "
                                "fmt-clean before the patch either: not held against it", path);
    else
        rc = tr_patch_add_check(res, "terraform fmt", TR_PATCH_CHECK_FAILED, "%s: terraform fmt "
                                "-check %s:\n%s", path, status == 3 ? "wants changes"
                                : "failed (syntax error?)", tf_output(&out));
    tr_buf_dispose(&out);
    tr_buf_dispose(&old_out);
    return rc;
}

int tr_patch_check_tf_validate(tr_patch_result *res, const tr_patch_options *opts,
                               const char *label, const char *dir)
{
    tr_buf chdir_arg = TR_BUF_INIT(0), plugin_arg = TR_BUF_INIT(0);
    tr_buf out = TR_BUF_INIT(MAX_OUTPUT_BYTES);
    int status = -1, rc;

    if (tr_buf_printf(&chdir_arg, "-chdir=%s", dir) != TR_OK ||
        tr_buf_printf(&plugin_arg, "-plugin-dir=%s/.triaged-no-plugins", dir) != TR_OK) {
        rc = TR_ENOMEM;
        goto cleanup;
    }
    {
        char *init[] = {(char *)tf_bin(opts), chdir_arg.ptr, "init", "-backend=false",
                        "-input=false", "-no-color", "-get=false", plugin_arg.ptr, NULL};
        char *validate[] = {(char *)tf_bin(opts), chdir_arg.ptr, "validate", "-no-color", NULL};

        rc = run_cmd(init, NULL, 0, tf_timeout(opts), &out, &status);
        if (rc == TR_ENOTFOUND) {
            rc = tr_patch_add_check(res, "terraform validate", TR_PATCH_CHECK_SKIPPED, "%s: "
                                    "terraform not found: fmt/validate skipped", label);
            goto cleanup;
        }
        if (rc != TR_OK || status != 0) {
            const char *why = tf_output(&out), *e = strstr(why, "Error: ");

            rc = tr_patch_add_check(res, "terraform validate", TR_PATCH_CHECK_SKIPPED, "%s: "
                                    "validate skipped: offline `terraform init -backend=false` "
                                    "%s%.*s", label, rc == TR_ETIMEOUT ? "timed out" :
                                    "failed (providers or modules not available locally): ",
                                    e ? (int)strcspn(e, "\n") : 0, e ? e : "");
            goto cleanup;
        }
        tr_buf_clear(&out);
        rc = run_cmd(validate, NULL, 0, tf_timeout(opts), &out, &status);
    }
    if (rc != TR_OK)
        rc = tr_patch_add_check(res, "terraform validate", TR_PATCH_CHECK_SKIPPED, "%s: validate "
                                "skipped: terraform %s", label, rc == TR_ETIMEOUT ?
                                "timed out" : "could not be run");
    else
        rc = tr_patch_add_check(res, "terraform validate", status == 0 ? TR_PATCH_CHECK_PASSED
                                : TR_PATCH_CHECK_FAILED, "%s: terraform validate %s%s", label,
                                status == 0 ? "passed" : "failed:\n",
                                status == 0 ? "" : tf_output(&out));
cleanup:
    tr_buf_dispose(&chdir_arg);
    tr_buf_dispose(&plugin_arg);
    tr_buf_dispose(&out);
    return rc;
}

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)remove(path); /* best effort: a leftover temp file is not worth failing a check */
    return 0;
}

void tr_patch_remove_tree(const char *dir)
{
    (void)nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
