#include "testutil.h"

#include "llm/rules.h"

/*
 * The rule-based analysis of every failure class in docs/incident-facts.md:
 * each case gives the facts a watcher records and checks that the summary and
 * root cause state them specifically (names, numbers, the likely cause).
 */

typedef struct rule_case {
    const char *source;
    const char *kind;
    const char *name;
    const char *failure_class;
    const char *facts;
    const char *summary_has[3];
    const char *root_has[2];
    const char *severity;
} rule_case;

static const rule_case cases[] = {
    {"kubernetes", "Deployment", "checkout", "CrashLoopBackOff",
     "{\"container\":\"app\",\"restart_count\":7,\"exit_code\":127,\"reason\":\"Error\","
     "\"image\":\"shop/checkout:1.4\"}",
     {"container app of shop/checkout is in CrashLoopBackOff", "restarted 7 times",
      "exit code 127"},
     {"command was not found", NULL}, "error"},
    {"kubernetes", "Deployment", "checkout", "OOMKilled",
     "{\"container\":\"app\",\"restart_count\":5,\"exit_code\":137,\"memory_limit\":\"64Mi\","
     "\"memory_request\":\"32Mi\"}",
     {"container app of shop/checkout was OOMKilled (exit 137) 5 times; its memory limit is "
      "64Mi", NULL, NULL},
     {"limit of 64Mi (request 32Mi)", NULL}, "error"},
    {"kubernetes", "Deployment", "checkout", "ImagePullBackOff",
     "{\"container\":\"app\",\"image\":\"shop/checkout:9.9\",\"reason\":\"ErrImagePull\","
     "\"message\":\"rpc error: manifest unknown\"}",
     {"cannot pull image shop/checkout:9.9 (ErrImagePull)", NULL, NULL},
     {"does not exist in the registry", NULL}, "error"},
    {"kubernetes", "Deployment", "checkout", "ImagePullBackOff",
     "{\"container\":\"app\",\"image\":\"registry.io/p/app:1\",\"reason\":\"ImagePullBackOff\","
     "\"message\":\"pull access denied, authorization failed\"}",
     {"cannot pull image registry.io/p/app:1", NULL, NULL}, {"no valid credentials", "pull access denied"}, "error"},
    {"kubernetes", "Deployment", "checkout", "CreateContainerConfigError",
     "{\"container\":\"app\",\"missing_kind\":\"Secret\",\"missing_name\":\"db-creds\","
     "\"missing_key\":\"DB_PASSWORD\"}",
     {"key DB_PASSWORD of Secret db-creds is missing", NULL, NULL},
     {"shop/db-creds", NULL}, "error"},
    {"kubernetes", "Deployment", "web", "FailedScheduling",
     "{\"scheduler_message\":\"0/1 nodes are available: 1 Insufficient cpu.\","
     "\"requests\":{\"cpu\":\"4\",\"memory\":\"1Gi\"}}",
     {"pods of shop/web cannot be scheduled: 0/1 nodes are available: 1 Insufficient cpu.",
      NULL, NULL},
     {"free cpu for the pod's requests (cpu 4, memory 1Gi)", NULL}, "error"},
    {"kubernetes", "Deployment", "web", "Unhealthy",
     "{\"container\":\"web\",\"probe\":\"liveness\",\"count\":12,"
     "\"probe_output\":\"Get http://10.0.0.5:8080/healthz: dial tcp: connection refused\"}",
     {"liveness probe of container web of shop/web is failing (12 failures)", NULL, NULL},
     {"Nothing listens on the probed port", NULL}, "error"},
    {"kubernetes", "Deployment", "web", "FailedMount",
     "{\"volume\":\"certs\",\"reason\":\"FailedMount\","
     "\"message\":\"MountVolume.SetUp failed for volume \\\"certs\\\" : secret \\\"tls\\\" not "
     "found\"}",
     {"volume certs of shop/web cannot be mounted", NULL, NULL}, {"does not exist", NULL},
     "error"},
    {"kubernetes", "Deployment", "web", "ProgressDeadlineExceeded",
     "{\"message\":\"ReplicaSet \\\"web-5d\\\" has timed out progressing.\",\"replicas\":3,"
     "\"ready_replicas\":1,\"revision\":\"4\"}",
     {"Deployment shop/web did not finish its rollout of revision 4", "1/3 replicas ready",
      NULL},
     {"has timed out progressing", NULL}, "error"},
    {"kubernetes", "Job", "migrate", "BackoffLimitExceeded",
     "{\"message\":\"Job has reached the specified backoff limit\",\"failed\":6,"
     "\"backoff_limit\":6}",
     {"Job shop/migrate failed: 6 pod(s) failed, reaching its backoffLimit of 6", NULL, NULL},
     {"backoff limit", NULL}, "error"},
    {"kubernetes", "Job", "report", "DeadlineExceeded",
     "{\"message\":\"Job was active longer than specified deadline\","
     "\"active_deadline_seconds\":600}",
     {"Job shop/report exceeded its deadline of 600 s", NULL, NULL},
     {"activeDeadlineSeconds", NULL}, "error"},
    {"kubernetes", "Node", "worker-3", "NodeNotReady",
     "{\"node\":\"worker-3\",\"reason\":\"NodeStatusUnknown\","
     "\"message\":\"Kubelet stopped posting node status.\",\"since\":\"2026-11-25T09:00:00Z\"}",
     {"node worker-3 is NotReady since 2026-11-25T09:00:00Z (NodeStatusUnknown)", NULL, NULL},
     {"stopped reporting", NULL}, "critical"},
    {"kubernetes", "PersistentVolumeClaim", "data", "ProvisioningFailed",
     "{\"pvc\":\"data\",\"storage_class\":\"fast-ssd\","
     "\"message\":\"storageclass.storage.k8s.io \\\"fast-ssd\\\" not found\"}",
     {"PVC shop/data stays Pending", "(storage class fast-ssd)", NULL},
     {"storage class fast-ssd does not exist", NULL}, "error"},
    {"kubernetes", "Application", "shop", "ArgoSyncFailed",
     "{\"app\":\"shop\",\"sync_status\":\"OutOfSync\",\"message\":\"one or more objects failed "
     "to apply\",\"repo_url\":\"https://git.example.com/ops.git\",\"path\":\"apps/shop\","
     "\"revision\":\"abc123\"}",
     {"Argo CD application shop failed to sync revision abc123", "failed to apply", NULL},
     {"https://git.example.com/ops.git path apps/shop", NULL}, "error"},
    {"kubernetes", "Application", "shop", "ArgoDegraded",
     "{\"app\":\"shop\",\"sync_status\":\"Synced\",\"health_status\":\"Degraded\","
     "\"message\":\"Deployment checkout has 0 ready replicas\"}",
     {"Argo CD application shop is Degraded (health Degraded, sync Synced)", NULL, NULL},
     {"0 ready replicas", NULL}, "error"},
    {"kubernetes", "HelmRelease", "podinfo", "FluxNotReady",
     "{\"reason\":\"RetriesExceeded\",\"message\":\"Helm test failed\",\"revision\":\"6.5.0\"}",
     {"Flux HelmRelease shop/podinfo is not Ready (RetriesExceeded)", "Helm test failed", NULL},
     {"could not be installed or upgraded (RetriesExceeded)", NULL}, "error"},
    {"terraform", "TerraformResource", "terraform_data.migrate", "TerraformApplyFailed",
     "{\"operation\":\"apply\",\"workspace\":\"prod\",\"address\":\"terraform_data.migrate\","
     "\"provisioner_output\":[\"ERROR: relation \\\"orders\\\" does not exist\"],"
     "\"diagnostics\":[{\"severity\":\"error\",\"summary\":\"local-exec provisioner error\","
     "\"detail\":\"Error running command: exit status 3.\",\"filename\":\"main.tf\","
     "\"start_line\":12,\"address\":\"terraform_data.migrate\"}]}",
     {"terraform apply failed in workspace prod: local-exec provisioner error "
      "(terraform_data.migrate)",
      NULL, NULL},
     {"provisioner of terraform_data.migrate failed", "exit status 3"}, "error"},
    {"terraform", "TerraformConfig", "main.tf", "TerraformPlanFailed",
     "{\"operation\":\"plan\",\"workspace\":\"dev\",\"diagnostics\":[{\"severity\":\"error\","
     "\"summary\":\"Reference to undeclared input variable\",\"detail\":\"An input variable "
     "with the name \\\"image_tag\\\" has not been declared.\",\"filename\":\"main.tf\","
     "\"start_line\":7}]}",
     {"terraform plan failed in workspace dev: Reference to undeclared input variable (main.tf:7)",
      NULL, NULL},
     {"not declared", "image_tag"}, "error"},
    {"terraform", "TerraformRun", "run", "TerraformInitFailed",
     "{\"operation\":\"init\",\"workspace\":\"dev\",\"diagnostics\":[{\"severity\":\"error\","
     "\"summary\":\"Failed to query available provider packages\",\"detail\":\"could not "
     "connect to registry.terraform.io\"}]}",
     {"terraform init failed in workspace dev: Failed to query available provider packages",
      NULL, NULL},
     {"registry is unreachable", "registry.terraform.io"}, "error"},
    {"terraform", "TerraformConfig", "main.tf", "TerraformValidateFailed",
     "{\"operation\":\"validate\",\"workspace\":\"dev\",\"diagnostics\":[{\"severity\":"
     "\"error\",\"summary\":\"Invalid value for variable\",\"detail\":\"replicas must be at "
     "least 1.\",\"filename\":\"main.tf\",\"start_line\":4}]}",
     {"terraform validate failed in workspace dev: Invalid value for variable", NULL, NULL},
     {"validation rule", "replicas must be at least 1."}, "error"},
    {"terraform", "TerraformRun", "run-abc", "TerraformRunErrored",
     "{\"run_id\":\"run-abc\",\"workspace\":\"prod\","
     "\"run_url\":\"https://app.terraform.io/app/org/prod/runs/run-abc\"}",
     {"HCP Terraform run run-abc in workspace prod errored", NULL, NULL},
     {"https://app.terraform.io/app/org/prod/runs/run-abc", NULL}, "error"},
};

