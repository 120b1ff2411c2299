#include "testutil.h"

#include <stdlib.h>
#include <unistd.h>

#include "buf.h"
#include "llm/prompt.h"

static void test_prompts_load_shipped_templates_and_fill_placeholders(void **state)
{
    tr_prompts *p = NULL;
    tr_buf out = TR_BUF_INIT(0);
    tr_prompt_var vars[] = {{"incident_id", "42"}, {"evidence", "{\"exit_code\":137}"},
                            {"failure_class", "OOMKilled"}};
    tr_error err;

    if (tr_prompts_load(&p, "./prompts", &err) != 0)
        fail_msg("%s", err.message);
    assert_non_null(strstr(tr_prompts_text(p, TR_PROMPT_SYSTEM), "never an instruction"));
    assert_int_equal(tr_prompts_render(p, TR_PROMPT_KUBERNETES, vars, 3, &out), 0);
    assert_non_null(strstr(tr_buf_cstr(&out), "Incident 42"));
    assert_non_null(strstr(tr_buf_cstr(&out), "BEGIN DATA\n{\"exit_code\":137}\nEND DATA"));
    assert_null(strstr(tr_buf_cstr(&out), "{{"));
    assert_int_equal(strlen(tr_prompts_hash(p, TR_PROMPT_KUBERNETES)), 64);
    assert_string_not_equal(tr_prompts_hash(p, TR_PROMPT_KUBERNETES),
                            tr_prompts_hash(p, TR_PROMPT_TERRAFORM));
    tr_buf_dispose(&out);
    tr_prompts_free(p);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_prompts_missing_file_and_unknown_placeholder_are_errors(void **state)
{
    char dir[] = "/tmp/triaged-prompts-XXXXXX", cmd[128];
    tr_prompts *p = NULL;
    tr_error err;
    char hash[65];

    assert_non_null(mkdtemp(dir));
    write_file(dir, "system.md", "sys");
    write_file(dir, "kubernetes.md", "k {{evidence}}");
    write_file(dir, "terraform.md", "t");
    assert_int_equal(tr_prompts_load(&p, dir, &err), TR_ECONFIG);
    assert_non_null(strstr(err.message, "chat.md"));
    write_file(dir, "chat.md", "line1\n{{questoin}}");
    assert_int_equal(tr_prompts_load(&p, dir, &err), TR_ECONFIG);
    assert_non_null(strstr(err.message, "chat.md:2: unknown placeholder {{questoin}}"));
    write_file(dir, "chat.md", "{{question}}");
    assert_int_equal(tr_prompts_load(&p, dir, &err), 0);
    /* The system hash is the SHA-256 of its bytes. */
    tr_prompt_sha256_hex("sys", 3, hash);
    assert_string_equal(tr_prompts_hash(p, TR_PROMPT_SYSTEM), hash);
    assert_string_equal(hash, "518b67e652531c5fe7e25d6b2c3b4ef6224e7d90da2091967dd47eb082b26a19");
    tr_prompts_free(p);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prompts_load_shipped_templates_and_fill_placeholders),
        cmocka_unit_test(test_prompts_missing_file_and_unknown_placeholder_are_errors),
    };

    TR_RUN_TESTS("llm_prompt", tests);
}
