/*
 * redact.c - secret masking. One left-to-right scan: at each position where
 * a token may start (a word boundary), the shape rules and the "secret name
 * = value" rule are tried; the first that matches replaces its span. Every
 * scan from one position is bounded (names, token runs), so the whole pass
 * stays linear in practice even on hostile input.
 */
#include "redact.h"

#include "alloc.h"
#include "error.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NAME_MAX_BYTES 256
#define RUN_MAX_BYTES 1024
#define REDACTED_PREFIX "[REDACTED:"

typedef struct match {
    size_t start; /* first masked byte */
    size_t end;   /* one past the last masked byte; scanning resumes here */
    const char *kind;
} match;

static int is_alnum(char c)
{
    return isalnum((unsigned char)c) != 0;
}

static int is_word(char c)
{
    return is_alnum(c) || c == '_';
}

static int is_b64url(char c)
{
    return is_alnum(c) || c == '_' || c == '-';
}

static int is_token_char(char c)
{
    return is_alnum(c) || strchr("-._~+/=", c) != NULL;
}

static int starts_with(const char *in, size_t len, size_t i, const char *prefix)
{
    size_t n = strlen(prefix);

    return len - i >= n && memcmp(in + i, prefix, n) == 0;
}

static int starts_with_ci(const char *in, size_t len, size_t i, const char *prefix)
{
    size_t n = strlen(prefix);

    return len - i >= n && strncasecmp(in + i, prefix, n) == 0;
}

/* Length of the run at in[i] of chars accepted by pred, at most cap. */
static size_t run_len(const char *in, size_t len, size_t i, int (*pred)(char), size_t cap)
{
    size_t n = 0;

    while (i + n < len && n < cap && pred(in[i + n]))
        n++;
    return n;
}

/* ------------------------------------------------------------ names */

static int contains_ci(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(s + i, needle, n) == 0)
            return 1;
    return 0;
}

static int ends_with_ci(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);

    return len >= n && strncasecmp(s + len - n, suffix, n) == 0;
}

int tr_redact_name_is_secret(const char *name, size_t len)
{
    /* Names of secrets, counts of tokens, and key names are not secrets. */
    static const char *const not_secret_suffix[] = {
        "name", "names", "ref", "kind", "tokens", "count", "budget", "_env", "_file", "_path",
    };
    static const char *const not_secret[] = {
        "missing_key", "public_key", "primary_key", "sort_key", "partition_key",
        "foreign_key", "cache_key", "idempotency_key",
    };
    static const char *const secret_part[] = {
        "token", "password", "passwd", "secret", "credential", "apikey", "api_key",
        "private_key", "authorization", "access_key",
    };

    if (name == NULL || len == 0)
        return 0;
    for (size_t i = 0; i < sizeof(not_secret) / sizeof(not_secret[0]); i++)
        if (len == strlen(not_secret[i]) && strncasecmp(name, not_secret[i], len) == 0)
            return 0;
    for (size_t i = 0; i < sizeof(not_secret_suffix) / sizeof(not_secret_suffix[0]); i++)
        if (ends_with_ci(name, len, not_secret_suffix[i]))
            return 0;
    for (size_t i = 0; i < sizeof(secret_part) / sizeof(secret_part[0]); i++)
        if (contains_ci(name, len, secret_part[i]))
            return 1;
    if (ends_with_ci(name, len, "_key") || ends_with_ci(name, len, "-key") ||
        ends_with_ci(name, len, ".key"))
        return 1;
    if ((len == 3 && strncasecmp(name, "pwd", 3) == 0) ||
        (len == 4 && strncasecmp(name, "pass", 4) == 0))
        return 1;
    return 0;
}

static const char *kind_for_name(const char *name, size_t len)
{
    if (contains_ci(name, len, "authorization"))
        return "authorization";
    if (contains_ci(name, len, "pass") || contains_ci(name, len, "pwd"))
        return "password";
    if (contains_ci(name, len, "token"))
        return "token";
    return "secret";
}

/* ------------------------------------------------------------ shapes */

