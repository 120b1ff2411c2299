/*
 * redact.h - secret masking applied to everything triaged stores or sends
 * outside the cluster (evidence bundles, LLM request bodies, PR texts).
 *
 * A masked value becomes `<redacted:N>`. N is stable per distinct value
 * within one redaction context (tr_redact_ctx): the same password seen in a
 * log line and in a manifest gets the same N, so the model can still say
 * "the value in the log is the one in the env". One context per evidence
 * bundle or prompt. A context never reuses a number it has seen in its
 * input (text already masked upstream keeps its numbers, new values get
 * higher ones), so two different values never share a number even when
 * text passes through several contexts. Values are remembered as 64-bit
 * hashes, not copies.
 *
 * Rules (over-mask rather than under-mask: a false positive costs the model
 * one value, a false negative leaks a credential to a third party):
 *   - by name: the value of an assignment, env entry, header or JSON member
 *     whose name looks secret (`*_KEY`, `*TOKEN*`, `*PASSWORD*`, `*SECRET*`,
 *     passwd/pwd/credential/authorization, AccountKey, SharedAccessKey,
 *     SharedAccessSignature, SAS `sig`), in env, JSON, YAML, HCL, ini and
 *     query-string forms; a Secret's `data`/`stringData` (JSON and YAML);
 *   - by shape: JWTs; AWS key ids (AKIA/ASIA/...); GCP API keys (AIza);
 *     Slack tokens (xox?-, xapp-) and webhook URLs; GitHub (ghp_ gho_ ghu_
 *     ghs_ ghr_ github_pat_) and GitLab (glpat-) tokens; Stripe (sk_/rk_/
 *     pk_ live/test) and OpenAI (sk-, sk-proj-) keys; PEM blocks, also
 *     spread over several log lines; the password of `scheme://user:pw@host`;
 *     `Bearer`/`Basic` credentials;
 *   - by entropy: a run of >= 20 base64/base64url characters that mixes
 *     upper and lower case, is not made of words (mean length of its
 *     case/digit pieces < 3.4) and whose Shannon entropy reaches the
 *     threshold (TR_REDACT_ENTROPY_DEFAULT bits per char, lowered for short
 *     runs to what a random string of that length reaches). Kept on
 *     purpose: hex-only runs (sha256 digests, git SHAs) and UUIDs (they are
 *     identifiers triage needs: pod UIDs, request ids), lower-case names
 *     with hashes (pod `web-7d9c8b6f4-x2x9z`), paths and `Kind/name` refs.
 *     About 1% of random 20-char tokens look like words and survive this
 *     rule; longer ones almost never.
 *
 * Earlier versions wrote `[REDACTED:<kind>]`; that form is still recognised
 * (never masked again, found by tr_redact_has_placeholder).
 */
#ifndef TR_REDACT_H
#define TR_REDACT_H

#include <stddef.h>

#include "buf.h"

struct cJSON;

/* What a masked value was recognised as (audit counts). */
typedef enum tr_redact_kind {
    TR_REDACT_PASSWORD,        /* by name: *pass*, pwd */
    TR_REDACT_TOKEN,           /* by name: *token* */
    TR_REDACT_SECRET,          /* by name: other secret names (*_key, *secret*) */
    TR_REDACT_AUTHORIZATION,   /* Authorization header, Bearer/Basic credentials */
    TR_REDACT_JWT,
    TR_REDACT_AWS_ACCESS_KEY,  /* AKIA... key id */
    TR_REDACT_AWS_SECRET_KEY,  /* aws_secret_access_key value */
    TR_REDACT_GCP_API_KEY,     /* AIza... */
    TR_REDACT_GCP_SERVICE_ACCOUNT, /* private_key / private_key_id of a key file */
    TR_REDACT_AZURE,           /* AccountKey, SharedAccess*, SAS sig */
    TR_REDACT_SLACK,           /* tokens and webhook URLs */
    TR_REDACT_GITHUB,
    TR_REDACT_GITLAB,
    TR_REDACT_STRIPE,
    TR_REDACT_OPENAI,
    TR_REDACT_PRIVATE_KEY,     /* PEM block */
    TR_REDACT_URL_CREDENTIALS, /* user:password@ or token@ in a URL */
    TR_REDACT_HIGH_ENTROPY,
    TR_REDACT_K8S_SECRET_DATA, /* data/stringData of a kind: Secret */
    TR_REDACT_KIND_COUNT
} tr_redact_kind;

