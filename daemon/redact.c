/*
 * redact.c - secret masking: contexts and their numbering, the text scan,
 * and the JSON and YAML walks. The detectors are in redact_rules.c.
 *
 * The scan goes left to right: at each position the rules are tried and the
 * first that matches replaces its span with the context's placeholder for
 * that value. Positions where no rule can start (inside words, most
 * punctuation) are skipped and only the rules whose first byte fits are
 * tried (redact_rules.c's dispatch table): the same result as trying every
 * rule at every byte (rd_redact_text_reference, which the fuzz target
 * compares against), about 10x faster on logs. Placeholders already in the input are skipped whole and their
 * numbers reserved before anything is numbered (a prescan), so a value
 * first seen here never takes a number the text already uses for another.
 */
#include "redact.h"
#include "redact_internal.h"

#include "alloc.h"
#include "error.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PLACEHOLDER_MAX 32

typedef struct slot {
    uint64_t hash; /* FNV-1a of the value: the value itself is not kept */
    size_t len;
    unsigned long number; /* 0: empty */
} slot;

struct tr_redact_ctx {
    double entropy;
    unsigned long next;
    slot *slots;
    size_t cap, used;
    tr_redact_stats stats;
};

static const char *const kind_names[TR_REDACT_KIND_COUNT] = {
    "password", "token", "secret", "authorization", "jwt", "aws_access_key", "aws_secret_key",
    "gcp_api_key", "gcp_service_account", "azure", "slack", "github", "gitlab", "stripe",
    "openai", "private_key", "url_credentials", "high_entropy", "k8s_secret_data",
};

const char *tr_redact_kind_name(tr_redact_kind kind)
{
    return (unsigned)kind < TR_REDACT_KIND_COUNT ? kind_names[kind] : "unknown";
}

static void ctx_init(tr_redact_ctx *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->entropy = TR_REDACT_ENTROPY_DEFAULT;
    ctx->next = 1;
}

static void ctx_dispose(tr_redact_ctx *ctx)
{
    tr_free(ctx->slots);
    ctx->slots = NULL;
}

tr_redact_ctx *tr_redact_ctx_new(void)
{
    tr_redact_ctx *ctx = tr_malloc(sizeof(*ctx));

    if (ctx != NULL)
        ctx_init(ctx);
    return ctx;
}

void tr_redact_ctx_free(tr_redact_ctx *ctx)
{
    if (ctx == NULL)
        return;
    ctx_dispose(ctx);
    tr_free(ctx);
}

void tr_redact_ctx_set_entropy(tr_redact_ctx *ctx, double bits_per_char)
{
    if (ctx != NULL)
        ctx->entropy = bits_per_char > 0 ? bits_per_char : TR_REDACT_ENTROPY_DEFAULT;
}

const tr_redact_stats *tr_redact_ctx_stats(const tr_redact_ctx *ctx)
{
    return &ctx->stats;
}

static void reserve(tr_redact_ctx *ctx, unsigned long number)
{
    if (number >= ctx->next)
        ctx->next = number + 1;
}

static uint64_t fnv1a(const char *p, size_t len)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int grow(tr_redact_ctx *ctx)
{
    size_t cap = ctx->cap ? ctx->cap * 2 : 64;
    slot *slots = tr_calloc(cap, sizeof(*slots));

    if (slots == NULL)
        return TR_ENOMEM;
    for (size_t i = 0; i < ctx->cap; i++) {
        size_t k;

        if (ctx->slots[i].number == 0)
            continue;
        for (k = ctx->slots[i].hash & (cap - 1); slots[k].number; k = (k + 1) & (cap - 1))
            ;
        slots[k] = ctx->slots[i];
    }
    tr_free(ctx->slots);
    ctx->slots = slots;
    ctx->cap = cap;
    return TR_OK;
}

