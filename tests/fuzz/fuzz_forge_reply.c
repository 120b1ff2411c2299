/*
 * fuzz_forge_reply.c - libFuzzer target for fixers/forge_reply.c: arbitrary
 * bytes as a forge reply, read as a PR, a PR list and an error body by each
 * of the three forges (the first byte picks the HTTP status for the
 * "already exists" check). Parsed PRs must have every string set.
 */
#include "fixers/forge_reply.h"

#include "alloc.h"
#include "error.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_pr(const tr_forge_pr *pr)
{
    if (pr->number < 1 || pr->html_url == NULL || pr->head_branch == NULL ||
        pr->merge_commit_sha == NULL || pr->etag == NULL)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const tr_config_forge_kind kinds[] = {TR_CONFIG_FORGE_GITHUB, TR_CONFIG_FORGE_GITLAB,
                                                 TR_CONFIG_FORGE_GITEA};
    static const long statuses[] = {409, 422, 401, 500};
    const char *body = (const char *)data;
    char msg[TR_FORGE_MESSAGE_MAX];
    tr_forge_pr pr;
    tr_error err;

    for (size_t k = 0; k < 3; k++) {
        if (tr_forge_parse_pr(kinds[k], body, size, &pr, &err) == TR_OK)
            check_pr(&pr);
        tr_forge_pr_clear(&pr);
        if (tr_forge_parse_pr_list(kinds[k], body, size, k == 1 ? NULL : "triaged/1", &pr,
                                   &err) == TR_OK)
            check_pr(&pr);
        tr_forge_pr_clear(&pr);
        (void)tr_forge_reply_is_duplicate(kinds[k], statuses[size ? data[0] % 4 : 0], body,
                                          size);
    }
    tr_forge_reply_message(body, size, msg, sizeof(msg));
    if (strlen(msg) >= sizeof(msg))
        __builtin_trap();
    return 0;
}