static void check_case(const rule_case *c)
{
    tr_store_incident inc;
    tr_llm_reply *r = NULL;
    tr_error err;

    memset(&inc, 0, sizeof(inc));
    inc.source = c->source;
    inc.namespace = "shop";
    inc.kind = c->kind;
    inc.name = c->name;
    inc.failure_class = c->failure_class;
    inc.facts_json = c->facts;
    inc.observation_count = 3;
    assert_int_equal(tr_rules_analyze(&inc, &r, &err), 0);
    for (int i = 0; i < 3; i++)
        if (c->summary_has[i] && strstr(r->summary, c->summary_has[i]) == NULL)
            fail_msg("%s: summary [%s] lacks [%s]", c->failure_class, r->summary,
                     c->summary_has[i]);
    for (int i = 0; i < 2; i++)
        if (c->root_has[i] && strstr(r->root_cause, c->root_has[i]) == NULL)
            fail_msg("%s: root cause [%s] lacks [%s]", c->failure_class, r->root_cause,
                     c->root_has[i]);
    assert_string_equal(r->severity, c->severity);
    assert_string_equal(r->patch, "");
    assert_true(r->confidence > 0.0 && r->confidence <= 1.0);
    assert_true(r->remediation_count >= 1);
    assert_true(r->remediation_json[0] == '[');
    tr_llm_reply_free(r);
}

