#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"
#include "error.h"
#include "store.h"
#include "tf_dir.h"

/*
 * Real files in a temp directory, a real SQLite store, a real libuv loop. Settle and rescan
 * times are short so the tests run in about a second each.
 */

#define FIXTURES "../shared/fixtures/terraform/"
#define SETTLE_MS 150
#define RESCAN_MS 400

typedef struct fixture {
    uv_loop_t loop;
    char dir[64], logs[128], db[160];
    tr_store *store;
    tr_tf_ingest ingest;
    tr_tf_dir *follower;
    int stopped;
    int events;
    int64_t last_incident;
    int last_kind;
} fixture;

static void on_incident(const tr_tf_incident_event *ev, void *userdata)
{
    fixture *fx = userdata;

    fx->events++;
    fx->last_incident = ev->incident_id;
    fx->last_kind = ev->kind;
}

static void write_file(const char *path, const char *data, size_t len, const char *mode)
{
    FILE *f = fopen(path, mode);

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    tr_buf b = TR_BUF_INIT(0);
    char chunk[4096];
    size_t n;

    assert_non_null(f);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(tr_buf_put(&b, chunk, n), 0);
    fclose(f);
    *len = b.len;
    return tr_buf_detach(&b);
}

static void follow(fixture *fx)
{
    const char *dirs[] = {fx->logs};
    tr_tf_dir_options opt;
    tr_error err;

    memset(&opt, 0, sizeof(opt));
    opt.loop = &fx->loop;
    opt.ingest = &fx->ingest;
    opt.dirs = dirs;
    opt.dir_count = 1;
    opt.rescan_interval_ms = RESCAN_MS;
    opt.settle_time_ms = SETTLE_MS;
    assert_int_equal(tr_tf_dir_start(&fx->follower, &opt, &err), 0);
}

static void on_stopped(void *userdata)
{
    ((fixture *)userdata)->stopped = 1;
}

static void unfollow(fixture *fx)
{
    fx->stopped = 0;
    tr_tf_dir_stop(fx->follower, on_stopped, fx);
    while (!fx->stopped)
        uv_run(&fx->loop, UV_RUN_ONCE);
    fx->follower = NULL;
}

