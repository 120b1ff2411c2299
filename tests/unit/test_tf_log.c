#include "testutil.h"

#include <cjson/cJSON.h>

#include "buf.h"
#include "error.h"
#include "tf_facts.h"
#include "tf_log.h"

#define FIXTURES "../shared/fixtures/terraform/"

/* Whole file into a NUL-terminated buffer (caller frees); fails the test when unreadable. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    tr_buf b = TR_BUF_INIT(0);
    char chunk[4096];
    size_t n;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(tr_buf_put(&b, chunk, n), 0);
    fclose(f);
    *len = b.len;
    if (b.ptr == NULL)
        return tr_strdup("");
    return tr_buf_detach(&b);
}

static tr_tf_result *parse_file(const char *rel, tr_tf_operation hint)
{
    char path[512];
    tr_tf_log_options opt = {0};
    tr_tf_result *res = NULL;
    tr_error err = {0};
    size_t len;
    char *data;

    snprintf(path, sizeof(path), FIXTURES "%s", rel);
    data = slurp(path, &len);
    opt.operation_hint = hint;
    if (tr_tf_log_parse(&res, data, len, &opt, &err) != 0)
        fail_msg("%s: %s", rel, err.message);
    tr_free(data);
    return res;
}

/* Line n (1-based) of a fixture's .tf file, without its newline, into out. */
static void tf_line(const char *rel, int n, char *out, size_t size)
{
    char path[512];
    FILE *f;
    int i;

    snprintf(path, sizeof(path), FIXTURES "%s", rel);
    f = fopen(path, "r");
    assert_non_null(f);
    for (i = 0; i < n; i++)
        assert_non_null(fgets(out, (int)size, f));
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

/*
 * Checks a failed fixture: first error summary, its file and line, and that the line
 * Terraform quoted is the line of the .tf file (when it quoted one).
 */
static const tr_tf_diagnostic *expect_error(const tr_tf_result *res, const char *summary,
                                            const char *dir, const char *file, int line)
{
    const tr_tf_diagnostic *d = tr_tf_first_error(res);
    char rel[256], text[512];

    assert_int_equal(res->outcome, TR_TF_FAILED);
    assert_non_null(d);
    assert_string_equal(d->summary, summary);
    assert_string_equal(res->terraform_version, "1.11.4");
    if (file == NULL) {
        assert_null(d->filename);
        assert_int_equal(d->start_line, 0);
        return d;
    }
    assert_string_equal(d->filename, file);
    assert_int_equal(d->start_line, line);
    if (d->snippet_code) {
        snprintf(rel, sizeof(rel), "%s/%s", dir, file);
        tf_line(rel, line, text, sizeof(text));
        assert_string_equal(d->snippet_code, text);
    }
    return d;
}

static void test_validation_fixture_names_variable_rule(void **state)
{
    tr_tf_result *res = parse_file("validation/apply.jsonl", TR_TF_OP_UNKNOWN);
    const tr_tf_diagnostic *d =
        expect_error(res, "Invalid value for variable", "validation", "main.tf", 1);
    char *fp = NULL;
    tr_tf_meta meta = {.workspace = "prod"};

    assert_int_equal(d->value_count, 1);
    assert_string_equal(d->values[0].traversal, "var.replicas");
    assert_string_equal(d->values[0].statement, "is 0");
    assert_non_null(strstr(d->detail, "replicas must be at least 1."));
    /* Only a version line and a diagnostic: the log does not say which command ran. */
    assert_int_equal(res->operation, TR_TF_OP_UNKNOWN);
    assert_string_equal(tr_tf_failure_class(res), "TerraformPlanFailed");
    assert_int_equal(tr_tf_fingerprint(&fp, res, &meta), 0);
    assert_string_equal(fp, "tf/prod/main.tf/Invalid value for variable");
    tr_free(fp);
    tr_tf_result_free(res);

    res = parse_file("validation/apply.jsonl", TR_TF_OP_APPLY);
    assert_string_equal(tr_tf_failure_class(res), "TerraformApplyFailed");
    tr_tf_result_free(res);
}

static void test_provisioner_fixture_names_resource_and_output(void **state)
{
    tr_tf_result *res = parse_file("provisioner/apply.jsonl", TR_TF_OP_UNKNOWN);
    const char *kind, *name;
    size_t i;
    int found = 0;

    expect_error(res, "local-exec provisioner error", "provisioner", "main.tf", 3);
    assert_int_equal(res->operation, TR_TF_OP_APPLY);
    assert_string_equal(tr_tf_failure_class(res), "TerraformApplyFailed");
    assert_string_equal(res->address, "terraform_data.migrate");
    assert_null(res->module);
    assert_string_equal(res->provisioner, "local-exec");
    for (i = 0; i < res->provisioner_output_count; i++)
        found |= strcmp(res->provisioner_output[i],
                        "ERROR: relation \"orders\" does not exist") == 0;
    assert_true(found);
    tr_tf_object(res, NULL, &kind, &name);
    assert_string_equal(kind, "TerraformResource");
    assert_string_equal(name, "terraform_data.migrate");
    tr_tf_result_free(res);
}

static void test_syntax_fixture_fails_init_and_apply(void **state)
{
    tr_tf_result *res = parse_file("syntax/init.jsonl", TR_TF_OP_UNKNOWN);

    expect_error(res, "Invalid expression", "syntax", "main.tf", 4);
    assert_int_equal(res->operation, TR_TF_OP_INIT);
    assert_int_equal(res->error_count, 2);
    assert_string_equal(tr_tf_failure_class(res), "TerraformInitFailed");
    tr_tf_result_free(res);

    res = parse_file("syntax/apply.jsonl", TR_TF_OP_APPLY);
    expect_error(res, "Invalid expression", "syntax", "main.tf", 4);
    assert_string_equal(res->diagnostics[0].snippet_context, "resource \"terraform_data\" \"x\"");
    tr_tf_result_free(res);
}

static void test_provider_fixture_has_errors_without_range(void **state)
{
    tr_tf_result *res = parse_file("provider/init.jsonl", TR_TF_OP_UNKNOWN);
    const char *kind, *name;
    tr_tf_meta meta = {.workspace = "net", .run_id = "run-7"};
    char *fp = NULL;

    expect_error(res, "Failed to query available provider packages", "provider", NULL, 0);
    assert_string_equal(tr_tf_failure_class(res), "TerraformInitFailed");
    tr_tf_object(res, &meta, &kind, &name);
    assert_string_equal(kind, "TerraformRun");
    assert_string_equal(name, "run-7");
    assert_int_equal(tr_tf_fingerprint(&fp, res, &meta), 0);
    assert_string_equal(fp, "tf/net//Failed to query available provider packages");
    tr_free(fp);
    tr_tf_result_free(res);

    res = parse_file("provider/apply.jsonl", TR_TF_OP_APPLY);
    expect_error(res, "Inconsistent dependency lock file", "provider", NULL, 0);
    tr_tf_result_free(res);
}

static void test_module_fixture_points_into_module_file(void **state)
{
    tr_tf_result *res = parse_file("module/apply.jsonl", TR_TF_OP_APPLY);
    const tr_tf_diagnostic *d =
        expect_error(res, "Resource precondition failed", "module", "modules/db/main.tf", 6);
    const char *kind, *name;

    assert_string_equal(d->values[0].statement, "is \"db.t3.nano\"");
    tr_tf_object(res, NULL, &kind, &name);
    assert_string_equal(kind, "TerraformConfig");
    assert_string_equal(name, "modules/db/main.tf");
    tr_tf_result_free(res);
}

static void test_reference_fixture_points_at_undeclared_variable(void **state)
{
    tr_tf_result *res = parse_file("reference/apply.jsonl", TR_TF_OP_APPLY);

    expect_error(res, "Reference to undeclared input variable", "reference", "main.tf", 2);
    tr_tf_result_free(res);
}

static void test_successful_inits_are_not_failures(void **state)
{
    static const char *const dirs[] = {"validation", "provisioner", "module", "reference"};
    char rel[128];
    size_t i;

    for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        tr_tf_result *res;
        snprintf(rel, sizeof(rel), "%s/init.jsonl", dirs[i]);
        res = parse_file(rel, TR_TF_OP_UNKNOWN);
        assert_int_equal(res->outcome, TR_TF_SUCCEEDED);
        assert_int_equal(res->operation, TR_TF_OP_INIT);
        assert_int_equal(res->error_count, 0);
        assert_null(tr_tf_failure_class(res));
        assert_true(res->final_message_seen);
        tr_tf_result_free(res);
    }
}

