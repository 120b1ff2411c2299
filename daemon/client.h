/*
 * client.h - the client side of the CLI: commands that talk to a running
 * daemon over its HTTP API (incidents, show, accept, reject, chat, explain,
 * terraform). One request, one loop run, output on stdout.
 */
#ifndef TR_CLIENT_H
#define TR_CLIENT_H

#include "config.h"

typedef struct tr_client_request {
    const char *command;  /* "incidents", "show", ... */
    const char *arg;      /* ID, KIND/NAME or FILE; NULL when none */
    const char *server;   /* --server URL, or NULL: from the config */
    const char *state;    /* --state */
    const char *reason;   /* --reason */
    const char *ns;       /* -n */
    int json;             /* --json: print the API's JSON as is */
    int prompt;           /* show --prompt: the request body sent to the LLM */
} tr_client_request;

/*
 * Run one client command; cfg (may be NULL when --server was given) supplies
 * the daemon's address and token. Returns the process exit status.
 */
int tr_client_run(const tr_client_request *req, const tr_config *cfg);

#endif
