#include "alloc.h"
#include "error.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <malloc.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static atomic_long live_allocations;
static atomic_long fail_countdown; /* 0 = off */
static atomic_int fail_sticky;

static int should_fail(void)
{
    long left = atomic_load(&fail_countdown);

    if (left <= 0)
        return 0;
    if (left == 1) {
        if (!atomic_load(&fail_sticky))
            atomic_store(&fail_countdown, 0);
        return 1;
    }
    atomic_fetch_sub(&fail_countdown, 1);
    return 0;
}

void *tr_malloc(size_t size)
{
    void *p;

    if (should_fail())
        return NULL;
    p = malloc(size ? size : 1);
    if (p)
        atomic_fetch_add(&live_allocations, 1);
    return p;
}

void *tr_calloc(size_t count, size_t size)
{
    void *p;

    if (should_fail())
        return NULL;
    p = calloc(count ? count : 1, size ? size : 1);
    if (p)
        atomic_fetch_add(&live_allocations, 1);
    return p;
}

void *tr_realloc(void *ptr, size_t size)
{
    void *p;

    if (ptr == NULL)
        return tr_malloc(size);
    if (should_fail())
        return NULL;
    /* realloc(p, 0) frees in some libcs and not others; never ask for 0. */
    p = realloc(ptr, size ? size : 1);
    return p;
}

void tr_free(void *ptr)
{
    if (ptr == NULL)
        return;
    atomic_fetch_sub(&live_allocations, 1);
    free(ptr);
}

char *tr_strndup(const char *s, size_t len)
{
    char *copy;

    if (s == NULL)
        return NULL;
    copy = tr_malloc(len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

char *tr_strdup(const char *s)
{
    return s ? tr_strndup(s, strlen(s)) : NULL;
}

/* SQLite's allocator interface also wants to know sizes. */
static void *sqlite_malloc(int size) { return tr_malloc((size_t)size); }
static void sqlite_free(void *p) { tr_free(p); }
static void *sqlite_realloc(void *p, int size) { return tr_realloc(p, (size_t)size); }
static int sqlite_size(void *p) { return p ? (int)malloc_usable_size(p) : 0; }
static int sqlite_roundup(int n) { return (n + 7) & ~7; }
static int sqlite_init(void *unused) { (void)unused; return SQLITE_OK; }
static void sqlite_shutdown(void *unused) { (void)unused; }

static const sqlite3_mem_methods sqlite_methods = {
    sqlite_malloc, sqlite_free, sqlite_realloc, sqlite_size,
    sqlite_roundup, sqlite_init, sqlite_shutdown, NULL,
};

static void *cjson_malloc(size_t size) { return tr_malloc(size); }
static void cjson_free(void *p) { tr_free(p); }

int tr_alloc_install(void)
{
    cJSON_Hooks hooks = { cjson_malloc, cjson_free };

    cJSON_InitHooks(&hooks);
    if (uv_replace_allocator(tr_malloc, tr_realloc, tr_calloc, tr_free) != 0)
        return TR_ERROR;
    /* Fails with SQLITE_MISUSE once SQLite is initialised: harmless then. */
    (void)sqlite3_config(SQLITE_CONFIG_MALLOC, &sqlite_methods);
    if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, tr_malloc, tr_free, tr_realloc,
                             tr_strdup, tr_calloc) != CURLE_OK)
        return TR_ERROR;
    return TR_OK;
}

void tr_alloc_uninstall(void)
{
    curl_global_cleanup();
    (void)sqlite3_shutdown();
}

long tr_alloc_live(void)
{
    return atomic_load(&live_allocations);
}

void tr_alloc_fail_after(long n, int sticky)
{
    atomic_store(&fail_sticky, sticky ? 1 : 0);
    atomic_store(&fail_countdown, n > 0 ? n : 0);
}
