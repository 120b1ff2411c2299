/*
 * fuzz_patch.c - libFuzzer target for the intake of fixers/patch.c: arbitrary model output
 * through tr_patch_normalize (fences, prose, headers, hunks, path refusals). Whatever it
 * accepts must parse with libgit2's own diff parser and must normalise to itself (intake is
 * idempotent), so the text handed to git_apply_to_tree is always well-formed.
 */
#include "patch.h"

#include "alloc.h"

#include <git2.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int git_ready;
    char *once = NULL, *twice = NULL;
    size_t once_len = 0, twice_len = 0;
    tr_error err;
    git_diff *diff = NULL;

    if (!git_ready)
        git_ready = git_libgit2_init() > 0;
    if (tr_patch_normalize(&once, &once_len, (const char *)data, size, NULL, &err) != 0)
        return 0;
    if (tr_patch_normalize(&twice, &twice_len, once, once_len, NULL, &err) != 0 ||
        twice_len != once_len || memcmp(once, twice, once_len) != 0)
        abort();
    if (git_diff_from_buffer(&diff, once, once_len) == 0)
        git_diff_free(diff);
    tr_free(once);
    tr_free(twice);
    return 0;
}
