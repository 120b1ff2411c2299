/*
 * chat.c - one follow-up turn: check, assemble, ask, store, answer.
 *
 * Everything that can be refused is refused before the LLM is asked (empty
 * or oversized question, unknown incident, no LLM, breaker open, budget
 * spent, too many turns waiting), so the caller can answer at once with a
 * precise error; once asked, the turn ends in exactly one on_done. Nothing
 * is stored for a failed turn: the conversation holds only answered turns,
 * so the next prompt never carries a question without its answer.
 */
#include "chat.h"

#include "alloc.h"
#include "api.h"
#include "buf.h"
#include "log.h"
#include "redact.h"
#include "reply.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CUT_MARK " [...]"
#define PAYLOAD_TEXT_MAX (64 * 1024)

typedef struct turn_job turn_job;

typedef struct route_ctx {
    struct tr_chat *chat;
    const char *api_token; /* borrowed; NULL = none required */
} route_ctx;

struct tr_chat {
    uv_loop_t *loop;
    tr_store *store;
    const tr_config *cfg;
    tr_chat_options opt;
    tr_prompts *prompts;
    tr_llm *llm;       /* NULL when provider = none */
    int own_llm;
    int closing;
    size_t jobs;
    tr_metric_family *m_turns;
    route_ctx route;
};

struct turn_job {
    tr_chat *chat;
    tr_store_incident *inc;
    char *question;    /* redacted */
    char *actor;
    char *event;       /* NULL = not announced */
    tr_chat_done_cb on_done;
    void *userdata;
};

