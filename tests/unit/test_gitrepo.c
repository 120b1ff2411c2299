/*
 * test_gitrepo.c - the GitOps repository against real git servers: a smart
 * HTTP server (lighttpd + git-http-backend with basic auth, from
 * tests/tools/git-http-server), file:// URLs and plain paths. Upstream
 * history is made with the real git CLI.
 */
#include "testutil.h"

#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pwd.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "gitrepo.h"
#include "health.h"
#include "repos.h"

#define USER "triaged"
#define PASSWORD "s3cret-Tok3n"

static char base_dir[256];   /* everything lives under here */
static char server_dir[300]; /* the http server's DIR; repos in server_dir/repos */
static int server_port;
static int have_server;
static char ssh_dir[300]; /* the ssh server's DIR (keys, repos) */
static int ssh_port;

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

/* The first line printed by a command (trailing newline removed). */
static void sh_out(char *out, size_t cap, const char *cmd)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    out[0] = '\0';
    if (!fgets(out, (int)cap, p))
        out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    assert_int_equal(pclose(p), 0);
}

#define GIT "git -c user.name=Dev -c user.email=dev@example.com -c init.defaultBranch=main "

/* A bare upstream NAME.git under server_dir/repos and a seed clone of it. */
static void make_upstream(const char *name)
{
    sh("rm -rf %s/repos/%s.git %s/seed-%s && " GIT "init -q --bare %s/repos/%s.git && " GIT
       "init -q %s/seed-%s", server_dir, name, base_dir, name, server_dir, name, base_dir, name);
    sh("cd %s/seed-%s && git remote add origin %s/repos/%s.git && mkdir -p apps && "
       "printf 'replicas: 1\\n' > apps/deploy.yaml && printf 'hello\\n' > README && "
       "git add -A && " GIT "commit -qm 'initial' && git push -q origin HEAD:refs/heads/main",
       base_dir, name, server_dir, name);
}

static void upstream_commit(const char *name, const char *path, const char *content,
                            const char *subject)
{
    sh("cd %s/seed-%s && printf '%s' > %s && git add -A && " GIT "commit -qm '%s' && "
       "git push -q origin HEAD:refs/heads/main",
       base_dir, name, content, path, subject);
}

static void upstream_head(const char *name, char out[TR_GITREPO_OID_HEX])
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "git --git-dir=%s/repos/%s.git rev-parse main", server_dir, name);
    sh_out(out, TR_GITREPO_OID_HEX, cmd);
}

static void http_url(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "http://127.0.0.1:%d/git/%s.git", server_port, name);
}

static tr_gitrepo_spec http_spec(const char *name, char *url, size_t url_cap, char *dir,
                                 size_t dir_cap)
{
    tr_gitrepo_spec spec = { 0 };
    http_url(url, url_cap, name);
    snprintf(dir, dir_cap, "%s/state/git/%s", base_dir, name);
    spec.name = name;
    spec.url = url;
    spec.branch = "main";
    spec.username = USER;
    spec.token = PASSWORD;
    spec.work_dir = dir;
    return spec;
}

/* Clone server_dir/repos/NAME.git (url_prefix "" or "file://") into state/git/NAME. */
static tr_gitrepo_spec local_clone(const char *name, const char *url_prefix, char *url,
                                   size_t url_cap, char *dir, size_t dir_cap)
{
    tr_gitrepo_spec spec = { 0 };
    tr_error err = { 0 };

    snprintf(url, url_cap, "%s%s/repos/%s.git", url_prefix, server_dir, name);
    snprintf(dir, dir_cap, "%s/state/git/%s", base_dir, name);
    spec.name = name;
    spec.url = url;
    spec.work_dir = dir;
    if (tr_gitrepo_sync_blocking(&spec, NULL, NULL, &err) != 0)
        fail_msg("clone of %s: %s", url, err.message);
    return spec;
}

