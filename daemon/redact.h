/*
 * redact.h - secret masking applied to everything triaged stores or sends
 * outside the cluster (evidence bundles, LLM request bodies).
 *
 * Two kinds of rule, both replacing the secret with `[REDACTED:<kind>]`:
 *   - by name: the value of an assignment or env entry whose name looks
 *     secret (`*_KEY`, `*TOKEN*`, `*PASSWORD*`, `*SECRET*`, case-insensitive,
 *     plus passwd/pwd/credential/authorization): `DB_PASSWORD=x`,
 *     `"api_token": "x"`, `Authorization: Bearer x`, `{"name":"X_TOKEN",
 *     "value":"x"}`, a Secret's `data`/`stringData`;
 *   - by shape: JWTs, `sk-`/`sk_` API keys, AWS access key ids (`AKIA`,
 *     `ASIA`), GitHub tokens (`ghp_` ... `github_pat_`), Slack tokens
 *     (`xox[bpas]-`), PEM blocks, credentials inside URLs, `Bearer` tokens.
 *
 * The rules over-mask rather than under-mask: a false positive costs the
 * model one value, a false negative leaks a credential to a third party.
 * The module owns nothing; it is pure functions.
 */
#ifndef TR_REDACT_H
#define TR_REDACT_H

#include <stddef.h>

#include "buf.h"

struct cJSON;

/*
 * Append in[0..len) to out with secrets masked. *count (may be NULL) is
 * increased by the number of masked values. Returns 0, TR_ETOOBIG (out's
 * cap) or TR_ENOMEM; out may then hold a partial, still masked, prefix.
 */
int tr_redact_text(tr_buf *out, const char *in, size_t len, size_t *count);

/* Same into a new string the caller frees with tr_free; NULL when out of memory. */
char *tr_redact_dup(const char *in, size_t *count);

/* 1 when a variable or field name (len bytes) looks like it names a secret. */
int tr_redact_name_is_secret(const char *name, size_t len);

/*
 * Mask a cJSON tree in place: every string value goes through
 * tr_redact_text; values of object members whose names look secret, `value`
 * of `{"name": <secret name>, "value": ...}` entries (container env), and
 * everything under `data`/`stringData` of an object with `"kind":"Secret"`
 * are replaced whole. Returns 0 or TR_ENOMEM (the tree is then partly masked
 * and must not be used).
 */
int tr_redact_json(struct cJSON *node, size_t *count);

#endif
