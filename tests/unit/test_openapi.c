/*
 * test_openapi.c - Kubernetes manifests checked against a realistic /openapi/v2 fragment
 * (openapi_fixture.h): the misspelt field, the wrong type, the missing required field are
 * refused with their JSON path; Quantity maps, int-or-string, multi-document files pass;
 * a kind the cluster lacks is skipped; bad documents are clear errors.
 */
#include "testutil.h"

#include "openapi.h"
#include "tests/unit/openapi_fixture.h"

static tr_openapi_set *load(void)
{
    tr_openapi_set *set = NULL;
    tr_error err = {0};

    assert_int_equal(tr_openapi_parse(&set, openapi_fixture, strlen(openapi_fixture), &err),
                     TR_OK);
    return set;
}

/* Validate yaml; *text gets the detail (caller frees). */
static tr_patch_check_status check(const tr_openapi_set *set, const char *yaml, char **text)
{
    tr_buf detail = TR_BUF_INIT(16384);
    tr_patch_check_status st = tr_openapi_validate_yaml(set, yaml, strlen(yaml), &detail);

    *text = tr_strdup(tr_buf_cstr(&detail));
    tr_buf_dispose(&detail);
    return st;
}

#define DEPLOYMENT_HEAD                                                                       \
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n"          \
    "    app: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n"   \
    "  strategy:\n    rollingUpdate:\n      maxSurge: 25%\n      maxUnavailable: 1\n"     \
    "  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n"            \
    "      containers:\n      - name: web\n        image: nginx:1.25\n"                    \
    "        ports:\n        - containerPort: 80\n"

static void test_a_correct_deployment_with_quantities_and_int_or_string_passes(void **state)
{
    tr_openapi_set *set = load();
    char *text;

    (void)state;
    assert_int_equal(tr_openapi_kind_count(set), 3);
    assert_int_equal(check(set, DEPLOYMENT_HEAD
                           "        resources:\n          limits:\n            memory: 256Mi\n"
                           "            cpu: 1\n          requests:\n            cpu: 0.5\n"
                           "        env:\n        - name: MODE\n          value: \"8080\"\n",
                           &text),
                     TR_PATCH_CHECK_PASSED);
    assert_string_equal(text, "1 object(s) match the cluster's schema");
    tr_free(text);
    tr_openapi_free(set);
}

static void test_a_misspelt_field_is_refused_with_its_json_path(void **state)
{
    tr_openapi_set *set = load();
    char *text;

    (void)state;
    assert_int_equal(check(set, DEPLOYMENT_HEAD
                           "        resoures:\n          limits:\n            memory: 256Mi\n",
                           &text),
                     TR_PATCH_CHECK_FAILED);
    assert_string_equal(text, "apps/v1 Deployment web: "
                              "spec.template.spec.containers[0].resoures: unknown field\n");
    tr_free(text);
    tr_openapi_free(set);
}

static void test_wrong_types_and_missing_required_fields_are_each_named(void **state)
{
    tr_openapi_set *set = load();
    char *text;

    (void)state;
    assert_int_equal(check(set, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
                                "  name: api\nspec:\n  replicas: \"2\"\n  paused: yes\n"
                                "  strategy:\n    rollingUpdate:\n      maxSurge: true\n"
                                "  template:\n    spec:\n      containers:\n"
                                "      - image: x\n        ports:\n        - name: http\n"
                                "        - containerPort: 8.5\n        args: [1, \"b\"]\n"
                                "        resources:\n          limits: [1]\n",
                           &text),
                     TR_PATCH_CHECK_FAILED);
    assert_string_equal(text,
        "apps/v1 Deployment api: spec.replicas: wrong type: string where the schema wants "
        "integer\n"
        "apps/v1 Deployment api: spec.strategy.rollingUpdate.maxSurge: wrong type: boolean "
        "where the schema wants string\n"
        "apps/v1 Deployment api: spec.template.spec.containers[0].ports[0].containerPort: "
        "required field missing\n"
        "apps/v1 Deployment api: spec.template.spec.containers[0].ports[1].containerPort: "
        "wrong type: number where the schema wants integer\n"
        "apps/v1 Deployment api: spec.template.spec.containers[0].resources.limits: wrong "
        "type: array where the schema wants object\n"
        "apps/v1 Deployment api: spec.template.spec.containers[0].name: required field "
        "missing\n"
        "apps/v1 Deployment api: spec.selector: required field missing\n");
    tr_free(text);
    tr_openapi_free(set);
}