static void test_successful_applies_from_other_sources(void **state)
{
    tr_tf_result *res = parse_file("terraform-1.8.0-apply-json-gcp.jsonl", TR_TF_OP_UNKNOWN);

    assert_int_equal(res->outcome, TR_TF_SUCCEEDED);
    assert_int_equal(res->operation, TR_TF_OP_APPLY);
    assert_int_equal(res->changes_add, 18);
    assert_true(res->final_message_seen);
    tr_tf_result_free(res);

    /* Terraform 0.15's UI schema was 0.1.0: still understood. */
    res = parse_file("tf-docs-apply-json-sample.jsonl", TR_TF_OP_UNKNOWN);
    assert_int_equal(res->outcome, TR_TF_SUCCEEDED);
    assert_string_equal(res->terraform_version, "0.15.4");
    tr_tf_result_free(res);

    res = parse_file("coder-terraform-diagnostic-lines.jsonl", TR_TF_OP_UNKNOWN);
    assert_int_equal(res->error_count, 2);
    assert_string_equal(tr_tf_first_error(res)->summary, "Unsupported attribute");
    assert_int_equal(tr_tf_first_error(res)->start_line, 230);
    tr_tf_result_free(res);
}

/* Same bytes fed one at a time give the same result as one feed. */
static void test_garbage_lines_skipped_and_chunking_irrelevant(void **state)
{
    size_t len, i;
    char *fixture = slurp(FIXTURES "provisioner/apply.jsonl", &len);
    tr_buf b = TR_BUF_INIT(0);
    tr_tf_log *log = NULL;
    tr_tf_result *res = NULL;
    tr_error err;

    assert_int_equal(tr_buf_puts(&b, "There are some problems with the CLI configuration:\n"
                                      "\xe2\x95\xb7\n\n   \n[1, 2]\n{\"no\": \"type\"}\n{broken\n"),
                     0);
    assert_int_equal(tr_buf_put(&b, fixture, len), 0);
    assert_int_equal(tr_buf_puts(&b, "\r\n##[error]Process completed with exit code 1.\n"), 0);
    assert_int_equal(tr_tf_log_new(&log, NULL), 0);
    for (i = 0; i < b.len; i++)
        assert_int_equal(tr_tf_log_feed(log, b.ptr + i, 1), 0);
    assert_int_equal(tr_tf_log_finish(log, &res, &err), 0);
    assert_int_equal(res->skipped_lines, 6);
    assert_int_equal(res->messages, 10);
    assert_string_equal(res->address, "terraform_data.migrate");
    assert_string_equal(tr_tf_first_error(res)->summary, "local-exec provisioner error");
    assert_false(res->truncated_last_line);
    tr_tf_result_free(res);
    tr_tf_log_free(log);
    tr_buf_dispose(&b);
    tr_free(fixture);
}

