/*
 * test_kube_lease.c - the pure half of the Lease elector: MicroTime, reading
 * a Lease, the acquire/renew/follow decision and the bodies written back
 * (the compare-and-swap resourceVersion that makes a racing replica get 409).
 * The elector's HTTP side runs against a real apiserver in
 * tests/integration/test_kube_lease.py.
 */
#include "testutil.h"

#include "kube_lease.h"

#include <cjson/cJSON.h>

#define T0_US INT64_C(1714557600123456) /* 2024-05-01T10:00:00.123456Z */

static const char held_by_a[] =
    "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
    "\"metadata\":{\"name\":\"triaged-prod\",\"namespace\":\"ops\",\"resourceVersion\":\"4711\","
    "\"labels\":{\"team\":\"sre\"},\"managedFields\":[{\"manager\":\"x\"}]},"
    "\"spec\":{\"holderIdentity\":\"host-a_12\",\"leaseDurationSeconds\":15,"
    "\"acquireTime\":\"2024-05-01T09:00:00.000000Z\","
    "\"renewTime\":\"2024-05-01T10:00:00.123456Z\",\"leaseTransitions\":3}}";

static void test_microtime_parses_with_microseconds_and_offsets(void **state)
{
    int64_t us = 0;

    (void)state;
    assert_int_equal(tr_kube_lease_parse_time("2024-05-01T10:00:00.123456Z", &us), TR_OK);
    assert_true(us == T0_US);
    assert_int_equal(tr_kube_lease_parse_time("2024-05-01T12:00:00.123456+02:00", &us), TR_OK);
    assert_true(us == T0_US);
    assert_int_equal(tr_kube_lease_parse_time("2024-05-01T10:00:00Z", &us), TR_OK);
    assert_true(us == T0_US - 123456);
    assert_int_equal(tr_kube_lease_parse_time("2024-05-01T10:00:00.5Z", &us), TR_OK);
    assert_true(us == T0_US - 123456 + 500000);
}

static void test_microtime_rejects_garbage(void **state)
{
    int64_t us = 0;

    (void)state;
    assert_int_equal(tr_kube_lease_parse_time("", &us), TR_EPARSE);
    assert_int_equal(tr_kube_lease_parse_time("yesterday", &us), TR_EPARSE);
    assert_int_equal(tr_kube_lease_parse_time("2024-13-01T10:00:00Z", &us), TR_EPARSE);
    assert_int_equal(tr_kube_lease_parse_time("2024-05-01T10:00:00", &us), TR_EPARSE);
    assert_int_equal(tr_kube_lease_parse_time(NULL, &us), TR_EPARSE);
}

static void test_microtime_formats_six_digits_and_round_trips(void **state)
{
    char buf[40];
    int64_t back = 0;

    (void)state;
    assert_int_equal(tr_kube_lease_format_time(T0_US, buf, sizeof(buf)), TR_OK);
    assert_string_equal(buf, "2024-05-01T10:00:00.123456Z");
    assert_int_equal(tr_kube_lease_format_time(T0_US - 123456 + 7, buf, sizeof(buf)), TR_OK);
    assert_string_equal(buf, "2024-05-01T10:00:00.000007Z");
    assert_int_equal(tr_kube_lease_parse_time(buf, &back), TR_OK);
    assert_true(back == T0_US - 123456 + 7);
    assert_int_equal(tr_kube_lease_format_time(T0_US, buf, 10), TR_ETOOBIG);
}

static void test_record_reads_holder_times_and_resource_version(void **state)
{
    tr_kube_lease_record rec;
    tr_error err = { 0 };

    (void)state;
    assert_int_equal(tr_kube_lease_record_parse(&rec, held_by_a, strlen(held_by_a), &err),
                     TR_OK);
    assert_string_equal(rec.resource_version, "4711");
    assert_string_equal(rec.holder, "host-a_12");
    assert_true(rec.duration_s == 15);
    assert_true(rec.renew_us == T0_US);
    assert_true(rec.transitions == 3);
    tr_kube_lease_record_dispose(&rec);
}

