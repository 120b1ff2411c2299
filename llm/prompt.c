/*
 * prompt.c - template files, placeholder checking and filling, SHA-256.
 */
#include "prompt.h"

#include "alloc.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

static const char *const file_names[TR_PROMPT_COUNT] = {
    "system.md", "kubernetes.md", "terraform.md", "chat.md",
};

/* Every placeholder the analysis stage fills; anything else is a typo. */
static const char *const known_vars[] = {
    "incident_id", "source", "cluster", "namespace", "kind", "name", "failure_class",
    "title", "message", "facts", "evidence", "observation_count", "first_seen", "last_seen",
    "schema", "question", "analysis",
};

struct tr_prompts {
    char *text[TR_PROMPT_COUNT];
    char hash[TR_PROMPT_COUNT][65];
};

void tr_prompt_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;

    hex[0] = '\0';
    if (EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL) != 1)
        return;
    for (unsigned int i = 0; i < digest_len && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

void tr_prompts_free(tr_prompts *prompts)
{
    if (prompts == NULL)
        return;
    for (int i = 0; i < TR_PROMPT_COUNT; i++)
        tr_free(prompts->text[i]);
    tr_free(prompts);
}

static int read_file(const char *path, char **out, tr_error *err)
{
    tr_buf buf = TR_BUF_INIT(TR_PROMPT_MAX_BYTES);
    char chunk[4096];
    size_t n;
    FILE *f = fopen(path, "rb");
    int rc = TR_OK;

    if (f == NULL)
        return tr_error_set(err, TR_ECONFIG, "prompts: %s: %s (llm.prompts_dir)", path,
                            strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = tr_buf_put(&buf, chunk, n);
        if (rc == TR_ETOOBIG) {
            rc = tr_error_set(err, TR_ECONFIG, "prompts: %s: larger than %zu bytes", path,
                              TR_PROMPT_MAX_BYTES);
            break;
        }
        if (rc != TR_OK) {
            rc = tr_error_set(err, rc, "prompts: %s: out of memory", path);
            break;
        }
    }
    if (rc == TR_OK && ferror(f))
        rc = tr_error_set(err, TR_ECONFIG, "prompts: %s: read error", path);
    if (rc == TR_OK && buf.len == 0)
        rc = tr_error_set(err, TR_ECONFIG, "prompts: %s: empty template", path);
    if (rc == TR_OK && memchr(buf.ptr, '\0', buf.len) != NULL)
        rc = tr_error_set(err, TR_ECONFIG, "prompts: %s: holds a NUL byte", path);
    fclose(f);
    if (rc == TR_OK)
        *out = tr_buf_detach(&buf);
    tr_buf_dispose(&buf);
    return rc;
}

static int known_var(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(known_vars) / sizeof(known_vars[0]); i++)
        if (strlen(known_vars[i]) == len && memcmp(known_vars[i], name, len) == 0)
            return 1;
    return 0;
}

static int check_placeholders(const char *path, const char *text, tr_error *err)
{
    const char *p = text;
    int line = 1;

    for (; *p; p++) {
        const char *close;

        if (*p == '\n')
            line++;
        if (p[0] != '{' || p[1] != '{')
            continue;
        close = strstr(p + 2, "}}");
        if (close == NULL || !known_var(p + 2, (size_t)(close - p - 2)))
            return tr_error_set(err, TR_ECONFIG, "prompts: %s:%d: unknown placeholder %.40s",
                                path, line, p);
        p = close + 1;
    }
    return TR_OK;
}

int tr_prompts_load(tr_prompts **out, const char *dir, tr_error *err)
{
    tr_prompts *p;
    tr_buf path = TR_BUF_INIT(4096);
    int rc = TR_OK;

    *out = NULL;
    if (dir == NULL || dir[0] == '\0')
        return tr_error_set(err, TR_ECONFIG, "prompts: llm.prompts_dir is empty");
    p = tr_calloc(1, sizeof(*p));
    if (p == NULL)
        return tr_error_set(err, TR_ENOMEM, "prompts: out of memory");
    for (int i = 0; i < TR_PROMPT_COUNT && rc == TR_OK; i++) {
        tr_buf_clear(&path);
        if (tr_buf_printf(&path, "%s/%s", dir, file_names[i]) != TR_OK) {
            rc = tr_error_set(err, TR_ECONFIG, "prompts: directory name too long");
            break;
        }
        rc = read_file(tr_buf_cstr(&path), &p->text[i], err);
        if (rc == TR_OK)
            rc = check_placeholders(tr_buf_cstr(&path), p->text[i], err);
    }
    for (int i = 0; i < TR_PROMPT_COUNT && rc == TR_OK; i++) {
        tr_buf both = TR_BUF_INIT(0);

        if (i == TR_PROMPT_SYSTEM) {
            tr_prompt_sha256_hex(p->text[i], strlen(p->text[i]), p->hash[i]);
            continue;
        }
        if (tr_buf_puts(&both, p->text[TR_PROMPT_SYSTEM]) != TR_OK ||
            tr_buf_put(&both, "", 1) != TR_OK || tr_buf_puts(&both, p->text[i]) != TR_OK)
            rc = tr_error_set(err, TR_ENOMEM, "prompts: out of memory");
        else
            tr_prompt_sha256_hex(both.ptr, both.len, p->hash[i]);
        tr_buf_dispose(&both);
    }
    tr_buf_dispose(&path);
    if (rc != TR_OK) {
        tr_prompts_free(p);
        return rc;
    }
    *out = p;
    return TR_OK;
}

const char *tr_prompts_text(const tr_prompts *prompts, tr_prompt_kind kind)
{
    return kind < TR_PROMPT_COUNT ? prompts->text[kind] : "";
}

const char *tr_prompts_hash(const tr_prompts *prompts, tr_prompt_kind kind)
{
    return kind < TR_PROMPT_COUNT ? prompts->hash[kind] : "";
}

int tr_prompts_render(const tr_prompts *prompts, tr_prompt_kind kind, const tr_prompt_var *vars,
                      size_t var_count, tr_buf *out)
{
    const char *p = tr_prompts_text(prompts, kind), *open;
    int rc;

    while ((open = strstr(p, "{{")) != NULL) {
        const char *close = strstr(open + 2, "}}");
        size_t name_len;

        if (close == NULL)
            break;
        if ((rc = tr_buf_put(out, p, (size_t)(open - p))) != TR_OK)
            return rc;
        name_len = (size_t)(close - open - 2);
        for (size_t i = 0; i < var_count; i++) {
            if (strlen(vars[i].name) == name_len && memcmp(vars[i].name, open + 2, name_len) == 0) {
                if (vars[i].value && (rc = tr_buf_puts(out, vars[i].value)) != TR_OK)
                    return rc;
                break;
            }
        }
        p = close + 2;
    }
    return tr_buf_puts(out, p);
}