/* The number of value (same value, same number); 0 when out of memory. */
static unsigned long number_for(tr_redact_ctx *ctx, const char *value, size_t len)
{
    uint64_t h = fnv1a(value, len);
    size_t k;

    if (ctx->used >= TR_REDACT_CTX_MAX_VALUES) {
        for (k = 0; k < ctx->cap; k++) /* full: known values keep their number */
            if (ctx->slots[k].number && ctx->slots[k].hash == h && ctx->slots[k].len == len)
                return ctx->slots[k].number;
        ctx->stats.distinct++;
        return ctx->next++;
    }
    if ((ctx->used + 1) * 2 > ctx->cap && grow(ctx) != TR_OK)
        return 0;
    for (k = h & (ctx->cap - 1); ctx->slots[k].number; k = (k + 1) & (ctx->cap - 1))
        if (ctx->slots[k].hash == h && ctx->slots[k].len == len)
            return ctx->slots[k].number;
    ctx->slots[k] = (slot){ h, len, ctx->next++ };
    ctx->used++;
    ctx->stats.distinct++;
    return ctx->slots[k].number;
}

/* "<redacted:N>" for value into text (PLACEHOLDER_MAX bytes); counts it. */
static int placeholder(tr_redact_ctx *ctx, const char *value, size_t len, tr_redact_kind kind,
                       char *text)
{
    unsigned long n = number_for(ctx, value, len);

    if (n == 0)
        return TR_ENOMEM;
    snprintf(text, PLACEHOLDER_MAX, "<redacted:%lu>", n);
    ctx->stats.total++;
    ctx->stats.by_kind[kind]++;
    return TR_OK;
}