static int match_pem(const char *in, size_t len, size_t i, match *m)
{
    size_t j;

    if (!starts_with(in, len, i, "-----BEGIN "))
        return 0;
    m->start = i;
    m->end = len;
    m->kind = "pem";
    for (j = i + 11; j + 9 <= len; j++) {
        if (memcmp(in + j, "-----END ", 9) == 0) {
            const char *close = NULL;

            for (size_t k = j + 9; k + 5 <= len; k++)
                if (memcmp(in + k, "-----", 5) == 0) {
                    close = in + k + 5;
                    break;
                }
            m->end = close ? (size_t)(close - in) : len;
            break;
        }
    }
    return 1;
}

static int match_url_credentials(const char *in, size_t len, size_t i, match *m)
{
    size_t j = i + 3;
    int colon = 0;

    if (!starts_with(in, len, i, "://") || starts_with(in, len, i + 3, REDACTED_PREFIX))
        return 0;
    for (; j < len; j++) {
        char c = in[j];

        if (c == '@')
            break;
        if (c == ':')
            colon = 1;
        /* RFC 3986 userinfo holds no gen-delims; '[' also starts our markers. */
        if (c == '/' || c == '?' || c == '#' || c == '"' || c == '\'' || c == '\\' ||
            c == '<' || c == '>' || c == '`' || c == '[' || c == ']' ||
            isspace((unsigned char)c))
            return 0;
    }
    if (j >= len || j == i + 3)
        return 0;
    /* user:password, or a bare token (https://<token>@github.com), not ssh://git@ */
    if (!colon && j - (i + 3) < 16)
        return 0;
    m->start = i + 3;
    m->end = j;
    m->kind = "url_credentials";
    return 1;
}

static int match_jwt(const char *in, size_t len, size_t i, match *m)
{
    size_t j = i, seg;

    if (!starts_with(in, len, i, "eyJ"))
        return 0;
    for (int part = 0; part < 3; part++) {
        seg = run_len(in, len, j, is_b64url, 16384);
        if (part < 2 && seg < 10)
            return 0;
        j += seg;
        if (part < 2) {
            if (j >= len || in[j] != '.')
                return 0;
            j++;
        }
    }
    m->start = i;
    m->end = j;
    m->kind = "jwt";
    return 1;
}

static int match_prefixed(const char *in, size_t len, size_t i, match *m)
{
    static const struct {
        const char *prefix;
        size_t min_run;
        int (*pred)(char);
        const char *kind;
    } rules[] = {
        {"sk-", 16, is_b64url, "api_key"},      {"sk_", 16, is_b64url, "api_key"},
        {"github_pat_", 20, is_word, "github_token"},
        {"ghp_", 20, is_alnum, "github_token"}, {"gho_", 20, is_alnum, "github_token"},
        {"ghu_", 20, is_alnum, "github_token"}, {"ghs_", 20, is_alnum, "github_token"},
        {"ghr_", 20, is_alnum, "github_token"}, {"xoxb-", 10, is_b64url, "slack_token"},
        {"xoxp-", 10, is_b64url, "slack_token"}, {"xoxa-", 10, is_b64url, "slack_token"},
        {"xoxs-", 10, is_b64url, "slack_token"},
    };

    for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
        size_t plen = strlen(rules[r].prefix), n;

        if (!starts_with(in, len, i, rules[r].prefix))
            continue;
        n = run_len(in, len, i + plen, rules[r].pred, RUN_MAX_BYTES);
        /* A token ends at a non-word char: "ghp_x..._y" or "AKIA...Xyz" is not one. */
        if (n < rules[r].min_run || (i + plen + n < len && is_word(in[i + plen + n])))
            continue;
        m->start = i;
        m->end = i + plen + n;
        m->kind = rules[r].kind;
        return 1;
    }
    if (starts_with(in, len, i, "AKIA") || starts_with(in, len, i, "ASIA")) {
        size_t n = 0;

        while (i + 4 + n < len && n < 17 &&
               (isupper((unsigned char)in[i + 4 + n]) || isdigit((unsigned char)in[i + 4 + n])))
            n++;
        if (n == 16 && !(i + 20 < len && is_word(in[i + 20]))) {
            m->start = i;
            m->end = i + 20;
            m->kind = "aws_access_key";
            return 1;
        }
    }
    return 0;
}

