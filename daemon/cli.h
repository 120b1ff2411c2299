/*
 * cli.h - the command line of the one `triaged` binary (DESIGN.md "CLI"):
 * run, check-config, version, and the client commands that talk to a
 * running daemon's HTTP API.
 *
 * Exit status: 0 ok, 1 runtime failure, 2 usage or configuration error.
 */
#ifndef TR_CLI_H
#define TR_CLI_H

enum {
    TR_EXIT_OK = 0,
    TR_EXIT_FAILURE = 1,
    TR_EXIT_USAGE = 2,
};

/* Parse argv, run the command, return the process exit status. */
int tr_cli_main(int argc, char **argv);

#endif
