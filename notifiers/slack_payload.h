/*
 * slack_payload.h - what Slack sends to /hooks/slack/actions: the request
 * signature check and the block_actions payload parser (PROTOCOLS.md §3.3,
 * §3.4). Pure functions over bytes, so the fuzzer can reach them.
 */
#ifndef TR_SLACK_PAYLOAD_H
#define TR_SLACK_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Requests older or newer than this are refused (replays of captured requests). */
#define TR_SLACK_MAX_SKEW_S 300

/*
 * Check X-Slack-Signature against "v0=" + hex(HMAC-SHA256(secret,
 * "v0:" + timestamp + ":" + body)) in constant time, and that the
 * X-Slack-Request-Timestamp is within TR_SLACK_MAX_SKEW_S of now_s.
 * Returns 0 or TR_EAUTH with err saying which check failed (never the
 * secret nor the expected signature).
 */
int tr_slack_verify(const char *secret, const char *timestamp, const char *signature,
                    const char *body, size_t len, int64_t now_s, tr_error *err);

/* One button click. Strings are owned by the struct ("" when absent, never NULL). */
typedef struct tr_slack_action {
    char *type;         /* "block_actions", ... */
    char *user_id;
    char *user_name;
    char *action_id;    /* of the first action */
    char *value;
    char *response_url;
    char *channel_id;
    char *message_ts;
} tr_slack_action;

#define TR_SLACK_FIELD_MAX 4096 /* longer fields are refused as malformed */

/*
 * Parse an application/x-www-form-urlencoded body holding payload=<JSON>.
 * TR_EPARSE when the form, the JSON or a required field (type, user.id,
 * actions[0].action_id) is missing or malformed, with the reason in err.
 * On success *out is owned by the caller (tr_slack_action_free).
 */
int tr_slack_action_parse(tr_slack_action **out, const char *body, size_t len, tr_error *err);
void tr_slack_action_free(tr_slack_action *action);

#endif
