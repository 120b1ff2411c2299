/*
 * fixer_schema.c - the cluster's /openapi/v2 for the fixer's patch checks.
 *
 * A job asks for the schema when it starts (fixer_schema_wait). The first time, and again
 * once the set is an hour old (a minute after a failed fetch), one GET /openapi/v2 goes out
 * through the kube client on the loop; the jobs that asked meanwhile wait for it and resume in
 * fixer_job_schema_ready. The document (3-5 MB) is parsed at once on the loop: tens of
 * milliseconds once an hour, and no set is ever shared with a thread that could still be
 * building it. Each job holds a reference on the set it validates with, so a refresh never
 * frees a set under a running check. Without a cluster the jobs go on at once and the PR says
 * why the schema was skipped.
 */
#include "fixer_internal.h"

#include <string.h>

#include "alloc.h"
#include "log.h"

#define SCHEMA_MAX_AGE_MS ((int64_t)3600 * 1000)
#define SCHEMA_RETRY_MS ((int64_t)60 * 1000)
#define SCHEMA_TIMEOUT_MS 60000
#define SCHEMA_MAX_BYTES ((size_t)48 * 1024 * 1024)

struct fixer_schema {
    tr_openapi_set *set;
    int refs;                  /* loop thread only */
};

fixer_schema *fixer_schema_acquire(tr_fixer *f)
{
    if (f->schema != NULL)
        f->schema->refs++;
    return f->schema;
}

const tr_openapi_set *fixer_schema_set(const fixer_schema *s)
{
    return s ? s->set : NULL;
}

void fixer_schema_release(fixer_schema *s)
{
    if (s == NULL || --s->refs > 0)
        return;
    tr_openapi_free(s->set);
    tr_free(s);
}

static void resume_waiters(tr_fixer *f)
{
    void *waiters[TR_FIXER_MAX_JOBS];
    size_t i, n = f->schema_waiter_count;

    memcpy(waiters, f->schema_waiters, n * sizeof(waiters[0]));
    f->schema_waiter_count = 0;
    for (i = 0; i < n; i++)
        fixer_job_schema_ready(waiters[i]); /* may free f once closing: touch nothing after */
}

static void install(tr_fixer *f, const tr_http_response *resp)
{
    fixer_schema *s;
    tr_error err = {0};
    tr_openapi_set *set = NULL;

    if (resp->result != TR_OK) {
        snprintf(f->schema_why, sizeof(f->schema_why), "GET /openapi/v2: %.200s",
                 resp->message && *resp->message ? resp->message : tr_strerror(resp->result));
        return;
    }
    if (resp->status != 200) {
        snprintf(f->schema_why, sizeof(f->schema_why), "GET /openapi/v2: HTTP %ld",
                 resp->status);
        return;
    }
    if (tr_openapi_parse(&set, resp->body, resp->body_len, &err) != TR_OK) {
        snprintf(f->schema_why, sizeof(f->schema_why), "%.240s", err.message);
        return;
    }
    s = tr_calloc(1, sizeof(*s));
    if (s == NULL) {
        tr_openapi_free(set);
        snprintf(f->schema_why, sizeof(f->schema_why), "out of memory");
        return;
    }
    s->set = set;
    s->refs = 1;
    fixer_schema_release(f->schema);
    f->schema = s;
    f->schema_why[0] = '\0';
    tr_log_info("fixer", "cluster schema: %zu kinds from /openapi/v2 (%zu bytes)",
                tr_openapi_kind_count(set), resp->body_len);
}

static void on_schema(const tr_http_response *resp, void *userdata)
{
    tr_fixer *f = userdata;

    f->schema_call = NULL;
    f->schema_at_ms = fixer_now(f);
    if (!f->closing) {
        install(f, resp);
        if (f->schema_why[0])
            tr_log_warn("fixer", "no cluster schema%s: %s", f->schema ? " update" : "",
                        f->schema_why);
    }
    resume_waiters(f);
}

static int due(const tr_fixer *f)
{
    int64_t age = fixer_now(f) - f->schema_at_ms;

    if (f->schema_at_ms == 0)
        return 1;
    return age >= (f->schema_why[0] ? SCHEMA_RETRY_MS : SCHEMA_MAX_AGE_MS) || age < 0;
}

static int start_fetch(tr_fixer *f, tr_kube_client *client)
{
    tr_http_request req;
    tr_kube_prepared prep;
    tr_error err = {0};
    int rc;

    memset(&req, 0, sizeof(req));
    req.method = TR_HTTP_GET;
    req.timeout_ms = SCHEMA_TIMEOUT_MS;
    req.max_response_bytes = SCHEMA_MAX_BYTES;
    req.on_done = on_schema;
    req.userdata = f;
    rc = tr_kube_client_prepare(client, &req, "/openapi/v2", &prep, &err);
    if (rc == TR_OK)
        rc = tr_http_client_send(f->opts.http, &req, &f->schema_call, &err);
    tr_kube_prepared_dispose(&prep);
    if (rc != TR_OK) {
        f->schema_at_ms = fixer_now(f);
        snprintf(f->schema_why, sizeof(f->schema_why), "GET /openapi/v2: %.200s",
                 err.message[0] ? err.message : tr_strerror(rc));
    }
    return rc;
}

int fixer_schema_wait(tr_fixer *f, void *job)
{
    tr_kube_client *client = f->opts.kube_client ? f->opts.kube_client(f->opts.kube_userdata)
                                                 : NULL;

    if (f->schema_call == NULL) {
        if (client == NULL || f->opts.http == NULL) {
            if (f->schema == NULL)
                snprintf(f->schema_why, sizeof(f->schema_why), "no Kubernetes cluster "
                                                               "configured");
            return 0;
        }
        if (!due(f) || start_fetch(f, client) != TR_OK)
            return 0;
    }
    if (f->schema_waiter_count == TR_FIXER_MAX_JOBS)
        return 0;
    f->schema_waiters[f->schema_waiter_count++] = job;
    return 1;
}

const char *fixer_schema_why(const tr_fixer *f)
{
    return f->schema_why[0] ? f->schema_why : "not fetched";
}

void fixer_schema_close(tr_fixer *f)
{
    if (f->schema_call != NULL)
        tr_http_call_cancel(f->schema_call);
}

void fixer_schema_dispose(tr_fixer *f)
{
    fixer_schema_release(f->schema);
    f->schema = NULL;
}