static void require_server(void)
{
    if (!have_server) {
        print_message("lighttpd is not installed: skipping the HTTP git server test\n");
        skip();
    }
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long size;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    rewind(f);
    data = malloc((size_t)size + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
    data[size] = '\0';
    fclose(f);
    *len = (size_t)size;
    return data;
}

static void assert_work_file(const char *dir, const char *rel, const char *expected)
{
    char path[700];
    size_t len;
    char *text;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    text = slurp(path, &len);
    assert_string_equal(text, expected);
    free(text);
}

/* ------------------------------------------------------------ sync */

static void test_clone_over_http_with_token_checks_out_branch(void **state)
{
    char url[256], dir[512], head[TR_GITREPO_OID_HEX], want[TR_GITREPO_OID_HEX];
    tr_gitrepo_spec spec = http_spec("clone", url, sizeof(url), dir, sizeof(dir));
    tr_error err = { 0 };

    require_server();
    make_upstream("clone");
    assert_int_equal(tr_gitrepo_sync_blocking(&spec, NULL, head, &err), 0);
    upstream_head("clone", want);
    assert_string_equal(head, want);
    assert_work_file(dir, "apps/deploy.yaml", "replicas: 1\n");
    /* A second sync with nothing new fetches and stays put. */
    assert_int_equal(tr_gitrepo_sync_blocking(&spec, NULL, head, &err), 0);
    assert_string_equal(head, want);
}

static void test_wrong_password_fails_fast_without_the_token_in_the_message(void **state)
{
    char url[256], dir[512], want[300];
    tr_gitrepo_spec spec = http_spec("authfail", url, sizeof(url), dir, sizeof(dir));
    tr_error err = { 0 };
    time_t started;

    require_server();
    make_upstream("authfail");
    spec.token = "Wr0ng-t0ken-value";
    started = time(NULL);
    assert_int_equal(tr_gitrepo_sync_blocking(&spec, NULL, NULL, &err), TR_EAUTH);
    assert_true(time(NULL) - started < 10);
    snprintf(want, sizeof(want), "authentication failed for %s as " USER, url);
    assert_non_null(strstr(err.message, want));
    assert_null(strstr(err.message, "Wr0ng-t0ken-value"));
    assert_int_equal(access(dir, F_OK), -1); /* no half clone left behind */
}

static void test_bad_url_or_branch_names_repo_and_url_without_credentials(void **state)
{
    char dir[512], url[256];
    tr_gitrepo_spec spec = { 0 };
    tr_error err = { 0 };
    int rc;

    snprintf(dir, sizeof(dir), "%s/state/git/bad", base_dir);
    spec.name = "badrepo";
    spec.url = "http://someone:Hidden-Token-9@127.0.0.1:1/git/none.git";
    spec.token = "Hidden-Token-9";
    spec.work_dir = dir;
    assert_int_equal(tr_gitrepo_sync_blocking(&spec, NULL, NULL, &err), TR_EUNAVAILABLE);
    assert_non_null(strstr(err.message, "repo badrepo"));
    assert_non_null(strstr(err.message, "http://127.0.0.1:1/git/none.git"));
    assert_null(strstr(err.message, "Hidden-Token-9"));

    spec.url = "/nonexistent/triaged/repo";
    assert_true(tr_gitrepo_sync_blocking(&spec, NULL, NULL, &err) < 0);
    assert_non_null(strstr(err.message, "/nonexistent/triaged/repo"));

    require_server();
    make_upstream("nobranch");
    spec = http_spec("nobranch", url, sizeof(url), dir, sizeof(dir));
    spec.branch = "does-not-exist";
    rc = tr_gitrepo_sync_blocking(&spec, NULL, NULL, &err);
    assert_int_equal(rc, TR_ENOTFOUND);
    assert_non_null(strstr(err.message, "branch 'does-not-exist' not found"));
}

static void test_file_url_and_local_path_clone(void **state)
{
    char url[512], dir[512], head[TR_GITREPO_OID_HEX], want[TR_GITREPO_OID_HEX];
    tr_gitrepo_spec spec = { 0 };
    tr_error err = { 0 };

    make_upstream("local");
    upstream_head("local", want);
    snprintf(url, sizeof(url), "file://%s/repos/local.git", server_dir);
    snprintf(dir, sizeof(dir), "%s/state/git/by-file-url", base_dir);
    spec.name = "local";
    spec.url = url;
    spec.work_dir = dir;
    assert_int_equal(tr_gitrepo_sync_blocking(&spec, NULL, head, &err), 0);
    assert_string_equal(head, want);

    snprintf(url, sizeof(url), "%s/repos/local.git", server_dir);
    snprintf(dir, sizeof(dir), "%s/state/git/by-path", base_dir);
    assert_int_equal(tr_gitrepo_sync_blocking(&spec, NULL, head, &err), 0);
    assert_string_equal(head, want);
}

static void test_force_pushed_upstream_moves_the_work_tree(void **state)
{
    char url[256], dir[512], head[TR_GITREPO_OID_HEX], want[TR_GITREPO_OID_HEX];
    tr_gitrepo_spec spec = http_spec("force", url, sizeof(url), dir, sizeof(dir));
    tr_error err = { 0 };

    require_server();
    make_upstream("force");
    upstream_commit("force", "apps/deploy.yaml", "replicas: 2\\n", "scale to 2");
    assert_int_equal(tr_gitrepo_sync_blocking(&spec, NULL, head, &err), 0);
    /* Rewrite upstream history: drop "scale to 2", add another commit, force-push. */
    sh("cd %s/seed-force && git reset -q --hard HEAD~1 && printf 'replicas: 5\\n' > "
       "apps/deploy.yaml && printf 'x\\n' > NEW && git add -A && " GIT "commit -qm rewrite && "
       "git push -q -f origin HEAD:refs/heads/main", base_dir);
    upstream_head("force", want);
    assert_int_equal(tr_gitrepo_sync_blocking(&spec, NULL, head, &err), 0);
    assert_string_equal(head, want);
    assert_work_file(dir, "apps/deploy.yaml", "replicas: 5\n");
    assert_work_file(dir, "NEW", "x\n");
}

static void test_corrupt_clone_is_cloned_again(void **state)
{
    char url[256], dir[512], head[TR_GITREPO_OID_HEX], want[TR_GITREPO_OID_HEX];
    tr_gitrepo_spec spec = http_spec("corrupt", url, sizeof(url), dir, sizeof(dir));
    tr_error err = { 0 };

    require_server();
    make_upstream("corrupt");
    upstream_head("corrupt", want);
    assert_int_equal(tr_gitrepo_sync_blocking(&spec, NULL, head, &err), 0);

    sh("rm -f %s/.git/HEAD", dir);
    assert_int_equal(tr_gitrepo_sync_blocking(&spec, NULL, head, &err), 0);
    assert_string_equal(head, want);
    sh("test -f %s/.git/HEAD", dir);

    /* Objects gone (the clone's pack and any loose object). */
    sh("rm -rf %s/.git/objects/pack/* %s/.git/objects/[0-9a-f][0-9a-f]", dir, dir);
    assert_int_equal(tr_gitrepo_sync_blocking(&spec, NULL, head, &err), 0);
    assert_string_equal(head, want);
    sh("git -C %s fsck >/dev/null 2>&1", dir);
}

/*
 * The ssh scenario runs in a child process that ends with _exit: Debian's
 * libgit2 1.5 leaks its libssh2 known-hosts state (about 300 bytes) on every
 * ssh connection, which LeakSanitizer would report against this whole
 * program. The child reports the first failed check by line number.
 */
#define SSH_CHECK(cond)                                                        \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "ssh check failed at line %d: %s (%s)\n", __LINE__, \
                    #cond, err.message);                                       \
            return __LINE__;                                                   \
        }                                                                      \
    } while (0)