static void test_record_errors_name_the_field(void **state)
{
    static const char no_rv[] = "{\"metadata\":{},\"spec\":{}}";
    static const char bad_time[] = "{\"metadata\":{\"resourceVersion\":\"1\"},"
                                   "\"spec\":{\"holderIdentity\":\"a\",\"renewTime\":\"soon\"}}";
    tr_kube_lease_record rec;
    tr_error err = { 0 };

    (void)state;
    assert_int_equal(tr_kube_lease_record_parse(&rec, no_rv, strlen(no_rv), &err), TR_EPARSE);
    assert_non_null(strstr(err.message, "resourceVersion"));
    assert_int_equal(tr_kube_lease_record_parse(&rec, bad_time, strlen(bad_time), &err),
                     TR_EPARSE);
    assert_non_null(strstr(err.message, "renewTime"));
    assert_int_equal(tr_kube_lease_record_parse(&rec, "[1", 2, &err), TR_EPARSE);
}

static void test_held_lease_is_followed_until_it_expires_then_acquired(void **state)
{
    tr_kube_lease_record rec;
    tr_error err = { 0 };

    (void)state;
    assert_int_equal(tr_kube_lease_record_parse(&rec, held_by_a, strlen(held_by_a), &err),
                     TR_OK);
    /* renewTime + 15 s: still valid at 14.9 s, expired just after 15 s. */
    assert_int_equal(tr_kube_lease_decide(&rec, "host-b_7", T0_US + 14900000),
                     TR_KUBE_LEASE_FOLLOW);
    assert_int_equal(tr_kube_lease_decide(&rec, "host-b_7", T0_US + 15000001),
                     TR_KUBE_LEASE_ACQUIRE);
    /* Ours: renewed, expired or not (a leader back after an outage keeps its term). */
    assert_int_equal(tr_kube_lease_decide(&rec, "host-a_12", T0_US + 1000000),
                     TR_KUBE_LEASE_RENEW);
    assert_int_equal(tr_kube_lease_decide(&rec, "host-a_12", T0_US + 60000000),
                     TR_KUBE_LEASE_RENEW);
    tr_kube_lease_record_dispose(&rec);
}

static void test_released_lease_is_free_at_once(void **state)
{
    static const char released[] =
        "{\"metadata\":{\"resourceVersion\":\"9\"},\"spec\":{\"holderIdentity\":\"\","
        "\"leaseDurationSeconds\":1,\"renewTime\":\"2024-05-01T10:00:00.123456Z\"}}";
    tr_kube_lease_record rec;
    tr_error err = { 0 };

    (void)state;
    assert_int_equal(tr_kube_lease_record_parse(&rec, released, strlen(released), &err), TR_OK);
    assert_int_equal(tr_kube_lease_decide(&rec, "host-b_7", T0_US), TR_KUBE_LEASE_ACQUIRE);
    tr_kube_lease_record_dispose(&rec);
}

/* The PUT body as the apiserver would store it. */
static cJSON *update(tr_kube_lease_action action, const char *identity, int64_t now_us)
{
    char *body = NULL;
    tr_error err = { 0 };
    cJSON *root;

    assert_int_equal(tr_kube_lease_build_update(&body, held_by_a, strlen(held_by_a), action,
                                                identity, now_us, 15, &err), TR_OK);
    root = cJSON_Parse(body);
    tr_free(body);
    assert_non_null(root);
    return root;
}

static const char *spec_str(const cJSON *root, const char *field)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "spec"), field));
}

static double spec_num(const cJSON *root, const char *field)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "spec"), field));
}

static void test_takeover_put_carries_resource_version_and_counts_a_transition(void **state)
{
    cJSON *root = update(TR_KUBE_LEASE_ACQUIRE, "host-b_7", T0_US + 20000000);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");

    (void)state;
    /* The resourceVersion read is what makes a racing replica's PUT answer 409. */
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                            meta, "resourceVersion")), "4711");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(meta, "labels"), "team")), "sre");
    assert_null(cJSON_GetObjectItemCaseSensitive(meta, "managedFields"));
    assert_string_equal(spec_str(root, "holderIdentity"), "host-b_7");
    assert_string_equal(spec_str(root, "acquireTime"), "2024-05-01T10:00:20.123456Z");
    assert_string_equal(spec_str(root, "renewTime"), "2024-05-01T10:00:20.123456Z");
    assert_true(spec_num(root, "leaseTransitions") == 4);
    assert_true(spec_num(root, "leaseDurationSeconds") == 15);
    cJSON_Delete(root);
}

