/*
 * tf_http.h - the daemon's Terraform HTTP inputs:
 *
 *   POST /v1/terraform/runs      body = a `terraform ... -json` log; workspace, repo_path,
 *                                commit, run_id, run_url, operation as query parameters or
 *                                X-Triaged-Workspace, X-Triaged-Repo-Path, X-Triaged-Commit,
 *                                X-Triaged-Run-Id, X-Triaged-Run-Url, X-Triaged-Operation.
 *                                202 {"incident_id":N,...} for a failure, 200 {"result":"no
 *                                failure",...} otherwise, 400 for an empty or non-Terraform
 *                                body. Needs the API bearer token like every /v1 route.
 *   POST /hooks/terraform-cloud  HCP Terraform / TFE notifications (PROTOCOLS.md §2.2),
 *                                registered only when an HMAC key is configured. The
 *                                X-TFE-Notification-Signature header must be the hex
 *                                HMAC-SHA512 of the raw body keyed with it (constant-time
 *                                compare), else 401. "verification" → 200; "run:errored"
 *                                (not a cancel) → an incident, through the run's log when an
 *                                API token is configured (tf_hcp.h); "run:completed" →
 *                                the workspace's Terraform incidents are resolved.
 *
 * The context owns the HCP fetcher; everything else it points to is borrowed. Loop thread.
 */
#ifndef TR_TF_HTTP_H
#define TR_TF_HTTP_H

#include "http_client.h"
#include "http_server.h"
#include "tf_ingest.h"

typedef struct tr_tf_http tr_tf_http;

typedef struct tr_tf_http_options {
    tr_tf_ingest ingest;          /* copied (its pointers stay borrowed) */
    const char *api_token;        /* NULL = /v1 open (loopback); compared in constant time */
    const char *hmac_key;         /* NULL or "" = /hooks/terraform-cloud not registered */
    tr_http_client *client;       /* needed when tfc_token is set */
    const char *tfc_token;        /* NULL or "" = no log fetch: run:errored → RunErrored */
    const char *tfc_base_url;     /* NULL = https://app.terraform.io */
    tr_tf_log_options log_options;
    size_t max_log_bytes;         /* body cap of POST /v1/terraform/runs; 0 = the server's */
} tr_tf_http_options;

/* Strings in options are copied. Caller frees *out with tr_tf_http_free. */
int tr_tf_http_new(tr_tf_http **out, const tr_tf_http_options *options, tr_error *err);

/* Register the routes on srv. ctx must outlive srv's requests (free it after the server). */
int tr_tf_http_register(tr_http_server *srv, tr_tf_http *ctx, tr_error *err);

/* HCP log fetches in flight. */
size_t tr_tf_http_fetches(const tr_tf_http *ctx);

/* Accepts NULL. Fetches in flight are abandoned (nothing recorded for them). */
void tr_tf_http_free(tr_tf_http *ctx);

/* Lowercase hex HMAC-SHA512 of body with key into out (129 bytes). For tests and tools. */
int tr_tf_http_signature(const char *key, const char *body, size_t len, char out[129]);

#endif
