#include "testutil.h"

#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "metrics.h"

static tr_metrics *new_registry(size_t max_series)
{
    tr_metrics *reg = NULL;

    assert_int_equal(tr_metrics_new(&reg, max_series), TR_OK);
    return reg;
}

static void test_metrics_renders_exact_exposition(void **state)
{
    static const double buckets[] = { 0.1, 0.5, 2.5 };
    tr_metrics *reg = new_registry(0);
    tr_metric_family *requests, *open, *latency;
    tr_buf out = TR_BUF_INIT(0);

    (void)state;
    requests = tr_metrics_counter(reg, "http_requests", "HTTP requests answered.", "class",
                                  NULL);
    open = tr_metrics_gauge(reg, "http_connections_open", "Open connections.", NULL);
    latency = tr_metrics_histogram(reg, "http_request_duration_seconds", "Request latency.",
                                   buckets, 3, "route", NULL);
    assert_non_null(requests);
    assert_non_null(open);
    assert_non_null(latency);
    assert_int_equal(tr_metric_inc(requests, 1, "2xx"), TR_OK);
    assert_int_equal(tr_metric_inc(requests, 2, "2xx"), TR_OK);
    assert_int_equal(tr_metric_inc(requests, 1, "4xx"), TR_OK);
    assert_int_equal(tr_metric_set(open, 7), TR_OK);
    assert_int_equal(tr_metric_inc(open, -2), TR_OK);
    assert_int_equal(tr_metric_observe(latency, 0.05, "/healthz"), TR_OK);
    assert_int_equal(tr_metric_observe(latency, 0.5, "/healthz"), TR_OK);
    assert_int_equal(tr_metric_observe(latency, 3, "/healthz"), TR_OK);
    assert_int_equal(tr_metrics_render(reg, &out), TR_OK);
    assert_string_equal(
        tr_buf_cstr(&out),
        "# HELP http_requests_total HTTP requests answered.\n"
        "# TYPE http_requests_total counter\n"
        "http_requests_total{class=\"2xx\"} 3\n"
        "http_requests_total{class=\"4xx\"} 1\n"
        "# HELP http_connections_open Open connections.\n"
        "# TYPE http_connections_open gauge\n"
        "http_connections_open 5\n"
        "# HELP http_request_duration_seconds Request latency.\n"
        "# TYPE http_request_duration_seconds histogram\n"
        "http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.1\"} 1\n"
        "http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.5\"} 2\n"
        "http_request_duration_seconds_bucket{route=\"/healthz\",le=\"2.5\"} 2\n"
        "http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 3\n"
        "http_request_duration_seconds_sum{route=\"/healthz\"} 3.55\n"
        "http_request_duration_seconds_count{route=\"/healthz\"} 3\n"
        "# HELP triaged_metrics_series_dropped_total Metric samples dropped because their "
        "family had too many series.\n"
        "# TYPE triaged_metrics_series_dropped_total counter\n"
        "triaged_metrics_series_dropped_total 0\n");
    assert_int_equal(tr_metric_value(requests, "2xx"), 3);
    assert_int_equal(tr_metric_value(requests, "5xx"), 0);
    assert_int_equal(tr_metric_value(latency, "/healthz"), 3);
    tr_buf_dispose(&out);
    tr_metrics_free(reg);
}

static void test_metrics_escapes_label_values_and_help(void **state)
{
    tr_metrics *reg = new_registry(0);
    tr_metric_family *f;
    tr_buf out = TR_BUF_INIT(0);

    (void)state;
    f = tr_metrics_gauge(reg, "odd", "Help with \\ and\nnewline \"quotes\".", "path", "kind",
                         NULL);
    assert_int_equal(tr_metric_set(f, 1.25, "C:\\dir", "say \"hi\"\nbye"), TR_OK);
    assert_int_equal(tr_metrics_render(reg, &out), TR_OK);
    assert_non_null(strstr(tr_buf_cstr(&out),
                           "# HELP odd Help with \\\\ and\\nnewline \"quotes\".\n"));
    assert_non_null(strstr(tr_buf_cstr(&out),
                           "odd{path=\"C:\\\\dir\",kind=\"say \\\"hi\\\"\\nbye\"} 1.25\n"));
    tr_buf_dispose(&out);
    tr_metrics_free(reg);
}

static void test_metrics_bounds_series_per_family(void **state)
{
    tr_metrics *reg = new_registry(3);
    tr_metric_family *f = tr_metrics_counter(reg, "hits_total", "Hits.", "who", NULL);
    tr_buf out = TR_BUF_INIT(0);
    char who[16];
    int i;

    (void)state;
    for (i = 0; i < 10; i++) {
        snprintf(who, sizeof(who), "u%d", i);
        assert_int_equal(tr_metric_inc(f, 1, who), i < 3 ? TR_OK : TR_ELIMIT);
    }
    /* Existing series keep counting after the cap. */
    assert_int_equal(tr_metric_inc(f, 1, "u0"), TR_OK);
    assert_int_equal(tr_metrics_dropped(reg), 7);
    assert_int_equal(tr_metrics_render(reg, &out), TR_OK);
    assert_non_null(strstr(tr_buf_cstr(&out), "hits_total{who=\"u0\"} 2\n"));
    assert_null(strstr(tr_buf_cstr(&out), "u3"));
    assert_non_null(strstr(tr_buf_cstr(&out), "triaged_metrics_series_dropped_total 7\n"));
    tr_buf_dispose(&out);
    tr_metrics_free(reg);
}

