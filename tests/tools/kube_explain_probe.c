/*
 * kube_explain_probe.c - `triaged explain` before the CLI wires it: runs
 * tr_explain_run_ex (watchers/kube_explain.h) for the integration tests
 * (tests/integration/test_kube_evidence.py) and exits with its status.
 *
 *   kube_explain_probe CONFIG KIND/NAME NAMESPACE [--evidence]
 *
 * Exit 3 when the config cannot be loaded, 4 when memory of ours leaked.
 */
#include "alloc.h"
#include "config.h"
#include "kube_explain.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    tr_explain_options options = { 0, 0 };
    tr_config *cfg = NULL;
    tr_error err = { 0 };
    int status;

    if (argc < 4) {
        fprintf(stderr, "usage: %s CONFIG KIND/NAME NAMESPACE [--evidence]\n", argv[0]);
        return 2;
    }
    options.show_evidence = argc > 4 && strcmp(argv[4], "--evidence") == 0;
    options.connect_timeout_ms = 5000;
    if (tr_alloc_install() != 0)
        return 3;
    if (tr_config_load(&cfg, argv[1], &err) != 0) {
        fprintf(stderr, "%s\n", err.message);
        return 3;
    }
    status = tr_explain_run_ex(cfg, argv[2], argv[3], &options, stdout);
    tr_config_free(cfg);
    fflush(stdout);
    if (tr_alloc_live() != 0) {
        fprintf(stderr, "kube_explain_probe: %ld allocations of ours leaked\n", tr_alloc_live());
        return 4;
    }
    tr_alloc_uninstall();
    return status;
}
