#include "testutil.h"

#include "llm/reply.h"

#define FIXTURES "../shared/fixtures/openai"

static const char good[] =
    "{\"summary\":\"s\",\"root_cause\":\"r\",\"severity\":\"Critical\",\"confidence\":0.5,"
    "\"evidence\":[\"line \\\"a\\\"\"],\"remediation\":[\"do x\",\"do y\"],\"patch\":\"\"}";

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long len;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = tr_malloc((size_t)len + 1);
    assert_int_equal(fread(data, 1, (size_t)len, f), (size_t)len);
    data[len] = '\0';
    fclose(f);
    return data;
}

static tr_llm_reply *parse_ok(const char *text)
{
    tr_llm_reply *r = NULL;
    tr_error err;

    if (tr_llm_reply_parse(&r, text, strlen(text), NULL, &err) != 0)
        fail_msg("[%s]: %s", text, err.message);
    return r;
}

static void parse_fails(const char *text, const char *message_has)
{
    tr_llm_reply *r = NULL;
    tr_error err;

    assert_true(tr_llm_reply_parse(&r, text, strlen(text), NULL, &err) != 0);
    assert_null(r);
    if (strstr(err.message, message_has) == NULL)
        fail_msg("[%s]: error [%s] lacks [%s]", text, err.message, message_has);
}

static void test_reply_plain_json_is_validated_and_normalised(void **state)
{
    tr_llm_reply *r = parse_ok(good);

    assert_string_equal(r->severity, "critical");
    assert_true(r->confidence == 0.5);
    assert_string_equal(r->evidence_json, "[\"line \\\"a\\\"\"]");
    assert_int_equal(r->remediation_count, 2);
    assert_string_equal(r->patch, "");
    tr_llm_reply_free(r);
}

static void test_reply_tolerates_fences_and_prose(void **state)
{
    char text[2048];
    tr_llm_reply *r;

    snprintf(text, sizeof(text), "Here is my analysis:\n```json\n%s\n```\nHope it helps!", good);
    r = parse_ok(text);
    assert_string_equal(r->summary, "s");
    tr_llm_reply_free(r);
    snprintf(text, sizeof(text), "Sure {not json} then %s and more {\"x\":1}", good);
    r = parse_ok(text);
    assert_string_equal(r->root_cause, "r");
    tr_llm_reply_free(r);
}

static void test_reply_errors_name_the_field(void **state)
{
    parse_fails("no json here", "no JSON object");
    parse_fails("", "empty");
    parse_fails("{\"root_cause\":\"r\"}", "field \"summary\" is missing");
    parse_fails("{\"summary\":\"s\",\"root_cause\":\"r\",\"severity\":\"fatal\","
                "\"confidence\":0.5,\"evidence\":[],\"remediation\":[],\"patch\":\"\"}",
                "field \"severity\": must be one of info, warning, error, critical");
    parse_fails("{\"summary\":\"s\",\"root_cause\":\"r\",\"severity\":\"info\","
                "\"confidence\":1.5,\"evidence\":[],\"remediation\":[],\"patch\":\"\"}",
                "field \"confidence\": must be a number from 0 to 1");
    parse_fails("{\"summary\":\"s\",\"root_cause\":\"r\",\"severity\":\"info\","
                "\"confidence\":\"high\",\"evidence\":[],\"remediation\":[],\"patch\":\"\"}",
                "field \"confidence\"");
    parse_fails("{\"summary\":\"s\",\"root_cause\":\"r\",\"severity\":\"info\","
                "\"confidence\":0.1,\"evidence\":[1],\"remediation\":[],\"patch\":\"\"}",
                "field \"evidence\"[0]: must be a string");
    parse_fails("{\"summary\":\"s\",\"root_cause\":\"r\",\"severity\":\"info\","
                "\"confidence\":0.1,\"evidence\":[],\"remediation\":\"x\",\"patch\":\"\"}",
                "field \"remediation\": must be an array");
    parse_fails("{\"summary\":\" \",\"root_cause\":\"r\"}", "field \"summary\": must not be "
                                                              "empty");
}

