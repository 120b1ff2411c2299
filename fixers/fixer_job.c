/*
 * fixer_job.c - one accepted incident on its way to a pull request:
 *
 *   validate (pool)  sync the repository, tr_patch_check against the branch head
 *   repair  (loop)   a refused patch goes back to the LLM once, then validate again
 *   push    (pool)   ls-remote triaged/<id>: the same tree there already → no push
 *                    (a crash after the push); else one commit, pushed with a lease
 *   open    (loop)   the forge opens the PR (or reuses the branch's); the PR row
 *                    and accepted → pr_open are one transaction
 *
 * The job holds copies of everything it needs (incident, analysis, patch), so
 * the store is only touched on the loop. A job that ends early for a reason
 * worth retrying (network, forge 5xx, shutdown) leaves the incident
 * `accepted`: the next scan starts it again, and the push step then finds its
 * branch on the remote and does not push a second commit.
 */
#include "fixer_internal.h"

#include <string.h>

#include <cjson/cJSON.h>
#include <git2.h>

#include "alloc.h"
#include "log.h"

#define BRANCH_MAX 64

typedef struct fixer_job {
    tr_fixer *fixer;
    int64_t incident_id;
    tr_store_incident *incident;
    tr_store_analysis *analysis;
    char *patch;                 /* the text being checked: the analysis', then the repair */
    int synced;
    int repaired;                /* the LLM was asked to repair it */
    char first_refusal[TR_ERROR_MSG_MAX];
    tr_patch_result *res;        /* set by validate */
    fixer_schema *schema;        /* the cluster schema checked against (a reference) */
    tr_patch_options patch_opts; /* the fixer's, with the schema hook when there is one */
    char schema_skipped[300];    /* why there is no schema check; "" = there is one */
    char branch[BRANCH_MAX];
    char head_commit[TR_GITREPO_OID_HEX];
    int pushed;                  /* 0 = the remote already had this tree */
    char *message;               /* commit message */
    char *title;
    char *body;
    tr_error err;                /* of the thread-pool step */
} fixer_job;

static void job_free(fixer_job *job)
{
    if (job == NULL)
        return;
    tr_store_incident_free(job->incident);
    tr_store_analysis_free(job->analysis);
    tr_patch_result_free(job->res);
    fixer_schema_release(job->schema);
    tr_free(job->patch);
    tr_free(job->message);
    tr_free(job->title);
    tr_free(job->body);
    tr_free(job);
}

/* Free the job and its slot (which may free a closing fixer: touch neither afterwards). */
static void job_end(fixer_job *job)
{
    tr_fixer *f = job->fixer;
    int64_t id = job->incident_id;

    job_free(job);
    fixer_job_end(f, id);
}

/* Fail the incident with "<prefix><detail>" as its error. */
static void job_fail(fixer_job *job, const char *prefix, const char *detail)
{
    char reason[3 * TR_ERROR_MSG_MAX];

    snprintf(reason, sizeof(reason), "%s%s", prefix, detail);
    fixer_fail(job->fixer, job->incident_id, TR_INCIDENT_ACCEPTED, reason);
    job_end(job);
}

/* Worth another try at the next scan, with the incident left accepted. */
static int transient(int code)
{
    return code == TR_EUNAVAILABLE || code == TR_ETIMEOUT || code == TR_EHTTP ||
           code == TR_ELIMIT || code == TR_EBUSY || code == TR_ENOMEM;
}

/* ------------------------------------------------------------ open */