static int ssh_scenario(const char *url, const char *want)
{
    char dir[512], key[400], head[TR_GITREPO_OID_HEX];
    tr_gitrepo_spec spec = { 0 };
    tr_error err = { 0 };
    time_t started;

    snprintf(dir, sizeof(dir), "%s/state/git/ssh", base_dir);
    snprintf(key, sizeof(key), "%s/client_key", ssh_dir);
    spec.name = "ssh";
    spec.url = url;
    spec.ssh_key_file = key;
    spec.work_dir = dir;
    SSH_CHECK(tr_gitrepo_sync_blocking(&spec, NULL, head, &err) == 0); /* clone */
    SSH_CHECK(strcmp(head, want) == 0);
    SSH_CHECK(tr_gitrepo_sync_blocking(&spec, NULL, head, &err) == 0); /* fetch */
    SSH_CHECK(strcmp(head, want) == 0);

    snprintf(key, sizeof(key), "%s/other_key", ssh_dir);
    snprintf(dir, sizeof(dir), "%s/state/git/ssh-refused", base_dir);
    started = time(NULL);
    SSH_CHECK(tr_gitrepo_sync_blocking(&spec, NULL, head, &err) == TR_EAUTH);
    SSH_CHECK(time(NULL) - started < 10);
    SSH_CHECK(strstr(err.message, "authentication failed for ssh://") != NULL);
    return 0;
}

static void test_ssh_clone_with_key_and_refused_key_is_auth_error(void **state)
{
    char url[700], want[TR_GITREPO_OID_HEX], cmd[700];
    struct passwd *me = getpwuid(getuid());
    int child_status = -1;
    pid_t child;

    if (!ssh_port) {
        print_message("openssh-server is not installed: skipping the ssh git server test\n");
        skip();
    }
    assert_non_null(me);
    sh("rm -rf %s/repos/ssh.git && git clone -q --bare %s/repos/local.git %s/repos/ssh.git",
       ssh_dir, server_dir, ssh_dir);
    snprintf(cmd, sizeof(cmd), "git --git-dir=%s/repos/ssh.git rev-parse main", ssh_dir);
    sh_out(want, sizeof(want), cmd);
    snprintf(url, sizeof(url), "ssh://%s@127.0.0.1:%d%s/repos/ssh.git", me->pw_name, ssh_port,
             ssh_dir);
    fflush(NULL);
    child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(ssh_scenario(url, want) == 0 ? 0 : 1);
    assert_int_equal(waitpid(child, &child_status, 0), child);
    assert_true(WIFEXITED(child_status));
    assert_int_equal(WEXITSTATUS(child_status), 0);
}

