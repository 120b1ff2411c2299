/*
 * rules_internal.h - what rules.c and rules_kube.c share and nobody else
 * sees: the context a rule fills (summary, root cause, steps, evidence) and
 * the helpers rules write it with. rules.c owns the helpers, the Terraform
 * and generic rules and tr_rules_analyze; rules_kube.c owns the Kubernetes
 * rules.
 */
#ifndef TR_RULES_INTERNAL_H
#define TR_RULES_INTERNAL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "rules.h"

#define TEXT_MAX 8192

typedef struct rule_ctx {
    const tr_store_incident *inc;
    const cJSON *facts;
    char object[512]; /* "shop/checkout" */
    tr_buf summary;
    tr_buf root;
    tr_buf steps;    /* JSON array under construction */
    tr_buf evidence; /* JSON array under construction */
    size_t step_count;
    size_t evidence_count;
    const char *severity;
    double confidence;
    int rc;
} rule_ctx;

typedef void (*rules_fn)(rule_ctx *c);

/* The Kubernetes rule for a failure class; NULL when it is not one of them. */
rules_fn rules_kube_find(const char *cls);

/* A string fact, NULL when absent or empty; borrowed from c->facts. */
const char *rules_fs(const rule_ctx *c, const char *name);

/* A fact as text whatever its JSON type ("137", "64Mi"), written to tmp for
 * numbers; NULL when absent. */
const char *rules_fv(const rule_ctx *c, const char *name, char *tmp, size_t size);

/* An integer fact (number or numeric string); 1 when found. */
int rules_fi(const rule_ctx *c, const char *name, long long *out);

/* 1 when text (may be NULL) contains needle, ignoring case. */
int rules_has(const char *text, const char *needle);

/* Append to b; a failure is kept in c->rc and later calls do nothing. */
void rules_put(rule_ctx *c, tr_buf *b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Add a remediation step / an evidence line (JSON-escaped into the array). */
void rules_step(rule_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rules_quote(rule_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Evidence: the listed facts (NULL-terminated) as "name: value", as recorded. */
void rules_quote_facts(rule_ctx *c, const char *const *names);

/* The incident's namespace, "default" when it has none (borrowed). */
const char *rules_ns(const rule_ctx *c);

/* "container app of shop/checkout" (or the object) written to out; returns out. */
const char *rules_container_phrase(const rule_ctx *c, char *out, size_t size);

/* What an exit code usually means, as a sentence (static string). */
const char *rules_exit_meaning(long long code);

#endif
