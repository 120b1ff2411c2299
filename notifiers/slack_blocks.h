/*
 * slack_blocks.h - the Block Kit message for one notification: header with
 * severity and object, context, summary, root cause, key evidence,
 * remediation, proposed patch, links and (optionally) the action buttons.
 *
 * Slack refuses a whole message when one limit is exceeded
 * (`invalid_blocks`), so the builder never exceeds one: at most
 * TR_SLACK_MAX_BLOCKS blocks, header text TR_SLACK_HEADER_MAX characters,
 * every text object TR_SLACK_TEXT_MAX. Longer content is cut with a visible
 * note pointing at `triaged show ID`; the build never fails on content.
 */
#ifndef TR_SLACK_BLOCKS_H
#define TR_SLACK_BLOCKS_H

#include <cjson/cJSON.h>

#include "content.h"
#include "error.h"

#define TR_SLACK_MAX_BLOCKS 50
#define TR_SLACK_HEADER_MAX 150
#define TR_SLACK_TEXT_MAX 3000
#define TR_SLACK_FALLBACK_MAX 3000 /* the top-level `text` (notification preview) */

/* action_id values of the buttons; the value of each is the incident id. */
#define TR_SLACK_ACTION_ACCEPT "triaged_accept"
#define TR_SLACK_ACTION_REJECT "triaged_reject"
#define TR_SLACK_ACTION_EXPLAIN "triaged_explain"

/*
 * Build {"text": ..., "blocks": [...]} for msg. buttons adds the actions
 * block ("Open fix PR" and "Reject" when a patch is proposed, "Explain
 * more" always). *out is owned by the caller (cJSON_Delete). Fails only
 * with TR_ENOMEM.
 */
int tr_slack_blocks_build(cJSON **out, const tr_notify_message *msg, int buttons,
                          tr_error *err);

#endif
