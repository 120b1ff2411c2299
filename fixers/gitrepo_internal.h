/*
 * gitrepo_internal.h - helpers shared by gitrepo.c (network: clone, fetch,
 * push), gitrepo_local.c (reading and committing) and gitrepo_async.c (the
 * loop object). Not part of the public surface.
 */
#ifndef TR_GITREPO_INTERNAL_H
#define TR_GITREPO_INTERNAL_H

#include <git2.h>

#include "gitrepo.h"

/*
 * Set err to "<fmt...>: <libgit2's last message>" (just fmt when libgit2 has
 * none), with every occurrence of secret (may be NULL or "") replaced by
 * "[redacted]". Returns code.
 */
int tr_gitrepo_fail(tr_error *err, int code, const char *secret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Open the repository at dir, with a clear error naming dir. */
int tr_gitrepo_open_dir(git_repository **out, const char *dir, tr_error *err);

/* Resolve a revspec (NULL = HEAD) to a commit, with a clear error. */
int tr_gitrepo_lookup_commit(git_commit **out, git_repository *repo, const char *rev,
                             tr_error *err);

#endif