static void test_big_log_streams_with_bounded_output(void **state)
{
    static const char progress[] =
        "{\"@level\":\"info\",\"@message\":\"x\",\"type\":\"provision_progress\",\"hook\":{"
        "\"resource\":{\"addr\":\"terraform_data.seed\",\"module\":\"\"},"
        "\"provisioner\":\"local-exec\",\"output\":\"row %06d inserted\"}}\n";
    static const char tail[] =
        "{\"type\":\"provision_errored\",\"@message\":\"x\",\"hook\":{\"resource\":{\"addr\":"
        "\"terraform_data.seed\",\"module\":\"\"},\"provisioner\":\"local-exec\"}}\n"
        "{\"type\":\"apply_errored\",\"@message\":\"x\",\"hook\":{\"resource\":{\"addr\":"
        "\"terraform_data.seed\",\"module\":\"\"}}}\n"
        "{\"type\":\"diagnostic\",\"@level\":\"error\",\"@message\":\"Error: seed failed\","
        "\"diagnostic\":{\"severity\":\"error\",\"summary\":\"seed failed\",\"detail\":\"\"}}\n";
    tr_buf b = TR_BUF_INIT(0);
    tr_tf_log_options opt = {.max_output_lines = 5};
    tr_tf_result *res = NULL;
    tr_tf_log *log = NULL;
    tr_error err;
    size_t off;
    int i = 0;

    while (b.len < (size_t)5 * 1024 * 1024)
        assert_int_equal(tr_buf_printf(&b, progress, i++), 0);
    assert_int_equal(tr_buf_puts(&b, tail), 0);
    assert_int_equal(tr_tf_log_new(&log, &opt), 0);
    for (off = 0; off < b.len; off += 65536) {
        size_t n = b.len - off < 65536 ? b.len - off : 65536;
        assert_int_equal(tr_tf_log_feed(log, b.ptr + off, n), 0);
    }
    assert_int_equal(tr_tf_log_finish(log, &res, &err), 0);
    assert_int_equal(res->outcome, TR_TF_FAILED);
    assert_int_equal(res->provisioner_output_count, 5);
    assert_int_equal(res->provisioner_output_dropped, (size_t)i - 5);
    {
        char want[32];
        snprintf(want, sizeof(want), "row %06d inserted", i - 1);
        assert_string_equal(res->provisioner_output[4], want);
    }
    assert_string_equal(res->address, "terraform_data.seed");
    tr_tf_result_free(res);
    tr_tf_log_free(log);
    tr_buf_dispose(&b);
}

