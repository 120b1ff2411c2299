/*
 * evidence.h - the evidence bundle of an incident: what the analysis reads
 * and what is stored as the incident's triage record. Built from the
 * incident row and its facts (docs/incident-facts.md), redacted
 * (daemon/redact.h), and fitted to a token budget estimated as chars/4:
 * when too big, the longest texts are cut first (logs and provisioner output
 * keep their tail, other texts their head) and long arrays lose their
 * oldest entries, so identity, failure class and the key facts always
 * survive. Pure functions; the caller owns what is returned.
 *
 * Gathered evidence (Kubernetes: watchers/kube_evidence.h) comes in as one
 * JSON object of sections and sits under "kubernetes" in the bundle. It is
 * fitted before the facts are touched, lowest value first: a whole section
 * is shrunk and then dropped before the next one is cut (order in
 * TR_EVIDENCE_SECTIONS), so the last termination and the previous logs are
 * the last to go. A "source" section (llm/source.h: the GitOps file, lines
 * and history) is lifted to the top level of the bundle, for Terraform
 * incidents too, and fitted in the same order.
 */
#ifndef TR_LLM_EVIDENCE_H
#define TR_LLM_EVIDENCE_H

#include <stdint.h>

#include "error.h"
#include "store.h"

/* Smallest budget honoured; below it the bundle keeps only identity and class. */
#define TR_EVIDENCE_MIN_TOKENS 256

/*
 * The sections of gathered evidence, highest value first. Fitting drops
 * from the end of this list.
 */
#define TR_EVIDENCE_SECTIONS                                                                   \
    "last_termination", "source", "previous_logs", "events", "object", "pods", "node", "current_logs"
/* Sections not in the list (e.g. "not_collected") are small and kept to the end. */

/*
 * Where extra evidence comes from (the analysis stage calls it before it
 * builds a bundle; the daemon passes one backed by watchers/kube_evidence.h).
 * gather starts collecting for incident (borrowed until done runs or the
 * gathering is cancelled) and returns 0 with *handle set: done then runs
 * exactly once, later, from the loop, with rc TR_OK and the evidence JSON
 * (borrowed for the call; partial evidence is TR_OK) or an error code and
 * NULL (TR_ECANCELLED: the provider is shutting down; the incident is left
 * for the next start). On failure done never runs. cancel stops a
 * gathering: done never runs for it.
 */
typedef void (*tr_evidence_done_cb)(int rc, const char *evidence_json, void *token);
typedef struct tr_evidence_provider {
    int (*gather)(void *userdata, const tr_store_incident *incident, tr_evidence_done_cb done,
                  void *token, void **handle);
    void (*cancel)(void *userdata, void *handle);
    void *userdata;
} tr_evidence_provider;

/*
 * Build the bundle of incident as pretty JSON. *out is owned by the caller
 * (tr_free); *token_estimate (may be NULL) is its size / 4. *redactions (may
 * be NULL) is how many secrets were masked. Returns 0 or TR_ENOMEM.
 */
int tr_evidence_bundle(const tr_store_incident *incident, int64_t token_budget, char **out,
                       int64_t *token_estimate, size_t *redactions, tr_error *err);

/*
 * Same with gathered evidence: gathered_json (may be NULL) is a JSON object
 * of sections (TR_EVIDENCE_SECTIONS); it is redacted again and fitted first.
 * Text that is not a JSON object is kept as a string (and fitted as one).
 */
int tr_evidence_bundle_ex(const tr_store_incident *incident, const char *gathered_json,
                          int64_t token_budget, char **out, int64_t *token_estimate,
                          size_t *redactions, tr_error *err);

/* chars/4, rounded up: the estimate used for budgets. */
int64_t tr_evidence_tokens(size_t chars);

#endif
