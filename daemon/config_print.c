/*
 * config_print.c - the effective configuration as TOML for
 * `triaged check-config`, and the URL masking it (and any log line that
 * shows a URL) relies on.
 *
 * The output must load back to an equal config, so every key is printed,
 * defaults included, and strings and floats are written exactly. It must also
 * be safe to paste into a ticket: no secret value is ever printed, only the
 * names of the variables and files that hold them, with whether they are
 * there, and credentials inside URLs are masked.
 */
#include "config_internal.h"

#include "alloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Appends stop at the first failure, which is reported once at the end. */
typedef struct printer {
    tr_buf *out;
    int rc;
} printer;

static void put(printer *p, const char *s, size_t len)
{
    if (p->rc == TR_OK)
        p->rc = tr_buf_put(p->out, s, len);
}

static void puts_(printer *p, const char *s)
{
    put(p, s, strlen(s));
}

static void putf(printer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(printer *p, const char *fmt, ...)
{
    va_list ap;

    if (p->rc != TR_OK)
        return;
    va_start(ap, fmt);
    p->rc = tr_buf_vprintf(p->out, fmt, ap);
    va_end(ap);
}

static void put_toml_string(printer *p, const char *s)
{
    char escape[8];

    puts_(p, "\"");
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            escape[0] = '\\';
            escape[1] = (char)c;
            put(p, escape, 2);
        } else if (c == '\n') {
            puts_(p, "\\n");
        } else if (c == '\t') {
            puts_(p, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            (void)snprintf(escape, sizeof(escape), "\\u%04X", c);
            puts_(p, escape);
        } else {
            put(p, s, 1);
        }
    }
    puts_(p, "\"");
}

static void put_key(printer *p, const char *key)
{
    size_t i;

    for (i = 0; key[i] != '\0'; i++)
        if (!((key[i] >= 'A' && key[i] <= 'Z') || (key[i] >= 'a' && key[i] <= 'z') ||
              (key[i] >= '0' && key[i] <= '9') || key[i] == '_' || key[i] == '-'))
            break;
    if (i > 0 && key[i] == '\0')
        puts_(p, key);
    else
        put_toml_string(p, key);
}

/* The shortest decimal that reads back to the same double, always a TOML float. */
static void put_float(printer *p, double value)
{
    char text[40];
    int precision;

    for (precision = 1; precision <= 17; precision++) {
        (void)snprintf(text, sizeof(text), "%.*g", precision, value);
        if (strtod(text, NULL) == value)
            break;
    }
    puts_(p, text);
    if (strpbrk(text, ".e") == NULL)
        puts_(p, ".0");
}

static void put_env_comment(printer *p, const char *name)
{
    const char *value;

    if (name[0] == '\0')
        return;
    value = getenv(name);
    puts_(p, value != NULL && value[0] != '\0' ? "  # set" : "  # not set");
}

static void put_file_comment(printer *p, const char *path)
{
    if (path[0] == '\0')
        return;
    if (access(path, R_OK) == 0)
        puts_(p, "  # readable");
    else
        puts_(p, errno == ENOENT ? "  # missing" : "  # not readable");
}

static void put_list(printer *p, const tr_config_strlist *list)
{
    size_t i;

    puts_(p, "[");
    for (i = 0; i < list->count; i++) {
        if (i > 0)
            puts_(p, ", ");
        put_toml_string(p, list->items[i]);
    }
    puts_(p, "]");
}

static void put_string_value(printer *p, const cfg_field *field, const char *value)
{
    tr_buf masked = TR_BUF_INIT(0);

    if (field->flags & CFG_URL) {
        if (p->rc == TR_OK)
            p->rc = tr_config_url_mask(&masked, value);
        if (p->rc == TR_OK)
            put_toml_string(p, tr_buf_cstr(&masked));
        tr_buf_dispose(&masked);
    } else {
        put_toml_string(p, value);
    }
    if (field->flags & CFG_ENV)
        put_env_comment(p, value);
    else if (field->flags & CFG_FILE)
        put_file_comment(p, value);
}

static void put_field(printer *p, const cfg_field *field, const char *at)
{
    char duration[64];
    unsigned bits;
    size_t i;
    bool first = true;

    put_key(p, field->key);
    puts_(p, " = ");
    switch (field->kind) {
    case CFG_STRING:
        put_string_value(p, field, *(char *const *)at);
        break;
    case CFG_BOOL:
        puts_(p, *(const bool *)at ? "true" : "false");
        break;
    case CFG_INT:
        putf(p, "%lld", (long long)*(const int64_t *)at);
        break;
    case CFG_FLOAT:
        put_float(p, *(const double *)at);
        break;
    case CFG_DURATION:
        tr_config_duration_format(*(const uint64_t *)at, duration, sizeof(duration));
        put_toml_string(p, duration);
        break;
    case CFG_ENUM:
        put_toml_string(p, field->names[*(const int *)at]);
        break;
    case CFG_FLAGS:
        bits = *(const unsigned *)at;
        puts_(p, "[");
        for (i = 0; field->names[i] != NULL; i++) {
            if (!(bits & (1u << i)))
                continue;
            puts_(p, first ? "" : ", ");
            put_toml_string(p, field->names[i]);
            first = false;
        }
        puts_(p, "]");
        break;
    case CFG_LIST:
        put_list(p, (const tr_config_strlist *)at);
        break;
    case CFG_HEADERS:
        break;
    }
    puts_(p, "\n");
}