static void on_opened(const tr_forge_result *result, void *userdata)
{
    fixer_job *job = userdata;
    tr_fixer *f = job->fixer;
    tr_store_transition t = {0};
    tr_store_pr row = {0};
    tr_error err = {0};
    int rc;

    if (f->closing || result->code == TR_ECANCELLED) {
        job_end(job);
        return;
    }
    if (result->code != TR_OK) {
        if (result->retryable) {
            tr_log_warn("fixer", "incident %lld: opening the pull request for %s: %s; "
                        "trying again later", (long long)job->incident_id, job->branch,
                        result->error);
            job_end(job);
            return;
        }
        job_fail(job, "the forge refused the pull request: ", result->error);
        return;
    }
    row.incident_id = job->incident_id;
    row.forge = tr_forge_kind(f->opts.forge);
    row.url = result->pr->html_url;
    row.number = result->pr->number;
    row.branch = job->branch;
    row.head_commit = job->head_commit;
    row.state = "open"; /* a reused PR that is no longer open is corrected by the poll */
    row.etag = NULL;    /* the next poll reads the whole PR once */
    t.expect_from = TR_INCIDENT_ACCEPTED;
    t.to = TR_INCIDENT_PR_OPEN;
    t.event = "pr.opened";
    rc = tr_store_pr_put(f->opts.store, &row, &t, fixer_now(f), NULL, &err);
    if (rc != TR_OK) {
        tr_log_error("fixer", "incident %lld: recording PR %s: %s", (long long)job->incident_id,
                     row.url, err.message);
        job_end(job);
        return;
    }
    (void)tr_metric_inc(f->prs_opened, 1);
    tr_dispatch_notify(f->opts.dispatch);
    tr_log_info("fixer", "incident %lld: pull request %s %s (branch %s, commit %.12s%s)",
                (long long)job->incident_id, row.url,
                result->pr->reused ? "reused" : "opened", job->branch, job->head_commit,
                job->pushed ? "" : ", already pushed");
    job_end(job);
}

static void open_pr(fixer_job *job)
{
    tr_fixer *f = job->fixer;
    const tr_gitrepo_spec *spec = tr_gitrepo_spec_get(f->opts.repo);
    tr_forge_pr_request req = {0};
    tr_error err = {0};

    req.head = job->branch;
    req.base = spec->branch && *spec->branch ? spec->branch : "main";
    req.title = job->title;
    req.body = job->body;
    req.draft = -1;
    if (tr_forge_open_pr(f->opts.forge, &req, on_opened, job, &err) != TR_OK) {
        tr_log_warn("fixer", "incident %lld: %s; trying again later",
                    (long long)job->incident_id, err.message);
        job_end(job);
    }
}

/* ------------------------------------------------------------ push */

/*
 * The remote branch holds another tree: replace it only when its head is a
 * commit of ours (an older attempt, a patch revised since). A person's
 * commits on triaged/<id> are never overwritten: TR_ECONFLICT saying whose.
 */
static int remote_head_is_ours(const char *dir, const char *commit_hex, const char *author,
                               tr_error *err)
{
    git_repository *repo = NULL;
    git_commit *commit = NULL;
    const git_signature *sig;
    git_oid oid;
    char who[512];
    int rc = TR_OK;

    if (git_repository_open(&repo, dir) < 0 || git_oid_fromstr(&oid, commit_hex) < 0 ||
        git_commit_lookup(&commit, repo, &oid) < 0) {
        rc = tr_error_set(err, TR_EIO, "reading the remote branch's commit %.12s: %s",
                          commit_hex, git_error_last() ? git_error_last()->message : "?");
        goto cleanup;
    }
    sig = git_commit_author(commit);
    snprintf(who, sizeof(who), "%s <%s>", sig && sig->name ? sig->name : "",
             sig && sig->email ? sig->email : "");
    if (strcmp(who, author) != 0)
        rc = tr_error_set(err, TR_ECONFLICT, "the branch already exists on the remote with a "
                          "commit by %s (%.12s): it is not overwritten; delete the branch or "
                          "merge it by hand", who, commit_hex);
cleanup:
    git_commit_free(commit);
    git_repository_free(repo);
    return rc;
}