/* ------------------------------------------------------------ reading */

static void test_file_history_gives_last_three_commits_with_diffs(void **state)
{
    char url[512], dir[512];
    tr_error err = { 0 };
    cJSON *history = NULL, *item;
    char *content;
    size_t len;

    make_upstream("hist");
    upstream_commit("hist", "apps/deploy.yaml", "replicas: 2\\n", "scale to 2");
    upstream_commit("hist", "README", "unrelated\\n", "docs only");
    upstream_commit("hist", "apps/deploy.yaml", "replicas: 3\\n", "scale to 3");
    upstream_commit("hist", "apps/deploy.yaml", "replicas: 4\\n", "scale to 4");
    (void)local_clone("hist", "", url, sizeof(url), dir, sizeof(dir));

    assert_int_equal(tr_gitrepo_file_history(dir, "apps/deploy.yaml", 3, 0, &history, &err), 0);
    assert_int_equal(cJSON_GetArraySize(history), 3);
    item = cJSON_GetArrayItem(history, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(item, "subject")), "scale to 4");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(item, "author")),
                        "Dev <dev@example.com>");
    assert_int_equal(strlen(cJSON_GetStringValue(cJSON_GetObjectItem(item, "sha"))), 7);
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(item, "date")), "T"));
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(item, "diff")),
                           "-replicas: 3\n+replicas: 4\n"));
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(item, "diff")),
                           "apps/deploy.yaml"));
    item = cJSON_GetArrayItem(history, 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(item, "subject")), "scale to 3");
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(item, "diff")),
                           "-replicas: 2\n+replicas: 3\n"));
    assert_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(item, "diff")), "README"));
    item = cJSON_GetArrayItem(history, 2);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(item, "subject")), "scale to 2");
    cJSON_Delete(history);

    /* A tiny cap cuts the diff at a line end and says so. */
    assert_int_equal(tr_gitrepo_file_history(dir, "apps/deploy.yaml", 1, 40, &history, &err), 0);
    item = cJSON_GetArrayItem(history, 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(item, "diff_truncated")));
    assert_true(strlen(cJSON_GetStringValue(cJSON_GetObjectItem(item, "diff"))) <= 40);
    cJSON_Delete(history);

    assert_int_equal(tr_gitrepo_read_file(dir, NULL, "apps/deploy.yaml", 0, &content, &len, &err),
                     0);
    assert_string_equal(content, "replicas: 4\n");
    tr_free(content);
    assert_int_equal(tr_gitrepo_read_file(dir, "HEAD~3", "apps/deploy.yaml", 0, &content, &len,
                                          &err), 0);
    assert_string_equal(content, "replicas: 2\n");
    tr_free(content);
    assert_int_equal(tr_gitrepo_read_file(dir, NULL, "apps/missing.yaml", 0, &content, &len,
                                          &err), TR_ENOTFOUND);
    assert_non_null(strstr(err.message, "apps/missing.yaml"));
    assert_int_equal(tr_gitrepo_read_file(dir, NULL, "../etc/passwd", 0, &content, &len, &err),
                     TR_EINVAL);
}

