/*
 * store_state.c - the incident state machine: state names as stored and as
 * shown to users (the HTTP API's ?state=), and which transitions are allowed.
 * Changing the table changes what the pipeline may do: keep store.h's comment
 * in step.
 */
#include "store_internal.h"

#include <string.h>

static const char *const state_names[TR_INCIDENT_STATE_COUNT] = {
    [TR_INCIDENT_NONE] = NULL,
    [TR_INCIDENT_OPEN] = "open",
    [TR_INCIDENT_TRIAGED] = "triaged",
    [TR_INCIDENT_ANALYZED] = "analyzed",
    [TR_INCIDENT_NOTIFIED] = "notified",
    [TR_INCIDENT_PATCH_PROPOSED] = "patch_proposed",
    [TR_INCIDENT_ACCEPTED] = "accepted",
    [TR_INCIDENT_PR_OPEN] = "pr_open",
    [TR_INCIDENT_PR_MERGED] = "pr_merged",
    [TR_INCIDENT_PR_CLOSED] = "pr_closed",
    [TR_INCIDENT_RESOLVED] = "resolved",
    [TR_INCIDENT_REJECTED] = "rejected",
    [TR_INCIDENT_FAILED] = "failed",
};

#define S(state) (1u << (state))
/* Every active state may fail, be rejected, or turn out resolved. */
#define ENDINGS (S(TR_INCIDENT_FAILED) | S(TR_INCIDENT_REJECTED) | S(TR_INCIDENT_RESOLVED))

static const unsigned allowed_next[TR_INCIDENT_STATE_COUNT] = {
    [TR_INCIDENT_OPEN] = S(TR_INCIDENT_TRIAGED) | S(TR_INCIDENT_ANALYZED) | ENDINGS,
    [TR_INCIDENT_TRIAGED] = S(TR_INCIDENT_ANALYZED) | ENDINGS,
    [TR_INCIDENT_ANALYZED] = S(TR_INCIDENT_NOTIFIED) | S(TR_INCIDENT_PATCH_PROPOSED) | ENDINGS,
    [TR_INCIDENT_NOTIFIED] = S(TR_INCIDENT_PATCH_PROPOSED) | ENDINGS,
    [TR_INCIDENT_PATCH_PROPOSED] = S(TR_INCIDENT_ACCEPTED) | ENDINGS,
    [TR_INCIDENT_ACCEPTED] = S(TR_INCIDENT_PR_OPEN) | ENDINGS,
    [TR_INCIDENT_PR_OPEN] = S(TR_INCIDENT_PR_MERGED) | S(TR_INCIDENT_PR_CLOSED) | ENDINGS,
    [TR_INCIDENT_PR_MERGED] = ENDINGS,
    [TR_INCIDENT_PR_CLOSED] = S(TR_INCIDENT_PATCH_PROPOSED) | ENDINGS,
    [TR_INCIDENT_RESOLVED] = S(TR_INCIDENT_OPEN),
    [TR_INCIDENT_REJECTED] = S(TR_INCIDENT_RESOLVED),
    [TR_INCIDENT_FAILED] = S(TR_INCIDENT_OPEN) | S(TR_INCIDENT_RESOLVED),
};

int store_state_valid(int state)
{
    return state > TR_INCIDENT_NONE && state < TR_INCIDENT_STATE_COUNT;
}

const char *tr_store_state_name(int state)
{
    return store_state_valid(state) ? state_names[state] : NULL;
}

int tr_store_state_parse(const char *name)
{
    int state;

    if (name == NULL)
        return TR_INCIDENT_NONE;
    for (state = TR_INCIDENT_OPEN; state < TR_INCIDENT_STATE_COUNT; state++)
        if (strcmp(state_names[state], name) == 0)
            return state;
    return TR_INCIDENT_NONE;
}

/* For messages: never NULL, so a state the database should not hold still prints. */
const char *store_state_label(int state)
{
    return store_state_valid(state) ? state_names[state] : "in an unknown state";
}

int tr_store_state_allowed(int from, int to)
{
    if (!store_state_valid(from) || !store_state_valid(to))
        return 0;
    return (allowed_next[from] & S(to)) != 0;
}