static int push_work(const tr_gitrepo_spec *spec, void *userdata)
{
    fixer_job *job = userdata;
    const tr_patch_result *res = job->res;
    char remote_commit[TR_GITREPO_OID_HEX] = "", remote_tree[TR_GITREPO_OID_HEX] = "";
    tr_gitrepo_file *files;
    size_t i;
    int rc;

    rc = tr_gitrepo_remote_branch_commit(spec, job->branch, remote_commit, remote_tree,
                                         &job->err);
    if (rc == TR_OK && strcmp(remote_tree, res->tree_id) == 0) {
        /* Pushed before a crash or a forge error: the same change is there already. */
        memcpy(job->head_commit, remote_commit, sizeof(job->head_commit));
        job->pushed = 0;
        return TR_OK;
    }
    if (rc != TR_OK && rc != TR_ENOTFOUND)
        return rc;
    if (rc == TR_OK) {
        rc = remote_head_is_ours(spec->work_dir, remote_commit, job->fixer->author, &job->err);
        if (rc != TR_OK)
            return rc;
    }
    files = tr_calloc(res->file_count ? res->file_count : 1, sizeof(*files));
    if (files == NULL)
        return tr_error_set(&job->err, TR_ENOMEM, "out of memory");
    for (i = 0; i < res->file_count; i++) {
        files[i].path = res->files[i].path;
        files[i].content = res->files[i].content;
        files[i].len = res->files[i].content_len;
    }
    rc = tr_gitrepo_commit_files(spec->work_dir, res->commit_id, job->branch, files,
                                 res->file_count, job->fixer->author, job->message,
                                 job->head_commit, &job->err);
    tr_free(files);
    if (rc != TR_OK)
        return rc;
    /* The lease: our own older attempt may be replaced, anything else is a conflict. */
    rc = tr_gitrepo_push(spec, job->branch, remote_commit, &job->err);
    job->pushed = rc == TR_OK;
    return rc;
}

static void push_done(tr_gitrepo *repo, int status, void *userdata)
{
    fixer_job *job = userdata;

    (void)repo;
    if (job->fixer->closing || status == TR_ECANCELLED) {
        job_end(job);
        return;
    }
    if (status != TR_OK && transient(status)) {
        tr_log_warn("fixer", "incident %lld: pushing %s: %s; trying again later",
                    (long long)job->incident_id, job->branch, job->err.message);
        job_end(job);
        return;
    }
    if (status != TR_OK) {
        char what[BRANCH_MAX + TR_ERROR_MSG_MAX + 32];

        snprintf(what, sizeof(what), "%s: %s", job->branch, job->err.message);
        job_fail(job, "push of branch ", what);
        return;
    }
    open_pr(job);
}

/* ------------------------------------------------------------ validate */

static int validate_work(const tr_gitrepo_spec *spec, void *userdata)
{
    fixer_job *job = userdata;
    char ref[300];
    int rc;

    if (!job->synced) {
        rc = tr_gitrepo_sync_blocking(spec, NULL, NULL, &job->err);
        if (rc != TR_OK)
            return rc;
        job->synced = 1;
    }
    snprintf(ref, sizeof(ref), "refs/heads/%s", spec->branch && *spec->branch ? spec->branch
                                                                               : "main");
    tr_patch_result_free(job->res);
    job->res = NULL;
    return tr_patch_check(&job->res, spec->work_dir, ref, job->patch, strlen(job->patch),
                          &job->patch_opts, &job->err);
}

static void validate_done(tr_gitrepo *repo, int status, void *userdata);

static int queue_validate(fixer_job *job)
{
    int rc = tr_gitrepo_queue_work(job->fixer->opts.repo, validate_work, validate_done, job);

    if (rc != TR_OK)
        tr_log_warn("fixer", "incident %lld: the repository is busy (%s); trying again later",
                    (long long)job->incident_id, tr_strerror(rc));
    return rc;
}

/* The patch in a repair answer: a diff (fenced or not), or {"patch": "..."}. */
static char *repair_patch(const char *content)
{
    cJSON *json = cJSON_Parse(content);
    const char *patch = cJSON_GetStringValue(cJSON_GetObjectItem(json, "patch"));
    char *out = tr_strdup(patch ? patch : content);

    cJSON_Delete(json);
    return out;
}

