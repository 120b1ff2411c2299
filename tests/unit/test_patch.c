/*
 * test_patch.c - fixers/patch.c against real git repositories made with the git CLI in a
 * temporary directory: what the fixer would commit (file bytes), what it refuses and the words
 * of the refusal, the checks that end up in the PR body. terraform is the real binary where
 * it is installed.
 */
#include "testutil.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "patch.h"

#define WEB_YAML                                                                   \
    "apiVersion: apps/v1\n"                                                        \
    "kind: Deployment\n"                                                           \
    "metadata:\n"                                                                  \
    "  name: web\n"                                                                \
    "spec:\n"                                                                      \
    "  replicas: 1\n"                                                              \
    "  template:\n"                                                                \
    "    spec:\n"                                                                  \
    "      containers:\n"                                                          \
    "        - name: web\n"                                                        \
    "          image: nginx:1.25   \n"                                             \
    "          env:\n"                                                             \
    "            - name: DB_PASSWORD\n"                                            \
    "              value: \"hunter2-s3cr3t\"\t \n"                                 \
    "          resources:\n"                                                       \
    "            limits:\n"                                                        \
    "              memory: 64Mi\n"

#define DUP_YAML                                                                   \
    "kind: Pod\nmetadata:\n  name: two\nspec:\n  containers:\n"                    \
    "    - name: a\n      resources:\n        limits:\n          memory: 64Mi\n"   \
    "    - name: b\n      resources:\n        limits:\n          memory: 64Mi\n"

#define MULTI_YAML                                                                 \
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n"        \
    "  LOG_LEVEL: info\n---\napiVersion: v1\nkind: Service\nmetadata:\n"           \
    "  name: web\nspec:\n  ports:\n    - port: 80\n"

#define MAIN_TF                                                                    \
    "variable \"replicas\" {\n  type    = number\n  default = 1\n}\n\n"            \
    "output \"replicas\" {\n  value = var.replicas\n}\n"

/* The web.yaml fix: memory 64Mi -> 256Mi, header right. */
#define WEB_FIX                                                                    \
    "--- a/apps/web.yaml\n+++ b/apps/web.yaml\n"                                   \
    "@@ -15,3 +15,3 @@\n"                                                          \
    "           resources:\n             limits:\n-              memory: 64Mi\n"    \
    "+              memory: 256Mi\n"

typedef struct fixture {
    char dir[64];
} fixture;

static void write_file(const char *dir, const char *rel, const char *content)
{
    char path[512], cmd[600];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
    assert_int_equal(system(cmd), 0);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(content, 1, strlen(content), fp), strlen(content));
    assert_int_equal(fclose(fp), 0);
}