static void test_unknown_kinds_are_skipped_and_known_ones_still_checked(void **state)
{
    tr_openapi_set *set = load();
    char *text;

    (void)state;
    assert_int_equal(check(set, "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n"
                                "metadata:\n  name: web\nspec:\n  anything: 1\n",
                           &text),
                     TR_PATCH_CHECK_SKIPPED);
    assert_string_equal(text, "no object of a kind the cluster knows; monitoring.coreos.com/v1 "
                              "ServiceMonitor web skipped: the cluster has no schema for "
                              "monitoring.coreos.com/v1 ServiceMonitor");
    tr_free(text);
    assert_int_equal(check(set, "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
                                "spec:\n  selector:\n    app: web\n  ports:\n  - port: 80\n"
                                "    targetPort: http\n---\nreplicas: 3\n---\n"
                                "apiVersion: v1\nkind: Service\nmetadata:\n  name: db\n"
                                "spec:\n  ports:\n  - port: 5432\n    tragetPort: 5432\n",
                           &text),
                     TR_PATCH_CHECK_FAILED);
    assert_string_equal(text, "v1 Service db: spec.ports[0].tragetPort: unknown field\n");
    tr_free(text);
    /* "v1 Deployment" is not apps/v1 Deployment: the group matters. */
    assert_int_equal(tr_openapi_has_kind(set, "v1", "Deployment"), 0);
    assert_int_equal(tr_openapi_has_kind(set, "apps/v1", "Deployment"), 1);
    tr_openapi_free(set);
}

static void test_more_than_ten_errors_are_counted_not_listed(void **state)
{
    tr_openapi_set *set = load();
    tr_buf yaml = TR_BUF_INIT(65536);
    char *text;
    int i;

    (void)state;
    assert_int_equal(tr_buf_puts(&yaml, "apiVersion: v1\nkind: Service\nmetadata:\n"
                                        "  name: many\n"), TR_OK);
    for (i = 0; i < 25; i++)
        assert_int_equal(tr_buf_printf(&yaml, "extra%d: 1\n", i), TR_OK);
    assert_int_equal(check(set, tr_buf_cstr(&yaml), &text), TR_PATCH_CHECK_FAILED);
    assert_non_null(strstr(text, "v1 Service many: extra9: unknown field\n"
                                 "... and 15 more\n"));
    assert_null(strstr(text, "extra10"));
    tr_free(text);
    tr_buf_dispose(&yaml);
    tr_openapi_free(set);
}

static void test_bad_yaml_and_cyclic_refs_are_clear_not_fatal(void **state)
{
    tr_openapi_set *set = load();
    char *text;

    (void)state;
    assert_int_equal(check(set, "apiVersion: v1\nkind: Service\nspec: [\n", &text),
                     TR_PATCH_CHECK_FAILED);
    assert_non_null(strstr(text, "the YAML can not be read: YAML line"));
    tr_free(text);
    assert_int_equal(check(set, "a: &x 1\nb: *x\n", &text), TR_PATCH_CHECK_FAILED);
    assert_non_null(strstr(text, "aliases are not supported"));
    tr_free(text);
    /* Loop -> Loop2 -> allOf Loop ...: nothing to check against, and no hang. */
    assert_int_equal(check(set, "apiVersion: example.io/v1\nkind: Loop\nmetadata:\n"
                                "  name: l\nwhatever: 1\n", &text),
                     TR_PATCH_CHECK_PASSED);
    tr_free(text);
    tr_openapi_free(set);
}

static void test_malformed_openapi_documents_are_refused_with_the_reason(void **state)
{
    static const struct {
        const char *json;
        const char *why;
    } cases[] = {
        {"", "not a JSON object"},
        {"[1,2]", "not a JSON object"},
        {"{\"swagger\":\"2.0\",\"definitions\":[]}", "no \"definitions\" object"},
        {"{\"definitions\":{\"a\":{\"type\":\"object\"}}}", "x-kubernetes-group-version-kind"},
        {"{\"definitions\":{\"a\":{\"x-kubernetes-group-version-kind\":[{\"kind\":1}]}}}",
         "x-kubernetes-group-version-kind"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tr_openapi_set *set = (tr_openapi_set *)1;
        tr_error err = {0};

        assert_int_equal(tr_openapi_parse(&set, cases[i].json, strlen(cases[i].json), &err),
                         TR_EPARSE);
        assert_null(set);
        assert_non_null(strstr(err.message, cases[i].why));
    }
}

static void test_parse_survives_every_allocation_failure(void **state)
{
    int n;

    (void)state;
    for (n = 1; n < 400; n++) {
        tr_openapi_set *set = NULL;
        tr_error err = {0};
        int rc;

        tr_alloc_fail_after(n, 1);
        rc = tr_openapi_parse(&set, openapi_fixture, strlen(openapi_fixture), &err);
        if (rc == TR_OK) {
            tr_buf detail = TR_BUF_INIT(4096);

            (void)tr_openapi_validate_yaml(set, DEPLOYMENT_HEAD, strlen(DEPLOYMENT_HEAD),
                                           &detail);
            tr_buf_dispose(&detail);
        }
        tr_alloc_fail_after(0, 0);
        tr_openapi_free(set);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_correct_deployment_with_quantities_and_int_or_string_passes),
        cmocka_unit_test(test_a_misspelt_field_is_refused_with_its_json_path),
        cmocka_unit_test(test_wrong_types_and_missing_required_fields_are_each_named),
        cmocka_unit_test(test_unknown_kinds_are_skipped_and_known_ones_still_checked),
        cmocka_unit_test(test_more_than_ten_errors_are_counted_not_listed),
        cmocka_unit_test(test_bad_yaml_and_cyclic_refs_are_clear_not_fatal),
        cmocka_unit_test(test_malformed_openapi_documents_are_refused_with_the_reason),
        cmocka_unit_test(test_parse_survives_every_allocation_failure),
    };

    TR_RUN_TESTS("openapi", tests);
}
