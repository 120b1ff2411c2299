#include "testutil.h"

#include <unistd.h>

#include "tf_cli.h"

#define FIXTURES "../shared/fixtures/terraform/"

/* Runs the CLI core on path; the report lands in report (NUL-terminated). */
static int run(const char *path, char *report, size_t size)
{
    FILE *out = tmpfile();
    size_t n;
    int status;

    assert_non_null(out);
    status = tr_tf_cli_run(path, out);
    rewind(out);
    n = fread(report, 1, size - 1, out);
    report[n] = '\0';
    fclose(out);
    return status;
}

static void test_report_names_file_line_source_and_output(void **state)
{
    static char report[16384];

    assert_int_equal(run(FIXTURES "provisioner/apply.jsonl", report, sizeof(report)), 0);
    assert_non_null(strstr(report, "terraform apply FAILED (Terraform 1.11.4)"));
    assert_non_null(strstr(report, "Failing resource: terraform_data.migrate"));
    assert_non_null(strstr(report, "Error: local-exec provisioner error"));
    assert_non_null(
        strstr(report, "on main.tf line 3, in resource \"terraform_data\" \"migrate\""));
    assert_non_null(strstr(report, "     3:   provisioner \"local-exec\" {"));
    assert_non_null(strstr(report, "  | ERROR: relation \"orders\" does not exist"));
    assert_non_null(strstr(report, "Incident: TerraformApplyFailed"));

    assert_int_equal(run(FIXTURES "validation/apply.jsonl", report, sizeof(report)), 0);
    assert_non_null(strstr(report, "on main.tf line 1"));
    assert_non_null(strstr(report, "    | var.replicas is 0"));
    /* The file is called apply.jsonl: the operation comes from its name. */
    assert_non_null(strstr(report, "Incident: TerraformApplyFailed"));

    assert_int_equal(run(FIXTURES "module/init.jsonl", report, sizeof(report)), 0);
    assert_non_null(strstr(report, "terraform init succeeded"));
    assert_null(strstr(report, "Incident:"));
}

static void test_unreadable_or_garbage_input_is_usage_error(void **state)
{
    static char report[4096];
    char path[] = "/tmp/test_tf_cli.XXXXXX";
    int fd = mkstemp(path);

    assert_int_equal(run("/nonexistent/triaged/apply.jsonl", report, sizeof(report)), 2);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "Error: Invalid expression\n", 26), 26);
    close(fd);
    assert_int_equal(run(path, report, sizeof(report)), 2);
    assert_string_equal(report, "");
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_names_file_line_source_and_output),
        cmocka_unit_test(test_unreadable_or_garbage_input_is_usage_error),
    };
    TR_RUN_TESTS("tf_cli", tests);
}