static int setup_repo(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    char cmd[512];

    strcpy(fx->dir, "/tmp/test_patch_XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    write_file(fx->dir, "apps/web.yaml", WEB_YAML);
    write_file(fx->dir, "apps/dup.yaml", DUP_YAML);
    write_file(fx->dir, "apps/multi.yaml", MULTI_YAML);
    write_file(fx->dir, "infra/main.tf", MAIN_TF);
    write_file(fx->dir, ".github/workflows/ci.yml", "on: push\n");
    write_file(fx->dir, "docs/logo.txt", "logo\n");
    snprintf(cmd, sizeof(cmd), "cd %s && git init -q -b main && git add -A && "
             "git -c user.name=t -c user.email=t@t commit -qm base", fx->dir);
    assert_int_equal(system(cmd), 0);
    *state = fx;
    return 0;
}

static int teardown_repo(void **state)
{
    fixture *fx = *state;
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static int check(fixture *fx, const char *patch, const tr_patch_options *opts,
                 tr_patch_result **res, tr_error *err)
{
    tr_error_clear(err);
    return tr_patch_check(res, fx->dir, "main", patch, strlen(patch), opts, err);
}

static const tr_patch_file *file_of(const tr_patch_result *res, const char *path)
{
    size_t i;

    for (i = 0; i < res->file_count; i++)
        if (strcmp(res->files[i].path, path) == 0)
            return &res->files[i];
    fail_msg("%s not in the result", path);
    return NULL;
}

static const tr_patch_check_item *check_named(const tr_patch_result *res, const char *name)
{
    size_t i;

    for (i = 0; i < res->check_count; i++)
        if (strcmp(res->checks[i].name, name) == 0)
            return &res->checks[i];
    return NULL;
}

/* WEB_YAML with only the memory line changed: every other byte must be there unchanged. */
static void assert_web_fixed(const tr_patch_result *res)
{
    const char *want = WEB_YAML;
    const char *cut = strstr(want, "64Mi");
    const tr_patch_file *f = file_of(res, "apps/web.yaml");
    char expected[1024];

    snprintf(expected, sizeof(expected), "%.*s256Mi\n", (int)(cut - want), want);
    assert_int_equal(f->content_len, strlen(expected));
    assert_memory_equal(f->content, expected, f->content_len);
    assert_int_equal(f->lines_added, 1);
    assert_int_equal(f->lines_removed, 1);
}

static void test_patch_applies_a_correct_patch_and_keeps_other_lines_byte_for_byte(void **state)
{
    tr_patch_result *res = NULL;
    tr_error err;

    assert_int_equal(check(*state, "diff --git a/apps/web.yaml b/apps/web.yaml\n" WEB_FIX, NULL,
                           &res, &err), 0);
    assert_true(res->ok);
    assert_int_equal(res->file_count, 1);
    assert_int_equal(res->hunks_reanchored, 0);
    assert_web_fixed(res); /* the secret line and its trailing tab+space survive */
    assert_non_null(strstr(file_of(res, "apps/web.yaml")->content,
                           "value: \"hunter2-s3cr3t\"\t \n"));
    assert_non_null(strstr(file_of(res, "apps/web.yaml")->content, "nginx:1.25   \n"));
    assert_int_equal(strlen(res->tree_id), 40);
    assert_string_equal(check_named(res, "yaml")->text,
                        "apps/web.yaml: 1 document(s) parse; kinds and names unchanged "
                        "[Deployment/web]");
    assert_non_null(strstr(res->patch, "diff --git a/apps/web.yaml b/apps/web.yaml\n"));
    tr_patch_result_free(res);
}

static void test_patch_takes_a_fenced_patch_with_prose_and_crlf(void **state)
{
    const char *answer =
        "Here is the fix for the OOM kill:\r\n\r\n```diff\r\n"
        "--- a/apps/web.yaml\r\n+++ b/apps/web.yaml\r\n@@ -15,3 +15,3 @@\r\n"
        "           resources:\r\n             limits:\r\n-              memory: 64Mi\r\n"
        "+              memory: 256Mi\r\n```\r\n\r\nThis raises the limit.";
    tr_patch_result *res = NULL;
    tr_error err;

    assert_int_equal(check(*state, answer, NULL, &res, &err), 0);
    assert_web_fixed(res);
    assert_null(strchr(res->patch, '\r'));
    tr_patch_result_free(res);
}

static void test_patch_reanchors_a_hunk_with_wrong_line_numbers(void **state)
{
    const char *patch = "--- a/apps/web.yaml\n+++ b/apps/web.yaml\n@@ -3,3 +3,3 @@\n"
                        "           resources:\n             limits:\n"
                        "-              memory: 64Mi\n+              memory: 256Mi\n";
    tr_patch_result *res = NULL;
    tr_error err;

    assert_int_equal(check(*state, patch, NULL, &res, &err), 0);
    assert_int_equal(res->hunks_reanchored, 1);
    assert_web_fixed(res);
    assert_non_null(strstr(res->patch, "@@ -15,3 +15,3 @@"));
    assert_non_null(strstr(check_named(res, "apply")->text, "1 hunk(s) re-anchored"));
    tr_patch_result_free(res);
}

static void test_patch_recomputes_wrong_hunk_counts_and_bare_headers(void **state)
{
    /* counts say 7 and 9; no diff --git line; the "@@" has no numbers at all in the second */
    const char *patch = "--- a/apps/web.yaml\n+++ b/apps/web.yaml\n@@ -15,7 +15,9 @@\n"
                        "           resources:\n             limits:\n"
                        "-              memory: 64Mi\n+              memory: 256Mi\n"
                        "--- a/apps/multi.yaml\n+++ b/apps/multi.yaml\n@@ @@\n"
                        " data:\n-  LOG_LEVEL: info\n+  LOG_LEVEL: debug\n";
    tr_patch_result *res = NULL;
    tr_error err;

    assert_int_equal(check(*state, patch, NULL, &res, &err), 0);
    assert_web_fixed(res);
    assert_non_null(strstr(file_of(res, "apps/multi.yaml")->content, "LOG_LEVEL: debug\n---"));
    assert_non_null(strstr(res->patch, "@@ -15,3 +15,3 @@"));
    assert_non_null(strstr(res->patch, "diff --git a/apps/multi.yaml b/apps/multi.yaml\n"));
    assert_string_equal(check_named(res, "yaml")->status == TR_PATCH_CHECK_PASSED ? "p" : "f",
                        "p");
    tr_patch_result_free(res);
}

static void test_patch_refuses_ambiguous_context(void **state)
{
    const char *patch = "--- a/apps/dup.yaml\n+++ b/apps/dup.yaml\n@@ -40,3 +40,3 @@\n"
                        "       resources:\n         limits:\n"
                        "-          memory: 64Mi\n+          memory: 128Mi\n";
    tr_patch_result *res = NULL;
    tr_error err;

    assert_int_equal(check(*state, patch, NULL, &res, &err), TR_EINVAL);
    assert_null(res);
    assert_non_null(strstr(err.message, "apps/dup.yaml: hunk 1"));
    assert_non_null(strstr(err.message, "match 2 places (lines 7, 11)"));
}

static void test_patch_names_file_hunk_and_line_when_context_is_not_found(void **state)
{
    const char *patch = "--- a/apps/web.yaml\n+++ b/apps/web.yaml\n@@ -15,3 +15,3 @@\n"
                        "           resources:\n             limits:\n"
                        "-              memory: 128Mi\n+              memory: 256Mi\n";
    tr_patch_result *res = NULL;
    tr_error err;
    char *prompt;

    assert_int_equal(check(*state, patch, NULL, &res, &err), TR_EINVAL);
    assert_string_equal(err.message,
                        "apps/web.yaml: hunk 1 (header at diff line 3): context not found: its "
                        "first 2 context/removed lines match at line 15, but the next one, '"
                        "              memory: 128Mi', is not line 17 of the file");
    prompt = tr_patch_repair_prompt(&err, patch, strlen(patch));
    assert_non_null(strstr(prompt, err.message));
    assert_non_null(strstr(prompt, "```diff\n--- a/apps/web.yaml"));
    tr_free(prompt);
}

static void expect_refused(fixture *fx, const char *patch, const tr_patch_options *opts,
                           const char *reason)
{
    tr_patch_result *res = NULL;
    tr_error err;

    assert_int_equal(check(fx, patch, opts, &res, &err), TR_EINVAL);
    assert_null(res);
    if (strstr(err.message, reason) == NULL)
        fail_msg("refusal [%s] does not say [%s]", err.message, reason);
}

static void test_patch_refuses_hostile_paths(void **state)
{
    const char *tails = "@@ -1 +1 @@\n-root\n+evil\n";
    const char *heads[][2] = {
        {"../../etc/passwd", "'.' and '..' components are refused"},
        {"apps/../../etc/passwd", "'.' and '..' components are refused"},
        {"/etc/passwd", "absolute paths are refused"},
        {".git/config", "paths inside .git/ are refused"},
        {".git/hooks/pre-commit", "paths inside .git/ are refused"},
        {"apps/.GIT/hooks/x", "paths inside .git/ are refused"},
        {".github/workflows/ci.yml", ".git* files"},
    };
    size_t i;

    for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        char patch[512];

        snprintf(patch, sizeof(patch), "--- a/%s\n+++ b/%s\n%s", heads[i][0], heads[i][0],
                 tails);
        if (heads[i][0][0] == '/')
            snprintf(patch, sizeof(patch), "--- %s\n+++ %s\n%s", heads[i][0], heads[i][0],
                     tails);
        expect_refused(*state, patch, NULL, heads[i][1]);
    }
}

static void test_patch_refuses_binary_deletion_rename_and_mode_change(void **state)
{
    expect_refused(*state, "diff --git a/docs/logo.png b/docs/logo.png\nindex 1..2 100644\n"
                   "GIT binary patch\nliteral 5\nabc\n", NULL, "binary patches are refused");
    expect_refused(*state, "diff --git a/docs/logo.png b/docs/logo.png\n"
                   "Binary files a/docs/logo.png and b/docs/logo.png differ\n", NULL,
                   "binary patches are refused");
    expect_refused(*state, "--- a/docs/logo.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-logo\n", NULL,
                   "whole-file deletions are refused");
    expect_refused(*state, "diff --git a/docs/logo.txt b/docs/x.txt\nsimilarity index 100%\n"
                   "rename from docs/logo.txt\nrename to docs/x.txt\n", NULL, "renames");
    expect_refused(*state, "diff --git a/docs/logo.txt b/docs/logo.txt\nold mode 100644\n"
                   "new mode 100755\n", NULL, "mode changes are refused");
}

static void test_patch_refuses_a_patch_over_max_lines(void **state)
{
    tr_buf patch = TR_BUF_INIT(0);
    tr_patch_options opts;
    int i;

    tr_patch_options_init(&opts);
    opts.max_patch_lines = 10;
    assert_int_equal(tr_buf_puts(&patch, "--- /dev/null\n+++ b/apps/big.yaml\n@@ -0,0 +1,11 @@\n"),
                     0);
    for (i = 0; i < 11; i++)
        assert_int_equal(tr_buf_printf(&patch, "+k%d: v\n", i), 0);
    expect_refused(*state, patch.ptr, &opts, "changes 11 lines (+11 -0), over max_patch_lines 10");
    tr_buf_dispose(&patch);
}

static void test_patch_refuses_a_redaction_placeholder_in_an_added_line(void **state)
{
    expect_refused(*state, "--- a/apps/web.yaml\n+++ b/apps/web.yaml\n@@ -14 +14 @@\n"
                   "-              value: \"hunter2-s3cr3t\"\t \n"
                   "+              value: \"[REDACTED:password]\"\n", NULL,
                   "apps/web.yaml: hunk 1: an added line holds a redaction placeholder");
    expect_refused(*state, "--- a/apps/web.yaml\n+++ b/apps/web.yaml\n@@ -1 +1 @@\n"
                   "-apiVersion: apps/v1\n+apiVersion: <redacted:token>\n", NULL,
                   "redaction placeholder");
}

static void test_patch_refuses_paths_outside_allowed_paths(void **state)
{
    const char *allowed[] = {"apps/", ".github/workflows"};
    tr_patch_options opts;
    tr_patch_result *res = NULL;
    tr_error err;

    tr_patch_options_init(&opts);
    opts.allowed_paths = allowed;
    opts.allowed_path_count = 1;
    expect_refused(*state, "--- a/docs/logo.txt\n+++ b/docs/logo.txt\n@@ -1 +1 @@\n-logo\n+x\n",
                   &opts, "docs/logo.txt: outside allowed_paths");
    expect_refused(*state, "--- /dev/null\n+++ b/apps2/x.yaml\n@@ -0,0 +1 @@\n+a: b\n", &opts,
                   "outside allowed_paths");
    assert_int_equal(check(*state, WEB_FIX, &opts, &res, &err), 0);
    tr_patch_result_free(res);
    /* naming the workflow directory explicitly lets a patch touch it */
    opts.allowed_path_count = 2;
    assert_int_equal(check(*state, "--- a/.github/workflows/ci.yml\n+++ b/.github/workflows/"
                           "ci.yml\n@@ -1 +1 @@\n-on: push\n+on: [push]\n", &opts, &res, &err), 0);
    tr_patch_result_free(res);
}

static void test_patch_fails_the_yaml_check_when_the_patch_breaks_yaml(void **state)
{
    tr_patch_result *res = NULL;
    tr_error err;

    assert_int_equal(check(*state, "--- a/apps/web.yaml\n+++ b/apps/web.yaml\n@@ -17 +17 @@\n"
                           "-              memory: 64Mi\n+              memory: [256Mi\n",
                           NULL, &res, &err), TR_EINVAL);
    assert_non_null(res);
    assert_false(res->ok);
    assert_int_equal(check_named(res, "yaml")->status, TR_PATCH_CHECK_FAILED);
    assert_non_null(strstr(err.message, "yaml: apps/web.yaml: no longer parses as YAML after "
                                        "the patch: line "));
    tr_patch_result_free(res);
}

static void test_patch_fails_when_kind_or_name_changes(void **state)
{
    tr_patch_result *res = NULL;
    tr_error err;

    assert_int_equal(check(*state, "--- a/apps/multi.yaml\n+++ b/apps/multi.yaml\n"
                           "@@ -10,2 +10,2 @@\n metadata:\n-  name: web\n+  name: web2\n",
                           NULL, &res, &err), TR_EINVAL);
    assert_false(res->ok);
    assert_string_equal(check_named(res, "yaml")->text,
                        "apps/multi.yaml: the patch changes which objects the file defines "
                        "(kind/name before [ConfigMap/settings, Service/web], after "
                        "[ConfigMap/settings, Service/web2]); a fix must not rename, retype, "
                        "add or remove objects");
    tr_patch_result_free(res);
    assert_int_equal(check(*state, "--- a/apps/web.yaml\n+++ b/apps/web.yaml\n@@ -2 +2 @@\n"
                           "-kind: Deployment\n+kind: StatefulSet\n", NULL, &res, &err),
                     TR_EINVAL);
    assert_non_null(strstr(err.message, "after [StatefulSet/web]"));
    tr_patch_result_free(res);
}

static void test_patch_multi_document_yaml_patch_passes(void **state)
{
    tr_patch_result *res = NULL;
    tr_error err;

    assert_int_equal(check(*state, "--- a/apps/multi.yaml\n+++ b/apps/multi.yaml\n"
                           "@@ -13,2 +13,3 @@\n   ports:\n     - port: 80\n"
                           "+      targetPort: 8080\n", NULL, &res, &err), 0);
    assert_true(res->ok);
    assert_string_equal(check_named(res, "yaml")->text,
                        "apps/multi.yaml: 2 document(s) parse; kinds and names unchanged "
                        "[ConfigMap/settings, Service/web]");
    assert_memory_equal(file_of(res, "apps/multi.yaml")->content, MULTI_YAML,
                        strlen(MULTI_YAML));
    tr_patch_result_free(res);
}

static int have_terraform(void)
{
    return system("terraform version >/dev/null 2>&1") == 0;
}

static void test_patch_runs_terraform_fmt_and_validate(void **state)
{
    tr_patch_result *res = NULL;
    tr_error err;

    if (!have_terraform()) {
        print_message("terraform not on PATH: fmt/validate test skipped\n");
        skip();
    }
    assert_int_equal(check(*state, "--- a/infra/main.tf\n+++ b/infra/main.tf\n@@ -3 +3 @@\n"
                           "-  default = 1\n+  default = 3\n", NULL, &res, &err), 0);
    assert_true(res->ok);
    assert_int_equal(check_named(res, "terraform fmt")->status, TR_PATCH_CHECK_PASSED);
    assert_string_equal(check_named(res, "terraform validate")->text,
                        "infra: terraform validate passed");
    tr_patch_result_free(res);
    /* misaligned "=": fmt wants changes, the PR would fail a fmt gate */
    assert_int_equal(check(*state, "--- a/infra/main.tf\n+++ b/infra/main.tf\n@@ -3 +3 @@\n"
                           "-  default = 1\n+  default     = 3\n", NULL, &res, &err), TR_EINVAL);
    assert_int_equal(check_named(res, "terraform fmt")->status, TR_PATCH_CHECK_FAILED);
    assert_non_null(strstr(err.message, "infra/main.tf: terraform fmt -check wants changes"));
    tr_patch_result_free(res);
}

static void test_patch_skips_terraform_checks_when_the_binary_is_missing(void **state)
{
    tr_patch_options opts;
    tr_patch_result *res = NULL;
    tr_error err;

    tr_patch_options_init(&opts);
    opts.terraform_bin = "/nonexistent/terraform";
    assert_int_equal(check(*state, "--- a/infra/main.tf\n+++ b/infra/main.tf\n@@ -3 +3 @@\n"
                           "-  default = 1\n+  default = 3\n", &opts, &res, &err), 0);
    assert_true(res->ok);
    assert_string_equal(check_named(res, "terraform fmt")->text,
                        "infra/main.tf: terraform not found: fmt/validate skipped");
    assert_int_equal(check_named(res, "terraform validate")->status, TR_PATCH_CHECK_SKIPPED);
    tr_patch_result_free(res);
}

static tr_patch_check_status refuse_all(void *ctx, const char *path, const char *content,
                                        size_t len, tr_buf *detail)
{
    ++*(int *)ctx;
    (void)tr_buf_printf(detail, "spec.replicas: expected integer (%zu bytes seen)", len);
    return TR_PATCH_CHECK_FAILED;
}

static void test_patch_yaml_hook_result_becomes_a_check(void **state)
{
    tr_patch_options opts;
    tr_patch_result *res = NULL;
    tr_error err;
    int calls = 0;

    tr_patch_options_init(&opts);
    opts.yaml_hook = refuse_all;
    opts.yaml_hook_ctx = &calls;
    assert_int_equal(check(*state, WEB_FIX, &opts, &res, &err), TR_EINVAL);
    assert_int_equal(calls, 1);
    assert_false(res->ok);
    assert_non_null(strstr(check_named(res, "schema")->text, "apps/web.yaml: spec.replicas"));
    tr_patch_result_free(res);
}

static void test_patch_normalize_without_a_repository(void **state)
{
    const char *in = "Sure!\n```patch\n--- a/x.yaml\n+++ b/x.yaml\n@@ -1,9 +1,9 @@\n a: 1\n"
                     "\n-b: 2\n+b: 3\n```\n";
    char *out = NULL;
    size_t len = 0;
    tr_error err;

    assert_int_equal(tr_patch_normalize(&out, &len, in, strlen(in), NULL, &err), 0);
    /* the blank line inside the hunk is an empty context line */
    assert_string_equal(out, "diff --git a/x.yaml b/x.yaml\n--- a/x.yaml\n+++ b/x.yaml\n"
                             "@@ -1,3 +1,3 @@\n a: 1\n \n-b: 2\n+b: 3\n");
    tr_free(out);
    assert_int_equal(tr_patch_normalize(&out, &len, "no diff here", 12, NULL, &err), TR_EINVAL);
    assert_non_null(strstr(err.message, "no unified diff found"));
    {
        static const char nul[] = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\0\n";

        assert_int_equal(tr_patch_normalize(&out, &len, nul, sizeof(nul) - 1, NULL, &err),
                         TR_EINVAL);
    }
    assert_non_null(strstr(err.message, "NUL"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_repo, teardown_repo)
        T(test_patch_applies_a_correct_patch_and_keeps_other_lines_byte_for_byte),
        T(test_patch_takes_a_fenced_patch_with_prose_and_crlf),
        T(test_patch_reanchors_a_hunk_with_wrong_line_numbers),
        T(test_patch_recomputes_wrong_hunk_counts_and_bare_headers),
        T(test_patch_refuses_ambiguous_context),
        T(test_patch_names_file_hunk_and_line_when_context_is_not_found),
        T(test_patch_refuses_hostile_paths),
        T(test_patch_refuses_binary_deletion_rename_and_mode_change),
        T(test_patch_refuses_a_patch_over_max_lines),
        T(test_patch_refuses_a_redaction_placeholder_in_an_added_line),
        T(test_patch_refuses_paths_outside_allowed_paths),
        T(test_patch_fails_the_yaml_check_when_the_patch_breaks_yaml),
        T(test_patch_fails_when_kind_or_name_changes),
        T(test_patch_multi_document_yaml_patch_passes),
        T(test_patch_runs_terraform_fmt_and_validate),
        T(test_patch_skips_terraform_checks_when_the_binary_is_missing),
        T(test_patch_yaml_hook_result_becomes_a_check),
        cmocka_unit_test(test_patch_normalize_without_a_repository),
#undef T
    };

    signal(SIGPIPE, SIG_IGN); /* as the daemon does: a dead terraform must not kill the test */
    TR_RUN_TESTS("patch", tests);
}
