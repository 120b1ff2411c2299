/*
 * config_load.c - the schema-driven walk from a TOML table into a config
 * struct (config_schema.c says what each key is): type, range, enum and
 * duration checks, and the refusal of keys that would hold a secret.
 *
 * Every error names the file, the line of the offending node and the full
 * dotted key.
 */
#include "config_internal.h"

#include "alloc.h"
#include "toml.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int cfg_fail(load_ctx *ctx, const tr_toml_value *node, const char *key, const char *fmt, ...)
{
    char what[TR_ERROR_MSG_MAX];
    int line = node != NULL ? tr_toml_line(node) : 0;
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (line > 0)
        return tr_error_set(ctx->err, TR_ECONFIG, "%s:%d: %s: %s", ctx->file, line, key, what);
    return tr_error_set(ctx->err, TR_ECONFIG, "%s: %s: %s", ctx->file, key, what);
}

int cfg_fail_nomem(load_ctx *ctx)
{
    return tr_error_set(ctx->err, TR_ENOMEM, "%s: out of memory", ctx->file);
}

static const char *type_name(const tr_toml_value *node)
{
    return tr_toml_type_name(tr_toml_type_of(node));
}

static void join_names(const char *const *names, char *out, size_t size)
{
    size_t used = 0;
    int n;

    out[0] = '\0';
    for (; *names != NULL && used < size; names++) {
        n = snprintf(out + used, size - used, "%s%s", used > 0 ? ", " : "", *names);
        if (n < 0)
            return;
        used += (size_t)n;
    }
}