/* Scalars first: after a [sub.table] header every key would belong to it. */
static void put_fields(printer *p, const char *table, const void *base,
                       const cfg_field *fields, size_t count, unsigned kind_bit)
{
    const tr_config_headers *headers;
    size_t i, j;

    for (i = 0; i < count; i++) {
        if (fields[i].kind == CFG_HEADERS)
            continue;
        if (kind_bit != 0 && fields[i].kinds != 0 && !(fields[i].kinds & kind_bit))
            continue;
        put_field(p, &fields[i], (const char *)base + fields[i].offset);
    }
    for (i = 0; i < count; i++) {
        if (fields[i].kind != CFG_HEADERS)
            continue;
        headers = (const tr_config_headers *)((const char *)base + fields[i].offset);
        putf(p, "\n[%s.%s]\n", table, fields[i].key);
        for (j = 0; j < headers->count; j++) {
            put_key(p, headers->items[j].name);
            puts_(p, " = ");
            put_toml_string(p, headers->items[j].value);
            if (fields[i].flags & CFG_ENV)
                put_env_comment(p, headers->items[j].value);
            puts_(p, "\n");
        }
    }
}

int tr_config_print(const tr_config *cfg, tr_buf *out)
{
    printer p = {out, TR_OK};
    const tr_config_notify *notify;
    size_t i;

    puts_(&p, "# Effective configuration. Secrets are never shown: *_env keys name a\n"
              "# variable (# set / # not set), *_file keys a file (# readable / # missing).\n");
    for (i = 0; i < cfg_section_count; i++) {
        putf(&p, "\n[%s]\n", cfg_sections[i].name);
        put_fields(&p, cfg_sections[i].name, (const char *)cfg + cfg_sections[i].offset,
                   cfg_sections[i].fields, cfg_sections[i].field_count, 0);
        if (strcmp(cfg_sections[i].name, "gitops") != 0)
            continue;
        for (size_t r = 0; r < cfg->gitops.repo_count; r++) {
            puts_(&p, "\n[[gitops.repos]]\n");
            put_fields(&p, "gitops.repos", &cfg->gitops.repos[r], cfg_repo_fields,
                       cfg_repo_field_count, 0);
        }
    }
    for (i = 0; i < cfg->notify_count; i++) {
        notify = &cfg->notify[i];
        puts_(&p, "\n[[notify]]\n");
        put_fields(&p, "notify", notify, cfg_notify_fields, cfg_notify_field_count,
                   1u << notify->kind);
    }
    return p.rc;
}

static void put_masked_query(printer *p, const char *query, size_t len)
{
    const char *param = query, *end = query + len, *amp, *eq;

    while (param <= end) {
        amp = memchr(param, '&', (size_t)(end - param));
        if (amp == NULL)
            amp = end;
        eq = memchr(param, '=', (size_t)(amp - param));
        if (eq != NULL) {
            put(p, param, (size_t)(eq - param));
            puts_(p, "=***");
        } else if (amp > param) {
            /* a bare value (?abcdef) may be the token itself */
            puts_(p, "***");
        }
        if (amp == end)
            break;
        puts_(p, "&");
        param = amp + 1;
    }
}

int tr_config_url_mask(tr_buf *out, const char *url)
{
    printer p = {out, TR_OK};
    const char *scheme_end = strstr(url, "://");
    const char *authority, *rest, *at, *query, *fragment;
    size_t authority_len;

    /* scp-like "git@host:path" and local paths carry no password */
    if (scheme_end == NULL || strcspn(url, "/?#") < (size_t)(scheme_end - url)) {
        puts_(&p, url);
        return p.rc;
    }
    authority = scheme_end + 3;
    authority_len = strcspn(authority, "/?#");
    rest = authority + authority_len;
    at = NULL;
    for (const char *c = authority; c < rest; c++)
        if (*c == '@')
            at = c;
    if (at != NULL) {
        put(&p, url, (size_t)(authority - url));
        puts_(&p, "***");
        put(&p, at, (size_t)(rest - at));
    } else {
        put(&p, url, (size_t)(rest - url));
    }
    query = strchr(rest, '?');
    fragment = strchr(rest, '#');
    if (query != NULL && fragment != NULL && fragment < query)
        query = NULL;
    put(&p, rest, (size_t)((query != NULL ? query : fragment != NULL ? fragment
                                                                    : rest + strlen(rest)) -
                           rest));
    if (query != NULL) {
        puts_(&p, "?");
        put_masked_query(&p, query + 1,
                         (size_t)((fragment != NULL ? fragment : query + strlen(query)) -
                                  (query + 1)));
    }
    if (fragment != NULL)
        puts_(&p, fragment[1] != '\0' ? "#***" : "#");
    return p.rc;
}
