#include "testutil.h"

#include <cjson/cJSON.h>

#include "alloc.h"
#include "buf.h"
#include "redact.h"

static char *redact(const char *in, size_t *count)
{
    char *out;

    *count = 0;
    out = tr_redact_dup(in, count);
    assert_non_null(out);
    return out;
}

/* The secret is gone, the marker is there, the surrounding text is kept. */
static void check(const char *in, const char *secret, const char *marker, const char *kept)
{
    size_t count;
    char *out = redact(in, &count);

    if (strstr(out, secret) != NULL || strstr(out, marker) == NULL)
        fail_msg("input [%s] redacted to [%s]", in, out);
    if (kept != NULL && strstr(out, kept) == NULL)
        fail_msg("input [%s] lost [%s]: [%s]", in, kept, out);
    assert_true(count >= 1);
    tr_free(out);
}

static void test_redact_masks_env_assignments_by_name(void **state)
{
    check("DB_PASSWORD=hunter2 next", "hunter2", "[REDACTED:password]", "DB_PASSWORD=[REDACTED:password] next");
    check("export STRIPE_API_KEY='abc123def'", "abc123def", "[REDACTED:secret]", "STRIPE_API_KEY=");
    check("GITHUB_TOKEN: tok-value-1", "tok-value-1", "[REDACTED:token]", "GITHUB_TOKEN:");
    check("{\"client_secret\": \"s3cr3t-v4lue\"}", "s3cr3t-v4lue", "[REDACTED:secret]",
          "client_secret");
    check("aws_secret_access_key = wJalrXUtnFEMI", "wJalrXUtnFEMI", "[REDACTED:", NULL);
    check("mysql://app:pa55word@db:3306/shop", "pa55word", "[REDACTED:url_credentials]",
          "@db:3306/shop");
    check("password=opensesame&user=bob", "opensesame", "[REDACTED:password]", "&user=bob");
}

static void test_redact_masks_token_shapes(void **state)
{
    check("key sk-proj-AbCdEfGhIjKlMnOpQrStUv in log", "sk-proj-AbCdEfGhIjKlMnOpQrStUv",
          "[REDACTED:api_key]", "in log");
    check("stripe sk_live_51HxYzAbCdEfGhIjKlMn", "sk_live_51HxYzAbCdEfGhIjKlMn",
          "[REDACTED:api_key]", "stripe ");
    check("id AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE", "[REDACTED:aws_access_key]",
          " used");
    check("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghij", "[REDACTED:github_token]",
          NULL);
    check("github_pat_11ABCDEFG0123456789_abcdefghijkl", "github_pat_11ABC",
          "[REDACTED:github_token]", NULL);
    check("slack xoxb-1234567890-abcdefghij", "xoxb-1234567890", "[REDACTED:slack_token]", NULL);
    check("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9"
          "PlFUP0THsR8U end",
          "eyJzdWIiOiIxMjM0NTY3ODkwIn0", "[REDACTED:jwt]", " end");
    check("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nafter",
          "MIIEowIBAAKCAQEA", "[REDACTED:pem]", "\nafter");
    check("Authorization: Bearer abc.def.ghi-long-token\nnext", "abc.def.ghi-long-token",
          "[REDACTED:authorization]", "\nnext");
    check("curl -H 'X: Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ'", "QWxhZGRpbjpvcGVuIHNlc2FtZQ",
          "[REDACTED:bearer]", NULL);
    check("git clone https://x0123456789abcdefghij@github.com/o/r", "x0123456789abcdefghij",
          "[REDACTED:url_credentials]", "@github.com/o/r");
}

static void test_redact_keeps_ordinary_text(void **state)
{
    const char *plain[] = {
        "Back-off restarting failed container app in pod checkout-7d9f",
        "secret \"db-creds\" not found",
        "couldn't find key DB_PASSWORD in Secret shop/db-creds",
        "ssh://git@github.com/org/repo.git",
        "if token == expected then ok",
        "{\"missing_key\":\"DB_PASSWORD\",\"secretName\":\"db-creds\",\"max_tokens\":1024}",
        "task-runner sk-short",
    };

    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        size_t count;
        char *out = redact(plain[i], &count);

        if (strcmp(out, plain[i]) != 0)
            fail_msg("[%s] changed to [%s]", plain[i], out);
        assert_int_equal(count, 0);
        tr_free(out);
    }
}

static void test_redact_is_idempotent(void **state)
{
    size_t count;
    char *once = redact("DB_PASSWORD=hunter2 Authorization: Bearer abcdefghijkl", &count);
    char *twice = redact(once, &count);

    assert_string_equal(once, twice);
    assert_int_equal(count, 0);
    tr_free(once);
    tr_free(twice);
}

static void test_redact_json_masks_env_entries_and_secret_data(void **state)
{
    const char *doc =
        "{\"spec\":{\"containers\":[{\"env\":[{\"name\":\"DB_PASSWORD\",\"value\":\"hunter2\"},"
        "{\"name\":\"LOG_LEVEL\",\"value\":\"debug\"}]}]},"
        "\"secret\":{\"kind\":\"Secret\",\"data\":{\"tls.crt\":\"Q0VSVA==\"}},"
        "\"api_token\":12345678,\"message\":\"login with password=letmein failed\","
        "\"missing_key\":\"DB_PASSWORD\"}";
    cJSON *tree = cJSON_Parse(doc);
    size_t count = 0;
    char *text;

    assert_non_null(tree);
    assert_int_equal(tr_redact_json(tree, &count), 0);
    text = cJSON_PrintUnformatted(tree);
    assert_non_null(text);
    assert_null(strstr(text, "hunter2"));
    assert_null(strstr(text, "Q0VSVA=="));
    assert_null(strstr(text, "12345678"));
    assert_null(strstr(text, "letmein"));
    assert_non_null(strstr(text, "\"debug\""));
    assert_non_null(strstr(text, "\"missing_key\":\"DB_PASSWORD\""));
    assert_non_null(strstr(text, "[REDACTED:secret_data]"));
    assert_int_equal(count, 4);
    cJSON_free(text);
    cJSON_Delete(tree);
}

static void test_redact_names(void **state)
{
    assert_true(tr_redact_name_is_secret("OPENAI_API_KEY", 14));
    assert_true(tr_redact_name_is_secret("slackToken", 10));
    assert_true(tr_redact_name_is_secret("db_password", 11));
    assert_true(tr_redact_name_is_secret("MY_SECRET", 9));
    assert_false(tr_redact_name_is_secret("LOG_LEVEL", 9));
    assert_false(tr_redact_name_is_secret("secretName", 10));
    assert_false(tr_redact_name_is_secret("max_tokens", 10));
    assert_false(tr_redact_name_is_secret("api_key_env", 11));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_masks_env_assignments_by_name),
        cmocka_unit_test(test_redact_masks_token_shapes),
        cmocka_unit_test(test_redact_keeps_ordinary_text),
        cmocka_unit_test(test_redact_is_idempotent),
        cmocka_unit_test(test_redact_json_masks_env_entries_and_secret_data),
        cmocka_unit_test(test_redact_names),
    };

    TR_RUN_TESTS("redact", tests);
}