static void test_metrics_refuses_misuse(void **state)
{
    static const double unordered[] = { 1, 0.5 };
    tr_metrics *reg = new_registry(0);
    tr_metric_family *c, *g;

    (void)state;
    c = tr_metrics_counter(reg, "jobs", "Jobs.", "state", NULL);
    assert_non_null(c);
    /* Same shape again: the same family; another shape under that name: refused. */
    assert_ptr_equal(tr_metrics_counter(reg, "jobs_total", "Jobs.", "state", NULL), c);
    assert_null(tr_metrics_gauge(reg, "jobs_total", "Jobs.", "state", NULL));
    assert_null(tr_metrics_counter(reg, "9bad", "x", NULL));
    assert_null(tr_metrics_counter(reg, "bad-name", "x", NULL));
    assert_null(tr_metrics_gauge(reg, "g", "x", "__reserved", NULL));
    assert_null(tr_metrics_histogram(reg, "h", "x", NULL, 0, "le", NULL));
    assert_null(tr_metrics_histogram(reg, "h", "x", unordered, 2, NULL));
    assert_int_equal(tr_metric_inc(c, -1, "ok"), TR_EINVAL);
    assert_int_equal(tr_metric_set(c, 1, "ok"), TR_EINVAL);
    assert_int_equal(tr_metric_observe(c, 1, "ok"), TR_EINVAL);
    assert_int_equal(tr_metric_inc(c, 1, (const char *)NULL), TR_EINVAL);
    g = tr_metrics_gauge(reg, "temp", "T.", NULL);
    assert_int_equal(tr_metric_inc(NULL, 1), TR_OK);
    assert_int_equal(tr_metric_set(g, -3.5), TR_OK);
    assert_true(tr_metric_value(g) == -3.5);
    tr_metrics_free(reg);
}

static void test_metrics_process_metrics_present(void **state)
{
    tr_metrics *reg = new_registry(0);
    tr_buf out = TR_BUF_INIT(0);
    const char *text, *rss;

    (void)state;
    tr_metrics_enable_process(reg);
    assert_int_equal(tr_metrics_render(reg, &out), TR_OK);
    text = tr_buf_cstr(&out);
    assert_non_null(strstr(text, "\nprocess_start_time_seconds "));
    assert_non_null(strstr(text, "\nprocess_open_fds "));
    assert_non_null(strstr(text, "\nprocess_cpu_seconds_total "));
    rss = strstr(text, "\nprocess_resident_memory_bytes ");
    assert_non_null(rss);
    assert_true(strtod(rss + strlen("\nprocess_resident_memory_bytes "), NULL) > 1024 * 1024);
    tr_buf_dispose(&out);
    tr_metrics_free(reg);
}

static void test_metrics_output_passes_promtool(void **state)
{
    static const double buckets[] = { 0.001, 0.25, 1e3 };
    tr_metrics *reg = new_registry(0);
    tr_metric_family *c, *h, *g;
    tr_buf out = TR_BUF_INIT(0);
    char path[] = "/tmp/tr_metrics_XXXXXX";
    char cmd[128];
    int fd, status;

    (void)state;
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        fprintf(stderr, "promtool not installed: skipping the promtool check\n");
        tr_metrics_free(reg);
        skip();
    }
    tr_metrics_enable_process(reg);
    c = tr_metrics_counter(reg, "triaged_http_requests", "Requests by class.", "class", NULL);
    g = tr_metrics_gauge(reg, "triaged_queue_depth", "Queue \"depth\"\\now.", "queue", NULL);
    h = tr_metrics_histogram(reg, "triaged_llm_seconds", "LLM call latency.", buckets, 3,
                             "model", NULL);
    assert_int_equal(tr_metric_inc(c, 5, "2xx"), TR_OK);
    assert_int_equal(tr_metric_set(g, 0.5, "a\\b\"c\nd"), TR_OK);
    assert_int_equal(tr_metric_observe(h, 0.2, "llama"), TR_OK);
    assert_int_equal(tr_metric_observe(h, 5000, "llama"), TR_OK);
    assert_int_equal(tr_metrics_render(reg, &out), TR_OK);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, out.ptr, out.len), (ssize_t)out.len);
    close(fd);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
    status = system(cmd);
    unlink(path);
    if (status != 0)
        fprintf(stderr, "promtool rejected:\n%s", tr_buf_cstr(&out));
    assert_int_equal(status, 0);
    tr_buf_dispose(&out);
    tr_metrics_free(reg);
}

static void test_metrics_survives_allocation_failures(void **state)
{
    long n;
    int rendered = 0;

    (void)state;
    for (n = 1; n < 100 && !rendered; n++) {
        tr_metrics *reg = NULL;
        tr_metric_family *f;
        tr_buf out = TR_BUF_INIT(0);
        tr_alloc_fail_after(n, 0);
        if (tr_metrics_new(&reg, 0) == TR_OK) {
            f = tr_metrics_counter(reg, "c", "C.", "l", NULL);
            if (f != NULL && tr_metric_inc(f, 1, "v") == TR_OK &&
                tr_metrics_render(reg, &out) == TR_OK) {
                assert_non_null(strstr(tr_buf_cstr(&out), "c_total{l=\"v\"} 1\n"));
                rendered = 1;
            }
        }
        tr_alloc_fail_after(0, 0);
        tr_buf_dispose(&out);
        tr_metrics_free(reg);
    }
    assert_true(rendered);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_renders_exact_exposition),
        cmocka_unit_test(test_metrics_escapes_label_values_and_help),
        cmocka_unit_test(test_metrics_bounds_series_per_family),
        cmocka_unit_test(test_metrics_refuses_misuse),
        cmocka_unit_test(test_metrics_process_metrics_present),
        cmocka_unit_test(test_metrics_output_passes_promtool),
        cmocka_unit_test(test_metrics_survives_allocation_failures),
    };

    TR_RUN_TESTS("metrics", tests);
}
