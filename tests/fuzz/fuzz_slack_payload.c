/*
 * fuzz_slack_payload.c - libFuzzer target for notifiers/slack_payload.c: arbitrary bytes as
 * the form body of a Slack interaction (payload=<url-encoded JSON>), parsed; and the same
 * bytes run through the signature check with a timestamp and signature taken from the
 * input, so the header parsing paths are reached too.
 */
#include "notifiers/slack_payload.h"

#include "alloc.h"
#include "error.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_slack_action *action = NULL;
    char *body = tr_strndup((const char *)data, size);
    char ts[16], sig[80];
    size_t n;
    tr_error err;

    if (body == NULL)
        return 0;
    if (tr_slack_action_parse(&action, body, size, &err) == 0) {
        /* every field is a string, never NULL */
        if (strlen(action->type) + strlen(action->user_id) + strlen(action->action_id) == 0)
            __builtin_trap();
        tr_slack_action_free(action);
    }
    n = size < sizeof(ts) - 1 ? size : sizeof(ts) - 1;
    memcpy(ts, data, n);
    ts[n] = '\0';
    n = size < sizeof(sig) - 1 ? size : sizeof(sig) - 1;
    memcpy(sig, data, n);
    sig[n] = '\0';
    (void)tr_slack_verify("secret", ts, sig, body, size, 1700000000, &err);
    (void)tr_slack_verify("secret", "1700000000", sig, body, size, 1700000000, &err);
    tr_free(body);
    return 0;
}
