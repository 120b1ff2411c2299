#include "testutil.h"

#include <cjson/cJSON.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "store.h"
#include "tf_ingest.h"

#define FIXTURES "../shared/fixtures/terraform/"
#define HOUR_MS (3600 * 1000LL)

typedef struct fixture {
    char dir[64];
    char db[128];
    tr_store *store;
    tr_tf_ingest ingest;
    int events[8];
    size_t event_count;
} fixture;

static void on_incident(const tr_tf_incident_event *ev, void *userdata)
{
    fixture *fx = userdata;

    assert_true(ev->incident_id > 0);
    assert_non_null(ev->failure_class);
    if (fx->event_count < 8)
        fx->events[fx->event_count++] = ev->kind;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    tr_error err;

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_tf_ingest.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->db, sizeof(fx->db), "%s/triaged.db", fx->dir);
    assert_int_equal(tr_store_open(&fx->store, fx->db, &err), 0);
    fx->ingest.store = fx->store;
    fx->ingest.dedup_window_ms = HOUR_MS / 2;
    fx->ingest.on_incident = on_incident;
    fx->ingest.userdata = fx;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char path[256];

    tr_store_close(fx->store);
    snprintf(path, sizeof(path), "%s/triaged.db-wal", fx->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/triaged.db-shm", fx->dir);
    unlink(path);
    unlink(fx->db);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static tr_tf_result *parse_fixture(const char *rel, tr_tf_operation hint)
{
    char path[256], chunk[4096];
    tr_tf_log_options opt = {.operation_hint = hint};
    tr_tf_result *res = NULL;
    tr_tf_log *log = NULL;
    tr_error err;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), FIXTURES "%s", rel);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(tr_tf_log_new(&log, &opt), 0);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(tr_tf_log_feed(log, chunk, n), 0);
    fclose(f);
    assert_int_equal(tr_tf_log_finish(log, &res, &err), 0);
    tr_tf_log_free(log);
    return res;
}

static const char success_log[] =
    "{\"@level\":\"info\",\"@message\":\"Terraform 1.11.4\",\"terraform\":\"1.11.4\","
    "\"type\":\"version\",\"ui\":\"1.2\"}\n"
    "{\"@level\":\"info\",\"@message\":\"Apply complete! Resources: 1 added.\","
    "\"changes\":{\"add\":1,\"change\":0,\"import\":0,\"remove\":0,\"operation\":\"apply\"},"
    "\"type\":\"change_summary\"}\n";

static void test_provisioner_failure_becomes_resource_incident(void **state)
{
    fixture *fx = *state;
    tr_tf_result *res = parse_fixture("provisioner/apply.jsonl", TR_TF_OP_UNKNOWN);
    tr_tf_meta meta = {.workspace = "billing", .repo_path = "infra/billing", .commit = "c0ffee",
                       .source_ref = "/var/log/tf/billing/apply.jsonl"};
    tr_store_incident *inc = NULL;
    tr_tf_ingest_outcome out;
    cJSON *facts;
    tr_error err;

    assert_int_equal(tr_tf_ingest_result(&fx->ingest, res, &meta, 1000, &out, &err), 0);
    assert_true(out.failed);
    assert_int_equal(out.obs_outcome, TR_OBS_CREATED);
    assert_int_equal(tr_store_incident_get(fx->store, out.incident_id, &inc, &err), 0);
    assert_string_equal(inc->source, "terraform");
    assert_string_equal(inc->namespace, "billing");
    assert_string_equal(inc->kind, "TerraformResource");
    assert_string_equal(inc->name, "terraform_data.migrate");
    assert_string_equal(inc->failure_class, "TerraformApplyFailed");
    assert_string_equal(inc->fingerprint,
                        "tf/billing/terraform_data.migrate/local-exec provisioner error");
    assert_non_null(strstr(inc->message, "exit status 3"));
    facts = cJSON_Parse(inc->facts_json);
    assert_string_equal(cJSON_GetObjectItem(facts, "commit")->valuestring, "c0ffee");
    assert_string_equal(cJSON_GetObjectItem(facts, "operation")->valuestring, "apply");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(facts, "provisioner_output"),
                                           1)->valuestring,
                        "ERROR: relation \"orders\" does not exist");
    cJSON_Delete(facts);
    tr_store_incident_free(inc);
    assert_int_equal(fx->event_count, 1);
    assert_int_equal(fx->events[0], TR_OBS_CREATED);
    tr_tf_result_free(res);
}

