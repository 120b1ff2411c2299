/*
 * fake_forge.h - the recorded forge replies (../shared/fixtures/{github,
 * gitlab,gitea}) for tests that put a fake forge on loopback with
 * fake_llm_server.h's server: read a recorded body, edit a few of its
 * fields, wrap it in an HTTP response. Shared by test_forge.c and
 * test_fixer.c; header-only, like fake_llm_server.h.
 */
#ifndef FAKE_FORGE_H
#define FAKE_FORGE_H

#include <cjson/cJSON.h>
#include <string.h>

#include "fake_llm_server.h"

#define FORGE_FIXTURES "../shared/fixtures/"
/* ---------------------------------------------------------------- fixtures */

/* The response body of a recorded PyGithub replay: its last line. */
static __attribute__((unused)) char *pygithub_body(const char *name)
{
    char path[256], *text, *last;

    snprintf(path, sizeof(path), FORGE_FIXTURES "github/%s", name);
    text = fake_read_file(path);
    assert_non_null(text);
    while (strlen(text) > 0 && text[strlen(text) - 1] == '\n')
        text[strlen(text) - 1] = '\0';
    last = strrchr(text, '\n');
    last = tr_strdup(last ? last + 1 : text);
    tr_free(text);
    return last;
}

static __attribute__((unused)) char *fixture_body(const char *rel)
{
    char path[256], *text;

    snprintf(path, sizeof(path), FORGE_FIXTURES "%s", rel);
    text = fake_read_file(path);
    assert_non_null(text);
    return text;
}

/*
 * A recorded body with some fields changed (a list needs our branch, a state
 * test needs "merged"): set is "key=json;key=json", "head.ref" reaches one down.
 */
static __attribute__((unused)) char *edit_json(const char *body, const char *set, int as_list)
{
    cJSON *root = cJSON_Parse(body), *list;
    char spec[512], *save = NULL, *tok, *out, *res;

    assert_non_null(root);
    snprintf(spec, sizeof(spec), "%s", set);
    for (tok = strtok_r(spec, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(tok, '='), *dot;
        cJSON *target = root;

        *eq = '\0';
        dot = strchr(tok, '.');
        if (dot) {
            *dot = '\0';
            target = cJSON_GetObjectItem(root, tok);
            tok = dot + 1;
        }
        cJSON_DeleteItemFromObject(target, tok);
        cJSON_AddItemToObject(target, tok, cJSON_Parse(eq + 1));
    }
    if (as_list) {
        list = cJSON_CreateArray();
        cJSON_AddItemToArray(list, root);
        root = list;
    }
    out = cJSON_PrintUnformatted(root);
    res = tr_strdup(out);
    cJSON_free(out);
    cJSON_Delete(root);
    return res;
}

static __attribute__((unused)) char *reply(int status, const char *headers, char *body)
{
    char *raw = fake_http(status, headers, body);

    tr_free(body);
    return raw;
}

#endif
