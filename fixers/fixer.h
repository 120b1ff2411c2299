/*
 * fixer.h - the last stage of the pipeline: an accepted patch becomes exactly
 * one pull request, whose fate is then followed to the end.
 *
 *   propose  an incident `analyzed` or `notified` whose latest analysis (or
 *            chat turn) carries a patch moves to `patch_proposed`; with
 *            [fixer] auto_pr and a matching policy (min_confidence,
 *            namespaces, severities) a decision by "policy" accepts it.
 *   validate (thread pool) sync the GitOps repository and tr_patch_check the
 *            patch against the branch head (changed Kubernetes YAML also against
 *            the cluster's /openapi/v2, fetched hourly); a refused patch is sent back to
 *            the LLM once (tr_patch_repair_prompt) and checked again.
 *   push     (thread pool) one commit on `triaged/<incident id>` from the
 *            head, pushed with a lease. A branch already on the remote with
 *            the same tree (a crash after the push) is not pushed again; one
 *            whose head is our own older commit is replaced; one whose head
 *            is anybody else's commit is never overwritten (an error).
 *   open     the forge opens the PR (an existing one for the branch is
 *            reused); the PR row and accepted → pr_open (+ pr.opened) are one
 *            store transaction.
 *   follow   open PRs are polled with their ETag; merged → pr_merged
 *            (+ pr.merged), closed unmerged → pr_closed (+ pr.closed).
 *
 * Everything is driven from the store, so a restart resumes: incidents left
 * `accepted` are picked up by the first scan, open PRs by the first poll.
 * A refused patch or a rejected push ends in `failed` with the reason as the
 * incident's error (+ incident.failed); forge errors worth retrying leave the
 * incident `accepted` for the next scan.
 *
 * The fixer borrows the store, the forge, the repository, the LLM adapter and
 * the metrics registry (all must outlive it); it owns its timers and jobs.
 * Loop thread only.
 */
#ifndef TR_FIXER_H
#define TR_FIXER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "dispatch.h"
#include "error.h"
#include "forge.h"
#include "gitrepo.h"
#include "http_client.h"
#include "kube_client.h"
#include "metrics.h"
#include "openai.h"
#include "patch.h"
#include "store.h"

#define TR_FIXER_DEFAULT_SCAN_INTERVAL_MS 30000u
#define TR_FIXER_DEFAULT_POLL_INTERVAL_MS 60000u
#define TR_FIXER_MAX_JOBS 8
#define TR_FIXER_SCAN_LIMIT 200

typedef struct tr_fixer tr_fixer;

/* Zero fields take the defaults in brackets. Everything is borrowed. */
typedef struct tr_fixer_options {
    tr_store *store;                  /* required */
    tr_forge *forge;                  /* required */
    tr_gitrepo *repo;                 /* required: the repository PRs go to */
    tr_llm *llm;                      /* [none]: a refused patch is not repaired */
    tr_metrics *metrics;              /* [none] */
    tr_dispatch *dispatch;            /* [none]: woken after an outbox message */
    const tr_config_fixer *policy;    /* [no auto_pr, 200 lines] */
    const char *author;               /* ["triaged <triaged@localhost>"] */
    const char *public_url;           /* [none]: no link back to the incident */
    const char *const *allowed_paths; /* [whole repository but .git*] */
    size_t allowed_path_count;
    const char *terraform_bin;        /* [terraform on PATH] */
    int terraform_validate;           /* [0 = fmt only]; 1 = init + validate too */
    /*
     * [no schema check]: the apiserver whose GET /openapi/v2 validates changed Kubernetes
     * YAML. kube_client(kube_userdata) is called when a job starts (the client may change
     * with leader election) and may return NULL; http sends the GET.
     */
    tr_http_client *http;
    tr_kube_client *(*kube_client)(void *userdata);
    void *kube_userdata;
    uint64_t scan_interval_ms;        /* [30 s] */
    uint64_t poll_interval_ms;        /* [policy->poll_interval_ms, else 60 s] */
    int64_t (*now_ms)(void *userdata); /* [wall clock] */
    void *clock_userdata;
} tr_fixer_options;

/*
 * Create the fixer and schedule its first scan and poll (at once, from the
 * loop). TR_EINVAL when a required option is missing. *out is closed with
 * tr_fixer_close.
 */
int tr_fixer_new(tr_fixer **out, uv_loop_t *loop, const tr_fixer_options *opts, tr_error *err);

/*
 * Incident id was accepted: start its pull request now (the scan would find
 * it too). Never fails: when the fixer is busy the next scan takes it.
 */
void tr_fixer_notify(tr_fixer *f, int64_t incident_id);

/* For tr_actions.on_decision (userdata = the fixer): accepts go to tr_fixer_notify. */
void tr_fixer_on_decision(int64_t incident_id, int accept, void *userdata);

/* Scan the store now (also what the scan timer does). */
void tr_fixer_scan(tr_fixer *f);
/* Poll the open PRs now (also what the poll timer does); a poll under way is left alone. */
void tr_fixer_poll(tr_fixer *f);

/* Jobs (incidents between accepted and pr_open) and PR polls under way. */
size_t tr_fixer_busy(const tr_fixer *f);

/*
 * Stop: timers close, jobs end at their next step (an incident mid-way stays
 * `accepted` and resumes after a restart). The memory goes once the last
 * callback has run, so close the forge, repository and LLM after this and
 * run the loop. closed_cb (may be NULL) runs then. Accepts NULL.
 */
void tr_fixer_close(tr_fixer *f, void (*closed_cb)(void *userdata), void *userdata);

#endif