static void on_repaired(const tr_llm_result *result, void *userdata)
{
    fixer_job *job = userdata;
    char *patch;

    if (job->fixer->closing || result->result == TR_ECANCELLED) {
        job_end(job);
        return;
    }
    if (result->result != TR_OK) {
        char what[2 * TR_ERROR_MSG_MAX + 64];

        snprintf(what, sizeof(what), "%s (asking the model to repair it failed: %s)",
                 job->first_refusal, result->message);
        job_fail(job, "patch refused: ", what);
        return;
    }
    patch = repair_patch(result->content);
    if (patch == NULL) {
        job_end(job);
        return;
    }
    tr_free(job->patch);
    job->patch = patch;
    tr_log_info("fixer", "incident %lld: the model sent a repaired patch; checking it",
                (long long)job->incident_id);
    if (queue_validate(job) != TR_OK)
        job_end(job);
}

/* Ask the model once; 0 when on_repaired will run. */
static int ask_repair(fixer_job *job)
{
    tr_fixer *f = job->fixer;
    tr_llm_message messages[2];
    tr_llm_request req = {0};
    char *prompt;
    int rc;

    if (f->opts.llm == NULL || job->repaired)
        return TR_ENOTFOUND;
    prompt = tr_patch_repair_prompt(&job->err, job->patch, strlen(job->patch));
    if (prompt == NULL)
        return TR_ENOMEM;
    messages[0].role = "system";
    messages[0].content = "You repair unified diffs for a GitOps repository. Answer with the "
                          "corrected diff only.";
    messages[1].role = "user";
    messages[1].content = prompt;
    req.messages = messages;
    req.message_count = 2;
    req.on_done = on_repaired;
    req.userdata = job;
    job->repaired = 1;
    rc = tr_llm_chat(f->opts.llm, &req, &job->err);
    tr_free(prompt);
    return rc;
}

/* Why a checked patch is not good: the refusal, or the checks that failed. */
static void refusal_text(const fixer_job *job, char *out, size_t cap)
{
    size_t i, used;

    if (job->res == NULL || job->res->ok) {
        snprintf(out, cap, "%s", job->err.message[0] ? job->err.message : "refused");
        return;
    }
    used = (size_t)snprintf(out, cap, "checks failed:");
    for (i = 0; i < job->res->check_count && used < cap; i++) {
        const tr_patch_check_item *c = &job->res->checks[i];

        if (c->status == TR_PATCH_CHECK_FAILED)
            used += (size_t)snprintf(out + used, cap - used, " %s: %s;", c->name,
                                     c->text ? c->text : "failed");
    }
}

static void patch_valid(fixer_job *job)
{
    tr_fixer *f = job->fixer;
    int rc;

    (void)tr_metric_inc(f->patches, 1, "valid");
    job->message = fixer_commit_message(job->incident, job->analysis, f->public_url);
    job->title = fixer_pr_title(job->incident, job->analysis);
    job->body = fixer_pr_body(job->incident, job->analysis, job->res, job->repaired,
                              job->schema ? NULL : job->schema_skipped, f->public_url);
    if (job->message == NULL || job->title == NULL || job->body == NULL) {
        job_end(job);
        return;
    }
    rc = tr_gitrepo_queue_work(f->opts.repo, push_work, push_done, job);
    if (rc != TR_OK) {
        tr_log_warn("fixer", "incident %lld: %s; trying again later",
                    (long long)job->incident_id, tr_strerror(rc));
        job_end(job);
    }
}