static void prescan(tr_redact_ctx *ctx, const char *in, size_t len)
{
    const char *p = in, *end = in + len;
    unsigned long number;
    size_t stop;

    while (p < end && (p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        if (rd_placeholder_at(in, len, (size_t)(p - in), &stop, &number))
            reserve(ctx, number);
        p++;
    }
}

/* reference: every rule at every byte (rd_redact_text_reference), else skip and dispatch. */
static int scan_with(tr_redact_ctx *ctx, tr_buf *out, const char *in, size_t len, int reference)
{
    size_t i = 0, copied = 0, stop, fresh = SIZE_MAX;
    unsigned long number;
    char text[PLACEHOLDER_MAX];
    rd_match m;
    int rc, found;

    while (i < len) {
        if (!reference && (i = rd_next_start(in, len, i, i == fresh)) >= len)
            break;
        if ((in[i] == '<' || in[i] == '[') && rd_placeholder_at(in, len, i, &stop, &number)) {
            fresh = i = stop;
            continue;
        }
        found = reference ? rd_match_at_every_rule(in, len, i, ctx->entropy, i == fresh, &m)
                          : rd_match_at(in, len, i, ctx->entropy, i == fresh, &m);
        if (!found) {
            i++;
            continue;
        }
        if (rd_placeholder_at(in, len, m.start, &stop, &number)) {
            /* Masked before (the value of `password=<redacted:1>`): the scan goes on after
             * the placeholder, as it did after masking it, so a second pass is a no-op. */
            fresh = i = stop;
            continue;
        }
        if ((rc = tr_buf_put(out, in + copied, m.start - copied)) != TR_OK ||
            (rc = placeholder(ctx, in + m.start, m.end - m.start, m.kind, text)) != TR_OK ||
            (rc = tr_buf_puts(out, text)) != TR_OK)
            return rc;
        copied = i = fresh = m.end > i ? m.end : i + 1;
    }
    return tr_buf_put(out, in + copied, len - copied);
}

static int scan(tr_redact_ctx *ctx, tr_buf *out, const char *in, size_t len)
{
    return scan_with(ctx, out, in, len, 0);
}

int rd_redact_text_reference(tr_redact_ctx *ctx, tr_buf *out, const char *in, size_t len)
{
    if (in == NULL)
        return TR_OK;
    prescan(ctx, in, len);
    return scan_with(ctx, out, in, len, 1);
}

int tr_redact_text_ctx(tr_redact_ctx *ctx, tr_buf *out, const char *in, size_t len)
{
    if (in == NULL)
        return TR_OK;
    prescan(ctx, in, len);
    return scan(ctx, out, in, len);
}

char *tr_redact_dup_ctx(tr_redact_ctx *ctx, const char *in)
{
    tr_buf out = TR_BUF_INIT(0);

    if (in == NULL)
        return NULL;
    if (tr_redact_text_ctx(ctx, &out, in, strlen(in)) != TR_OK ||
        tr_buf_put(&out, "", 0) != TR_OK) {
        tr_buf_dispose(&out);
        return NULL;
    }
    return tr_buf_detach(&out);
}

int tr_redact_has_placeholder(const char *text, size_t len)
{
    /* Loose on purpose: a model that mangles `<redacted:3>` into `<redacted:token>` still
     * must not get it written into a file. */
    static const char *const marks[] = {"<redacted:", "[REDACTED"};

    for (size_t m = 0; text != NULL && m < 2; m++)
        if (memmem(text, len, marks[m], strlen(marks[m])) != NULL)
            return 1;
    return 0;
}

/* ------------------------------------------------------------ old API */

int tr_redact_text(tr_buf *out, const char *in, size_t len, size_t *count)
{
    tr_redact_ctx ctx;
    int rc;

    ctx_init(&ctx);
    rc = tr_redact_text_ctx(&ctx, out, in, len);
    if (count)
        *count += ctx.stats.total;
    ctx_dispose(&ctx);
    return rc;
}

char *tr_redact_dup(const char *in, size_t *count)
{
    tr_redact_ctx ctx;
    char *out;

    ctx_init(&ctx);
    out = tr_redact_dup_ctx(&ctx, in);
    if (count && out)
        *count += ctx.stats.total;
    ctx_dispose(&ctx);
    return out;
}

int tr_redact_json(cJSON *node, size_t *count)
{
    tr_redact_ctx ctx;
    int rc;

    ctx_init(&ctx);
    rc = tr_redact_json_ctx(&ctx, node);
    if (count)
        *count += ctx.stats.total;
    ctx_dispose(&ctx);
    return rc;
}

/* ------------------------------------------------------------ JSON trees */

static int whole_placeholder(const char *s)
{
    unsigned long number;
    size_t stop, len = strlen(s);

    return rd_placeholder_at(s, len, 0, &stop, &number) && stop == len;
}

static int replace_scalar(tr_redact_ctx *ctx, cJSON *item, tr_redact_kind kind)
{
    char text[PLACEHOLDER_MAX], number[64];
    int rc;

    if (cJSON_IsString(item)) {
        if (item->valuestring == NULL || whole_placeholder(item->valuestring))
            return TR_OK;
        if ((rc = placeholder(ctx, item->valuestring, strlen(item->valuestring), kind,
                              text)) != TR_OK)
            return rc;
        return cJSON_SetValuestring(item, text) == NULL ? TR_ENOMEM : TR_OK;
    }
    if (cJSON_IsNumber(item)) {
        /* A numeric PIN is still a secret: turn it into the placeholder string. */
        char *copy;

        snprintf(number, sizeof(number), "%.17g", item->valuedouble);
        if ((rc = placeholder(ctx, number, strlen(number), kind, text)) != TR_OK)
            return rc;
        if ((copy = cJSON_malloc(strlen(text) + 1)) == NULL)
            return TR_ENOMEM;
        memcpy(copy, text, strlen(text) + 1);
        item->type = cJSON_String;
        item->valuestring = copy;
        item->valueint = 0;
        item->valuedouble = 0;
    }
    return TR_OK;
}

static int replace_all_scalars(tr_redact_ctx *ctx, cJSON *node, tr_redact_kind kind)
{
    cJSON *child;
    int rc;

    if (cJSON_IsString(node) || cJSON_IsNumber(node))
        return replace_scalar(ctx, node, kind);
    cJSON_ArrayForEach(child, node)
        if ((rc = replace_all_scalars(ctx, child, kind)) != TR_OK)
            return rc;
    return TR_OK;
}

static int redact_string_value(tr_redact_ctx *ctx, cJSON *item)
{
    tr_buf out = TR_BUF_INIT(0);
    size_t before = ctx->stats.total;
    int rc;

    if (item->valuestring == NULL)
        return TR_OK;
    rc = scan(ctx, &out, item->valuestring, strlen(item->valuestring));
    if (rc == TR_OK && ctx->stats.total > before &&
        cJSON_SetValuestring(item, tr_buf_cstr(&out)) == NULL)
        rc = TR_ENOMEM;
    tr_buf_dispose(&out);
    return rc;
}

static void prescan_tree(tr_redact_ctx *ctx, const cJSON *node)
{
    const cJSON *child;

    if (cJSON_IsString(node) && node->valuestring != NULL)
        prescan(ctx, node->valuestring, strlen(node->valuestring));
    cJSON_ArrayForEach(child, node)
        prescan_tree(ctx, child);
}

static int redact_tree(tr_redact_ctx *ctx, cJSON *node)
{
    cJSON *child, *name, *kind;
    int rc;

    if (cJSON_IsString(node))
        return redact_string_value(ctx, node);
    if (cJSON_IsObject(node)) {
        kind = cJSON_GetObjectItemCaseSensitive(node, "kind");
        if (cJSON_IsString(kind) && strcmp(kind->valuestring, "Secret") == 0) {
            if ((rc = replace_all_scalars(ctx, cJSON_GetObjectItemCaseSensitive(node, "data"),
                                          TR_REDACT_K8S_SECRET_DATA)) != TR_OK ||
                (rc = replace_all_scalars(ctx,
                                          cJSON_GetObjectItemCaseSensitive(node, "stringData"),
                                          TR_REDACT_K8S_SECRET_DATA)) != TR_OK)
                return rc;
        }
        name = cJSON_GetObjectItemCaseSensitive(node, "name");
        if (cJSON_IsString(name) &&
            tr_redact_name_is_secret(name->valuestring, strlen(name->valuestring)) &&
            (rc = replace_scalar(ctx, cJSON_GetObjectItemCaseSensitive(node, "value"),
                                 rd_kind_for_name(name->valuestring,
                                                  strlen(name->valuestring)))) != TR_OK)
            return rc;
    }
    cJSON_ArrayForEach(child, node)
    {
        if (cJSON_IsObject(node) && child->string != NULL &&
            (cJSON_IsString(child) || cJSON_IsNumber(child)) &&
            tr_redact_name_is_secret(child->string, strlen(child->string))) {
            rc = replace_scalar(ctx, child,
                                rd_kind_for_name(child->string, strlen(child->string)));
        } else {
            rc = redact_tree(ctx, child);
        }
        if (rc != TR_OK)
            return rc;
    }
    return TR_OK;
}

int tr_redact_json_ctx(tr_redact_ctx *ctx, cJSON *node)
{
    if (node == NULL)
        return TR_OK;
    prescan_tree(ctx, node);
    return redact_tree(ctx, node);
}

/* ------------------------------------------------------------ YAML */

typedef struct yline {
    const char *p;    /* the line, without its newline */
    size_t len;
    size_t indent;    /* spaces and "- " list markers */
    const char *body; /* after the indent */
    size_t body_len;
} yline;

static const char *next_line(const char *p, const char *end, yline *l)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));

    l->p = p;
    l->len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    l->indent = 0;
    while (l->indent < l->len && (p[l->indent] == ' ' ||
                                  (p[l->indent] == '-' && l->indent + 1 < l->len &&
                                   p[l->indent + 1] == ' ')))
        l->indent++;
    l->body = p + l->indent;
    l->body_len = l->len - l->indent;
    while (l->body_len > 0 && (l->body[l->body_len - 1] == '\r' || l->body[l->body_len - 1] == ' '))
        l->body_len--;
    return nl ? nl + 1 : end;
}

