#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "tf_facts.h"
#include "tf_log.h"

/*
 * The real terraform binary on fresh configurations that fail in ways the fixtures do not
 * (a precondition, a bad for_each, a check block), fed to the parser as terraform printed
 * it. Only the built-in terraform_data resource is used: no provider download, no network.
 * Skipped, saying so, where terraform is not installed.
 */

static char tf_bin[256];

static int find_terraform(void)
{
    static const char *const candidates[] = {"/usr/local/bin/terraform", "/usr/bin/terraform"};
    const char *env = getenv("TERRAFORM");
    size_t i;

    if (env && access(env, X_OK) == 0) {
        snprintf(tf_bin, sizeof(tf_bin), "%s", env);
        return 1;
    }
    for (i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        if (access(candidates[i], X_OK) == 0) {
            snprintf(tf_bin, sizeof(tf_bin), "%s", candidates[i]);
            return 1;
        }
    }
    return 0;
}

typedef struct workdir {
    char path[64];
} workdir;

static void make_config(workdir *w, const char *main_tf)
{
    char file[128];
    FILE *f;

    snprintf(w->path, sizeof(w->path), "/tmp/test_tf_live.XXXXXX");
    assert_non_null(mkdtemp(w->path));
    snprintf(file, sizeof(file), "%s/main.tf", w->path);
    f = fopen(file, "w");
    assert_non_null(f);
    fputs(main_tf, f);
    fclose(f);
}

static void remove_config(workdir *w)
{
    char cmd[160];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->path);
    assert_int_equal(system(cmd), 0);
}

/* Run `terraform ARGS` in w (stderr too when with_stderr); parse its output. */
static tr_tf_result *run_tf(workdir *w, const char *args, int with_stderr)
{
    char cmd[1024], chunk[4096];
    tr_tf_result *res = NULL;
    tr_tf_log *log = NULL;
    tr_error err;
    FILE *p;
    size_t n;

    snprintf(cmd, sizeof(cmd),
             "cd '%s' && TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 '%s' init -input=false "
             "-json >/dev/null 2>&1; TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 '%s' %s %s",
             w->path, tf_bin, tf_bin, args, with_stderr ? "2>&1" : "2>/dev/null");
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(tr_tf_log_new(&log, NULL), 0);
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        assert_int_equal(tr_tf_log_feed(log, chunk, n), 0);
    pclose(p);
    if (tr_tf_log_finish(log, &res, &err) != 0)
        fail_msg("terraform %s: %s", args, err.message);
    tr_tf_log_free(log);
    return res;
}

#define SKIP_WITHOUT_TERRAFORM()                                                          \
    do {                                                                                  \
        if (!find_terraform()) {                                                          \
            print_message("SKIP: no terraform binary (set TERRAFORM=/path/to/terraform)\n"); \
            skip();                                                                       \
        }                                                                                 \
    } while (0)

static void test_live_precondition_fails_plan(void **state)
{
    static const char tf[] =
        "variable \"replicas\" {\n"
        "  default = 1\n"
        "}\n"
        "resource \"terraform_data\" \"web\" {\n"
        "  input = var.replicas\n"
        "  lifecycle {\n"
        "    precondition {\n"
        "      condition     = var.replicas >= 3\n"
        "      error_message = \"web needs at least 3 replicas for quorum.\"\n"
        "    }\n"
        "  }\n"
        "}\n";
    const tr_tf_diagnostic *d;
    tr_tf_result *res;
    workdir w;

    SKIP_WITHOUT_TERRAFORM();
    make_config(&w, tf);
    res = run_tf(&w, "plan -input=false -json", 0);
    d = tr_tf_first_error(res);
    assert_int_equal(res->outcome, TR_TF_FAILED);
    assert_non_null(d);
    assert_string_equal(d->summary, "Resource precondition failed");
    assert_string_equal(d->detail, "web needs at least 3 replicas for quorum.");
    assert_string_equal(d->filename, "main.tf");
    assert_int_equal(d->start_line, 8);
    assert_string_equal(d->snippet_code, "      condition     = var.replicas >= 3");
    assert_non_null(res->terraform_version);
    assert_string_equal(tr_tf_failure_class(res), "TerraformPlanFailed");
    tr_tf_result_free(res);
    remove_config(&w);
}

static void test_live_bad_for_each_fails_validate_and_plan(void **state)
{
    static const char tf[] =
        "resource \"terraform_data\" \"shard\" {\n"
        "  for_each = 3\n"
        "  input    = each.key\n"
        "}\n";
    tr_tf_result *res;
    workdir w;

    SKIP_WITHOUT_TERRAFORM();
    make_config(&w, tf);
    /* validate -json prints one multi-line document, not a message per line. */
    res = run_tf(&w, "validate -json", 0);
    assert_int_equal(res->operation, TR_TF_OP_VALIDATE);
    assert_int_equal(res->outcome, TR_TF_FAILED);
    assert_string_equal(tr_tf_failure_class(res), "TerraformValidateFailed");
    assert_string_equal(tr_tf_first_error(res)->summary, "Invalid for_each argument");
    assert_int_equal(tr_tf_first_error(res)->start_line, 2);
    tr_tf_result_free(res);

    /* plan with stderr mixed in: CLI warnings and all, the diagnostic still comes out. */
    res = run_tf(&w, "plan -input=false -json", 1);
    assert_int_equal(res->outcome, TR_TF_FAILED);
    assert_string_equal(tr_tf_first_error(res)->summary, "Invalid for_each argument");
    assert_string_equal(tr_tf_first_error(res)->snippet_code, "  for_each = 3");
    tr_tf_result_free(res);
    remove_config(&w);
}

static void test_live_failed_check_block_is_a_warning_not_a_failure(void **state)
{
    static const char tf[] =
        "locals {\n"
        "  free_disk_gb = 2\n"
        "}\n"
        "resource \"terraform_data\" \"app\" {\n"
        "  input = \"v1\"\n"
        "}\n"
        "check \"disk\" {\n"
        "  assert {\n"
        "    condition     = local.free_disk_gb > 10\n"
        "    error_message = \"less than 10 GB free.\"\n"
        "  }\n"
        "}\n";
    tr_tf_result *res;
    workdir w;

    SKIP_WITHOUT_TERRAFORM();
    make_config(&w, tf);
    res = run_tf(&w, "apply -auto-approve -input=false -json", 0);
    assert_int_equal(res->operation, TR_TF_OP_APPLY);
    assert_int_equal(res->error_count, 0);
    assert_true(res->warning_count >= 1);
    assert_string_equal(res->diagnostics[0].summary, "Check block assertion failed");
    assert_int_equal(res->outcome, TR_TF_SUCCEEDED);
    assert_true(res->final_message_seen);
    assert_null(tr_tf_failure_class(res));
    tr_tf_result_free(res);
    remove_config(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_precondition_fails_plan),
        cmocka_unit_test(test_live_bad_for_each_fails_validate_and_plan),
        cmocka_unit_test(test_live_failed_check_block_is_a_warning_not_a_failure),
    };
    TR_RUN_TESTS("tf_live", tests);
}
