/*
 * rules.h - the rule-based analysis: a specific summary, root cause,
 * severity, remediation steps and confidence for every failure class of
 * docs/incident-facts.md, computed from the incident row and its facts
 * alone. It is what an incident gets when provider = "none", when the LLM
 * budget is spent, when the circuit breaker is open, or when the LLM failed
 * or answered garbage twice. It never proposes a patch.
 */
#ifndef TR_LLM_RULES_H
#define TR_LLM_RULES_H

#include "error.h"
#include "reply.h"
#include "store.h"

/*
 * Analyse incident (failure_class, facts_json, namespace, kind, name,
 * observation_count, message are read). On success *out is owned by the
 * caller (tr_llm_reply_free); its patch is "". Unknown classes get a
 * generic analysis with low confidence, not an error. Returns 0 or
 * TR_ENOMEM.
 */
int tr_rules_analyze(const tr_store_incident *incident, tr_llm_reply **out, tr_error *err);

#endif