static void test_reading_and_new_survive_every_allocation_failure(void **state)
{
    char url[512], dir[512];
    tr_gitrepo_spec spec = { 0 };
    tr_error err = { 0 };
    cJSON *history;
    tr_gitrepo *repo;
    uv_loop_t loop;
    char *content;
    size_t len;
    long live, n;
    int rc, all_ok = 0;

    make_upstream("oom");
    upstream_commit("oom", "apps/deploy.yaml", "replicas: 2\n", "two");
    spec = local_clone("oom", "file://", url, sizeof(url), dir, sizeof(dir));
    assert_int_equal(uv_loop_init(&loop), 0);
    live = tr_alloc_live();
    for (n = 1; n < 200; n++) {
        history = NULL;
        content = NULL;
        tr_alloc_fail_after(n, 1);
        rc = tr_gitrepo_file_history(dir, "apps/deploy.yaml", 3, 0, &history, &err);
        assert_true(rc == 0 || rc == TR_ENOMEM || rc == TR_EIO);
        all_ok = rc == 0 && cJSON_GetArraySize(history) == 2;
        cJSON_Delete(history);
        rc = tr_gitrepo_read_file(dir, NULL, "apps/deploy.yaml", 0, &content, &len, &err);
        assert_true(rc == 0 || rc == TR_ENOMEM);
        all_ok = all_ok && rc == 0;
        tr_free(content);
        repo = NULL;
        rc = tr_gitrepo_new(&repo, &loop, &spec, &err);
        assert_true(rc == 0 || rc == TR_ENOMEM);
        all_ok = all_ok && rc == 0;
        tr_alloc_fail_after(0, 0);
        tr_gitrepo_close(repo, NULL, NULL);
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        assert_int_equal(tr_alloc_live(), live);
        if (all_ok)
            break; /* every allocation of the three calls has failed once */
    }
    assert_true(all_ok);
    print_message("allocation failures injected: %ld\n", n - 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ------------------------------------------------------------ commit and push */

static const char fix_content[] = "replicas: 3\r\npassword: \"hunter2 \\t\"\n\tkey: s3cr\xc3\xa9t\n";

static void test_commit_files_and_push_branch_keeps_exact_bytes(void **state)
{
    char url[256], dir[512], commit[TR_GITREPO_OID_HEX], remote[TR_GITREPO_OID_HEX];
    char tree[TR_GITREPO_OID_HEX], local_tree[TR_GITREPO_OID_HEX], out_path[600];
    tr_gitrepo_spec spec = http_spec("push", url, sizeof(url), dir, sizeof(dir));
    tr_gitrepo_file files[2] = { { "apps/deploy.yaml", fix_content, sizeof(fix_content) - 1 },
                                 { "apps/new/extra.yaml", "a: 1\n", 5 } };
    tr_error err = { 0 };
    size_t len;
    char *pushed;

    require_server();
    make_upstream("push");
    assert_int_equal(tr_gitrepo_sync_blocking(&spec, NULL, NULL, &err), 0);
    assert_int_equal(tr_gitrepo_remote_branch_commit(&spec, "triaged/fix-1", remote, tree, &err),
                     TR_ENOTFOUND);
    assert_int_equal(tr_gitrepo_commit_files(dir, "HEAD", "triaged/fix-1", files, 2,
                                             "triaged <triaged@localhost>",
                                             "fix: scale deploy to 3", commit, &err), 0);
    assert_int_equal(tr_gitrepo_push(&spec, "triaged/fix-1", NULL, &err), 0);

    snprintf(out_path, sizeof(out_path), "%s/pushed.yaml", base_dir);
    sh("git --git-dir=%s/repos/push.git cat-file blob triaged/fix-1:apps/deploy.yaml > %s",
       server_dir, out_path);
    pushed = slurp(out_path, &len);
    assert_int_equal(len, sizeof(fix_content) - 1);
    assert_memory_equal(pushed, fix_content, len);
    free(pushed);
    sh("test \"$(git --git-dir=%s/repos/push.git log -1 --format='%%an <%%ae>|%%s' "
       "triaged/fix-1)\" = 'triaged <triaged@localhost>|fix: scale deploy to 3'", server_dir);
    sh("test \"$(git --git-dir=%s/repos/push.git rev-list --count main..triaged/fix-1)\" = 1",
       server_dir);

    /* Idempotency: a retry sees the branch there with the same tree. */
    assert_int_equal(tr_gitrepo_remote_branch_commit(&spec, "triaged/fix-1", remote, tree, &err),
                     0);
    assert_string_equal(remote, commit);
    assert_int_equal(tr_gitrepo_commit_tree(dir, commit, local_tree, &err), 0);
    assert_string_equal(tree, local_tree);
}

static void test_push_rejected_by_pre_receive_hook_carries_its_message(void **state)
{
    char url[256], dir[512];
    tr_gitrepo_spec spec = http_spec("hook", url, sizeof(url), dir, sizeof(dir));
    tr_gitrepo_file file = { "apps/deploy.yaml", "replicas: 9\n", 12 };
    tr_error err = { 0 };
    int rc;

    require_server();
    make_upstream("hook");
    sh("printf '#!/bin/sh\\necho \"policy: changes to apps/ need a ticket\" >&2\\nexit 1\\n' > "
       "%s/repos/hook.git/hooks/pre-receive && chmod +x %s/repos/hook.git/hooks/pre-receive",
       server_dir, server_dir);
    assert_int_equal(tr_gitrepo_sync_blocking(&spec, NULL, NULL, &err), 0);
    assert_int_equal(tr_gitrepo_commit_files(dir, NULL, "triaged/fix-2", &file, 1,
                                             "triaged <triaged@localhost>", "fix", NULL, &err),
                     0);
    rc = tr_gitrepo_push(&spec, "triaged/fix-2", NULL, &err);
    assert_true(rc < 0);
    print_message("hook rejection: %s\n", err.message);
    assert_non_null(strstr(err.message, "rejected by the remote"));
    assert_non_null(strstr(err.message, "policy: changes to apps/ need a ticket"));
    sh("! git --git-dir=%s/repos/hook.git rev-parse -q --verify triaged/fix-2", server_dir);
}

static void test_non_fast_forward_push_and_broken_lease_are_conflicts(void **state)
{
    char url[256], dir[512], first[TR_GITREPO_OID_HEX], second[TR_GITREPO_OID_HEX];
    tr_gitrepo_spec spec = http_spec("nonff", url, sizeof(url), dir, sizeof(dir));
    tr_gitrepo_file a = { "apps/deploy.yaml", "replicas: 7\n", 12 };
    tr_gitrepo_file b = { "apps/deploy.yaml", "replicas: 8\n", 12 };
    tr_error err = { 0 };

    require_server();
    make_upstream("nonff");
    assert_int_equal(tr_gitrepo_sync_blocking(&spec, NULL, NULL, &err), 0);
    assert_int_equal(tr_gitrepo_commit_files(dir, "main", "fix", &a, 1, "t <t@x>", "seven",
                                             first, &err), 0);
    assert_int_equal(tr_gitrepo_push(&spec, "fix", NULL, &err), 0);
    /* A sibling of the pushed commit: pushing it would drop "seven". */
    assert_int_equal(tr_gitrepo_commit_files(dir, "main", "fix", &b, 1, "t <t@x>", "eight",
                                             second, &err), 0);
    assert_int_equal(tr_gitrepo_push(&spec, "fix", NULL, &err), TR_ECONFLICT);
    print_message("non-fast-forward: %s\n", err.message);
    assert_non_null(strstr(err.message, "fast-forward"));

    assert_int_equal(tr_gitrepo_push(&spec, "fix", second, &err), TR_ECONFLICT);
    assert_non_null(strstr(err.message, first)); /* says where the remote really is */
    assert_int_equal(tr_gitrepo_push(&spec, "fix", first, &err), 0);
    sh("test \"$(git --git-dir=%s/repos/nonff.git rev-parse fix)\" = %s", server_dir, second);

    /* Lease "": the branch must not exist yet. */
    assert_int_equal(tr_gitrepo_commit_files(dir, "main", "fresh", &a, 1, "t <t@x>", "new",
                                             NULL, &err), 0);
    assert_int_equal(tr_gitrepo_push(&spec, "fresh", "", &err), 0);
    assert_int_equal(tr_gitrepo_push(&spec, "fix", "", &err), TR_ECONFLICT);
}

/* ------------------------------------------------------------ on the loop */

typedef struct sync_seen {
    int calls;
    int status;
    char message[TR_ERROR_MSG_MAX];
} sync_seen;

static void on_synced(tr_gitrepo *repo, int status, const tr_error *err, void *user_data)
{
    sync_seen *seen = user_data;
    seen->calls++;
    seen->status = status;
    snprintf(seen->message, sizeof(seen->message), "%s", err ? err->message : "");
}

static int read_deploy(const tr_gitrepo_spec *spec, void *user_data)
{
    char **content = user_data;
    size_t len;
    return tr_gitrepo_read_file(spec->work_dir, NULL, "apps/deploy.yaml", 0, content, &len,
                                NULL);
}

static void on_read_done(tr_gitrepo *repo, int status, void *user_data)
{
    assert_int_equal(status, 0);
}

static void on_closed(void *user_data)
{
    *(int *)user_data = 1;
}

static void test_async_sync_on_a_real_loop_coalesces_and_closes_cleanly(void **state)
{
    char url[256], dir[512], want[TR_GITREPO_OID_HEX];
    tr_gitrepo_spec spec = http_spec("async", url, sizeof(url), dir, sizeof(dir));
    sync_seen first = { 0 }, second = { 0 }, late = { 0 };
    tr_gitrepo_status status;
    tr_gitrepo *repo = NULL;
    tr_error err = { 0 };
    char *content = NULL;
    uv_loop_t loop;
    int closed = 0;

    require_server();
    make_upstream("async");
    upstream_head("async", want);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tr_gitrepo_new(&repo, &loop, &spec, &err), 0);
    assert_int_equal(tr_gitrepo_sync(repo, on_synced, &first), 0);
    assert_int_equal(tr_gitrepo_sync(repo, on_synced, &second), 0); /* joins the first */
    assert_int_equal(tr_gitrepo_queue_work(repo, read_deploy, on_read_done, &content), 0);
    tr_gitrepo_get_status(repo, &status);
    assert_true(status.syncing);
    assert_int_equal(first.calls, 0); /* never called before sync returns */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(first.calls, 1);
    assert_int_equal(second.calls, 1);
    assert_int_equal(first.status, 0);
    assert_string_equal(content, "replicas: 1\n");
    tr_free(content);
    tr_gitrepo_get_status(repo, &status);
    assert_string_equal(status.head, want);
    assert_true(status.last_fetch_ms > 0);
    assert_int_equal(status.consecutive_failures, 0);
    assert_string_equal(status.last_error, "");
    /* Fresh: nothing to do. Older than 0 ms: a fetch. */
    assert_int_equal(tr_gitrepo_fetch_if_older(repo, 60000, on_synced, &late), 1);
    upstream_commit("async", "apps/deploy.yaml", "replicas: 6\\n", "six");
    upstream_head("async", want);
    usleep(2000);
    assert_int_equal(tr_gitrepo_fetch_if_older(repo, 1, on_synced, &late), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(late.calls, 1);
    tr_gitrepo_get_status(repo, &status);
    assert_string_equal(status.head, want);

    /* Close with a sync in flight: its callback runs, the loop closes. */
    assert_int_equal(tr_gitrepo_sync(repo, on_synced, &late), 0);
    tr_gitrepo_close(repo, on_closed, &closed);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(late.calls, 2);
    assert_true(late.status == 0 || late.status == TR_ECANCELLED);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_async_failures_count_and_back_off(void **state)
{
    char dir[512];
    tr_gitrepo_spec spec = { 0 };
    sync_seen seen = { 0 };
    tr_gitrepo_status status;
    tr_gitrepo *repo = NULL;
    tr_error err = { 0 };
    uv_loop_t loop;

    snprintf(dir, sizeof(dir), "%s/state/git/unreachable", base_dir);
    spec.name = "down";
    spec.url = "http://127.0.0.1:1/git/none.git";
    spec.work_dir = dir;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tr_gitrepo_new(&repo, &loop, &spec, &err), 0);
    assert_int_equal(tr_gitrepo_sync(repo, on_synced, &seen), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(seen.status, TR_EUNAVAILABLE);
    assert_non_null(strstr(seen.message, "repo down"));
    tr_gitrepo_get_status(repo, &status);
    assert_int_equal(status.consecutive_failures, 1);
    assert_non_null(strstr(status.last_error, "127.0.0.1:1"));
    /* 5 s +- 20 % from now */
    assert_true(status.next_retry_ms >= uv_now(&loop) + 3900);
    assert_true(status.next_retry_ms <= uv_now(&loop) + 6100);
    /* Backing off: a fetch-if-older does not hammer the remote. */
    assert_int_equal(tr_gitrepo_fetch_if_older(repo, 0, on_synced, &seen), 1);
    tr_gitrepo_close(repo, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void count_sync(tr_gitrepo *repo, int status, const tr_error *err, void *user_data)
{
    if (status == 0)
        ++*(int *)user_data;
    else
        fprintf(stderr, "set sync failed: %s\n", err ? err->message : "?");
}

static void test_config_repos_open_every_repository_under_state_dir(void **state)
{
    char text[2048], url[256], path[700];
    tr_config *cfg = NULL;
    tr_repos *repos = NULL;
    tr_health *health = NULL;
    tr_error err = { 0 };
    uv_loop_t loop;
    int synced = 0, closed = 0;

    (void)state;
    require_server();
    make_upstream("set-a");
    make_upstream("set-b");
    http_url(url, sizeof(url), "set-b");
    snprintf(path, sizeof(path), "%s/daemon-state", base_dir);
    sh("mkdir -p %s", path);
    snprintf(text, sizeof(text),
             "[daemon]\nstate_dir = \"%s\"\n"
             "[gitops]\nurl = \"%s/repos/set-a.git\"\n"
             "[[gitops.repos]]\nname = \"payments\"\nurl = \"%s\"\n"
             "username = \"" USER "\"\ntoken_env = \"TEST_GITREPO_TOKEN\"\n",
             path, server_dir, url);
    assert_int_equal(tr_config_load_string(&cfg, text, strlen(text), "test.toml", &err), 0);
    assert_int_equal(setenv("TEST_GITREPO_TOKEN", PASSWORD, 1), 0);
    assert_int_equal(tr_health_new(&health), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tr_repos_new(&repos, &loop, cfg, health, &err), 0);
    assert_int_equal(tr_repos_count(repos), 2);
    assert_string_equal(tr_gitrepo_spec_get(tr_repos_default(repos))->name, "default");
    assert_non_null(tr_repos_find_name(repos, "payments"));
    assert_null(tr_repos_find_name(repos, "nope"));
    assert_int_equal(tr_gitrepo_sync(tr_repos_at(repos, 0), count_sync, &synced), 0);
    assert_int_equal(tr_gitrepo_sync(tr_repos_at(repos, 1), count_sync, &synced), 0);
    while (synced < 2)
        assert_int_equal(uv_run(&loop, UV_RUN_ONCE) >= 0, 1);
    sh("test -f %s/git/default/apps/deploy.yaml && test -f %s/git/payments/README", path, path);
    tr_repos_close(repos, on_closed, &closed);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    tr_health_free(health);
    unsetenv("TEST_GITREPO_TOKEN");
    tr_config_free(cfg);

    /* A name that would escape <state_dir>/git is refused when the config is read. */
    snprintf(text, sizeof(text), "[[gitops.repos]]\nname = \"../x\"\nurl = \"%s\"\n", url);
    assert_int_equal(tr_config_load_string(&cfg, text, strlen(text), "test.toml", &err),
                     TR_ECONFIG);
    assert_non_null(strstr(err.message, "../x"));
}

/* ------------------------------------------------------------ setup */

/* Run a server script's start command; the port it prints, or -1. */
static int start_server(const char *cmd)
{
    char port[32];
    FILE *p = popen(cmd, "r");
    int ok;

    if (!p)
        return -1;
    ok = fgets(port, sizeof(port), p) != NULL;
    if (pclose(p) != 0 || !ok || atoi(port) <= 0)
        return -1;
    return atoi(port);
}

static int group_setup(void **state)
{
    char cmd[2048];

    snprintf(base_dir, sizeof(base_dir), "/tmp/test_gitrepo.XXXXXX");
    if (!mkdtemp(base_dir))
        return -1;
    snprintf(server_dir, sizeof(server_dir), "%s/server", base_dir);
    if (mkdir(server_dir, 0700) != 0)
        return -1;
    /* A HOME of our own: libgit2 reads ~/.ssh/known_hosts from it (the ssh test). */
    snprintf(cmd, sizeof(cmd), "%s/home", base_dir);
    if (mkdir(cmd, 0700) != 0 || setenv("HOME", cmd, 1) != 0)
        return -1;
    if (tr_gitrepo_global_init(NULL) != 0)
        return -1;
    if (system("command -v lighttpd >/dev/null 2>&1") == 0) { /* else HTTP tests skip */
        snprintf(cmd, sizeof(cmd), "GIT_HTTP_USER=%s GIT_HTTP_PASSWORD=%s "
                 "tests/tools/git-http-server start %s", USER, PASSWORD, server_dir);
        if ((server_port = start_server(cmd)) < 0)
            return -1;
        have_server = 1;
    }
    if (access("/usr/sbin/sshd", X_OK) != 0)
        return 0; /* the ssh test skips with a message */
    snprintf(ssh_dir, sizeof(ssh_dir), "%s/ssh", base_dir);
    if (mkdir(ssh_dir, 0700) != 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "tests/tools/git-ssh-server start %s", ssh_dir);
    if ((ssh_port = start_server(cmd)) < 0) {
        ssh_port = 0;
        return -1;
    }
    snprintf(cmd, sizeof(cmd), "mkdir -p %s/home/.ssh && cp %s/known_hosts %s/home/.ssh/",
             base_dir, ssh_dir, base_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    char cmd[600];
    if (have_server) {
        snprintf(cmd, sizeof(cmd), "tests/tools/git-http-server stop %s", server_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "stopping the git http server failed\n");
    }
    if (ssh_port) {
        snprintf(cmd, sizeof(cmd), "tests/tools/git-ssh-server stop %s", ssh_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "stopping the ssh server failed\n");
    }
    tr_gitrepo_global_shutdown();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clone_over_http_with_token_checks_out_branch),
        cmocka_unit_test(test_wrong_password_fails_fast_without_the_token_in_the_message),
        cmocka_unit_test(test_bad_url_or_branch_names_repo_and_url_without_credentials),
        cmocka_unit_test(test_file_url_and_local_path_clone),
        cmocka_unit_test(test_ssh_clone_with_key_and_refused_key_is_auth_error),
        cmocka_unit_test(test_force_pushed_upstream_moves_the_work_tree),
        cmocka_unit_test(test_corrupt_clone_is_cloned_again),
        cmocka_unit_test(test_file_history_gives_last_three_commits_with_diffs),
        cmocka_unit_test(test_reading_and_new_survive_every_allocation_failure),
        cmocka_unit_test(test_commit_files_and_push_branch_keeps_exact_bytes),
        cmocka_unit_test(test_push_rejected_by_pre_receive_hook_carries_its_message),
        cmocka_unit_test(test_non_fast_forward_push_and_broken_lease_are_conflicts),
        cmocka_unit_test(test_async_sync_on_a_real_loop_coalesces_and_closes_cleanly),
        cmocka_unit_test(test_async_failures_count_and_back_off),
        cmocka_unit_test(test_config_repos_open_every_repository_under_state_dir),
    };
    int failed;

    if (tr_alloc_install() != 0)
        return 1;
    failed = cmocka_run_group_tests_name("gitrepo", tests, group_setup, group_teardown);
    tr_alloc_uninstall();
    return failed;
}
