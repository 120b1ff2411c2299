/*
 * kube_lease_probe.c - runs one Lease leader elector against a real
 * apiserver and prints its transitions, one line each, for
 * tests/integration/test_kube_lease.py:
 *
 *   STARTED <identity> <namespace>/<name>
 *   leader | follower                  (each on_change; "follower" first too)
 *   HOLDER <identity>                  (when the holder seen on the Lease changes)
 *   RELEASED                           (after SIGTERM's clean stop)
 *   STATS transitions=<n> conflicts=<n>
 *   EXIT loop_close=<rc>
 *
 * SIGTERM/SIGINT stops cleanly (releasing a held Lease); exit status 0 only
 * when the loop closed cleanly. Logs go to stderr.
 *
 *   kube_lease_probe --kubeconfig F --identity ID [--namespace NS] [--name N]
 *                    [--duration-ms 15000] [--renew-ms 10000] [--retry-ms 2000]
 */
#include "alloc.h"
#include "health.h"
#include "http_client.h"
#include "kube_client.h"
#include "kube_lease.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct probe {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    uv_timer_t poll;
    tr_http_client *http;
    tr_health *health;
    tr_kube_client *client;
    tr_kube_lease *lease;
    char holder[512];
    int stopping;
} probe;

static void on_change(tr_kube_lease *lease, int is_leader, void *userdata)
{
    (void)lease;
    (void)userdata;
    printf("%s\n", is_leader ? "leader" : "follower");
    fflush(stdout);
}

static void on_poll(uv_timer_t *timer)
{
    probe *p = timer->data;
    const char *holder = tr_kube_lease_holder(p->lease);

    if (strcmp(holder, p->holder) != 0) {
        snprintf(p->holder, sizeof(p->holder), "%s", holder);
        printf("HOLDER %s\n", holder);
        fflush(stdout);
    }
}

static void on_stopped(void *userdata)
{
    probe *p = userdata;

    printf("RELEASED\nSTATS transitions=%lu conflicts=%lu\n", tr_kube_lease_transitions(p->lease),
           tr_kube_lease_conflicts(p->lease));
    fflush(stdout);
    tr_kube_lease_close(p->lease);
    tr_kube_client_close(p->client);
    tr_http_client_free(p->http);
    uv_close((uv_handle_t *)&p->sigint, NULL);
    uv_close((uv_handle_t *)&p->sigterm, NULL);
    uv_close((uv_handle_t *)&p->poll, NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    probe *p = sig->data;

    (void)signum;
    if (p->stopping)
        return;
    p->stopping = 1;
    tr_kube_lease_stop(p->lease, on_stopped, p);
}

static const char *arg_value(int argc, char **argv, const char *name, const char *fallback)
{
    int i;

    for (i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return fallback;
}

int main(int argc, char **argv)
{
    probe p;
    tr_kube_client_options copt;
    tr_kube_lease_options lopt;
    tr_error err = { 0 };
    int rc;

    if (tr_alloc_install() != 0)
        return 2;
    tr_log_setup(getenv("PROBE_DEBUG") ? TR_LOG_DEBUG : TR_LOG_INFO, TR_LOG_TEXT);
    memset(&p, 0, sizeof(p));
    if (uv_loop_init(&p.loop) != 0 || tr_http_client_new(&p.http, &p.loop, &err) != TR_OK ||
        tr_health_new(&p.health) != TR_OK) {
        fprintf(stderr, "setup failed: %s\n", err.message);
        return 2;
    }
    memset(&copt, 0, sizeof(copt));
    copt.kubeconfig = arg_value(argc, argv, "--kubeconfig", "auto");
    copt.backoff_initial_ms = 200;
    copt.backoff_max_ms = 1000;
    rc = tr_kube_client_new(&p.client, &p.loop, p.http, p.health, &copt, &err);
    if (rc == TR_OK)
        rc = tr_kube_client_start(p.client);
    memset(&lopt, 0, sizeof(lopt));
    lopt.namespace = arg_value(argc, argv, "--namespace", NULL);
    lopt.namespace_file = arg_value(argc, argv, "--namespace-file", NULL);
    lopt.name = arg_value(argc, argv, "--name", NULL);
    lopt.cluster_name = arg_value(argc, argv, "--cluster-name", NULL);
    lopt.identity = arg_value(argc, argv, "--identity", NULL);
    lopt.lease_duration_ms = strtoull(arg_value(argc, argv, "--duration-ms", "0"), NULL, 10);
    lopt.renew_deadline_ms = strtoull(arg_value(argc, argv, "--renew-ms", "0"), NULL, 10);
    lopt.retry_period_ms = strtoull(arg_value(argc, argv, "--retry-ms", "0"), NULL, 10);
    lopt.on_change = on_change;
    lopt.userdata = &p;
    if (rc == TR_OK)
        rc = tr_kube_lease_new(&p.lease, &p.loop, p.client, p.http, &lopt, &err);
    if (rc == TR_OK)
        rc = tr_kube_lease_start(p.lease);
    if (rc != TR_OK) {
        fprintf(stderr, "probe: %s\n", err.message);
        return 2;
    }
    uv_signal_init(&p.loop, &p.sigint);
    uv_signal_init(&p.loop, &p.sigterm);
    uv_timer_init(&p.loop, &p.poll);
    p.sigint.data = p.sigterm.data = p.poll.data = &p;
    uv_signal_start(&p.sigint, on_signal, SIGINT);
    uv_signal_start(&p.sigterm, on_signal, SIGTERM);
    uv_timer_start(&p.poll, on_poll, 50, 50);
    printf("STARTED %s %s/%s\nfollower\n", tr_kube_lease_identity(p.lease),
           tr_kube_lease_namespace(p.lease), tr_kube_lease_name(p.lease));
    fflush(stdout);
    uv_run(&p.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&p.loop);
    printf("EXIT loop_close=%d\n", rc);
    fflush(stdout);
    tr_health_free(p.health);
    tr_alloc_uninstall();
    return rc == 0 ? 0 : 1;
}