static int match_bearer(const char *in, size_t len, size_t i, match *m)
{
    size_t j, n;

    if (!starts_with_ci(in, len, i, "bearer ") && !starts_with_ci(in, len, i, "basic "))
        return 0;
    j = i + (starts_with_ci(in, len, i, "bearer ") ? 7 : 6);
    while (j < len && in[j] == ' ')
        j++;
    if (starts_with(in, len, j, REDACTED_PREFIX))
        return 0;
    n = run_len(in, len, j, is_token_char, 8192);
    if (n < 8)
        return 0;
    m->start = j;
    m->end = j + n;
    m->kind = "bearer";
    return 1;
}

static int is_name_char(char c)
{
    return is_word(c) || c == '-' || c == '.';
}

/* NAME = value, "name": "value", name: value, Authorization: whole line. */
static int match_assignment(const char *in, size_t len, size_t i, match *m)
{
    size_t n = run_len(in, len, i, is_name_char, NAME_MAX_BYTES + 1), j, v;
    char quote = 0;
    int whole_line;

    if (n == 0 || n > NAME_MAX_BYTES || (!isalpha((unsigned char)in[i]) && in[i] != '_'))
        return 0;
    if (!tr_redact_name_is_secret(in + i, n))
        return 0;
    /* A token inside the name is masked by its own rule; masking the value too
     * would skip it (and make a second pass differ from the first). */
    for (size_t k = i + 1; k < i + n; k++) {
        match inner;

        if (match_pem(in, len, k, &inner) ||
            (!is_word(in[k - 1]) &&
             (match_prefixed(in, len, k, &inner) || match_jwt(in, len, k, &inner))))
            return 0;
    }
    whole_line = contains_ci(in + i, n, "authorization");
    j = i + n;
    if (j < len && in[j] == '\\')
        j++;
    if (j < len && (in[j] == '"' || in[j] == '\''))
        j++;
    while (j < len && (in[j] == ' ' || in[j] == '\t'))
        j++;
    if (j >= len || (in[j] != '=' && in[j] != ':'))
        return 0;
    if (j + 1 < len && (in[j + 1] == '=' || in[j + 1] == '/'))
        return 0; /* "==" comparisons, "scheme://" */
    j++;
    while (j < len && (in[j] == ' ' || in[j] == '\t'))
        j++;
    if (j < len && in[j] == '\\')
        j++;
    if (j < len && (in[j] == '"' || in[j] == '\'')) {
        quote = in[j];
        j++;
    }
    if (starts_with(in, len, j, REDACTED_PREFIX))
        return 0;
    for (v = j; v < len; v++) {
        char c = in[v];

        if (c == '\n' || c == '\r' || c == '\\' || (quote && c == quote))
            break;
        if (!quote && !whole_line &&
            (isspace((unsigned char)c) || strchr(",;&)}]\"'", c) != NULL))
            break;
        if (!quote && whole_line && strchr("\"'", c) != NULL)
            break;
    }
    if (v == j)
        return 0;
    m->start = j;
    m->end = v;
    m->kind = kind_for_name(in + i, n);
    return 1;
}

static int match_at(const char *in, size_t len, size_t i, match *m)
{
    int boundary = i == 0 || !is_word(in[i - 1]);

    if (match_pem(in, len, i, m) || match_url_credentials(in, len, i, m))
        return 1;
    if (!boundary)
        return 0;
    return match_jwt(in, len, i, m) || match_prefixed(in, len, i, m) ||
           match_bearer(in, len, i, m) || match_assignment(in, len, i, m);
}

int tr_redact_text(tr_buf *out, const char *in, size_t len, size_t *count)
{
    size_t i = 0, copied = 0;
    match m;
    int rc;

    if (in == NULL)
        return TR_OK;
    while (i < len) {
        if (!match_at(in, len, i, &m)) {
            i++;
            continue;
        }
        if ((rc = tr_buf_put(out, in + copied, m.start - copied)) != TR_OK ||
            (rc = tr_buf_printf(out, REDACTED_PREFIX "%s]", m.kind)) != TR_OK)
            return rc;
        if (count)
            (*count)++;
        copied = i = m.end > i ? m.end : i + 1;
    }
    return tr_buf_put(out, in + copied, len - copied);
}