static int name_index(const char *const *names, const char *name)
{
    int i;

    for (i = 0; names[i] != NULL; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

bool cfg_is_env_name(const char *s)
{
    size_t i;

    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    for (i = 1; s[i] != '\0'; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return i <= 255;
}

static bool is_http_url(const char *s)
{
    return (strncmp(s, "http://", 7) == 0 && s[7] != '\0') ||
           (strncmp(s, "https://", 8) == 0 && s[8] != '\0');
}

/*
 * A string node as a C string; TOML allows "\u0000", which C strings cannot hold.
 * The failures return TR_ECONFIG (what cfg_fail returns) as a constant: the
 * analyzer does not follow variadic calls, and without it assumes a failure
 * could return >= 0 and leave *out unset for the caller.
 */
static int get_string(load_ctx *ctx, const tr_toml_value *node, const char *key,
                      const char **out)
{
    size_t len;

    if (tr_toml_type_of(node) != TR_TOML_STRING) {
        (void)cfg_fail(ctx, node, key, "expected a string, got %s", type_name(node));
        return TR_ECONFIG;
    }
    *out = tr_toml_string(node, &len);
    if (strlen(*out) != len) {
        (void)cfg_fail(ctx, node, key, "must not contain a NUL character");
        return TR_ECONFIG;
    }
    return TR_OK;
}

/*
 * String checks that do not echo the value: a misplaced secret (a token
 * pasted into a *_env key) must not end up in an error message or a log.
 */
static int check_string(load_ctx *ctx, const tr_toml_value *node, const char *key,
                        const cfg_field *field, const char *s)
{
    if ((field->flags & CFG_NONEMPTY) && s[0] == '\0')
        return cfg_fail(ctx, node, key, "must not be empty");
    if ((field->flags & CFG_ENV) && s[0] != '\0' && !cfg_is_env_name(s))
        return cfg_fail(ctx, node, key,
                        "is not an environment variable name (it names the variable that holds "
                        "the secret, e.g. \"MY_TOKEN\"; it must not hold the secret itself)");
    if ((field->flags & CFG_HTTP) && s[0] != '\0' && !is_http_url(s))
        return cfg_fail(ctx, node, key, "must be an http:// or https:// URL");
    return TR_OK;
}

static int load_list(load_ctx *ctx, const tr_toml_value *node, const char *key,
                     tr_config_strlist *list)
{
    char item_key[CFG_KEY_MAX];
    const tr_toml_value *item;
    const char *s = NULL;
    size_t i, n;
    int rc;

    if (tr_toml_type_of(node) != TR_TOML_ARRAY)
        return cfg_fail(ctx, node, key, "expected an array of strings, got %s", type_name(node));
    cfg_strlist_free(list);
    n = tr_toml_count(node);
    if (n == 0)
        return TR_OK;
    list->items = tr_calloc(n, sizeof(*list->items));
    if (list->items == NULL)
        return cfg_fail_nomem(ctx);
    for (i = 0; i < n; i++) {
        item = tr_toml_at(node, i);
        (void)snprintf(item_key, sizeof(item_key), "%s[%zu]", key, i);
        rc = get_string(ctx, item, item_key, &s);
        if (rc < 0)
            return rc;
        if (s[0] == '\0')
            return cfg_fail(ctx, item, item_key, "must not be empty");
        list->items[i] = tr_strdup(s);
        if (list->items[i] == NULL)
            return cfg_fail_nomem(ctx);
        list->count = i + 1;
    }
    return TR_OK;
}

static int load_flags(load_ctx *ctx, const tr_toml_value *node, const char *key,
                      const cfg_field *field, unsigned *out)
{
    char item_key[CFG_KEY_MAX], names[256];
    const char *s = NULL;
    unsigned bits = 0;
    size_t i;
    int rc, index;

    join_names(field->names, names, sizeof(names));
    if (tr_toml_type_of(node) != TR_TOML_ARRAY)
        return cfg_fail(ctx, node, key, "expected an array of names (%s), got %s", names,
                        type_name(node));
    for (i = 0; i < tr_toml_count(node); i++) {
        (void)snprintf(item_key, sizeof(item_key), "%s[%zu]", key, i);
        rc = get_string(ctx, tr_toml_at(node, i), item_key, &s);
        if (rc < 0)
            return rc;
        index = name_index(field->names, s);
        if (index < 0)
            return cfg_fail(ctx, tr_toml_at(node, i), item_key, "\"%.64s\" is not one of: %s", s,
                            names);
        bits |= 1u << index;
    }
    /* [] means every source, like namespaces = [] means every namespace */
    *out = bits != 0 ? bits : (unsigned)field->def_num;
    return TR_OK;
}

static bool is_credential_header(const char *name)
{
    static const char *const names[] = {"authorization", "proxy-authorization", "api-key",
                                        "x-api-key", "cookie", "x-auth-token", NULL};
    size_t i;

    for (i = 0; names[i] != NULL; i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

static bool is_header_name(const char *s)
{
    size_t i;

    if (s[0] == '\0')
        return false;
    for (i = 0; s[i] != '\0'; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("!#$%&'*+-.^_`|~", s[i]) != NULL))
            return false;
    return true;
}

static int load_headers(load_ctx *ctx, const tr_toml_value *node, const char *key,
                        const cfg_field *field, tr_config_headers *headers)
{
    char item_key[CFG_KEY_MAX];
    const tr_toml_value *item;
    const char *name, *value = NULL;
    size_t i, n;
    int rc;

    if (tr_toml_type_of(node) != TR_TOML_TABLE)
        return cfg_fail(ctx, node, key, "expected a table of header name = string, got %s",
                        type_name(node));
    n = tr_toml_count(node);
    if (n == 0)
        return TR_OK;
    headers->items = tr_calloc(n, sizeof(*headers->items));
    if (headers->items == NULL)
        return cfg_fail_nomem(ctx);
    for (i = 0; i < n; i++) {
        name = cfg_key_at(node, i);
        item = tr_toml_at(node, i);
        (void)snprintf(item_key, sizeof(item_key), "%s.%s", key, name);
        if (!is_header_name(name))
            return cfg_fail(ctx, item, item_key, "is not a valid HTTP header name");
        rc = get_string(ctx, item, item_key, &value);
        if (rc < 0)
            return rc;
        if (field->flags & CFG_ENV) {
            if (!cfg_is_env_name(value))
                return cfg_fail(ctx, item, item_key, "is not an environment variable name");
        } else if (is_credential_header(name)) {
            return cfg_fail(ctx, item, item_key,
                            "looks like a credential; secrets are not read from the config file: "
                            "use llm.headers_env.%s = \"ENV_VAR\"", name);
        } else if (strpbrk(value, "\r\n") != NULL) {
            return cfg_fail(ctx, item, item_key, "must not contain a line break");
        }
        headers->items[i].name = tr_strdup(name);
        headers->items[i].value = tr_strdup(value);
        headers->count = i + 1;
        if (headers->items[i].name == NULL || headers->items[i].value == NULL)
            return cfg_fail_nomem(ctx);
    }
    return TR_OK;
}

static int load_number(load_ctx *ctx, const tr_toml_value *node, const char *key,
                       const cfg_field *field, char *at)
{
    tr_toml_type type = tr_toml_type_of(node);
    double value;

    if (field->kind == CFG_INT) {
        if (type != TR_TOML_INTEGER)
            return cfg_fail(ctx, node, key, "expected an integer, got %s", type_name(node));
        /* every limit in the schema is below 2^53, so the double compare is exact */
        if ((double)tr_toml_integer(node) < field->min ||
            (double)tr_toml_integer(node) > field->max)
            return cfg_fail(ctx, node, key, "must be between %.0f and %.0f, got %lld", field->min,
                            field->max, (long long)tr_toml_integer(node));
        *(int64_t *)at = tr_toml_integer(node);
        return TR_OK;
    }
    if (type == TR_TOML_INTEGER)
        value = (double)tr_toml_integer(node);
    else if (type == TR_TOML_FLOAT)
        value = tr_toml_float(node);
    else
        return cfg_fail(ctx, node, key, "expected a number, got %s", type_name(node));
    if (!isfinite(value) || value < field->min || value > field->max)
        return cfg_fail(ctx, node, key, "must be between %g and %g, got %g", field->min, field->max,
                        value);
    *(double *)at = value;
    return TR_OK;
}

static int load_duration(load_ctx *ctx, const tr_toml_value *node, const char *key,
                         const cfg_field *field, uint64_t *out)
{
    char text[32];
    const char *s = NULL, *why = NULL;
    uint64_t ms = 0;
    int rc;

    if (tr_toml_type_of(node) != TR_TOML_STRING)
        return cfg_fail(ctx, node, key, "expected a duration string such as \"90s\", got %s",
                        type_name(node));
    rc = get_string(ctx, node, key, &s);
    if (rc < 0)
        return rc;
    if (tr_config_duration_parse(s, &ms, &why) < 0)
        return cfg_fail(ctx, node, key, "\"%.40s\" is not a duration: %s", s, why);
    if ((double)ms < field->min) {
        tr_config_duration_format((uint64_t)field->min, text, sizeof(text));
        return cfg_fail(ctx, node, key, "must be at least %s, got \"%.40s\"", text, s);
    }
    *out = ms;
    return TR_OK;
}

int cfg_load_value(load_ctx *ctx, const tr_toml_value *node, const char *key,
                      const cfg_field *field, char *at)
{
    char names[256];
    const char *s = NULL;
    char *copy;
    int rc, index;

    switch (field->kind) {
    case CFG_STRING:
        rc = get_string(ctx, node, key, &s);
        if (rc == TR_OK)
            rc = check_string(ctx, node, key, field, s);
        if (rc < 0)
            return rc;
        copy = tr_strdup(s);
        if (copy == NULL)
            return cfg_fail_nomem(ctx);
        tr_free(*(char **)at);
        *(char **)at = copy;
        return TR_OK;
    case CFG_BOOL:
        if (tr_toml_type_of(node) != TR_TOML_BOOL)
            return cfg_fail(ctx, node, key, "expected a boolean (true or false), got %s",
                            type_name(node));
        *(bool *)at = tr_toml_bool(node);
        return TR_OK;
    case CFG_INT:
    case CFG_FLOAT:
        return load_number(ctx, node, key, field, at);
    case CFG_DURATION:
        return load_duration(ctx, node, key, field, (uint64_t *)at);
    case CFG_ENUM:
        join_names(field->names, names, sizeof(names));
        if (tr_toml_type_of(node) != TR_TOML_STRING)
            return cfg_fail(ctx, node, key, "expected a string (one of: %s), got %s", names,
                            type_name(node));
        rc = get_string(ctx, node, key, &s);
        if (rc < 0)
            return rc;
        index = name_index(field->names, s);
        if (index < 0)
            return cfg_fail(ctx, node, key, "\"%.64s\" is not one of: %s", s, names);
        *(int *)at = index;
        return TR_OK;
    case CFG_FLAGS:
        return load_flags(ctx, node, key, field, (unsigned *)at);
    case CFG_LIST:
        return load_list(ctx, node, key, (tr_config_strlist *)at);
    case CFG_HEADERS:
        return load_headers(ctx, node, key, field, (tr_config_headers *)at);
    }
    return cfg_fail(ctx, node, key, "unsupported key");
}

const char *cfg_key_at(const tr_toml_value *table, size_t i)
{
    size_t len = 0;
    const char *key = tr_toml_key_at_len(table, i, &len);

    /* a quoted key may hold "\u0000"; cut there it could pass for a real key */
    return key != NULL && strlen(key) == len ? key : "<key with a NUL character>";
}

int cfg_field_index(const cfg_field *fields, size_t count, const char *key)
{
    size_t i;

    for (i = 0; i < count; i++)
        if (strcmp(fields[i].key, key) == 0)
            return (int)i;
    return -1;
}

static bool looks_secret(const char *key)
{
    static const char *const words[] = {"password", "passwd", "secret", "token", "api_key",
                                        "apikey", "private_key", "credential", NULL};
    size_t i;

    for (i = 0; words[i] != NULL; i++)
        if (strcasestr(key, words[i]) != NULL)
            return true;
    return false;
}

static int unknown_key(load_ctx *ctx, const tr_toml_value *node, const char *prefix,
                       const char *name, const cfg_field *fields, size_t count)
{
    char key[CFG_KEY_MAX], env_key[CFG_KEY_MAX], file_key[CFG_KEY_MAX];
    bool has_env, has_file;

    (void)snprintf(key, sizeof(key), "%s.%s", prefix, name);
    (void)snprintf(env_key, sizeof(env_key), "%s_env", name);
    (void)snprintf(file_key, sizeof(file_key), "%s_file", name);
    has_env = cfg_field_index(fields, count, env_key) >= 0;
    has_file = cfg_field_index(fields, count, file_key) >= 0;
    if (has_env && has_file)
        return cfg_fail(ctx, node, key,
                        "secrets are not read from the config file; use %s.%s or %s.%s", prefix,
                        env_key, prefix, file_key);
    if (has_env || has_file)
        return cfg_fail(ctx, node, key, "secrets are not read from the config file; use %s.%s",
                        prefix, has_env ? env_key : file_key);
    if (looks_secret(name))
        return cfg_fail(ctx, node, key,
                        "secrets are not read from the config file; put the value in an "
                        "environment variable or a file and name it with a *_env or *_file key");
    if (tr_toml_type_of(node) == TR_TOML_TABLE)
        return cfg_fail(ctx, node, key, "unknown table");
    return cfg_fail(ctx, node, key, "unknown key");
}

int cfg_load_fields(load_ctx *ctx, void *base, const cfg_field *fields, size_t count,
                       const tr_toml_value *table, const char *prefix, unsigned kind_bit,
                       const char *skip, uint64_t *seen)
{
    char key[CFG_KEY_MAX];
    const char *name;
    const tr_toml_value *node;
    size_t i;
    int index, rc;

    *seen = 0;
    for (i = 0; i < tr_toml_count(table); i++) {
        name = cfg_key_at(table, i);
        node = tr_toml_at(table, i);
        if (skip != NULL && strcmp(name, skip) == 0)
            continue;
        index = cfg_field_index(fields, count, name);
        if (index < 0)
            return unknown_key(ctx, node, prefix, name, fields, count);
        (void)snprintf(key, sizeof(key), "%s.%s", prefix, name);
        if (kind_bit != 0 && fields[index].kinds != 0 && !(fields[index].kinds & kind_bit))
            return cfg_fail(ctx, node, key, "is not used by kind = \"%s\"",
                            cfg_notify_kind_names[__builtin_ctz(kind_bit)]);
        rc = cfg_load_value(ctx, node, key, &fields[index], (char *)base + fields[index].offset);
        if (rc < 0)
            return rc;
        *seen |= (uint64_t)1 << index;
    }
    return TR_OK;
}

bool cfg_was_seen(uint64_t seen, const cfg_field *fields, size_t count, const char *key)
{
    int index = cfg_field_index(fields, count, key);

    return index >= 0 && (seen & ((uint64_t)1 << index)) != 0;
}

const tr_toml_value *cfg_node_or_table(const tr_toml_value *table, const char *key)
{
    const tr_toml_value *node = table != NULL ? tr_toml_get(table, key) : NULL;

    return node != NULL ? node : table;
}
