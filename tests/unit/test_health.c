#include "testutil.h"

#include "error.h"
#include "health.h"

static void test_health_ready_only_when_nothing_starting_or_failed(void **state)
{
    tr_health *health = NULL;

    (void)state;
    assert_int_equal(tr_health_new(&health), TR_OK);
    assert_true(tr_health_is_ready(health));
    assert_int_equal(tr_health_set(health, "store", TR_HEALTH_OK, "open"), TR_OK);
    assert_int_equal(tr_health_set(health, "kubernetes", TR_HEALTH_STARTING, "listing"), TR_OK);
    assert_false(tr_health_is_ready(health));
    /* An unreachable cluster is reported but does not make the daemon unready. */
    assert_int_equal(tr_health_set(health, "kubernetes", TR_HEALTH_UNAVAILABLE,
                                   "connection refused; retrying in 30s"), TR_OK);
    assert_true(tr_health_is_ready(health));
    assert_int_equal(tr_health_set(health, "store", TR_HEALTH_FAILED, "disk full"), TR_OK);
    assert_false(tr_health_is_ready(health));
    tr_health_free(health);
}

static void test_health_renders_escaped_json(void **state)
{
    tr_health *health = NULL;
    tr_buf out = TR_BUF_INIT(0);

    (void)state;
    assert_int_equal(tr_health_new(&health), TR_OK);
    assert_int_equal(tr_health_set(health, "store", TR_HEALTH_OK, "open \"var/x.db\""), TR_OK);
    assert_int_equal(tr_health_render_json(health, &out), TR_OK);
    assert_string_equal(tr_buf_cstr(&out),
                        "{\"ready\":true,\"stopping\":false,\"components\":{\"store\":"
                        "{\"state\":\"ok\",\"detail\":\"open \\\"var/x.db\\\"\"}}}");
    tr_health_set_stopping(health);
    assert_false(tr_health_is_ready(health));
    tr_buf_dispose(&out);
    tr_health_free(health);
}

static void test_health_bounds_component_count(void **state)
{
    tr_health *health = NULL;
    char name[32];
    int i;

    (void)state;
    assert_int_equal(tr_health_new(&health), TR_OK);
    for (i = 0; i < TR_HEALTH_MAX_COMPONENTS; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        assert_int_equal(tr_health_set(health, name, TR_HEALTH_OK, NULL), TR_OK);
    }
    assert_int_equal(tr_health_set(health, "one-too-many", TR_HEALTH_OK, NULL), TR_ELIMIT);
    tr_health_free(health);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_ready_only_when_nothing_starting_or_failed),
        cmocka_unit_test(test_health_renders_escaped_json),
        cmocka_unit_test(test_health_bounds_component_count),
    };
    TR_RUN_TESTS("health", tests);
}