char *tr_redact_dup(const char *in, size_t *count)
{
    tr_buf out = TR_BUF_INIT(0);

    if (in == NULL)
        return NULL;
    if (tr_redact_text(&out, in, strlen(in), count) != TR_OK || tr_buf_put(&out, "", 0) != TR_OK) {
        tr_buf_dispose(&out);
        return NULL;
    }
    return tr_buf_detach(&out);
}

/* ------------------------------------------------------------ JSON trees */

static int replace_string(cJSON *item, const char *kind, size_t *count)
{
    char text[64];

    snprintf(text, sizeof(text), REDACTED_PREFIX "%s]", kind);
    if (cJSON_IsString(item)) {
        if (item->valuestring != NULL && strncmp(item->valuestring, REDACTED_PREFIX, 10) == 0)
            return TR_OK;
        if (cJSON_SetValuestring(item, text) == NULL)
            return TR_ENOMEM;
    } else if (cJSON_IsNumber(item)) {
        /* A numeric PIN is still a secret: turn it into the marker string. */
        char *copy = cJSON_malloc(strlen(text) + 1);

        if (copy == NULL)
            return TR_ENOMEM;
        memcpy(copy, text, strlen(text) + 1);
        item->type = cJSON_String;
        item->valuestring = copy;
        item->valueint = 0;
        item->valuedouble = 0;
    } else {
        return TR_OK;
    }
    if (count)
        (*count)++;
    return TR_OK;
}

static int redact_all_scalars(cJSON *node, const char *kind, size_t *count)
{
    cJSON *child;
    int rc;

    if (cJSON_IsString(node) || cJSON_IsNumber(node))
        return replace_string(node, kind, count);
    cJSON_ArrayForEach(child, node)
        if ((rc = redact_all_scalars(child, kind, count)) != TR_OK)
            return rc;
    return TR_OK;
}

static int redact_string_value(cJSON *item, size_t *count)
{
    tr_buf out = TR_BUF_INIT(0);
    size_t before = count ? *count : 0, found = 0;
    int rc;

    if (item->valuestring == NULL)
        return TR_OK;
    rc = tr_redact_text(&out, item->valuestring, strlen(item->valuestring), &found);
    if (rc == TR_OK && found > 0) {
        if (cJSON_SetValuestring(item, tr_buf_cstr(&out)) == NULL)
            rc = TR_ENOMEM;
        else if (count)
            *count = before + found;
    }
    tr_buf_dispose(&out);
    return rc;
}

int tr_redact_json(cJSON *node, size_t *count)
{
    cJSON *child, *name, *kind;
    int rc;

    if (node == NULL)
        return TR_OK;
    if (cJSON_IsString(node))
        return redact_string_value(node, count);
    if (cJSON_IsObject(node)) {
        kind = cJSON_GetObjectItemCaseSensitive(node, "kind");
        if (cJSON_IsString(kind) && strcmp(kind->valuestring, "Secret") == 0) {
            if ((rc = redact_all_scalars(cJSON_GetObjectItemCaseSensitive(node, "data"),
                                         "secret_data", count)) != TR_OK ||
                (rc = redact_all_scalars(cJSON_GetObjectItemCaseSensitive(node, "stringData"),
                                         "secret_data", count)) != TR_OK)
                return rc;
        }
        name = cJSON_GetObjectItemCaseSensitive(node, "name");
        if (cJSON_IsString(name) &&
            tr_redact_name_is_secret(name->valuestring, strlen(name->valuestring))) {
            cJSON *value = cJSON_GetObjectItemCaseSensitive(node, "value");

            if (value != NULL &&
                (rc = replace_string(value, kind_for_name(name->valuestring,
                                                          strlen(name->valuestring)),
                                     count)) != TR_OK)
                return rc;
        }
    }
    cJSON_ArrayForEach(child, node)
    {
        if (cJSON_IsObject(node) && child->string != NULL &&
            (cJSON_IsString(child) || cJSON_IsNumber(child)) &&
            tr_redact_name_is_secret(child->string, strlen(child->string))) {
            rc = replace_string(child, kind_for_name(child->string, strlen(child->string)),
                                count);
        } else {
            rc = tr_redact_json(child, count);
        }
        if (rc != TR_OK)
            return rc;
    }
    return TR_OK;
}
