/*
 * client.c - CLI commands as clients of the daemon's HTTP API.
 *
 * The daemon's address is --server URL or http://<[daemon] listen>; the token
 * is read from [daemon] api_token_file when one is configured. A wildcard
 * listen address (0.0.0.0, ::) is reached through loopback.
 */
#include "client.h"
#include "alloc.h"
#include "buf.h"
#include "cli.h"
#include "http_client.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define CHAT_LINE_MAX (64 * 1024)

typedef struct reply {
    int done;
    int result;
    long status;
    tr_buf body;
    char message[512];
} reply;

static void on_done(const tr_http_response *resp, void *userdata)
{
    reply *r = userdata;

    r->done = 1;
    r->result = resp->result;
    r->status = resp->status;
    snprintf(r->message, sizeof(r->message), "%s", resp->message);
    if (resp->body_len)
        (void)tr_buf_put(&r->body, resp->body, resp->body_len);
}

/* http://HOST:PORT for a listen address; caller frees. */
static char *base_url(const tr_client_request *req, const tr_config *cfg)
{
    tr_buf url = TR_BUF_INIT(4096);
    const char *listen;
    const char *colon;

    if (req->server) {
        (void)tr_buf_puts(&url, req->server);
        while (url.len && url.ptr[url.len - 1] == '/')
            url.len--;
        url.ptr[url.len] = '\0';
        return tr_buf_detach(&url);
    }
    listen = cfg->daemon.listen;
    colon = strrchr(listen, ':');
    if (colon == NULL)
        return NULL;
    if (colon == listen || strncmp(listen, "0.0.0.0:", 8) == 0)
        (void)tr_buf_printf(&url, "http://127.0.0.1%s", colon);
    else if (strncmp(listen, "[::]:", 5) == 0)
        (void)tr_buf_printf(&url, "http://[::1]%s", colon);
    else
        (void)tr_buf_printf(&url, "http://%s", listen);
    return tr_buf_detach(&url);
}

static int call_api(const tr_client_request *creq, const tr_config *cfg, tr_http_method method,
                    const char *path, const char *body, reply *r)
{
    tr_http_client *http = NULL;
    tr_http_request req;
    tr_error err = { 0 };
    tr_buf url = TR_BUF_INIT(8192);
    tr_buf auth = TR_BUF_INIT(8192);
    const char *headers[3] = { "Content-Type: application/json", NULL, NULL };
    char *base = base_url(creq, cfg);
    char *token = NULL;
    uv_loop_t loop;
    int status = TR_EXIT_FAILURE;

    if (base == NULL) {
        fprintf(stderr, "triaged %s: cannot tell the daemon's address\n", creq->command);
        return TR_EXIT_USAGE;
    }
    if (cfg && cfg->daemon.api_token_file && *cfg->daemon.api_token_file) {
        if (tr_config_secret_resolve(NULL, cfg->daemon.api_token_file, &token, &err) != 0) {
            fprintf(stderr, "triaged %s: %s\n", creq->command, err.message);
            tr_free(base);
            return TR_EXIT_USAGE;
        }
        (void)tr_buf_printf(&auth, "Authorization: Bearer %s", token);
        headers[1] = tr_buf_cstr(&auth);
        tr_secret_free(token);
    }
    (void)tr_buf_printf(&url, "%s%s", base, path);
    uv_loop_init(&loop);
    if (tr_http_client_new(&http, &loop, &err) != 0) {
        fprintf(stderr, "triaged %s: %s\n", creq->command, err.message);
        goto cleanup;
    }
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.url = tr_buf_cstr(&url);
    req.headers = headers;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.timeout_ms = 120000;
    req.on_done = on_done;
    req.userdata = r;
    if (tr_http_client_send(http, &req, NULL, &err) != 0) {
        fprintf(stderr, "triaged %s: %s\n", creq->command, err.message);
        goto cleanup;
    }
    while (!r->done && uv_run(&loop, UV_RUN_ONCE))
        ;
    if (r->result != 0) {
        fprintf(stderr, "triaged %s: cannot reach the daemon at %s: %s\n", creq->command, base,
                r->message);
        goto cleanup;
    }
    status = TR_EXIT_OK;
cleanup:
    tr_http_client_free(http);
    (void)uv_run(&loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop);
    if (auth.ptr)
        memset(auth.ptr, 0, auth.len);
    tr_buf_dispose(&auth);
    tr_buf_dispose(&url);
    tr_free(base);
    return status;
}

