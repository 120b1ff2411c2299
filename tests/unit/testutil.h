/*
 * testutil.h - what every cmocka unit test includes: cmocka itself (which
 * needs these system headers first) and a main() helper that installs the
 * allocation wrapper and checks that the group leaked nothing of ours.
 */
#ifndef TR_TESTUTIL_H
#define TR_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"

/* Run a cmocka group with triaged's allocator installed. */
#define TR_RUN_TESTS(name, tests)                                              \
    do {                                                                       \
        int failed_;                                                           \
        if (tr_alloc_install() != 0) {                                         \
            fprintf(stderr, "tr_alloc_install failed\n");                      \
            return 1;                                                          \
        }                                                                      \
        failed_ = cmocka_run_group_tests_name((name), (tests), NULL, NULL);    \
        tr_alloc_uninstall();                                                  \
        return failed_;                                                        \
    } while (0)

#endif