static void test_warnings_only_is_no_failure(void **state)
{
    static const char warn[] =
        "{\"@level\":\"info\",\"@message\":\"Terraform 1.11.4\",\"terraform\":\"1.11.4\","
        "\"type\":\"version\",\"ui\":\"1.2\"}\n"
        "{\"@level\":\"warn\",\"@message\":\"Warning: Oh no\",\"type\":\"diagnostic\","
        "\"diagnostic\":{\"severity\":\"warning\",\"summary\":\"Oh no\",\"detail\":\"broken\"}}\n";
    static const char summary[] =
        "{\"@message\":\"Plan: 0 to add\",\"type\":\"change_summary\",\"changes\":{\"add\":0,"
        "\"change\":0,\"import\":0,\"remove\":0,\"operation\":\"plan\"}}\n";
    tr_buf b = TR_BUF_INIT(0);
    tr_tf_result *res = NULL;
    tr_error err;

    assert_int_equal(tr_tf_log_parse(&res, warn, strlen(warn), NULL, &err), 0);
    assert_int_equal(res->outcome, TR_TF_NO_VERDICT);
    assert_int_equal(res->warning_count, 1);
    assert_null(tr_tf_failure_class(res));
    assert_null(res->diagnostics[0].filename);
    tr_tf_result_free(res);

    assert_int_equal(tr_buf_puts(&b, warn), 0);
    assert_int_equal(tr_buf_puts(&b, summary), 0);
    assert_int_equal(tr_tf_log_parse(&res, b.ptr, b.len, NULL, &err), 0);
    assert_int_equal(res->outcome, TR_TF_SUCCEEDED);
    assert_int_equal(res->operation, TR_TF_OP_PLAN);
    tr_tf_result_free(res);
    tr_buf_dispose(&b);
}