static void test_every_fixture_gets_its_incident(void **state)
{
    static const struct {
        const char *file;
        const char *cls, *kind, *name;
    } cases[] = {
        {"validation/apply.jsonl", "TerraformApplyFailed", "TerraformConfig", "main.tf"},
        {"syntax/init.jsonl", "TerraformInitFailed", "TerraformConfig", "main.tf"},
        {"syntax/apply.jsonl", "TerraformApplyFailed", "TerraformConfig", "main.tf"},
        {"provider/init.jsonl", "TerraformInitFailed", "TerraformRun", "provider/init.jsonl"},
        {"provider/apply.jsonl", "TerraformApplyFailed", "TerraformRun",
         "provider/apply.jsonl"},
        {"module/apply.jsonl", "TerraformApplyFailed", "TerraformConfig", "modules/db/main.tf"},
        {"reference/apply.jsonl", "TerraformApplyFailed", "TerraformConfig", "main.tf"},
    };
    fixture *fx = *state;
    int64_t ids[7];
    size_t i, j;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tr_tf_result *res = parse_fixture(cases[i].file, tr_tf_operation_guess(cases[i].file));
        tr_store_incident *inc = NULL;
        tr_tf_ingest_outcome out;
        tr_tf_meta meta = {.workspace = cases[i].file};
        tr_error err;

        /* One workspace per fixture: syntax/init and syntax/apply would otherwise be the
         * same incident (same file and summary), which test_init_then_apply_... checks. */
        assert_int_equal(tr_tf_ingest_result(&fx->ingest, res, &meta, 1000, &out, &err), 0);
        assert_int_equal(tr_store_incident_get(fx->store, out.incident_id, &inc, &err), 0);
        assert_string_equal(inc->namespace, cases[i].file);
        assert_string_equal(inc->failure_class, cases[i].cls);
        assert_string_equal(inc->kind, cases[i].kind);
        assert_string_equal(inc->name, cases[i].name);
        ids[i] = out.incident_id;
        for (j = 0; j < i; j++)
            assert_int_not_equal(ids[i], ids[j]);
        tr_store_incident_free(inc);
        tr_tf_result_free(res);
    }
}

static void test_init_then_apply_of_same_error_is_one_incident(void **state)
{
    fixture *fx = *state;
    tr_tf_result *init = parse_fixture("syntax/init.jsonl", TR_TF_OP_UNKNOWN);
    tr_tf_result *apply = parse_fixture("syntax/apply.jsonl", TR_TF_OP_APPLY);
    tr_tf_meta meta = {.workspace = "edge"};
    tr_tf_ingest_outcome a, b;
    tr_error err;

    assert_int_equal(tr_tf_ingest_result(&fx->ingest, init, &meta, 1000, &a, &err), 0);
    assert_int_equal(tr_tf_ingest_result(&fx->ingest, apply, &meta, 2000, &b, &err), 0);
    assert_int_equal(a.incident_id, b.incident_id);
    assert_int_equal(b.obs_outcome, TR_OBS_UPDATED);
    tr_tf_result_free(init);
    tr_tf_result_free(apply);
}

static void test_same_failure_twice_is_one_incident(void **state)
{
    fixture *fx = *state;
    tr_tf_result *res = parse_fixture("module/apply.jsonl", TR_TF_OP_APPLY);
    tr_tf_meta meta = {.workspace = "db"};
    tr_store_incident *inc = NULL;
    tr_tf_ingest_outcome a, b;
    tr_error err;

    assert_int_equal(tr_tf_ingest_result(&fx->ingest, res, &meta, 1000, &a, &err), 0);
    assert_int_equal(tr_tf_ingest_result(&fx->ingest, res, &meta, 2000, &b, &err), 0);
    assert_int_equal(a.incident_id, b.incident_id);
    assert_int_equal(b.obs_outcome, TR_OBS_UPDATED);
    assert_int_equal(tr_store_incident_get(fx->store, a.incident_id, &inc, &err), 0);
    assert_int_equal(inc->observation_count, 2);
    tr_store_incident_free(inc);
    tr_tf_result_free(res);
}

