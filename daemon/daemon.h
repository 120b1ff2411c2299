/*
 * daemon.h - `triaged run`: the process around the pipeline. It owns the one
 * libuv loop and everything on it (store, HTTP server and client, watchers),
 * starts them in order, and on SIGTERM/SIGINT stops them in reverse order
 * within [daemon] shutdown_timeout.
 */
#ifndef TR_DAEMON_H
#define TR_DAEMON_H

#include "config.h"

/*
 * Run until a stop signal. Returns the process exit status: 0 after a clean
 * stop, 1 when something could not start (address in use, store cannot
 * open), 2 for configuration problems found at start (an unreadable token
 * file).
 */
int tr_daemon_run(const tr_config *cfg, const char *config_path);

#endif