/* Print the API's error body ({"error","detail"}) readably. */
static int print_api_error(const char *command, const reply *r)
{
    cJSON *root = cJSON_ParseWithLength(r->body.ptr ? r->body.ptr : "", r->body.len);
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
    const cJSON *detail = cJSON_GetObjectItemCaseSensitive(root, "detail");

    fprintf(stderr, "triaged %s: HTTP %ld: %s%s%s\n", command, r->status,
            cJSON_IsString(error) ? error->valuestring : tr_buf_cstr(&r->body),
            cJSON_IsString(detail) && *detail->valuestring ? ": " : "",
            cJSON_IsString(detail) ? detail->valuestring : "");
    cJSON_Delete(root);
    /* The request was wrong (bad id, unknown incident, state does not allow it). */
    return r->status == 400 || r->status == 404 || r->status == 409 ? TR_EXIT_USAGE
                                                                     : TR_EXIT_FAILURE;
}

static const char *str_field(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsString(item) ? item->valuestring : "";
}

static void print_incident_row(const cJSON *inc)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(inc, "id");
    tr_buf object = TR_BUF_INIT(1024);

    (void)tr_buf_printf(&object, "%s%s%s/%s", str_field(inc, "namespace"),
                        *str_field(inc, "namespace") ? "/" : "", str_field(inc, "kind"),
                        str_field(inc, "name"));
    printf("%-6.0f %-15s %-12s %-22s %s\n", cJSON_IsNumber(id) ? id->valuedouble : 0.0,
           str_field(inc, "state"), str_field(inc, "source"), str_field(inc, "reason"),
           tr_buf_cstr(&object));
    tr_buf_dispose(&object);
}

static int print_incidents(const reply *r)
{
    cJSON *root = cJSON_ParseWithLength(r->body.ptr ? r->body.ptr : "", r->body.len);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "incidents");
    const cJSON *inc;

    if (!cJSON_IsArray(items)) {
        cJSON_Delete(root);
        fprintf(stderr, "triaged incidents: unexpected answer from the daemon\n");
        return TR_EXIT_FAILURE;
    }
    printf("%-6s %-15s %-12s %-22s %s\n", "ID", "STATE", "SOURCE", "REASON", "OBJECT");
    cJSON_ArrayForEach(inc, items)
        print_incident_row(inc);
    if (cJSON_GetArraySize(items) == 0)
        printf("(no incidents)\n");
    cJSON_Delete(root);
    return TR_EXIT_OK;
}

/* An array of strings as an indented list (numbered or bulleted). */
static void print_list(const char *title, const cJSON *items, int numbered)
{
    const cJSON *item;
    int n = 0;

    if (!cJSON_IsArray(items) || cJSON_GetArraySize(items) == 0)
        return;
    printf("  %s:\n", title);
    cJSON_ArrayForEach(item, items) {
        if (!cJSON_IsString(item))
            continue;
        n++;
        if (numbered)
            printf("    %d. %s\n", n, item->valuestring);
        else
            printf("    - %s\n", item->valuestring);
    }
}

static void print_analysis(const cJSON *analysis)
{
    const cJSON *confidence = cJSON_GetObjectItemCaseSensitive(analysis, "confidence");
    const char *patch;
    size_t patch_len;

    if (!cJSON_IsObject(analysis))
        return;
    printf("\nanalysis (%s, severity %s, confidence %.0f%%):\n", str_field(analysis, "provider"),
           str_field(analysis, "severity"),
           cJSON_IsNumber(confidence) ? confidence->valuedouble * 100 : 0.0);
    if (*str_field(analysis, "summary"))
        printf("  summary:    %s\n", str_field(analysis, "summary"));
    if (*str_field(analysis, "root_cause"))
        printf("  root cause: %s\n", str_field(analysis, "root_cause"));
    print_list("evidence", cJSON_GetObjectItemCaseSensitive(analysis, "evidence"), 0);
    print_list("remediation", cJSON_GetObjectItemCaseSensitive(analysis, "remediation"), 1);
    patch = str_field(analysis, "patch");
    patch_len = strlen(patch);
    if (patch_len > 0)
        printf("  patch:\n%s%s", patch, patch[patch_len - 1] == '\n' ? "" : "\n");
}

/* show --prompt: the request body as sent, or why there is none. */
static int print_prompt(const reply *r)
{
    cJSON *root = cJSON_ParseWithLength(r->body.ptr ? r->body.ptr : "", r->body.len);
    const char *prompt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "prompt"));

    if (prompt)
        printf("%s\n", prompt);
    else
        printf("(no LLM request: the analysis was rule-based, or there is none yet)\n");
    cJSON_Delete(root);
    return TR_EXIT_OK;
}