static void validate_done(tr_gitrepo *repo, int status, void *userdata)
{
    fixer_job *job = userdata;
    char reason[TR_ERROR_MSG_MAX];

    (void)repo;
    if (job->fixer->closing || status == TR_ECANCELLED) {
        job_end(job);
        return;
    }
    if (status == TR_OK && job->res && job->res->ok) {
        patch_valid(job);
        return;
    }
    if (status != TR_OK && status != TR_EINVAL && status != TR_ETOOBIG && job->res == NULL) {
        if (transient(status)) {
            tr_log_warn("fixer", "incident %lld: %s; trying again later",
                        (long long)job->incident_id, job->err.message);
            job_end(job);
            return;
        }
        job_fail(job, "the GitOps repository: ", job->err.message);
        return;
    }
    (void)tr_metric_inc(job->fixer->patches, 1, "invalid");
    refusal_text(job, reason, sizeof(reason));
    tr_log_warn("fixer", "incident %lld: patch refused: %s", (long long)job->incident_id, reason);
    if (!job->repaired)
        snprintf(job->first_refusal, sizeof(job->first_refusal), "%s", reason);
    tr_error_set(&job->err, TR_EINVAL, "%s", reason);
    if (ask_repair(job) == TR_OK)
        return;
    job_fail(job, "patch refused: ", reason);
}

/* ------------------------------------------------------------ start */

void fixer_branch_name(char *out, size_t cap, int64_t incident_id)
{
    snprintf(out, cap, "triaged/%lld", (long long)incident_id);
}

static int job_load(fixer_job *job, tr_store *store)
{
    tr_error err = {0};
    int rc = tr_store_incident_get(store, job->incident_id, &job->incident, &err);

    if (rc == TR_OK)
        rc = tr_store_analysis_latest(store, job->incident_id, &job->analysis, &err);
    if (rc != TR_OK && rc != TR_ENOTFOUND)
        tr_log_error("fixer", "incident %lld: %s", (long long)job->incident_id, err.message);
    return rc;
}

int fixer_job_start(tr_fixer *f, int64_t incident_id)
{
    fixer_job *job;
    size_t i;
    int rc;

    if (f->closing)
        return TR_EBUSY;
    if (fixer_job_running(f, incident_id))
        return TR_OK;
    for (i = 0; i < TR_FIXER_MAX_JOBS && f->jobs[i] != 0; i++)
        ;
    if (i == TR_FIXER_MAX_JOBS)
        return TR_EBUSY;
    job = tr_calloc(1, sizeof(*job));
    if (job == NULL)
        return TR_ENOMEM;
    job->fixer = f;
    job->incident_id = incident_id;
    fixer_branch_name(job->branch, sizeof(job->branch), incident_id);
    f->jobs[i] = incident_id;
    f->job_count++;
    rc = job_load(job, f->opts.store);
    if (job->incident && job->incident->state != TR_INCIDENT_ACCEPTED)
        rc = TR_ECONFLICT; /* decided otherwise meanwhile, or already done */
    if (rc == TR_ENOTFOUND && job->incident) {
        job_fail(job, "accepted without an analysis to take the patch from", "");
        return TR_OK;
    }
    if (rc != TR_OK) {
        job_end(job);
        return TR_OK;
    }
    if (job->analysis->patch == NULL || *job->analysis->patch == '\0') {
        job_fail(job, "the latest analysis proposes no patch", "");
        return TR_OK;
    }
    job->patch = tr_strdup(job->analysis->patch);
    if (job->patch == NULL) {
        job_end(job);
        return TR_OK;
    }
    if (!fixer_schema_wait(f, job))
        fixer_job_schema_ready(job);
    return TR_OK;
}

/* The schema is there (or will not be): validate with it. */
void fixer_job_schema_ready(void *userdata)
{
    fixer_job *job = userdata;
    tr_fixer *f = job->fixer;

    if (f->closing) {
        job_end(job);
        return;
    }
    job->patch_opts = f->patch_opts;
    job->schema = fixer_schema_acquire(f);
    if (job->schema != NULL) {
        job->patch_opts.yaml_hook = tr_openapi_yaml_hook;
        job->patch_opts.yaml_hook_ctx = (void *)fixer_schema_set(job->schema);
    } else {
        snprintf(job->schema_skipped, sizeof(job->schema_skipped), "%s", fixer_schema_why(f));
    }
    if (queue_validate(job) != TR_OK)
        job_end(job);
}