static void test_renewal_keeps_acquire_time_and_transitions(void **state)
{
    cJSON *root = update(TR_KUBE_LEASE_RENEW, "host-a_12", T0_US + 2000000);

    (void)state;
    assert_string_equal(spec_str(root, "holderIdentity"), "host-a_12");
    assert_string_equal(spec_str(root, "acquireTime"), "2024-05-01T09:00:00.000000Z");
    assert_string_equal(spec_str(root, "renewTime"), "2024-05-01T10:00:02.123456Z");
    assert_true(spec_num(root, "leaseTransitions") == 3);
    cJSON_Delete(root);
}

static void test_release_empties_holder_with_one_second_duration(void **state)
{
    cJSON *root = update(TR_KUBE_LEASE_RELEASE, "host-a_12", T0_US + 3000000);

    (void)state;
    assert_string_equal(spec_str(root, "holderIdentity"), "");
    assert_true(spec_num(root, "leaseDurationSeconds") == 1);
    assert_true(spec_num(root, "leaseTransitions") == 3);
    cJSON_Delete(root);
}

static void test_create_body_names_lease_and_holder(void **state)
{
    char *body = NULL;
    tr_error err = { 0 };
    tr_kube_lease_record rec;
    cJSON *root;

    (void)state;
    assert_int_equal(tr_kube_lease_build_create(&body, "ops", "triaged-prod", "host-a_12", T0_US,
                                                15, &err), TR_OK);
    root = cJSON_Parse(body);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "kind")),
                        "Lease");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(root, "metadata"), "namespace")),
                        "ops");
    assert_string_equal(spec_str(root, "holderIdentity"), "host-a_12");
    assert_true(spec_num(root, "leaseTransitions") == 0);
    /* No resourceVersion on a create: it is not a Lease we can read back as one. */
    assert_int_equal(tr_kube_lease_record_parse(&rec, body, strlen(body), &err), TR_EPARSE);
    cJSON_Delete(root);
    tr_free(body);
}

static void test_update_of_garbage_is_an_error_not_a_body(void **state)
{
    char *body = (char *)"unchanged";
    tr_error err = { 0 };

    (void)state;
    assert_int_equal(tr_kube_lease_build_update(&body, "{}", 2, TR_KUBE_LEASE_RENEW, "a", T0_US,
                                                15, &err), TR_EPARSE);
    assert_null(body);
}

/* Found by fuzz_kube_lease: a key given twice left its stale second copy in the body. */
static void test_duplicate_spec_keys_leave_one_fresh_value(void **state)
{
    static const char dup[] =
        "{\"metadata\":{\"resourceVersion\":\"5\"},\"spec\":{\"holderIdentity\":\"a\","
        "\"renewTime\":\"2024-05-01T10:00:00Z\",\"renewTime\":\"bogus\"}}";
    tr_kube_lease_record rec;
    tr_error err = { 0 };
    char *body = NULL;

    (void)state;
    assert_int_equal(tr_kube_lease_build_update(&body, dup, strlen(dup), TR_KUBE_LEASE_RENEW,
                                                "a", T0_US, 15, &err), TR_OK);
    assert_null(strstr(body, "bogus"));
    assert_int_equal(tr_kube_lease_record_parse(&rec, body, strlen(body), &err), TR_OK);
    assert_true(rec.renew_us == T0_US);
    tr_kube_lease_record_dispose(&rec);
    tr_free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_microtime_parses_with_microseconds_and_offsets),
        cmocka_unit_test(test_microtime_rejects_garbage),
        cmocka_unit_test(test_microtime_formats_six_digits_and_round_trips),
        cmocka_unit_test(test_record_reads_holder_times_and_resource_version),
        cmocka_unit_test(test_record_errors_name_the_field),
        cmocka_unit_test(test_held_lease_is_followed_until_it_expires_then_acquired),
        cmocka_unit_test(test_released_lease_is_free_at_once),
        cmocka_unit_test(test_takeover_put_carries_resource_version_and_counts_a_transition),
        cmocka_unit_test(test_renewal_keeps_acquire_time_and_transitions),
        cmocka_unit_test(test_release_empties_holder_with_one_second_duration),
        cmocka_unit_test(test_create_body_names_lease_and_holder),
        cmocka_unit_test(test_update_of_garbage_is_an_error_not_a_body),
        cmocka_unit_test(test_duplicate_spec_keys_leave_one_fresh_value),
    };

    TR_RUN_TESTS("kube_lease", tests);
}