static int print_incident(const reply *r)
{
    cJSON *root = cJSON_ParseWithLength(r->body.ptr ? r->body.ptr : "", r->body.len);
    const cJSON *inc = cJSON_GetObjectItemCaseSensitive(root, "incident");
    static const char *const fields[] = { "state", "source", "cluster", "namespace", "kind",
                                          "name", "reason", "title", "error" };
    size_t i;

    if (!cJSON_IsObject(inc)) {
        cJSON_Delete(root);
        fprintf(stderr, "triaged show: unexpected answer from the daemon\n");
        return TR_EXIT_FAILURE;
    }
    print_incident_row(inc);
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (*str_field(inc, fields[i]))
            printf("  %-10s %s\n", fields[i], str_field(inc, fields[i]));
    print_analysis(cJSON_GetObjectItemCaseSensitive(root, "analysis"));
    cJSON_Delete(root);
    return TR_EXIT_OK;
}

/* After accept/reject: the incident's new state and what happens next. */
static int print_decision(const char *command, const char *id, const reply *r)
{
    cJSON *root = cJSON_ParseWithLength(r->body.ptr ? r->body.ptr : "", r->body.len);
    const cJSON *inc = cJSON_GetObjectItemCaseSensitive(root, "incident");

    printf("incident %s %s: now %s\n", id, strcmp(command, "accept") == 0 ? "accepted" : "rejected",
           *str_field(inc, "state") ? str_field(inc, "state") : "?");
    if (*str_field(root, "message"))
        printf("%s\n", str_field(root, "message"));
    cJSON_Delete(root);
    return TR_EXIT_OK;
}

/* {"reason": text} for reject; caller frees with cJSON_free. */
static char *reject_body(const char *reason)
{
    cJSON *root = cJSON_CreateObject();
    char *text;

    if (root == NULL)
        return NULL;
    if (reason)
        cJSON_AddStringToObject(root, "reason", reason);
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

/* {"message": text}; caller frees with cJSON_free. */
static char *message_body(const char *text)
{
    cJSON *root = cJSON_CreateObject();
    char *body;

    if (root == NULL)
        return NULL;
    cJSON_AddStringToObject(root, "message", text);
    body = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return body;
}

/*
 * One line of stdin into line (without the newline). 1 for a line, 0 at
 * the end of input, -1 for a line longer than CHAT_LINE_MAX (its rest is
 * skipped).
 */
static int read_line(tr_buf *line)
{
    char chunk[4096];
    size_t n;
    int too_long = 0;

    tr_buf_clear(line);
    while (fgets(chunk, sizeof(chunk), stdin) != NULL) {
        n = strlen(chunk);
        if (n > 0 && chunk[n - 1] == '\n') {
            chunk[--n] = '\0';
            if (!too_long && tr_buf_put(line, chunk, n) != TR_OK)
                too_long = 1;
            return too_long ? -1 : 1;
        }
        if (!too_long && tr_buf_put(line, chunk, n) != TR_OK)
            too_long = 1;
    }
    if (too_long)
        return -1;
    return line->len > 0 ? 1 : 0;
}

static void print_chat_answer(const reply *r, int json)
{
    cJSON *root = cJSON_ParseWithLength(r->body.ptr ? r->body.ptr : "", r->body.len);
    const char *answer = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "answer"));
    const char *patch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "patch"));
    size_t len;

    if (json) {
        printf("%s\n", tr_buf_cstr(&r->body));
    } else {
        printf("%s\n", answer ? answer : "(no answer)");
        if (patch && (len = strlen(patch)) > 0)
            printf("\nrevised patch (now the incident's proposed patch):\n%s%s", patch,
                   patch[len - 1] == '\n' ? "" : "\n");
    }
    fflush(stdout);
    cJSON_Delete(root);
}

/*
 * `triaged chat ID`: each line of stdin is a question, each answer is
 * printed. On a terminal there is a banner and a prompt; through a pipe
 * only the answers, one block per question, separated by a blank line.
 */
