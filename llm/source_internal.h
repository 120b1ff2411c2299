/*
 * source_internal.h - what the loop side of llm/source.c hands the
 * thread-pool side (source_work.c): one job, owned by its gathering until
 * the job's done callback runs, then freed by it.
 */
#ifndef TR_LLM_SOURCE_INTERNAL_H
#define TR_LLM_SOURCE_INTERNAL_H

#include <cjson/cJSON.h>

#include "gitrepo.h"
#include "locate.h"
#include "repos.h"
#include "source.h"

typedef struct tr_source_work {
    /* In: set on the loop before queueing, read-only on the thread. */
    tr_repos *repos;
    const tr_gitrepo *repo;
    tr_source_options opt;
    char commit[TR_GITREPO_OID_HEX];
    char *subpath;           /* Argo/Flux path, NULL = whole repo */
    char *kind, *name, *ns;  /* the object to find */
    char *missing_kind;      /* "Secret" / "ConfigMap" or NULL */
    char *missing_name;
    tr_locate_names live_refs; /* names the namespace's pods reference */
    int have_live_refs;
    int terraform;
    char *repo_path;          /* Terraform root module dir, repo-relative */
    cJSON *diagnostics;       /* Terraform: a copy of facts.diagnostics */
    /* Out: filled on the thread. */
    cJSON *section;           /* the fields found (besides repo/url/commit) */
    char error[TR_ERROR_MSG_MAX]; /* "" or why nothing was found */
} tr_source_work;

/* The thread-pool half: fills w->section or w->error. Returns 0 or TR_ENOMEM. */
int tr_source_work_run(const tr_gitrepo_spec *spec, tr_source_work *w);

void tr_source_work_free(tr_source_work *w);

#endif