static void test_rules_cover_every_failure_class(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_case(&cases[i]);
}

static void test_rules_unknown_class_is_generic_with_low_confidence(void **state)
{
    tr_store_incident inc;
    tr_llm_reply *r = NULL;
    tr_error err;

    memset(&inc, 0, sizeof(inc));
    inc.namespace = "shop";
    inc.kind = "Deployment";
    inc.name = "web";
    inc.failure_class = "SomethingNew";
    inc.message = "weird thing happened";
    inc.facts_json = "not json";
    assert_int_equal(tr_rules_analyze(&inc, &r, &err), 0);
    assert_non_null(strstr(r->summary, "SomethingNew on Deployment shop/web: weird thing"));
    assert_true(r->confidence < 0.5);
    tr_llm_reply_free(r);
}

static void test_rules_missing_facts_still_give_an_analysis(void **state)
{
    tr_store_incident inc;
    tr_llm_reply *r = NULL;
    tr_error err;

    memset(&inc, 0, sizeof(inc));
    inc.namespace = "shop";
    inc.name = "checkout";
    inc.failure_class = "OOMKilled";
    assert_int_equal(tr_rules_analyze(&inc, &r, &err), 0);
    assert_non_null(strstr(r->summary, "shop/checkout was OOMKilled (exit 137); it has no memory "
                                       "limit"));
    tr_llm_reply_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_cover_every_failure_class),
        cmocka_unit_test(test_rules_unknown_class_is_generic_with_low_confidence),
        cmocka_unit_test(test_rules_missing_facts_still_give_an_analysis),
    };

    TR_RUN_TESTS("llm_rules", tests);
}