typedef struct tr_redact_stats {
    size_t total;                        /* values masked (each occurrence) */
    size_t by_kind[TR_REDACT_KIND_COUNT];
    size_t distinct;                     /* distinct placeholders handed out */
} tr_redact_stats;

/* Bits per character; see the top comment. */
#define TR_REDACT_ENTROPY_DEFAULT 3.5
/* Distinct values a context remembers; past it new values get fresh numbers. */
#define TR_REDACT_CTX_MAX_VALUES 4096

typedef struct tr_redact_ctx tr_redact_ctx;

/* A new context (caller frees with tr_redact_ctx_free); NULL when out of memory. */
tr_redact_ctx *tr_redact_ctx_new(void);
/* Forget every remembered value; NULL is fine. */
void tr_redact_ctx_free(tr_redact_ctx *ctx);
/* Entropy threshold in bits per char for later calls (<= 0: the default). */
void tr_redact_ctx_set_entropy(tr_redact_ctx *ctx, double bits_per_char);
/* What this context masked so far; borrowed, valid until the context is freed. */
const tr_redact_stats *tr_redact_ctx_stats(const tr_redact_ctx *ctx);
/* "password", "jwt", ... (stable names for audits and metrics). */
const char *tr_redact_kind_name(tr_redact_kind kind);

/*
 * Append in[0..len) to out with secrets masked, numbering through ctx.
 * Returns 0, TR_ETOOBIG (out's cap) or TR_ENOMEM; out may then hold a
 * partial, still masked, prefix.
 */
int tr_redact_text_ctx(tr_redact_ctx *ctx, tr_buf *out, const char *in, size_t len);

/*
 * Same for YAML text (manifest excerpts, `kubectl get -o yaml`): in a
 * document with `kind: Secret`, every value under `data:`/`stringData:` is
 * masked whole, block scalars included; the rest goes through the text
 * rules. Documents are split at `---` lines.
 */
int tr_redact_yaml_ctx(tr_redact_ctx *ctx, tr_buf *out, const char *in, size_t len);

/* NUL-terminated in, masked into a new string the caller frees with tr_free; NULL on ENOMEM. */
char *tr_redact_dup_ctx(tr_redact_ctx *ctx, const char *in);

/*
 * Mask a cJSON tree in place: every string value goes through the text
 * rules; values of object members whose names look secret, `value` of
 * `{"name": <secret name>, "value": ...}` entries (container env), and
 * every scalar under `data`/`stringData` of an object with `"kind":"Secret"`
 * are replaced whole. Returns 0 or TR_ENOMEM (the tree is then partly masked
 * and must not be used).
 */
int tr_redact_json_ctx(tr_redact_ctx *ctx, struct cJSON *node);

/*
 * The context-free forms: each call is its own context (numbers start at 1
 * above any placeholder already in the input). *count (may be NULL) is
 * increased by the number of masked values.
 */
int tr_redact_text(tr_buf *out, const char *in, size_t len, size_t *count);
char *tr_redact_dup(const char *in, size_t *count);
int tr_redact_json(struct cJSON *node, size_t *count);

/* 1 when a variable or field name (len bytes) looks like it names a secret. */
int tr_redact_name_is_secret(const char *name, size_t len);

/* 1 when text holds a placeholder (`<redacted:` or the old `[REDACTED`). */
int tr_redact_has_placeholder(const char *text, size_t len);

/* 1 when tok[0..len) would be masked by the entropy rule at threshold (<= 0: default). */
int tr_redact_is_high_entropy(const char *tok, size_t len, double bits_per_char);

#endif