static void on_deadline(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Run the loop for ms milliseconds. */
static void run_for(fixture *fx, uint64_t ms)
{
    uv_timer_t timer;
    int fired = 0;

    uv_timer_init(&fx->loop, &timer);
    timer.data = &fired;
    uv_timer_start(&timer, on_deadline, ms, 0);
    while (!fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
}

/* Run until the follower processed want files in total (or 5 s passed). */
static void run_until_processed(fixture *fx, uint64_t want)
{
    tr_tf_dir_stats st;
    int i;

    for (i = 0; i < 100; i++) {
        tr_tf_dir_get_stats(fx->follower, &st);
        if (st.processed >= want)
            return;
        run_for(fx, 50);
    }
    fail_msg("only %llu of %llu files processed", (unsigned long long)st.processed,
             (unsigned long long)want);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    tr_error err;

    assert_int_equal(uv_loop_init(&fx->loop), 0);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_tf_dir.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->logs, sizeof(fx->logs), "%s/logs", fx->dir);
    assert_int_equal(mkdir(fx->logs, 0700), 0);
    snprintf(fx->db, sizeof(fx->db), "%s/triaged.db", fx->dir);
    assert_int_equal(tr_store_open(&fx->store, fx->db, &err), 0);
    fx->ingest.store = fx->store;
    fx->ingest.dedup_window_ms = 1800 * 1000;
    fx->ingest.on_incident = on_incident;
    fx->ingest.userdata = fx;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[256];

    if (fx->follower)
        unfollow(fx);
    tr_store_close(fx->store);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static void test_new_file_in_workspace_dir_becomes_incident(void **state)
{
    fixture *fx = *state;
    char ws[192], path[256], src[256];
    tr_store_incident *inc = NULL;
    size_t len;
    char *data;
    tr_error err;

    follow(fx);
    snprintf(ws, sizeof(ws), "%s/payments", fx->logs);
    assert_int_equal(mkdir(ws, 0700), 0);
    snprintf(src, sizeof(src), FIXTURES "module/apply.jsonl");
    data = slurp(src, &len);
    snprintf(path, sizeof(path), "%s/apply-1.jsonl", ws);
    write_file(path, data, len, "wb");
    run_until_processed(fx, 1);
    assert_int_equal(tr_store_incident_get(fx->store, fx->last_incident, &inc, &err), 0);
    assert_string_equal(inc->namespace, "payments");
    assert_string_equal(inc->failure_class, "TerraformApplyFailed"); /* from "apply-1" */
    assert_string_equal(inc->name, "modules/db/main.tf");
    tr_store_incident_free(inc);
    tr_free(data);
}

static void test_growing_file_is_read_once_settled(void **state)
{
    fixture *fx = *state;
    char path[256];
    tr_store_incident *inc = NULL;
    tr_tf_dir_stats st;
    size_t len, cut;
    char *data = slurp(FIXTURES "provisioner/apply.jsonl", &len);
    tr_error err;

    /* Cut before the apply_errored and the diagnostic, mid-line. */
    cut = (size_t)(strstr(data, "\"type\":\"provision_errored\"") - data);
    snprintf(path, sizeof(path), "%s/run.jsonl", fx->logs);
    write_file(path, data, cut, "wb");
    follow(fx);
    run_for(fx, SETTLE_MS / 3);
    write_file(path, data + cut, 10, "ab");
    run_for(fx, SETTLE_MS / 3);
    write_file(path, data + cut + 10, len - cut - 10, "ab");
    run_until_processed(fx, 1);
    tr_tf_dir_get_stats(fx->follower, &st);
    assert_int_equal(st.processed, 1);
    assert_int_equal(fx->events, 1);
    assert_int_equal(tr_store_incident_get(fx->store, fx->last_incident, &inc, &err), 0);
    assert_string_equal(inc->name, "terraform_data.migrate");
    assert_string_equal(inc->namespace, "logs");
    tr_store_incident_free(inc);
    tr_free(data);
}

static void test_rotated_file_is_read_again_and_resolves(void **state)
{
    static const char ok[] =
        "{\"@level\":\"info\",\"@message\":\"Terraform 1.11.4\",\"terraform\":\"1.11.4\","
        "\"type\":\"version\",\"ui\":\"1.2\"}\n"
        "{\"@level\":\"info\",\"@message\":\"Apply complete! Resources: 1 added.\","
        "\"changes\":{\"add\":1,\"change\":0,\"import\":0,\"remove\":0,\"operation\":\"apply\"},"
        "\"type\":\"change_summary\"}\n";
    fixture *fx = *state;
    char path[256];
    tr_store_incident *inc = NULL;
    size_t len;
    char *data = slurp(FIXTURES "reference/apply.jsonl", &len);
    int64_t id;
    tr_error err;

    snprintf(path, sizeof(path), "%s/latest.jsonl", fx->logs);
    write_file(path, data, len, "wb");
    follow(fx);
    run_until_processed(fx, 1);
    id = fx->last_incident;
    /* Same path, new content: the next run succeeded. A final line needs no settling. */
    write_file(path, ok, strlen(ok), "wb");
    run_until_processed(fx, 2);
    assert_int_equal(fx->last_kind, TR_TF_EVENT_RESOLVED);
    assert_int_equal(tr_store_incident_get(fx->store, id, &inc, &err), 0);
    assert_int_equal(inc->state, TR_INCIDENT_RESOLVED);
    tr_store_incident_free(inc);
    tr_free(data);
}

static void test_restart_does_not_process_again(void **state)
{
    fixture *fx = *state;
    char path[256];
    tr_tf_dir_stats st;
    size_t len;
    char *data = slurp(FIXTURES "validation/apply.jsonl", &len);
    tr_error err;

    snprintf(path, sizeof(path), "%s/a.jsonl", fx->logs);
    write_file(path, data, len, "wb");
    snprintf(path, sizeof(path), "%s/notes.txt", fx->logs);
    write_file(path, "not a log\n", 10, "wb");
    follow(fx);
    run_until_processed(fx, 1);
    run_for(fx, SETTLE_MS * 2);
    tr_tf_dir_get_stats(fx->follower, &st);
    assert_int_equal(st.unparsable, 1);
    unfollow(fx);

    /* "Restart": a new follower on the same database and directory. */
    tr_store_close(fx->store);
    assert_int_equal(tr_store_open(&fx->store, fx->db, &err), 0);
    fx->ingest.store = fx->store;
    fx->events = 0;
    follow(fx);
    run_for(fx, SETTLE_MS * 3 + RESCAN_MS);
    tr_tf_dir_get_stats(fx->follower, &st);
    assert_int_equal(st.processed, 0);
    assert_int_equal(st.unparsable, 0);
    assert_int_equal(st.already_seen, 2);
    assert_int_equal(fx->events, 0);
    tr_free(data);
}

static void test_missing_dir_is_picked_up_when_it_appears(void **state)
{
    fixture *fx = *state;
    char path[256];
    size_t len;
    char *data = slurp(FIXTURES "syntax/init.jsonl", &len);

    assert_int_equal(rmdir(fx->logs), 0);
    follow(fx);
    run_for(fx, 50);
    assert_int_equal(mkdir(fx->logs, 0700), 0);
    snprintf(path, sizeof(path), "%s/init.jsonl", fx->logs);
    write_file(path, data, len, "wb");
    run_until_processed(fx, 1); /* found by the rescan: no watch existed */
    tr_free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_file_in_workspace_dir_becomes_incident, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_growing_file_is_read_once_settled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rotated_file_is_read_again_and_resolves, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_restart_does_not_process_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_dir_is_picked_up_when_it_appears, setup,
                                        teardown),
    };
    TR_RUN_TESTS("tf_dir", tests);
}
