#include "testutil.h"

#include <cjson/cJSON.h>

#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "redact.h"

/*
 * One seeded secret of every kind the redactor claims, in the forms it
 * meets them (logs, JSON, YAML, HCL, diffs): the secret bytes must be gone.
 */
typedef struct seeded {
    const char *text;   /* where the secret sits */
    const char *secret; /* bytes that must not survive */
    const char *kept;   /* bytes that must survive (or NULL) */
    tr_redact_kind kind;
} seeded;

static const seeded secrets[] = {
    {"DB_PASSWORD=hunter2 next", "hunter2", "DB_PASSWORD=<redacted:1> next", TR_REDACT_PASSWORD},
    {"GITHUB_TOKEN: tok-value-1", "tok-value-1", "GITHUB_TOKEN: ", TR_REDACT_TOKEN},
    {"{\"client_secret\": \"s3cr3t-v4lue\"}", "s3cr3t-v4lue", "client_secret", TR_REDACT_SECRET},
    {"password = \"hcl-pa55word\"\n", "hcl-pa55word", "password = \"", TR_REDACT_PASSWORD},
    {"Authorization: Bearer abc.def.ghi-long-token\nnext", "abc.def.ghi-long-token",
     "Authorization: Bearer <redacted:1>\nnext", TR_REDACT_AUTHORIZATION},
    {"curl -H 'X: Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ'", "QWxhZGRpbjpvcGVuIHNlc2FtZQ", NULL,
     TR_REDACT_AUTHORIZATION},
    {"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0T"
     " end", "eyJzdWIiOiIxMjM0NTY3ODkwIn0", " end", TR_REDACT_JWT},
    {"id AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE", " used", TR_REDACT_AWS_ACCESS_KEY},
    {"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI",
     "AWS_SECRET_ACCESS_KEY=", TR_REDACT_AWS_SECRET_KEY},
    {"[default]\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY\n",
     "bPxRfiCYzEXAMPLEKEY", "[default]\naws_secret_access_key = ", TR_REDACT_AWS_SECRET_KEY},
    {"key=AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW&q=x", "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
     "&q=x", TR_REDACT_GCP_API_KEY},
    {"{\"type\": \"service_account\", \"private_key_id\": \"0a1b2c3d4e5f60718293a4b5c6d7e8f9\"}",
     "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "service_account", TR_REDACT_GCP_SERVICE_ACCOUNT},
    {"{\"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n"
     "-----END PRIVATE KEY-----\\n\", \"client_email\": \"x@p.iam.gserviceaccount.com\"}",
     "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "client_email", TR_REDACT_PRIVATE_KEY},
    {"DefaultEndpointsProtocol=https;AccountName=shop;AccountKey=Zm9vYmFyYmF6cXV4Cg==;"
     "EndpointSuffix=core.windows.net", "Zm9vYmFyYmF6cXV4Cg==", "AccountName=shop;AccountKey=",
     TR_REDACT_AZURE},
    {"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;"
     "SharedAccessKey=c2VjcmV0LWF6dXJlLWtleQ==", "c2VjcmV0LWF6dXJlLWtleQ==",
     "SharedAccessKeyName=root", TR_REDACT_AZURE},
    {"GET https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&sig=AbCd%2Bef123XyZ&se=1",
     "AbCd%2Bef123XyZ", "&se=1", TR_REDACT_AZURE},
    {"slack xoxb-1234567890-abcdefghij", "xoxb-1234567890", "slack ", TR_REDACT_SLACK},
    {"app token xapp-1-A0123-4567-abcdef0123 ok", "xapp-1-A0123", " ok", TR_REDACT_SLACK},
    {"post https://hooks.slack.com/services/T0001/B0002/XXXXyyyyZZZZ1234 done",
     "T0001/B0002/XXXXyyyyZZZZ1234", "https://hooks.slack.com/services/", TR_REDACT_SLACK},
    {"ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghij", NULL, TR_REDACT_GITHUB},
    {"gho_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123 ghs_ABCDEFGHIJKLMNOPQRSTUVWXYZ0124", "GHIJKLMNOPQRST",
     NULL, TR_REDACT_GITHUB},
    {"github_pat_11ABCDEFG0123456789_abcdefghijkl", "github_pat_11ABC", NULL, TR_REDACT_GITHUB},
    {"CI_TOKEN_GL glpat-AbCdEfGhIjKlMnOpQrSt", "glpat-AbCdEfGhIj", "CI_TOKEN_GL ",
     TR_REDACT_GITLAB},
    {"stripe sk_live_51HxYzAbCdEfGhIjKlMn", "sk_live_51HxYz", "stripe ", TR_REDACT_STRIPE},
    {"rk_live_AbCdEfGhIjKl0123 pk_live_ZyXwVuTsRq9876", "AbCdEfGhIjKl0123", NULL, TR_REDACT_STRIPE},
    {"key sk-proj-AbCdEfGhIjKlMnOpQrStUv in log", "sk-proj-AbCdEfGhIjKlMnOpQrStUv", "in log",
     TR_REDACT_OPENAI},
    {"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nafter",
     "MIIEowIBAAKCAQEA", "\nafter", TR_REDACT_PRIVATE_KEY},
    {"10:00:01 app -----BEGIN OPENSSH PRIVATE KEY-----\n10:00:01 app b3BlbnNzaC1rZXktdjEAAAA\n"
     "10:00:01 app -----END OPENSSH PRIVATE KEY-----\n10:00:02 app ready", "b3BlbnNzaC1rZXkt",
     "10:00:02 app ready", TR_REDACT_PRIVATE_KEY},
    {"mysql://app:pa55word@db:3306/shop", "pa55word", "mysql://app:<redacted:1>@db:3306/shop",
     TR_REDACT_URL_CREDENTIALS},
    {"git clone https://x0123456789abcdefghij@github.com/o/r", "x0123456789abcdefghij",
     "@github.com/o/r", TR_REDACT_URL_CREDENTIALS},
    {"session=Zk3Lq9Pw2Xr7Tn4Vb8Hc1Jd6 accepted", "Zk3Lq9Pw2Xr7Tn4Vb8Hc1Jd6", " accepted",
     TR_REDACT_HIGH_ENTROPY},
    {"+  token: ghp_0123456789abcdefghijABCDEFGHIJ\n-  token: old", "ghp_0123456789abcdef",
     "+  token: ", TR_REDACT_GITHUB},
    {"  - name: DB_PASSWORD\n    value: yaml-env-pass\n  - name: LOG\n    value: debug\n",
     "yaml-env-pass", "value: debug", TR_REDACT_PASSWORD},
};

static void test_redact_masks_one_seeded_secret_of_every_kind(void **state)
{
    size_t seen[TR_REDACT_KIND_COUNT] = {0};

    (void)state;
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        tr_redact_ctx *ctx = tr_redact_ctx_new();
        char *out;

        assert_non_null(ctx);
        out = tr_redact_dup_ctx(ctx, secrets[i].text);
        assert_non_null(out);
        if (strstr(out, secrets[i].secret) != NULL || strstr(out, "<redacted:1>") == NULL)
            fail_msg("[%s] redacted to [%s]", secrets[i].text, out);
        if (secrets[i].kept != NULL && strstr(out, secrets[i].kept) == NULL)
            fail_msg("[%s] lost [%s]: [%s]", secrets[i].text, secrets[i].kept, out);
        if (tr_redact_ctx_stats(ctx)->by_kind[secrets[i].kind] == 0)
            fail_msg("[%s] not counted as %s", secrets[i].text,
                     tr_redact_kind_name(secrets[i].kind));
        seen[secrets[i].kind]++;
        tr_free(out);
        tr_redact_ctx_free(ctx);
    }
    for (int k = 0; k < TR_REDACT_K8S_SECRET_DATA; k++)
        if (seen[k] == 0 && k != TR_REDACT_K8S_SECRET_DATA)
            fail_msg("no seeded secret of kind %s", tr_redact_kind_name((tr_redact_kind)k));
}

static void test_redact_keeps_what_triage_needs(void **state)
{
    const char *plain[] = {
        "Back-off restarting failed container app in pod checkout-7d9f",
        "secret \"db-creds\" not found",
        "couldn't find key DB_PASSWORD in Secret shop/db-creds",
        "ssh://git@github.com/org/repo.git",
        "if token == expected then ok",
        "{\"missing_key\":\"DB_PASSWORD\",\"secretName\":\"db-creds\",\"max_tokens\":1024}",
        "task-runner sk-short",
        "image ghcr.io/shop/api@sha256:"
        "9b2a6f3c1d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcd pulled",
        "commit 3f2aa21c0e4d5b6a798812345678901234abcdef merged",
        "pod web-7d9c8b6f4-x2x9z and kube-system/coredns-5d78c9869d-8x7xk restarted",
        "uid 123e4567-e89b-12d3-a456-426614174000 owner ReplicaSet/checkout-7d9f8b-x",
        "java.lang.NullPointerException at io.netty.channel.AbstractChannelHandlerContext",
        "open /home/User1/Documents/Projects/app/v1/config.yaml: no such file",
        "MyAppV2DeploymentController ConnectionRefusedException HTTP2ServerConnectionHandler",
        "GET https://api.example.com/v1/users?page=2 200",
        "The quick brown fox jumps over the lazy dog; nothing to see here.",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        size_t count = 0;
        char *out = tr_redact_dup(plain[i], &count);

        assert_non_null(out);
        if (strcmp(out, plain[i]) != 0)
            fail_msg("[%s] changed to [%s]", plain[i], out);
        assert_int_equal(count, 0);
        tr_free(out);
    }
}

static void test_redact_same_value_same_number_across_log_and_manifest(void **state)
{
    tr_redact_ctx *ctx = tr_redact_ctx_new();
    cJSON *manifest = cJSON_Parse("{\"env\":[{\"name\":\"DB_PASSWORD\",\"value\":\"hunter2\"},"
                                  "{\"name\":\"API_TOKEN\",\"value\":\"other-value\"}]}");
    char *log, *again, *json;

    (void)state;
    assert_non_null(ctx);
    assert_non_null(manifest);
    log = tr_redact_dup_ctx(ctx, "login failed: password=hunter2 for app");
    assert_non_null(log);
    assert_string_equal(log, "login failed: password=<redacted:1> for app");
    assert_int_equal(tr_redact_json_ctx(ctx, manifest), 0);
    json = cJSON_PrintUnformatted(manifest);
    assert_string_equal(json, "{\"env\":[{\"name\":\"DB_PASSWORD\",\"value\":\"<redacted:1>\"},"
                              "{\"name\":\"API_TOKEN\",\"value\":\"<redacted:2>\"}]}");
    again = tr_redact_dup_ctx(ctx, "retry DB_PASSWORD=hunter2 token=other-value");
    assert_string_equal(again, "retry DB_PASSWORD=<redacted:1> token=<redacted:2>");
    assert_int_equal(tr_redact_ctx_stats(ctx)->total, 5);
    assert_int_equal(tr_redact_ctx_stats(ctx)->distinct, 2);
    assert_int_equal(tr_redact_ctx_stats(ctx)->by_kind[TR_REDACT_PASSWORD], 3);
    assert_int_equal(tr_redact_ctx_stats(ctx)->by_kind[TR_REDACT_TOKEN], 2);
    cJSON_free(json);
    cJSON_Delete(manifest);
    tr_free(log);
    tr_free(again);
    tr_redact_ctx_free(ctx);
}

static void test_redact_new_values_never_reuse_numbers_already_in_the_text(void **state)
{
    size_t count = 0;
    char *out;

    (void)state;
    /* Masked upstream as <redacted:1> and <redacted:7>; a new value here must not be 1. */
    out = tr_redact_dup("password=fresh-one then <redacted:1> and <redacted:7>", &count);
    assert_non_null(out);
    assert_string_equal(out, "password=<redacted:8> then <redacted:1> and <redacted:7>");
    assert_int_equal(count, 1);
    tr_free(out);
}

static void test_redact_is_idempotent(void **state)
{
    size_t count = 0;
    char *once, *twice;

    (void)state;
    once = tr_redact_dup("DB_PASSWORD=hunter2 Authorization: Bearer abcdefghijkl "
                         "https://u:pw@h/ [REDACTED:token] sig=x", &count);
    assert_non_null(once);
    count = 0;
    twice = tr_redact_dup(once, &count);
    assert_string_equal(once, twice);
    assert_int_equal(count, 0);
    tr_free(once);
    tr_free(twice);
}

static void test_redact_yaml_masks_secret_data_blocks(void **state)
{
    const char *yaml = "apiVersion: v1\n"
                       "kind: ConfigMap\n"
                       "data:\n"
                       "  LOG_LEVEL: debug\n"
                       "---\n"
                       "apiVersion: v1\n"
                       "kind: Secret\n"
                       "metadata:\n"
                       "  name: db-creds\n"
                       "data:\n"
                       "  password: aHVudGVyMg==\n"
                       "  tls.key: |\n"
                       "    MIIBVgIBADANBgkq\n"
                       "    hkiG9w0BAQEFAASC\n"
                       "stringData:\n"
                       "  url: postgres://app@db/shop\n"
                       "type: Opaque\n";
    tr_redact_ctx *ctx = tr_redact_ctx_new();
    tr_buf out = TR_BUF_INIT(0);
    const char *text;

    (void)state;
    assert_int_equal(tr_redact_yaml_ctx(ctx, &out, yaml, strlen(yaml)), 0);
    text = tr_buf_cstr(&out);
    assert_null(strstr(text, "aHVudGVyMg=="));
    assert_null(strstr(text, "MIIBVgIBADANBgkq"));
    assert_null(strstr(text, "hkiG9w0BAQEFAASC"));
    assert_null(strstr(text, "postgres://app@db/shop"));
    assert_non_null(strstr(text, "  LOG_LEVEL: debug\n"));
    assert_non_null(strstr(text, "  name: db-creds\n"));
    assert_non_null(strstr(text, "  password: <redacted:1>\n"));
    assert_non_null(strstr(text, "  tls.key: <redacted:2>\n"));
    assert_non_null(strstr(text, "type: Opaque\n"));
    assert_int_equal(tr_redact_ctx_stats(ctx)->by_kind[TR_REDACT_K8S_SECRET_DATA], 3);
    tr_buf_dispose(&out);
    tr_redact_ctx_free(ctx);
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

    (void)state;
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
    assert_int_equal(count, 4);
    cJSON_free(text);
    cJSON_Delete(tree);
}

static void test_redact_has_placeholder_finds_both_forms(void **state)
{
    (void)state;
    assert_true(tr_redact_has_placeholder("token: <redacted:3>\n", 20));
    assert_true(tr_redact_has_placeholder("x [REDACTED:token] y", 20));
    /* Loose: a placeholder the model mangled still may not be written back. */
    assert_true(tr_redact_has_placeholder("token: <redacted:>", 18));
    assert_true(tr_redact_has_placeholder("value: <redacted:token>", 23));
    assert_false(tr_redact_has_placeholder("redacted: yes", 13));
    assert_false(tr_redact_has_placeholder("plain text", 10));
}

static void test_redact_entropy_threshold_is_tunable(void **state)
{
    const char *tok = "Zk3Lq9Pw2Xr7Tn4Vb8Hc1Jd6";

    (void)state;
    assert_true(tr_redact_is_high_entropy(tok, strlen(tok), 0));
    assert_false(tr_redact_is_high_entropy(tok, strlen(tok), 8.0) &&
                 strlen(tok) > 256); /* 8 bits is capped by what length allows */
    assert_false(tr_redact_is_high_entropy("AAAAAAAAAAAAAAAAAAAAAAAAAbbbbb1", 31, 0));
    assert_false(tr_redact_is_high_entropy("9b2a6f3c1d4e5f60718293a4b5c6d7e8", 32, 0));
}

static void test_redact_names(void **state)
{
    (void)state;
    assert_true(tr_redact_name_is_secret("OPENAI_API_KEY", 14));
    assert_true(tr_redact_name_is_secret("slackToken", 10));
    assert_true(tr_redact_name_is_secret("AccountKey", 10));
    assert_true(tr_redact_name_is_secret("sig", 3));
    assert_false(tr_redact_name_is_secret("LOG_LEVEL", 9));
    assert_false(tr_redact_name_is_secret("secretName", 10));
    assert_false(tr_redact_name_is_secret("max_tokens", 10));
    assert_false(tr_redact_name_is_secret("signal", 6));
}

static void test_redact_out_of_memory_is_reported(void **state)
{
    tr_redact_ctx *ctx = tr_redact_ctx_new();
    tr_buf out = TR_BUF_INIT(0);
    int rc;

    (void)state;
    tr_alloc_fail_after(1, 1);
    rc = tr_redact_text_ctx(ctx, &out, "password=x", 10);
    tr_alloc_fail_after(0, 0);
    assert_int_equal(rc, TR_ENOMEM);
    tr_buf_dispose(&out);
    tr_redact_ctx_free(ctx);
}

static void test_redact_second_pass_changes_nothing_when_a_secret_name_holds_a_random_token(
    void **state)
{
    /* Found by fuzz_redact: the first pass masks the value and resumes after it; a second
     * pass used to go back into the name and mask the token there. */
    const char *text = "db.secret.Zk3Lq9Pw2Xr7Tn4Vb8Hc1Jd6: 'hunter2' next";
    size_t count = 0;
    char *once, *twice;

    (void)state;
    once = tr_redact_dup(text, &count);
    assert_non_null(once);
    assert_string_equal(once, "db.secret.Zk3Lq9Pw2Xr7Tn4Vb8Hc1Jd6: '<redacted:1>' next");
    count = 0;
    twice = tr_redact_dup(once, &count);
    assert_non_null(twice);
    assert_string_equal(twice, once);
    assert_int_equal(count, 0);
    tr_free(once);
    tr_free(twice);
}

static void test_redact_value_at_the_very_end_reads_nothing_past_it(void **state)
{
    /* Found by fuzz_redact: a secret name whose value would start at the last byte. */
    static const char *const endings[] = {
        "DB_PASSWORD=", "api_token: \"", "{\"name\":\"X_TOKEN\",\"value\":", "x AKIA",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(endings) / sizeof(endings[0]); i++) {
        size_t len = strlen(endings[i]), count = 0;
        char *exact = tr_malloc(len); /* no NUL: ASan sees any read past len */
        tr_buf out = TR_BUF_INIT(0);

        assert_non_null(exact);
        memcpy(exact, endings[i], len);
        assert_int_equal(tr_redact_text(&out, exact, len, &count), 0);
        assert_int_equal(out.len, len);
        assert_memory_equal(out.ptr, endings[i], len);
        assert_int_equal(count, 0);
        tr_buf_dispose(&out);
        tr_free(exact);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_masks_one_seeded_secret_of_every_kind),
        cmocka_unit_test(test_redact_keeps_what_triage_needs),
        cmocka_unit_test(test_redact_same_value_same_number_across_log_and_manifest),
        cmocka_unit_test(test_redact_new_values_never_reuse_numbers_already_in_the_text),
        cmocka_unit_test(test_redact_is_idempotent),
        cmocka_unit_test(test_redact_yaml_masks_secret_data_blocks),
        cmocka_unit_test(test_redact_json_masks_env_entries_and_secret_data),
        cmocka_unit_test(test_redact_has_placeholder_finds_both_forms),
        cmocka_unit_test(test_redact_entropy_threshold_is_tunable),
        cmocka_unit_test(test_redact_names),
        cmocka_unit_test(test_redact_out_of_memory_is_reported),
        cmocka_unit_test(test_redact_value_at_the_very_end_reads_nothing_past_it),
        cmocka_unit_test(
            test_redact_second_pass_changes_nothing_when_a_secret_name_holds_a_random_token),
    };

    TR_RUN_TESTS("redact", tests);
}