static void test_successful_run_resolves_workspace_incidents(void **state)
{
    fixture *fx = *state;
    tr_tf_result *fail = parse_fixture("reference/apply.jsonl", TR_TF_OP_APPLY);
    tr_tf_result *init_fail = parse_fixture("provider/init.jsonl", TR_TF_OP_UNKNOWN);
    tr_tf_result *init_ok = parse_fixture("reference/init.jsonl", TR_TF_OP_UNKNOWN);
    tr_tf_result *ok = NULL, *again = NULL;
    tr_tf_meta meta = {.workspace = "app"}, other = {.workspace = "other"};
    tr_tf_ingest_outcome a, b, c, d;
    tr_store_incident *inc = NULL;
    tr_error err;

    assert_int_equal(tr_tf_log_parse(&ok, success_log, strlen(success_log), NULL, &err), 0);
    assert_int_equal(tr_tf_ingest_result(&fx->ingest, fail, &meta, 1000, &a, &err), 0);
    assert_int_equal(tr_tf_ingest_result(&fx->ingest, init_fail, &meta, 1000, &b, &err), 0);
    assert_int_equal(tr_tf_ingest_result(&fx->ingest, fail, &other, 1000, &c, &err), 0);

    /* A successful init fixes init failures only. */
    assert_int_equal(tr_tf_ingest_result(&fx->ingest, init_ok, &meta, 2000, &d, &err), 0);
    assert_int_equal(d.resolved, 1);
    assert_int_equal(tr_store_incident_get(fx->store, b.incident_id, &inc, &err), 0);
    assert_int_equal(inc->state, TR_INCIDENT_RESOLVED);
    tr_store_incident_free(inc);
    assert_int_equal(tr_store_incident_get(fx->store, a.incident_id, &inc, &err), 0);
    assert_int_equal(inc->state, TR_INCIDENT_OPEN);
    tr_store_incident_free(inc);

    /* A finished apply fixes the rest of its workspace, not other workspaces. */
    fx->event_count = 0;
    assert_int_equal(tr_tf_ingest_result(&fx->ingest, ok, &meta, 3000, &d, &err), 0);
    assert_false(d.failed);
    assert_int_equal(d.resolved, 1);
    assert_int_equal(fx->events[0], TR_TF_EVENT_RESOLVED);
    assert_int_equal(tr_store_incident_get(fx->store, a.incident_id, &inc, &err), 0);
    assert_int_equal(inc->state, TR_INCIDENT_RESOLVED);
    tr_store_incident_free(inc);
    assert_int_equal(tr_store_incident_get(fx->store, c.incident_id, &inc, &err), 0);
    assert_int_equal(inc->state, TR_INCIDENT_OPEN);
    tr_store_incident_free(inc);

    /* The same failure later reopens the resolved incident. */
    assert_int_equal(tr_tf_ingest_result(&fx->ingest, fail, &meta, 4000, &d, &err), 0);
    assert_int_equal(d.incident_id, a.incident_id);
    assert_int_equal(d.obs_outcome, TR_OBS_REOPENED);

    /* Warnings only: no verdict, nothing changes. */
    assert_int_equal(tr_tf_log_parse(&again, success_log, strlen(success_log) / 2, NULL, &err),
                     0);
    assert_int_equal(again->outcome, TR_TF_NO_VERDICT);
    assert_int_equal(tr_tf_ingest_result(&fx->ingest, again, &meta, 5000, &d, &err), 0);
    assert_false(d.failed);
    assert_int_equal(d.resolved, 0);

    tr_tf_result_free(fail);
    tr_tf_result_free(init_fail);
    tr_tf_result_free(init_ok);
    tr_tf_result_free(ok);
    tr_tf_result_free(again);
}

static void test_run_errored_without_log(void **state)
{
    fixture *fx = *state;
    tr_tf_meta meta = {.workspace = "networking", .run_id = "run-abc",
                       .run_url = "https://app.terraform.io/app/acme/networking/runs/run-abc"};
    tr_store_incident *inc = NULL;
    tr_tf_ingest_outcome out, again;
    cJSON *facts;
    tr_error err;

    assert_int_equal(tr_tf_ingest_run_errored(&fx->ingest, &meta, "Run errored", 1000, &out,
                                              &err), 0);
    assert_int_equal(tr_tf_ingest_run_errored(&fx->ingest, &meta, "Run errored", 1500, &again,
                                              &err), 0);
    assert_int_equal(out.incident_id, again.incident_id);
    assert_int_equal(tr_store_incident_get(fx->store, out.incident_id, &inc, &err), 0);
    assert_string_equal(inc->failure_class, "TerraformRunErrored");
    assert_string_equal(inc->kind, "TerraformRun");
    assert_string_equal(inc->name, "run-abc");
    assert_string_equal(inc->namespace, "networking");
    facts = cJSON_Parse(inc->facts_json);
    assert_string_equal(cJSON_GetObjectItem(facts, "run_url")->valuestring, meta.run_url);
    cJSON_Delete(facts);
    tr_store_incident_free(inc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_provisioner_failure_becomes_resource_incident,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_fixture_gets_its_incident, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_then_apply_of_same_error_is_one_incident, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_same_failure_twice_is_one_incident, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_successful_run_resolves_workspace_incidents, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_run_errored_without_log, setup, teardown),
    };
    TR_RUN_TESTS("tf_ingest", tests);
}