static int body_is(const yline *l, const char *text)
{
    return l->body_len == strlen(text) && memcmp(l->body, text, l->body_len) == 0;
}

static int doc_is_secret(const char *p, const char *end)
{
    yline l;

    while (p < end) {
        p = next_line(p, end, &l);
        if (body_is(&l, "kind: Secret") || body_is(&l, "kind: \"Secret\"") ||
            body_is(&l, "kind: 'Secret'"))
            return 1;
    }
    return 0;
}

/* Offset of a line's value after "key:" (0: no key), and whether it opens a block scalar. */
static size_t yaml_value_at(const yline *l, int *block_scalar)
{
    const char *colon = memchr(l->body, ':', l->body_len);
    size_t v;

    *block_scalar = 0;
    if (colon == NULL)
        return 0;
    v = (size_t)(colon - l->p) + 1;
    while (v < l->indent + l->body_len && l->p[v] == ' ')
        v++;
    *block_scalar = v < l->indent + l->body_len && (l->p[v] == '|' || l->p[v] == '>');
    return v;
}

static int put_masked(tr_redact_ctx *ctx, tr_buf *out, const char *value, size_t len)
{
    char text[PLACEHOLDER_MAX];
    int rc = placeholder(ctx, value, len, TR_REDACT_K8S_SECRET_DATA, text);

    return rc == TR_OK ? tr_buf_puts(out, text) : rc;
}

