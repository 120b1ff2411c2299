/*
 * tf_hcp.h - fetch an errored HCP Terraform / Terraform Enterprise run's log through the
 * API (PROTOCOLS.md §2.2) and turn it into an incident like any other log.
 *
 * A notification says only that a run errored. With an API token configured
 * ([terraform] tfc_token_env) this module asks GET /api/v2/runs/:id for the run's plan and
 * apply, picks the apply when it errored (else the plan), reads its "log-read-url" (a
 * pre-signed URL, fetched without the token so it never leaves for another host) and streams
 * the log through tf_log. When any step fails, or the log holds no failure, the incident is
 * still recorded, as TerraformRunErrored with the notification's message and the reason.
 *
 * The module owns its fetches in flight; a fetch holds copies of everything it needs, so
 * tr_tf_hcp_free() may run while calls are outstanding (they are cancelled and end quietly).
 * Loop thread only.
 */
#ifndef TR_TF_HCP_H
#define TR_TF_HCP_H

#include <stddef.h>

#include "http_client.h"
#include "tf_ingest.h"

typedef struct tr_tf_hcp tr_tf_hcp;

typedef struct tr_tf_hcp_options {
    tr_http_client *client;       /* borrowed, required */
    const tr_tf_ingest *ingest;   /* borrowed, required; must outlive the fetches' ends */
    const char *base_url;         /* NULL = "https://app.terraform.io" (TFE: its own URL) */
    const char *token;            /* API token, required; never logged */
    size_t max_log_bytes;         /* [16 MiB] a longer log is cut (what came is parsed) */
    size_t max_fetches;           /* [8] beyond: no fetch, the incident is recorded at once */
    long timeout_ms;              /* [60 s] per API call */
    tr_tf_log_options log_options;
} tr_tf_hcp_options;

/* Caller frees *out with tr_tf_hcp_free. The options' strings are copied. */
int tr_tf_hcp_new(tr_tf_hcp **out, const tr_tf_hcp_options *options, tr_error *err);

/*
 * Start fetching meta->run_id's log. Returns 0 when the fetch started (the incident is
 * recorded when it ends), else an error: the caller then records the run as errored.
 */
int tr_tf_hcp_fetch_run(tr_tf_hcp *hcp, const tr_tf_meta *meta, const char *message,
                        tr_error *err);

/* Fetches in flight (tests wait for 0). */
size_t tr_tf_hcp_active(const tr_tf_hcp *hcp);

/* Cancel the fetches and free. Accepts NULL. */
void tr_tf_hcp_free(tr_tf_hcp *hcp);

#endif