static void test_truncated_last_line_is_tolerated(void **state)
{
    size_t len;
    char *data = slurp(FIXTURES "reference/apply.jsonl", &len);
    static const char cut[] = "{\"@level\":\"error\",\"@message\":\"Error: Unsupp";
    tr_buf b = TR_BUF_INIT(0);
    tr_tf_result *res = NULL;
    tr_error err;

    assert_int_equal(tr_buf_put(&b, data, len), 0);
    assert_int_equal(tr_buf_puts(&b, cut), 0);
    assert_int_equal(tr_tf_log_parse(&res, b.ptr, b.len, NULL, &err), 0);
    assert_true(res->truncated_last_line);
    assert_int_equal(res->error_count, 1);
    assert_string_equal(tr_tf_first_error(res)->summary, "Reference to undeclared input variable");
    tr_tf_result_free(res);
    tr_buf_dispose(&b);
    tr_free(data);
}

static void test_garbage_and_empty_input_are_refused(void **state)
{
    static const char text[] = "Error: Invalid expression\n\n  on main.tf line 4:\n   4: }\n";
    tr_tf_result *res = NULL;
    tr_error err;

    assert_int_equal(tr_tf_log_parse(&res, "", 0, NULL, &err), TR_EPARSE);
    assert_null(res);
    assert_int_equal(tr_tf_log_parse(&res, text, strlen(text), NULL, &err), TR_EPARSE);
    assert_non_null(strstr(err.message, "-json"));
    assert_int_equal(tr_tf_log_parse(&res, "{\"type\":\"version\",\"ui\":\"2.0\"}\n", 30, NULL,
                                     &err),
                     TR_EPARSE);
    assert_non_null(strstr(err.message, "UI version 2.0"));
}

static void test_caps_on_lines_and_diagnostics(void **state)
{
    tr_tf_log_options opt = {.max_line_bytes = 256, .max_diagnostics = 3};
    tr_buf b = TR_BUF_INIT(0);
    tr_tf_result *res = NULL;
    tr_error err;
    int i;

    assert_int_equal(tr_buf_puts(&b, "{\"type\":\"log\",\"@message\":\""), 0);
    for (i = 0; i < 1000; i++)
        assert_int_equal(tr_buf_putc(&b, 'x'), 0);
    assert_int_equal(tr_buf_puts(&b, "\"}\n"), 0);
    for (i = 0; i < 2; i++)
        assert_int_equal(tr_buf_printf(&b, "{\"type\":\"diagnostic\",\"diagnostic\":{\"severity\":"
                                           "\"warning\",\"summary\":\"w%d\"}}\n", i), 0);
    for (i = 0; i < 5; i++)
        assert_int_equal(tr_buf_printf(&b, "{\"type\":\"diagnostic\",\"diagnostic\":{\"severity\":"
                                           "\"error\",\"summary\":\"e%d\"}}\n", i), 0);
    assert_int_equal(tr_tf_log_parse(&res, b.ptr, b.len, &opt, &err), 0);
    assert_int_equal(res->oversized_lines, 1);
    assert_int_equal(res->error_count, 5);
    assert_int_equal(res->warning_count, 2);
    /* Errors displaced both warnings; the three first errors are kept, in order. */
    assert_int_equal(res->diagnostic_count, 3);
    assert_string_equal(res->diagnostics[0].summary, "e0");
    assert_string_equal(res->diagnostics[2].summary, "e2");
    assert_int_equal(res->diagnostics_dropped, 4);
    tr_tf_result_free(res);
    tr_buf_dispose(&b);
}

