/*
 * test_kube_auth.c - exec credential plugins run for real (small shell
 * scripts in a temp dir): the token they print is used and cached, a 401
 * makes the plugin run again, failures and hangs give a clear message, and
 * the plugin gets its env and KUBERNETES_EXEC_INFO.
 */
#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "error.h"
#include "kube_auth.h"
#include "kubeconfig.h"

typedef struct result {
    int calls;
    int rc;
    char message[TR_ERROR_MSG_MAX];
} result;

static void on_auth(int rc, const char *message, void *userdata)
{
    result *r = userdata;

    r->calls++;
    r->rc = rc;
    snprintf(r->message, sizeof(r->message), "%s", message);
}

static char tmpdir[256];

static void write_script(const char *name, const char *body)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(body, f);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
}

static tr_kube_conn *conn_for(const char *script, const char *extra_yaml)
{
    char yaml[2048];
    tr_kube_conn *conn = NULL;
    tr_error err;

    snprintf(yaml, sizeof(yaml),
             "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
             "clusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:6443\n"
             "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
             "users:\n- name: u\n  user:\n    exec:\n"
             "      apiVersion: client.authentication.k8s.io/v1beta1\n"
             "      command: %s/%s\n      args: [\"%s\"]\n%s",
             tmpdir, script, tmpdir, extra_yaml);
    if (tr_kubeconfig_load_string(&conn, yaml, strlen(yaml), "test", tmpdir, NULL, &err) != 0)
        fail_msg("kubeconfig: %s", err.message);
    return conn;
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-kube-auth-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : 1;
}

/* Run the loop until cb was called (or 10 s). */
static void wait_result(uv_loop_t *loop, result *r)
{
    uint64_t start = uv_now(loop);

    while (r->calls == 0 && uv_now(loop) - start < 10000) {
        uv_run(loop, UV_RUN_ONCE);
        uv_update_time(loop);
    }
    assert_int_equal(r->calls, 1);
}

static void finish(uv_loop_t *loop, tr_kube_auth *auth, tr_kube_conn *conn)
{
    tr_kube_auth_close(auth);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
    tr_kube_conn_free(conn);
}

static void test_plugin_token_is_cached_and_rerun_after_401(void **state)
{
    uv_loop_t loop;
    tr_kube_conn *conn;
    tr_kube_auth *auth;
    result r = { 0 };
    tr_error err;
    char path[512], info[4096] = "";
    FILE *f;

    write_script("login.sh",
                 "#!/bin/sh\nn=$(cat \"$1/runs\" 2>/dev/null || echo 0); n=$((n+1));\n"
                 "echo $n > \"$1/runs\"\necho \"$KUBERNETES_EXEC_INFO\" > \"$1/info\"\n"
                 "printf '{\"kind\":\"ExecCredential\",\"apiVersion\":"
                 "\"client.authentication.k8s.io/v1beta1\",\"status\":{\"token\":\"tok-%s-%d\","
                 "\"expirationTimestamp\":\"2099-01-01T00:00:00Z\"}}' \"$REGION\" $n\n");
    conn = conn_for("login.sh", "      env: [{name: REGION, value: eu-west-1}]\n");
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tr_kube_auth_new(&auth, &loop, conn, 0, &err), 0);
    assert_null(tr_kube_auth_current(auth));

    assert_int_equal(tr_kube_auth_wait(auth, on_auth, &r, &err), TR_EBUSY);
    wait_result(&loop, &r);
    assert_int_equal(r.rc, TR_OK);
    assert_string_equal(tr_kube_auth_current(auth)->token, "tok-eu-west-1-1");
    /* Cached: no second run while it is valid. */
    assert_int_equal(tr_kube_auth_wait(auth, on_auth, &r, &err), TR_OK);
    assert_int_equal(tr_kube_auth_runs(auth), 1);

    tr_kube_auth_invalidate(auth);
    assert_null(tr_kube_auth_current(auth));
    r.calls = 0;
    assert_int_equal(tr_kube_auth_wait(auth, on_auth, &r, &err), TR_EBUSY);
    wait_result(&loop, &r);
    assert_string_equal(tr_kube_auth_current(auth)->token, "tok-eu-west-1-2");
    assert_int_equal(tr_kube_auth_runs(auth), 2);

    snprintf(path, sizeof(path), "%s/info", tmpdir);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(info, sizeof(info), f));
    fclose(f);
    assert_non_null(strstr(info, "\"kind\":\"ExecCredential\""));
    assert_non_null(strstr(info, "\"interactive\":false"));
    finish(&loop, auth, conn);
}

