/*
 * source.h - the "source" section of an incident's evidence: where the
 * failing object is defined in the GitOps repository, the lines that define
 * it, and the last commits that changed that file.
 *
 * For a Kubernetes incident a gathering GETs the owner (Deployment, ...),
 * reads who deploys it from its labels/annotations (fixers/locate.h: Argo
 * CD Application, Flux Kustomization or HelmRelease), GETs that object (and
 * a Flux GitRepository) for the repo URL and path, picks the registry's
 * repository with that URL (else the default one), fetches it when the last
 * fetch is older than max_fetch_age_ms, then on the thread pool finds the
 * document (kind/name/namespace under the source path, kustomize renames
 * understood), cuts an excerpt with line numbers and reads the file's
 * history. For a missing Secret/ConfigMap it adds the names that exist (in
 * the repo and referenced by the namespace's live pods; a Secret is never
 * read). For a Terraform incident each diagnostic's file and line give the
 * enclosing HCL block (under facts.repo_path) and its history.
 *
 * Missing apiserver objects (404/403) are skipped quietly. When the git
 * side fails (bad URL, refused credentials, nothing matches) the section is
 * {"error": "why", ...}: the analysis goes on without the source and shows
 * why. Everything is redacted before it leaves this module; URLs lose their
 * user-info part.
 *
 * A tr_source owns its gatherings; repos, client and http are borrowed and
 * must outlive it. Loop thread only.
 */
#ifndef TR_LLM_SOURCE_H
#define TR_LLM_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "error.h"
#include "evidence.h"
#include "http_client.h"
#include "kube_client.h"
#include "repos.h"
#include "store.h"

/* Zero fields take the defaults in brackets. */
typedef struct tr_source_options {
    uint64_t max_fetch_age_ms;  /* fetch first when the last fetch is older [60000] */
    long request_timeout_ms;    /* each apiserver GET [10000] */
    size_t excerpt_max_bytes;   /* excerpt of the manifest or HCL block [6000] */
    int context_lines;          /* lines around the document [2] */
    size_t history_count;       /* commits of the file's history [3] */
    size_t diff_max_bytes;      /* per commit diff [2048] */
} tr_source_options;

typedef struct tr_source tr_source;
typedef struct tr_source_gathering tr_source_gathering;

/*
 * rc TR_OK with the section (a JSON object, borrowed for the call; a git
 * failure is TR_OK with {"error": ...}), or TR_ECANCELLED (tr_source_free)
 * / TR_ENOMEM with NULL.
 */
typedef void (*tr_source_cb)(int rc, const char *section_json, void *userdata);

/*
 * client may be NULL (no cluster: the default repo is searched by the
 * incident's kind/name/namespace). *out is freed with tr_source_free.
 */
int tr_source_new(tr_source **out, uv_loop_t *loop, tr_repos *repos, tr_kube_client *client,
                  tr_http_client *http, const tr_source_options *options, tr_error *err);

/*
 * Every gathering still running gets its callback now with TR_ECANCELLED;
 * their memory goes once their requests and thread-pool jobs have ended
 * (keep running the loop; close repos after this). Accepts NULL.
 */
void tr_source_free(tr_source *src);

/*
 * Start gathering for incident (read during this call only). cb runs
 * exactly once, later, from the loop, unless cancelled. TR_EUNAVAILABLE
 * when the registry has no repository, TR_EINVAL for an incident that is
 * neither kubernetes nor terraform; cb then never runs.
 */
int tr_source_gather(tr_source *src, const tr_store_incident *incident, tr_source_cb cb,
                     void *userdata, tr_source_gathering **out, tr_error *err);

/* Stop a gathering before its callback: the callback will not run. */
void tr_source_gathering_cancel(tr_source_gathering *g);

/*
 * The analysis stage's provider: runs inner (may be NULL or have no gather:
 * e.g. tr_kube_evidence_provider) and this module's gathering side by side
 * and hands over inner's sections plus "source". Kubernetes and Terraform
 * incidents get a source section. src keeps a copy of inner.
 */
void tr_source_provider(tr_source *src, const tr_evidence_provider *inner,
                        tr_evidence_provider *out);

#endif
