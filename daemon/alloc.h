/*
 * alloc.h - the one allocation wrapper of the process.
 *
 * Every allocation of triaged's own code goes through tr_malloc and friends,
 * and tr_alloc_install() hands the same functions to cJSON, libcurl, libuv
 * and SQLite, so that tests can count live allocations and make the N-th
 * allocation fail on purpose (curl's "torture" testing).
 *
 * The wrappers are thread-safe (the libuv thread pool and SQLite allocate
 * off the loop thread).
 */
#ifndef TR_ALLOC_H
#define TR_ALLOC_H

#include <stddef.h>

void *tr_malloc(size_t size);
void *tr_calloc(size_t count, size_t size);
void *tr_realloc(void *ptr, size_t size);
void tr_free(void *ptr);
/* Returns a copy the caller frees with tr_free, or NULL (s NULL or no memory). */
char *tr_strdup(const char *s);
/* Copies len bytes and adds a NUL; caller frees with tr_free. */
char *tr_strndup(const char *s, size_t len);

/*
 * Install the wrappers into cJSON, libcurl (curl_global_init_mem), libuv and
 * SQLite. Call once, first thing in main() and in each test program, before
 * any of those libraries is used. Returns 0 or a TR_E* code.
 */
int tr_alloc_install(void);

/* Release what tr_alloc_install() initialised (curl_global_cleanup, ...). */
void tr_alloc_uninstall(void);

/* Tests: how many allocations are live right now (allocations - frees). */
long tr_alloc_live(void);

/*
 * Tests: make the n-th allocation from now fail (1 = the next one), and
 * every one after it while `sticky` is set. 0 turns failure injection off.
 */
void tr_alloc_fail_after(long n, int sticky);

#endif