static void test_facts_follow_the_contract(void **state)
{
    tr_tf_result *res = parse_file("provisioner/apply.jsonl", TR_TF_OP_UNKNOWN);
    tr_tf_meta meta = {.workspace = "billing", .repo_path = "infra/billing",
                       .commit = "abc123", .run_id = "run-1", .run_url = "https://x/run-1"};
    const cJSON *diag;
    char *text = NULL;
    cJSON *facts;

    assert_int_equal(tr_tf_facts_json(&text, res, &meta), 0);
    facts = cJSON_Parse(text);
    assert_non_null(facts);
    assert_string_equal(cJSON_GetObjectItem(facts, "operation")->valuestring, "apply");
    assert_string_equal(cJSON_GetObjectItem(facts, "terraform_version")->valuestring, "1.11.4");
    assert_string_equal(cJSON_GetObjectItem(facts, "workspace")->valuestring, "billing");
    assert_string_equal(cJSON_GetObjectItem(facts, "repo_path")->valuestring, "infra/billing");
    assert_string_equal(cJSON_GetObjectItem(facts, "commit")->valuestring, "abc123");
    assert_string_equal(cJSON_GetObjectItem(facts, "run_url")->valuestring, "https://x/run-1");
    assert_string_equal(cJSON_GetObjectItem(facts, "address")->valuestring,
                        "terraform_data.migrate");
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(facts, "provisioner_output")) >= 1);
    diag = cJSON_GetArrayItem(cJSON_GetObjectItem(facts, "diagnostics"), 0);
    assert_string_equal(cJSON_GetObjectItem(diag, "severity")->valuestring, "error");
    assert_string_equal(cJSON_GetObjectItem(diag, "filename")->valuestring, "main.tf");
    assert_int_equal(cJSON_GetObjectItem(diag, "start_line")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(diag, "end_line")->valueint, 3);
    assert_string_equal(cJSON_GetObjectItem(diag, "code")->valuestring,
                        "  provisioner \"local-exec\" {");
    assert_string_equal(cJSON_GetObjectItem(diag, "address")->valuestring,
                        "terraform_data.migrate");
    assert_non_null(cJSON_GetObjectItem(diag, "snippet"));
    cJSON_Delete(facts);
    tr_free(text);

    assert_int_equal(tr_tf_title(&text, res), 0);
    assert_string_equal(text, "terraform apply failed: local-exec provisioner error "
                              "(terraform_data.migrate)");
    tr_free(text);
    tr_tf_result_free(res);
}

static void test_operation_guess_from_names(void **state)
{
    assert_int_equal(tr_tf_operation_guess("prod-apply-42.json"), TR_TF_OP_APPLY);
    assert_int_equal(tr_tf_operation_guess("init.jsonl"), TR_TF_OP_INIT);
    assert_int_equal(tr_tf_operation_guess("PLAN"), TR_TF_OP_PLAN);
    assert_int_equal(tr_tf_operation_guess("run-42.json"), TR_TF_OP_UNKNOWN);
    assert_int_equal(tr_tf_operation_guess(NULL), TR_TF_OP_UNKNOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation_fixture_names_variable_rule),
        cmocka_unit_test(test_provisioner_fixture_names_resource_and_output),
        cmocka_unit_test(test_syntax_fixture_fails_init_and_apply),
        cmocka_unit_test(test_provider_fixture_has_errors_without_range),
        cmocka_unit_test(test_module_fixture_points_into_module_file),
        cmocka_unit_test(test_reference_fixture_points_at_undeclared_variable),
        cmocka_unit_test(test_successful_inits_are_not_failures),
        cmocka_unit_test(test_successful_applies_from_other_sources),
        cmocka_unit_test(test_garbage_lines_skipped_and_chunking_irrelevant),
        cmocka_unit_test(test_big_log_streams_with_bounded_output),
        cmocka_unit_test(test_warnings_only_is_no_failure),
        cmocka_unit_test(test_truncated_last_line_is_tolerated),
        cmocka_unit_test(test_garbage_and_empty_input_are_refused),
        cmocka_unit_test(test_caps_on_lines_and_diagnostics),
        cmocka_unit_test(test_facts_follow_the_contract),
        cmocka_unit_test(test_operation_guess_from_names),
    };
    TR_RUN_TESTS("tf_log", tests);
}