static void test_failing_plugin_names_its_exit_status_and_stderr(void **state)
{
    uv_loop_t loop;
    tr_kube_conn *conn;
    tr_kube_auth *auth;
    result r = { 0 };
    tr_error err;

    write_script("fail.sh", "#!/bin/sh\necho 'token expired: run aws sso login' >&2\nexit 7\n");
    conn = conn_for("fail.sh", "");
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tr_kube_auth_new(&auth, &loop, conn, 0, &err), 0);
    assert_int_equal(tr_kube_auth_wait(auth, on_auth, &r, &err), TR_EBUSY);
    wait_result(&loop, &r);
    assert_int_equal(r.rc, TR_EAUTH);
    assert_non_null(strstr(r.message, "fail.sh\" exited with status 7: token expired: run aws "
                                      "sso login"));
    assert_null(tr_kube_auth_current(auth));
    finish(&loop, auth, conn);
}

static void test_hanging_plugin_is_killed_after_the_timeout(void **state)
{
    uv_loop_t loop;
    tr_kube_conn *conn;
    tr_kube_auth *auth;
    result r = { 0 };
    tr_error err;

    write_script("hang.sh", "#!/bin/sh\nexec sleep 30\n");
    conn = conn_for("hang.sh", "");
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tr_kube_auth_new(&auth, &loop, conn, 300, &err), 0);
    assert_int_equal(tr_kube_auth_wait(auth, on_auth, &r, &err), TR_EBUSY);
    wait_result(&loop, &r);
    assert_int_equal(r.rc, TR_ETIMEOUT);
    assert_non_null(strstr(r.message, "did not finish within 300 ms"));
    finish(&loop, auth, conn);
}

static void test_unstartable_plugin_says_so_with_install_hint(void **state)
{
    uv_loop_t loop;
    tr_kube_conn *conn;
    tr_kube_auth *auth;
    result r = { 0 };
    tr_error err;
    char path[512];

    /* The loader checks that the file exists; here it cannot be executed. */
    write_script("not-executable", "#!/bin/sh\n");
    snprintf(path, sizeof(path), "%s/not-executable", tmpdir);
    assert_int_equal(chmod(path, 0644), 0);
    conn = conn_for("not-executable", "      installHint: install it with brew\n");
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tr_kube_auth_new(&auth, &loop, conn, 0, &err), 0);
    assert_int_equal(tr_kube_auth_wait(auth, on_auth, &r, &err), TR_EAUTH);
    assert_non_null(strstr(err.message, "could not be started"));
    assert_non_null(strstr(err.message, "install it with brew"));
    assert_int_equal(r.calls, 0);
    finish(&loop, auth, conn);
}

static void test_close_while_running_kills_the_plugin_without_callback(void **state)
{
    uv_loop_t loop;
    tr_kube_conn *conn;
    tr_kube_auth *auth;
    result r = { 0 };
    tr_error err;

    write_script("slow.sh", "#!/bin/sh\nexec sleep 30\n");
    conn = conn_for("slow.sh", "");
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tr_kube_auth_new(&auth, &loop, conn, 0, &err), 0);
    assert_int_equal(tr_kube_auth_wait(auth, on_auth, &r, &err), TR_EBUSY);
    uv_run(&loop, UV_RUN_NOWAIT);
    finish(&loop, auth, conn); /* returns promptly: the process was killed */
    assert_int_equal(r.calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plugin_token_is_cached_and_rerun_after_401, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failing_plugin_names_its_exit_status_and_stderr,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hanging_plugin_is_killed_after_the_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unstartable_plugin_says_so_with_install_hint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_while_running_kills_the_plugin_without_callback,
                                        setup, teardown),
    };

    TR_RUN_TESTS("kube_auth", tests);
}