static int chat_loop(const tr_client_request *creq, const tr_config *cfg)
{
    int interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    tr_buf line = TR_BUF_INIT(CHAT_LINE_MAX), path = TR_BUF_INIT(4096);
    int status = TR_EXIT_OK, turns = 0, got;
    const char *text;
    char *body;
    reply r;

    (void)tr_buf_printf(&path, "/v1/incidents/%s/chat", creq->arg);
    if (interactive)
        printf("Follow-up questions about incident %s. End with /quit or Ctrl-D.\n", creq->arg);
    for (;;) {
        if (interactive) {
            printf("\nchat #%s> ", creq->arg);
            fflush(stdout);
        }
        got = read_line(&line);
        if (got == 0)
            break;
        if (got < 0) {
            fprintf(stderr, "triaged chat: a question is limited to %d bytes\n", CHAT_LINE_MAX);
            status = TR_EXIT_USAGE;
            continue;
        }
        text = tr_buf_cstr(&line);
        text += strspn(text, " \t\r");
        if (*text == '\0')
            continue;
        if (strcmp(text, "/quit") == 0 || strcmp(text, "/exit") == 0)
            break;
        if ((body = message_body(text)) == NULL) {
            fprintf(stderr, "triaged chat: out of memory\n");
            status = TR_EXIT_FAILURE;
            break;
        }
        memset(&r, 0, sizeof(r));
        tr_buf_init(&r.body, 16 * 1024 * 1024);
        status = call_api(creq, cfg, TR_HTTP_POST, tr_buf_cstr(&path), body, &r);
        cJSON_free(body);
        if (status == TR_EXIT_OK && r.status == 200) {
            if (turns++ > 0 && !interactive && !creq->json)
                printf("\n");
            print_chat_answer(&r, creq->json);
        } else if (status == TR_EXIT_OK) {
            status = print_api_error(creq->command, &r);
        }
        tr_buf_dispose(&r.body);
        /* A refused question (400) does not end a conversation; anything else does. */
        if (status != TR_EXIT_OK && !(r.status == 400 && interactive))
            break;
    }
    if (interactive)
        printf("\n");
    tr_buf_dispose(&line);
    tr_buf_dispose(&path);
    return status;
}

/* Only plain words and numbers go into a URL unescaped. */
static int is_word(const char *s, const char *allowed)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s; s++)
        if (strchr(allowed, *s) == NULL)
            return 0;
    return 1;
}

int tr_client_run(const tr_client_request *creq, const tr_config *cfg)
{
    reply r;
    tr_buf path = TR_BUF_INIT(4096);
    tr_http_method method = TR_HTTP_GET;
    char *body = NULL;
    int status, decision;

    if (creq->state && !is_word(creq->state, "abcdefghijklmnopqrstuvwxyz_")) {
        fprintf(stderr, "triaged %s: bad --state '%s'\n", creq->command, creq->state);
        return TR_EXIT_USAGE;
    }
    decision = strcmp(creq->command, "accept") == 0 || strcmp(creq->command, "reject") == 0;
    if ((strcmp(creq->command, "show") == 0 || strcmp(creq->command, "chat") == 0 || decision) &&
        !is_word(creq->arg, "0123456789")) {
        fprintf(stderr, "triaged %s: incident ID must be a number, not '%s'\n", creq->command,
                creq->arg ? creq->arg : "");
        return TR_EXIT_USAGE;
    }
    if (strcmp(creq->command, "chat") == 0)
        return chat_loop(creq, cfg);
    memset(&r, 0, sizeof(r));
    tr_buf_init(&r.body, 64 * 1024 * 1024);
    if (strcmp(creq->command, "incidents") == 0) {
        (void)tr_buf_puts(&path, "/v1/incidents");
        if (creq->state)
            (void)tr_buf_printf(&path, "?state=%s", creq->state);
    } else if (strcmp(creq->command, "show") == 0) {
        (void)tr_buf_printf(&path, "/v1/incidents/%s%s", creq->arg,
                            creq->prompt ? "?prompt=1" : "");
    } else if (decision) {
        (void)tr_buf_printf(&path, "/v1/incidents/%s/%s", creq->arg, creq->command);
        method = TR_HTTP_POST;
        body = reject_body(strcmp(creq->command, "reject") == 0 ? creq->reason : NULL);
        if (body == NULL) {
            tr_buf_dispose(&path);
            tr_buf_dispose(&r.body);
            fprintf(stderr, "triaged %s: out of memory\n", creq->command);
            return TR_EXIT_FAILURE;
        }
    } else {
        fprintf(stderr, "triaged %s: not yet available in this version\n", creq->command);
        tr_buf_dispose(&path);
        return TR_EXIT_FAILURE;
    }
    status = call_api(creq, cfg, method, tr_buf_cstr(&path), body, &r);
    if (status == TR_EXIT_OK) {
        if (r.status != 200)
            status = print_api_error(creq->command, &r);
        else if (creq->json)
            printf("%s\n", tr_buf_cstr(&r.body));
        else if (strcmp(creq->command, "incidents") == 0)
            status = print_incidents(&r);
        else if (decision)
            status = print_decision(creq->command, creq->arg, &r);
        else if (creq->prompt)
            status = print_prompt(&r);
        else
            status = print_incident(&r);
    }
    cJSON_free(body);
    tr_buf_dispose(&path);
    tr_buf_dispose(&r.body);
    return status;
}
