/*
 * evidence.h - the evidence bundle of an incident: what the analysis reads
 * and what is stored as the incident's triage record. Built from the
 * incident row and its facts (docs/incident-facts.md), redacted
 * (daemon/redact.h), and fitted to a token budget estimated as chars/4:
 * when too big, the longest texts are cut first (logs and provisioner output
 * keep their tail, other texts their head) and long arrays lose their
 * oldest entries, so identity, failure class and the key facts always
 * survive. Pure functions; the caller owns what is returned.
 */
#ifndef TR_LLM_EVIDENCE_H
#define TR_LLM_EVIDENCE_H

#include <stdint.h>

#include "error.h"
#include "store.h"

/* Smallest budget honoured; below it the bundle keeps only identity and class. */
#define TR_EVIDENCE_MIN_TOKENS 256

/*
 * Build the bundle of incident as pretty JSON. *out is owned by the caller
 * (tr_free); *token_estimate (may be NULL) is its size / 4. *redactions (may
 * be NULL) is how many secrets were masked. Returns 0 or TR_ENOMEM.
 */
int tr_evidence_bundle(const tr_store_incident *incident, int64_t token_budget, char **out,
                       int64_t *token_estimate, size_t *redactions, tr_error *err);

/* chars/4, rounded up: the estimate used for budgets. */
int64_t tr_evidence_tokens(size_t chars);

#endif