/* One kind: Secret document: data/stringData values masked whole, the rest scanned. */
static int redact_secret_doc(tr_redact_ctx *ctx, tr_buf *out, const char *p, const char *end)
{
    size_t data_indent = 0, value, body_end;
    int in_data = 0, block, rc = TR_OK;
    yline l;

    while (p < end && rc == TR_OK) {
        const char *next = next_line(p, end, &l);

        body_end = l.indent + l.body_len;
        if (in_data && l.body_len > 0 && l.indent <= data_indent)
            in_data = 0;
        if (!in_data) {
            in_data = (l.body_len >= 5 && memcmp(l.body, "data:", 5) == 0) ||
                      (l.body_len >= 11 && memcmp(l.body, "stringData:", 11) == 0);
            data_indent = l.indent;
            value = in_data ? yaml_value_at(&l, &block) : 0;
            if (in_data && value < body_end) { /* flow style: data: {a: b} */
                rc = tr_buf_put(out, l.p, value);
                if (rc == TR_OK)
                    rc = put_masked(ctx, out, l.p + value, body_end - value);
                if (rc == TR_OK)
                    rc = tr_buf_put(out, l.p + body_end, (size_t)(next - l.p) - body_end);
                in_data = 0;
            } else {
                rc = scan(ctx, out, l.p, (size_t)(next - l.p));
            }
            p = next;
            continue;
        }
        value = l.body_len ? yaml_value_at(&l, &block) : 0;
        if (l.body_len == 0 || (value == 0 && l.body_len == 0)) {
            rc = tr_buf_put(out, l.p, (size_t)(next - l.p));
        } else if (block || value >= body_end) {
            /* key: | (or key: with the value on the lines below): they are one value. */
            size_t key_indent = l.indent;
            const char *start = next, *q = next;
            yline c;

            while (q < end) {
                const char *after = next_line(q, end, &c);

                if (c.body_len > 0 && c.indent <= key_indent)
                    break;
                q = after;
            }
            while (value > 0 && l.p[value - 1] == ' ')
                value--;
            rc = tr_buf_put(out, l.p, value);
            if (rc == TR_OK && (q > start || block))
                rc = tr_buf_putc(out, ' ');
            if (rc == TR_OK && (q > start || block))
                rc = put_masked(ctx, out, start, (size_t)(q - start));
            if (rc == TR_OK)
                rc = tr_buf_putc(out, '\n');
            next = q;
        } else {
            size_t from = value ? value : l.indent;

            rc = tr_buf_put(out, l.p, from);
            if (rc == TR_OK)
                rc = put_masked(ctx, out, l.p + from, body_end - from);
            if (rc == TR_OK)
                rc = tr_buf_put(out, l.p + body_end, (size_t)(next - l.p) - body_end);
        }
        p = next;
    }
    return rc;
}

int tr_redact_yaml_ctx(tr_redact_ctx *ctx, tr_buf *out, const char *in, size_t len)
{
    const char *p = in, *end = in + len, *doc = in;
    int rc = TR_OK;
    yline l;

    if (in == NULL)
        return TR_OK;
    prescan(ctx, in, len);
    while (rc == TR_OK && doc < end) {
        /* A document ends before the next "---" line. */
        for (p = doc; p < end;) {
            const char *next = next_line(p, end, &l);

            if (p > doc && l.len >= 3 && memcmp(l.p, "---", 3) == 0)
                break;
            p = next;
        }
        rc = doc_is_secret(doc, p) ? redact_secret_doc(ctx, out, doc, p)
                                   : scan(ctx, out, doc, (size_t)(p - doc));
        doc = p;
    }
    return rc;
}