static int64_t wall_clock_ms(void *userdata)
{
    struct timespec ts;

    (void)userdata;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void limits_fill(tr_chat_limits *l, const tr_chat_limits *given)
{
    if (given)
        *l = *given;
    else
        memset(l, 0, sizeof(*l));
    if (l->history_turns == 0)
        l->history_turns = 6;
    if (l->history_turns > TR_CHAT_HISTORY_MAX)
        l->history_turns = TR_CHAT_HISTORY_MAX;
    if (l->max_question_bytes == 0)
        l->max_question_bytes = 4000;
    if (l->max_turn_bytes == 0)
        l->max_turn_bytes = 4000;
    if (l->max_evidence_bytes == 0)
        l->max_evidence_bytes = 64 * 1024;
    if (l->max_answer_bytes == 0)
        l->max_answer_bytes = 16 * 1024;
}

/* ------------------------------------------------------------ prompt */

/* Append at most max bytes of text, cut at a UTF-8 boundary and marked when cut. */
static int put_capped(tr_buf *out, const char *text, size_t max)
{
    size_t len = text ? strlen(text) : 0;

    if (len <= max)
        return tr_buf_put(out, text ? text : "", len);
    while (max > 0 && ((unsigned char)text[max] & 0xc0) == 0x80)
        max--;
    if (tr_buf_put(out, text, max) != TR_OK)
        return TR_ENOMEM;
    return tr_buf_puts(out, CUT_MARK);
}

/*
 * A redacted, then capped copy; NULL without memory. Redaction comes first:
 * a secret cut in half no longer has the shape the rules recognise.
 */
static char *capped_redacted(const char *text, size_t max)
{
    tr_buf capped = TR_BUF_INIT(0);
    char *masked = tr_redact_dup(text ? text : "", NULL);
    char *out = NULL;

    if (masked != NULL && put_capped(&capped, masked, max) == TR_OK)
        out = tr_buf_detach(&capped);
    tr_free(masked);
    tr_buf_dispose(&capped);
    return out;
}

static void add_list(cJSON *obj, const char *name, const char *json_text)
{
    cJSON *list = json_text ? cJSON_Parse(json_text) : NULL;

    if (!cJSON_IsArray(list)) {
        cJSON_Delete(list);
        list = cJSON_CreateArray();
    }
    cJSON_AddItemToObject(obj, name, list);
}

/* The analysis as the model wrote it (the same fields), or a note that there is none. */
static char *analysis_text(const tr_store_analysis *a)
{
    cJSON *obj;
    char *text;

    if (a == NULL)
        return tr_strdup("(no analysis yet)");
    obj = cJSON_CreateObject();
    if (obj == NULL)
        return NULL;
    cJSON_AddStringToObject(obj, "summary", a->summary ? a->summary : "");
    cJSON_AddStringToObject(obj, "root_cause", a->root_cause ? a->root_cause : "");
    cJSON_AddStringToObject(obj, "severity", a->severity ? a->severity : "");
    cJSON_AddNumberToObject(obj, "confidence", a->confidence);
    add_list(obj, "evidence", a->evidence_json);
    add_list(obj, "remediation", a->remediation_json);
    cJSON_AddStringToObject(obj, "patch", a->patch ? a->patch : "");
    cJSON_AddStringToObject(obj, "analysed_by", a->provider ? a->provider : "");
    text = cJSON_Print(obj);
    cJSON_Delete(obj);
    return text;
}

static int add_message(tr_chat_prompt *p, const char *role, char *text)
{
    if (text == NULL)
        return TR_ENOMEM;
    p->texts[p->count] = text;
    p->messages[p->count].role = role;
    p->messages[p->count].content = text;
    p->count++;
    return TR_OK;
}

static int render_question(const tr_prompts *prompts, const tr_store_incident *inc,
                           const char *analysis, const char *evidence, const char *question,
                           tr_buf *out)
{
    char id[32];
    tr_prompt_var vars[10];
    size_t n = 0;

    snprintf(id, sizeof(id), "%" PRId64, inc->id);
    vars[n++] = (tr_prompt_var){ "incident_id", id };
    vars[n++] = (tr_prompt_var){ "title", inc->title ? inc->title : inc->failure_class };
    vars[n++] = (tr_prompt_var){ "failure_class", inc->failure_class };
    vars[n++] = (tr_prompt_var){ "source", inc->source };
    vars[n++] = (tr_prompt_var){ "kind", inc->kind };
    vars[n++] = (tr_prompt_var){ "namespace", inc->namespace };
    vars[n++] = (tr_prompt_var){ "name", inc->name };
    vars[n++] = (tr_prompt_var){ "analysis", analysis };
    vars[n++] = (tr_prompt_var){ "evidence", evidence };
    vars[n++] = (tr_prompt_var){ "question", question };
    return tr_prompts_render(prompts, TR_PROMPT_CHAT, vars, n, out);
}

int tr_chat_prompt_build(tr_chat_prompt *out, const tr_prompts *prompts,
                         const tr_store_incident *inc, const tr_store_analysis *analysis,
                         const char *evidence_json, const tr_store_chat_list *history,
                         const char *question, const tr_chat_limits *limits)
{
    tr_chat_limits l;
    tr_buf user = TR_BUF_INIT(0);
    char *analysis_json = NULL, *evidence_text = NULL;
    size_t first = 0, i;
    int rc;

    memset(out, 0, sizeof(*out));
    limits_fill(&l, limits);
    rc = add_message(out, "system", tr_strdup(tr_prompts_text(prompts, TR_PROMPT_SYSTEM)));
    if (history && history->count > l.history_turns)
        first = history->count - l.history_turns;
    for (i = first; rc == TR_OK && history && i < history->count; i++) {
        rc = add_message(out, "user", capped_redacted(history->items[i].question,
                                                      l.max_turn_bytes));
        if (rc == TR_OK)
            rc = add_message(out, "assistant", capped_redacted(history->items[i].answer,
                                                               l.max_turn_bytes));
    }
    if (rc == TR_OK && (evidence_text = capped_redacted(evidence_json ? evidence_json
                                                                   : "(no evidence stored)",
                                                      l.max_evidence_bytes)) == NULL)
        rc = TR_ENOMEM;
    if (rc == TR_OK && (analysis_json = analysis_text(analysis)) == NULL)
        rc = TR_ENOMEM;
    if (rc == TR_OK)
        rc = render_question(prompts, inc, analysis_json, evidence_text, question, &user);
    /* Names, titles and the analysis come from the cluster too: mask the whole text. */
    if (rc == TR_OK)
        rc = add_message(out, "user", tr_redact_dup(tr_buf_cstr(&user), NULL));
    cJSON_free(analysis_json);
    tr_free(evidence_text);
    tr_buf_dispose(&user);
    return rc;
}

void tr_chat_prompt_dispose(tr_chat_prompt *p)
{
    size_t i;

    for (i = 0; i < p->count; i++)
        tr_free(p->texts[i]);
    memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------ jobs */

static int64_t now_ms(const tr_chat *chat)
{
    return chat->opt.now_ms(chat->opt.clock_userdata);
}

static void maybe_free(tr_chat *chat)
{
    if (chat->closing && chat->jobs == 0) {
        tr_prompts_free(chat->prompts);
        tr_free(chat);
    }
}

static void job_end(turn_job *j, const tr_chat_answer *answer)
{
    tr_chat *chat = j->chat;

    (void)tr_metric_inc(chat->m_turns, 1, answer->result == TR_OK ? "answered" : "failed");
    j->on_done(answer, j->userdata);
    tr_store_incident_free(j->inc);
    tr_free(j->question);
    tr_free(j->actor);
    tr_free(j->event);
    tr_free(j);
    chat->jobs--;
    maybe_free(chat);
}

static void job_fail(turn_job *j, int result, const char *message)
{
    tr_chat_answer a;

    memset(&a, 0, sizeof(a));
    a.result = result;
    a.message = message;
    a.incident_id = j->inc->id;
    a.answer = "";
    job_end(j, &a);
}

/* The announcement of an explained turn: the incident named, the question and the answer. */
static char *explained_payload(const turn_job *j, const char *answer)
{
    cJSON *root = tr_api_incident_json(j->inc);
    tr_buf capped = TR_BUF_INIT(0);
    char *text = NULL;

    if (root == NULL)
        return NULL;
    cJSON_AddStringToObject(root, "actor", j->actor);
    cJSON_AddStringToObject(root, "question", j->question);
    if (put_capped(&capped, answer, PAYLOAD_TEXT_MAX) == TR_OK) {
        cJSON_AddStringToObject(root, "answer", tr_buf_cstr(&capped));
        text = cJSON_PrintUnformatted(root);
    }
    tr_buf_dispose(&capped);
    cJSON_Delete(root);
    return text;
}

/* The answer text of a parsed reply: its summary, then the root cause when it adds to it. */
static int reply_answer(tr_buf *out, const tr_llm_reply *r)
{
    int rc = tr_buf_puts(out, r->summary);

    if (rc == TR_OK && r->root_cause[0] && strcmp(r->root_cause, r->summary) != 0)
        rc = tr_buf_printf(out, "%s%s", out->len ? "\n\n" : "", r->root_cause);
    return rc;
}

static int store_turn(turn_job *j, const tr_llm_result *res, const tr_llm_reply *reply,
                      const char *answer, tr_chat_answer *out, tr_error *err)
{
    tr_chat *chat = j->chat;
    tr_store_chat_turn turn;
    tr_store_analysis revised;
    tr_store_transition t;
    const char *provider = tr_llm_provider_name(chat->llm);
    int has_patch = reply && reply->patch[0];
    char *payload = NULL;
    int rc;

    memset(&turn, 0, sizeof(turn));
    turn.incident_id = j->inc->id;
    turn.actor = j->actor;
    turn.question = j->question;
    turn.answer = answer;
    turn.patch = has_patch ? reply->patch : NULL;
    turn.provider = provider;
    turn.model = res->model[0] ? res->model : NULL;
    turn.tokens_in = res->tokens_in;
    turn.tokens_out = res->tokens_out;
    memset(&revised, 0, sizeof(revised));
    if (has_patch) {
        revised.incident_id = j->inc->id;
        revised.summary = reply->summary;
        revised.root_cause = reply->root_cause;
        revised.severity = reply->severity;
        revised.confidence = reply->confidence;
        revised.evidence_json = reply->evidence_json;
        revised.remediation_json = reply->remediation_json;
        revised.patch = reply->patch;
        revised.provider = provider;
        revised.model = turn.model;
        revised.prompt_hash = tr_prompts_hash(chat->prompts, TR_PROMPT_CHAT);
        revised.tokens_in = res->tokens_in;
        revised.tokens_out = res->tokens_out;
    }
    memset(&t, 0, sizeof(t));
    if (j->event) {
        payload = explained_payload(j, answer);
        if (payload == NULL)
            return tr_error_set(err, TR_ENOMEM, "chat: out of memory");
        t.event = j->event;
        t.payload_json = payload;
    }
    rc = tr_store_chat_put(chat->store, &turn, has_patch ? &revised : NULL, &t, now_ms(chat),
                           &out->turn, &out->analysis_id, err);
    cJSON_free(payload);
    if (rc == TR_OK && out->analysis_id > 0 && res->request_body[0]) {
        char key[64];
        tr_error kv_err = { 0 };

        /* `triaged show ID --prompt` shows what produced the latest analysis. */
        snprintf(key, sizeof(key), "analysis/%" PRId64 "/request", out->analysis_id);
        if (tr_store_kv_put(chat->store, key, res->request_body, now_ms(chat), &kv_err) != TR_OK)
            tr_log_warn("chat", "incident %" PRId64 ": request body not kept: %s", j->inc->id,
                        kv_err.message);
    }
    out->patch = turn.patch;
    return rc;
}

static void on_llm_done(const tr_llm_result *res, void *userdata)
{
    turn_job *j = userdata;
    tr_chat *chat = j->chat;
    tr_llm_reply_limits limits;
    tr_llm_reply *reply = NULL;
    tr_buf answer = TR_BUF_INIT(0);
    tr_chat_answer out;
    tr_error err = { 0 };
    char message[TR_ERROR_MSG_MAX + 64];
    int rc;

    if (res->result != TR_OK || chat->closing) {
        snprintf(message, sizeof(message), "llm request failed: %s",
                 res->result == TR_OK ? "shutting down" : res->message);
        job_fail(j, res->result == TR_OK ? TR_ECANCELLED : res->result, message);
        return;
    }
    memset(&limits, 0, sizeof(limits));
    if (chat->cfg->fixer.max_patch_lines > 0)
        limits.max_patch_lines = (size_t)chat->cfg->fixer.max_patch_lines;
    rc = tr_llm_reply_parse(&reply, res->content, strlen(res->content), &limits, &err);
    if (rc == TR_OK)
        rc = reply_answer(&answer, reply);
    else if (rc != TR_ENOMEM)
        /* Not the analysis object: the text itself is the answer (and there is no patch). */
        rc = put_capped(&answer, res->content, chat->opt.limits.max_answer_bytes);
    memset(&out, 0, sizeof(out));
    out.incident_id = j->inc->id;
    out.message = "";
    out.answer = tr_buf_cstr(&answer);
    if (rc != TR_OK)
        rc = tr_error_set(&err, rc, "chat: out of memory");
    else
        rc = store_turn(j, res, reply, out.answer, &out, &err);
    if (rc != TR_OK) {
        tr_log_warn("chat", "incident %" PRId64 ": turn not stored: %s", j->inc->id,
                    err.message);
        job_fail(j, rc, err.message);
    } else {
        tr_log_info("chat", "incident %" PRId64 ": turn %" PRId64 " answered for %s%s",
                    j->inc->id, out.turn, j->actor, out.patch ? " (revised patch)" : "");
        if (j->event)
            tr_dispatch_notify(chat->opt.dispatch);
        job_end(j, &out);
    }
    tr_llm_reply_free(reply);
    tr_buf_dispose(&answer);
}

/* Strip leading and trailing white space into a new string; NULL without memory. */
static char *trimmed(const char *text)
{
    size_t len;

    while (*text == ' ' || *text == '\t' || *text == '\r' || *text == '\n')
        text++;
    len = strlen(text);
    while (len > 0 && strchr(" \t\r\n", text[len - 1]) != NULL)
        len--;
    return tr_strndup(text, len);
}

static int job_send(turn_job *j, tr_error *err)
{
    tr_chat *chat = j->chat;
    tr_store_analysis *analysis = NULL;
    tr_store_evidence *evidence = NULL;
    tr_store_chat_list *history = NULL;
    tr_chat_prompt prompt;
    tr_llm_request req;
    int rc;

    memset(&prompt, 0, sizeof(prompt));
    rc = tr_store_analysis_latest(chat->store, j->inc->id, &analysis, err);
    if (rc == TR_OK || rc == TR_ENOTFOUND)
        rc = tr_store_evidence_latest(chat->store, j->inc->id, &evidence, err);
    if (rc == TR_OK || rc == TR_ENOTFOUND)
        rc = tr_store_chat_recent(chat->store, j->inc->id, chat->opt.limits.history_turns,
                                  &history, err);
    if (rc == TR_OK) {
        rc = tr_chat_prompt_build(&prompt, chat->prompts, j->inc, analysis,
                                  evidence ? evidence->bundle_json : NULL, history, j->question,
                                  &chat->opt.limits);
        if (rc != TR_OK)
            tr_error_set(err, rc, "chat: prompt: %s", tr_strerror(rc));
    }
    if (rc == TR_OK) {
        memset(&req, 0, sizeof(req));
        req.messages = prompt.messages;
        req.message_count = prompt.count;
        req.schema_name = "incident_analysis";
        req.schema_json = tr_llm_reply_schema();
        req.on_done = on_llm_done;
        req.userdata = j;
        rc = tr_llm_chat(chat->llm, &req, err);
    }
    tr_chat_prompt_dispose(&prompt);
    tr_store_chat_list_free(history);
    tr_store_evidence_free(evidence);
    tr_store_analysis_free(analysis);
    return rc;
}

int tr_chat_ask(tr_chat *chat, int64_t incident_id, const char *question, const char *actor,
                const char *event, tr_chat_done_cb on_done, void *userdata, tr_error *err)
{
    turn_job *j;
    char *clean;
    int rc;

    if (chat->closing)
        return tr_error_set(err, TR_ECANCELLED, "chat: shutting down");
    clean = trimmed(question ? question : "");
    if (clean == NULL)
        return tr_error_set(err, TR_ENOMEM, "chat: out of memory");
    if (*clean == '\0' || strlen(clean) > chat->opt.limits.max_question_bytes) {
        rc = *clean ? tr_error_set(err, TR_ETOOBIG, "the message is %zu bytes; the limit is %zu",
                                   strlen(clean), chat->opt.limits.max_question_bytes)
                    : tr_error_set(err, TR_EINVAL, "the message is empty");
        tr_free(clean);
        return rc;
    }
    j = tr_calloc(1, sizeof(*j));
    rc = j ? tr_store_incident_get(chat->store, incident_id, &j->inc, err)
           : tr_error_set(err, TR_ENOMEM, "chat: out of memory");
    if (rc == TR_ENOTFOUND)
        tr_error_set(err, TR_ENOTFOUND, "no incident %" PRId64, incident_id);
    else if (rc == TR_OK && chat->llm == NULL)
        rc = tr_error_set(err, TR_EUNAVAILABLE, "no LLM is configured (llm.provider = \"none\"):"
                          " chat needs one");
    else if (rc == TR_OK && chat->jobs >= chat->opt.max_in_flight)
        rc = tr_error_set(err, TR_EBUSY, "%zu chat turns are waiting for the LLM; try again "
                          "shortly", chat->jobs);
    if (rc == TR_OK && (rc = tr_llm_admit(chat->llm, err)) != TR_OK)
        tr_error_prefix(err, "the LLM cannot take a question now: ");
    if (rc == TR_OK) {
        j->chat = chat;
        j->on_done = on_done;
        j->userdata = userdata;
        /* Redacted before anything keeps or sends it: operators paste logs with tokens in. */
        j->question = tr_redact_dup(clean, NULL);
        j->actor = tr_strdup(actor ? actor : "api");
        j->event = event ? tr_strdup(event) : NULL;
        if (j->question == NULL || j->actor == NULL || (event && j->event == NULL))
            rc = tr_error_set(err, TR_ENOMEM, "chat: out of memory");
    }
    if (rc == TR_OK)
        rc = job_send(j, err);
    tr_free(clean);
    if (rc != TR_OK) {
        if (j) {
            tr_store_incident_free(j->inc);
            tr_free(j->question);
            tr_free(j->actor);
            tr_free(j->event);
            tr_free(j);
        }
        return rc;
    }
    chat->jobs++;
    return TR_OK;
}

/* ------------------------------------------------------------ lifecycle */

int tr_chat_new(tr_chat **out, uv_loop_t *loop, tr_store *store, tr_http_client *http,
                const tr_config *cfg, tr_metrics *metrics, const tr_chat_options *options,
                tr_error *err)
{
    tr_chat *chat = tr_calloc(1, sizeof(*chat));
    tr_llm_options lo;
    int rc;

    *out = NULL;
    if (chat == NULL)
        return tr_error_set(err, TR_ENOMEM, "chat: out of memory");
    chat->loop = loop;
    chat->store = store;
    chat->cfg = cfg;
    if (options)
        chat->opt = *options;
    if (chat->opt.now_ms == NULL)
        chat->opt.now_ms = wall_clock_ms;
    if (chat->opt.max_in_flight == 0)
        chat->opt.max_in_flight = 8;
    limits_fill(&chat->opt.limits, options ? &options->limits : NULL);
    rc = tr_prompts_load(&chat->prompts, cfg->llm.prompts_dir, err);
    chat->llm = chat->opt.llm;
    if (rc == TR_OK && chat->llm == NULL && cfg->llm.provider != TR_CONFIG_LLM_NONE) {
        lo = chat->opt.llm_options;
        lo.config = &cfg->llm;
        lo.store = store;
        lo.metrics = metrics;
        if (lo.now_ms == NULL) {
            lo.now_ms = chat->opt.now_ms;
            lo.clock_userdata = chat->opt.clock_userdata;
        }
        rc = tr_llm_new(&chat->llm, loop, http, &lo, err);
        chat->own_llm = rc == TR_OK;
    }
    if (rc != TR_OK) {
        tr_prompts_free(chat->prompts);
        tr_free(chat);
        return rc;
    }
    if (metrics)
        chat->m_turns = tr_metrics_counter(metrics, "triaged_chat_turns",
                                           "Chat turns, by outcome (answered, failed).",
                                           "outcome", NULL);
    *out = chat;
    return TR_OK;
}

void tr_chat_close(tr_chat *chat)
{
    if (chat == NULL || chat->closing)
        return;
    chat->closing = 1;
    chat->jobs++; /* callbacks run by the adapter below must not free chat under our feet */
    if (chat->own_llm)
        tr_llm_free(chat->llm); /* waiting turns end with TR_ECANCELLED */
    chat->llm = NULL;
    chat->jobs--;
    maybe_free(chat);
}

/* ------------------------------------------------------------ Explain more */

static void on_explained(const tr_chat_answer *answer, void *userdata)
{
    (void)userdata;
    if (answer->result != TR_OK)
        tr_log_warn("chat", "incident %" PRId64 ": \"Explain more\" not answered: %s",
                    answer->incident_id, answer->message);
}

void tr_chat_explain(int64_t incident_id, const char *actor, void *userdata)
{
    tr_chat *chat = userdata;
    tr_error err = { 0 };

    if (chat == NULL)
        return;
    if (tr_chat_ask(chat, incident_id, TR_CHAT_EXPLAIN_QUESTION, actor, "incident.explained",
                    on_explained, NULL, &err) != TR_OK)
        tr_log_warn("chat", "incident %" PRId64 ": \"Explain more\" not asked: %s", incident_id,
                    err.message);
}

/* ------------------------------------------------------------ HTTP */

static void on_http_answer(const tr_chat_answer *answer, void *userdata)
{
    tr_http_req *req = userdata;
    cJSON *root;

    if (answer->result == TR_OK) {
        root = cJSON_CreateObject();
        cJSON_AddNumberToObject(root, "incident_id", (double)answer->incident_id);
        cJSON_AddNumberToObject(root, "turn", (double)answer->turn);
        cJSON_AddStringToObject(root, "answer", answer->answer);
        if (answer->patch)
            cJSON_AddStringToObject(root, "patch", answer->patch);
        else
            cJSON_AddNullToObject(root, "patch");
        tr_api_respond_json(req, 200, root);
    } else if (answer->result == TR_ECANCELLED || answer->result == TR_ELIMIT ||
               answer->result == TR_EUNAVAILABLE) {
        (void)tr_http_respond_error(req, 503, "llm unavailable", answer->message);
    } else if (answer->result == TR_ENOMEM || answer->result == TR_ESTORE ||
               answer->result == TR_EIO || answer->result == TR_EBUSY) {
        (void)tr_http_respond_error(req, 500, "answer not stored", answer->message);
    } else {
        (void)tr_http_respond_error(req, 502, "llm request failed", answer->message);
    }
}

static void on_chat_route(tr_http_req *req, void *userdata)
{
    route_ctx *ctx = userdata;
    int64_t id = tr_api_parse_id(tr_http_req_param(req, "id"));
    size_t len = 0;
    const char *body = tr_http_req_body(req, &len);
    const char *message;
    tr_error err = { 0 };
    cJSON *root;
    int rc;

    if (!tr_api_authorized(req, ctx->api_token))
        return;
    if (id == 0) {
        (void)tr_http_respond_error(req, 400, "bad incident id", "a positive number");
        return;
    }
    root = cJSON_ParseWithLength(body ? body : "", len);
    message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "message"));
    if (message == NULL) {
        cJSON_Delete(root);
        (void)tr_http_respond_error(req, 400, "bad body", "expected {\"message\": \"...\"}");
        return;
    }
    rc = tr_chat_ask(ctx->chat, id, message, "api", NULL, on_http_answer, req, &err);
    cJSON_Delete(root);
    if (rc == TR_OK)
        return; /* answered in on_http_answer */
    if (rc == TR_ENOTFOUND)
        (void)tr_http_respond_error(req, 404, "no such incident", err.message);
    else if (rc == TR_EINVAL || rc == TR_ETOOBIG)
        (void)tr_http_respond_error(req, 400, "bad message", err.message);
    else if (rc == TR_EUNAVAILABLE || rc == TR_ELIMIT || rc == TR_EBUSY || rc == TR_ECANCELLED)
        (void)tr_http_respond_error(req, 503, "llm unavailable", err.message);
    else
        (void)tr_http_respond_error(req, 500, "chat failed", err.message);
}

int tr_chat_register(tr_http_server *srv, tr_chat *chat, const char *api_token, tr_error *err)
{
    int rc;

    chat->route.chat = chat;
    chat->route.api_token = api_token;
    rc = tr_http_server_route(srv, "POST", "/v1/incidents/{id}/chat", on_chat_route,
                              &chat->route);
    if (rc != TR_OK)
        return tr_error_set(err, rc, "registering POST /v1/incidents/{id}/chat: %s",
                            tr_strerror(rc));
    return TR_OK;
}