static void test_reply_caps_patch_lines(void **state)
{
    tr_llm_reply_limits limits = {.max_patch_lines = 3};
    tr_llm_reply *r = NULL;
    tr_error err;
    const char *text = "{\"summary\":\"s\",\"root_cause\":\"r\",\"severity\":\"info\","
                       "\"confidence\":0.1,\"evidence\":[],\"remediation\":[],"
                       "\"patch\":\"--- a/x\\n+++ b/x\\n@@ -1 +1 @@\\n-a\\n+b\\n\"}";

    assert_int_equal(tr_llm_reply_parse(&r, text, strlen(text), &limits, &err), TR_EINVAL);
    assert_non_null(strstr(err.message, "field \"patch\": 5 lines, at most 3 allowed"));
    limits.max_patch_lines = 5;
    assert_int_equal(tr_llm_reply_parse(&r, text, strlen(text), &limits, &err), 0);
    assert_non_null(strstr(r->patch, "+++ b/x"));
    tr_llm_reply_free(r);
}

static void test_completion_parses_llama_cpp_fixture(void **state)
{
    char *body = read_file(FIXTURES "/llama-server/chat_json_schema.body.txt");
    tr_llm_completion c;
    tr_error err;

    assert_int_equal(tr_llm_completion_parse(&c, body, strlen(body), &err), 0);
    assert_non_null(strstr(c.content, "\"age\":48"));
    assert_string_equal(c.finish_reason, "stop");
    assert_string_equal(c.model, "tiny-random-llama");
    assert_int_equal(c.prompt_tokens, 11);
    assert_int_equal(c.completion_tokens, 58);
    tr_llm_completion_dispose(&c);
    tr_free(body);
}

static void test_completion_rejects_error_and_refusal_bodies(void **state)
{
    const char *refusal = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,"
                          "\"refusal\":\"I can't help\"}}],\"usage\":{\"prompt_tokens\":3,"
                          "\"completion_tokens\":2}}";
    char *body = read_file(FIXTURES "/llama-server/err_bad_json.body.txt");
    tr_llm_completion c;
    tr_llm_error_info info;
    tr_error err;

    assert_int_equal(tr_llm_completion_parse(&c, body, strlen(body), &err), TR_EPARSE);
    assert_non_null(strstr(err.message, "choices[0].message"));
    assert_int_equal(tr_llm_error_parse(&info, body, strlen(body)), 0);
    assert_string_equal(info.type, "server_error");
    assert_string_equal(info.code, "500");
    assert_true(strncmp(info.message, "[json.exception.parse_error.101]", 32) == 0);
    assert_int_equal(tr_llm_completion_parse(&c, refusal, strlen(refusal), &err), TR_EINVAL);
    assert_non_null(strstr(err.message, "refused: I can't help"));
    /* Usage is still reported so it counts against the budget. */
    assert_int_equal(c.prompt_tokens, 3);
    assert_int_equal(tr_llm_error_parse(&info, "{\"ok\":1}", 8), TR_EPARSE);
    tr_free(body);
}

static void test_reply_schema_is_strict_json(void **state)
{
    const char *s = tr_llm_reply_schema();

    assert_non_null(strstr(s, "\"additionalProperties\":false"));
    assert_non_null(strstr(s, "\"required\":[\"summary\",\"root_cause\",\"severity\","
                              "\"confidence\",\"evidence\",\"remediation\",\"patch\"]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_plain_json_is_validated_and_normalised),
        cmocka_unit_test(test_reply_tolerates_fences_and_prose),
        cmocka_unit_test(test_reply_errors_name_the_field),
        cmocka_unit_test(test_reply_caps_patch_lines),
        cmocka_unit_test(test_completion_parses_llama_cpp_fixture),
        cmocka_unit_test(test_completion_rejects_error_and_refusal_bodies),
        cmocka_unit_test(test_reply_schema_is_strict_json),
    };

    TR_RUN_TESTS("llm_reply", tests);
}
