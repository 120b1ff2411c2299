/*
 * kube_auth.h - credentials from a kubeconfig exec plugin (EKS, GKE, AKS
 * logins): runs the plugin off the loop with uv_spawn, caches what it
 * prints until its expirationTimestamp, and runs it again when the cache is
 * about to expire or the apiserver answers 401.
 *
 * The plugin gets its configured args and env on top of the daemon's
 * environment, plus KUBERNETES_EXEC_INFO (tr_kube_exec_request_json). Its
 * stdout is capped at TR_KUBE_EXEC_OUTPUT_MAX_BYTES, it is killed after the
 * timeout, and only the first line of its stderr is kept for the error
 * message (stdout holds the secret and is never logged).
 *
 * One plugin run at a time: callers that need credentials while it runs
 * queue a callback (at most TR_KUBE_AUTH_MAX_WAITERS). Loop thread only.
 */
#ifndef TR_KUBE_AUTH_H
#define TR_KUBE_AUTH_H

#include <stdint.h>
#include <uv.h>

#include "error.h"
#include "kubeconfig.h"

#define TR_KUBE_AUTH_MAX_WAITERS 256
#define TR_KUBE_AUTH_DEFAULT_TIMEOUT_MS 60000

typedef struct tr_kube_auth tr_kube_auth;

/* rc TR_OK: tr_kube_auth_current() now has a credential; else message says why not. */
typedef void (*tr_kube_auth_cb)(int rc, const char *message, void *userdata);

/*
 * A credential source for conn->exec. conn is borrowed and must outlive the
 * source. timeout_ms 0 = TR_KUBE_AUTH_DEFAULT_TIMEOUT_MS. Caller releases
 * it with tr_kube_auth_close.
 */
int tr_kube_auth_new(tr_kube_auth **out, uv_loop_t *loop, const tr_kube_conn *conn,
                     uint64_t timeout_ms, tr_error *err);

/*
 * The cached credential if it is usable (not expired, not rejected), else
 * NULL. Borrowed: valid until the next plugin run completes.
 */
const tr_kube_exec_cred *tr_kube_auth_current(const tr_kube_auth *auth);

/*
 * Make sure a credential is usable. TR_OK: it is, now (cb is not called; a
 * refresh may start in the background when expiry is near). TR_EBUSY: the
 * plugin is running and cb(userdata) runs once it ends. Else an error
 * (TR_ELIMIT too many waiters, TR_ENOMEM) and cb is not called.
 */
int tr_kube_auth_wait(tr_kube_auth *auth, tr_kube_auth_cb cb, void *userdata, tr_error *err);

/* Forget every queued callback with this userdata (its owner is going away). */
void tr_kube_auth_cancel(tr_kube_auth *auth, void *userdata);

/* The apiserver answered 401: drop the cached credential, the next wait re-runs the plugin. */
void tr_kube_auth_invalidate(tr_kube_auth *auth);

/* How many times the plugin has been started (tests, metrics). */
unsigned long tr_kube_auth_runs(const tr_kube_auth *auth);

/*
 * Kill a running plugin and release the source (what is still open is freed
 * by libuv close callbacks: run the loop afterwards). Queued callbacks are
 * dropped without being called. Accepts NULL.
 */
void tr_kube_auth_close(tr_kube_auth *auth);

#endif
