/*
 * bench_ingest.c - replay a real 20k Warning-event watch stream through
 * parse → cache → classify → dedup → SQLite store, and compare with a bare
 * cJSON_Parse loop over the same lines (the ceiling). Then cache 5,000 pods
 * and report the bytes each costs. Prints figures; asserts nothing about time.
 *
 * The stream is gzip-compressed and zlib is not a dependency of triaged, so
 * it is decompressed by `gzip -dc` through popen. The database goes to
 * $BENCH_DIR (default /tmp): the store commits with synchronous=FULL, so the
 * figure depends on how fast that file system fsyncs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "kube_ingest.h"
#include "store.h"

#define MAX_LINES 200000
#define READ_BYTES 16384

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long peak_rss_kb(void)
{
    struct rusage usage;

    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
}

static char **read_lines(const char *path, size_t *count)
{
    char command[1024], *line = NULL;
    size_t cap = 0;
    ssize_t len;
    char **lines = calloc(MAX_LINES, sizeof(*lines));
    FILE *pipe;

    *count = 0;
    snprintf(command, sizeof(command), "gzip -dc '%s'", path);
    pipe = popen(command, "r");
    if (pipe == NULL || lines == NULL) {
        free(lines);
        return NULL;
    }
    while (*count < MAX_LINES && (len = getline(&line, &cap, pipe)) > 0) {
        lines[*count] = strndup(line, (size_t)len);
        if (lines[*count] == NULL)
            break;
        (*count)++;
    }
    free(line);
    pclose(pipe);
    return lines;
}

static int bench_events(char **lines, size_t count, const char *dir)
{
    char path[1024];
    tr_store *store = NULL;
    tr_kube_ingest *ingest = NULL;
    tr_kube_ingest_options options;
    tr_kube_ingest_stats stats;
    tr_error err = { 0 };
    double start, bare_s, full_s;
    size_t chunk_bytes = 0, batches = 0;
    size_t failed = 0;
    int rc;

    start = now_s();
    for (size_t i = 0; i < count; i++) {
        cJSON *json = cJSON_Parse(lines[i]);

        failed += json == NULL;
        cJSON_Delete(json);
    }
    bare_s = now_s() - start;

    snprintf(path, sizeof(path), "%s/bench.db", dir);
    rc = tr_store_open(&store, path, &err);
    tr_kube_ingest_options_default(&options);
    options.cluster = "bench";
    if (rc == 0)
        rc = tr_kube_ingest_new(&ingest, store, &options, wall_ms(), &err);
    if (rc != 0) {
        fprintf(stderr, "bench_ingest: %s\n", err.message);
        tr_store_close(store);
        return 1;
    }
    start = now_s();
    /* As the watcher does: the events of one read of the stream (curl hands over at most
     * CURL_MAX_WRITE_SIZE, 16 KiB) are written in one store batch, one fsync. */
    for (size_t i = 0; rc == 0 && i < count; i++) {
        cJSON *json;
        const cJSON *type, *object;

        if (chunk_bytes == 0 && (rc = tr_store_batch_begin(store, &err)) != 0)
            break;
        chunk_bytes += strlen(lines[i]) + 1;
        json = cJSON_Parse(lines[i]);
        type = cJSON_GetObjectItemCaseSensitive(json, "type");
        object = cJSON_GetObjectItemCaseSensitive(json, "object");
        if (cJSON_IsString(type))
            rc = tr_kube_ingest_object(ingest, "events", type->valuestring, object, wall_ms(),
                                       &err);
        cJSON_Delete(json);
        if (chunk_bytes >= READ_BYTES || i + 1 == count) {
            int crc = tr_store_batch_commit(store, rc == 0 ? &err : NULL);

            rc = rc != 0 ? rc : crc;
            chunk_bytes = 0;
            batches++;
        }
    }
    if (rc == 0 && (rc = tr_store_batch_begin(store, &err)) == 0) {
        rc = tr_kube_ingest_tick(ingest, wall_ms() + 60000, &err);
        int crc = tr_store_batch_commit(store, rc == 0 ? &err : NULL);

        rc = rc != 0 ? rc : crc;
        batches++;
    }
    full_s = now_s() - start;
    if (rc != 0)
        fprintf(stderr, "bench_ingest: %s\n", err.message);
    tr_kube_ingest_stats_get(ingest, &stats);
    printf("lines:                 %zu (%zu unparseable)\n", count, failed);
    printf("bare cJSON_Parse:      %.0f events/s\n", (double)count / bare_s);
    printf("parse+classify+store:  %.0f events/s\n", (double)count / full_s);
    printf("ratio:                 %.2f (aim >= 0.50)\n", bare_s / full_s);
    printf("findings:              %llu -> incidents created %llu, observations written %llu, "
           "coalesced %llu\n",
           (unsigned long long)stats.findings, (unsigned long long)stats.created,
           (unsigned long long)stats.observations, (unsigned long long)stats.coalesced);
    printf("store commits:         %zu (one per %d-byte read of the stream)\n", batches,
           READ_BYTES);
    printf("cache:                 %zu event counters, %zu bytes\n", stats.cache.event_keys,
           stats.cache.bytes);
    tr_kube_ingest_free(ingest);
    tr_store_close(store);
    return rc != 0;
}

static void bench_pods(const char *fixture, int pods)
{
    char *text = NULL;
    size_t cap = 0;
    FILE *f = fopen(fixture, "rb");
    cJSON *pod, *meta;
    tr_kube_cache *cache = NULL;
    tr_kube_cache_stats stats;
    char name[64];
    long rss_before, rss_after;

    if (f == NULL || getdelim(&text, &cap, '\0', f) <= 0) {
        if (f != NULL)
            fclose(f);
        free(text);
        fprintf(stderr, "bench_ingest: cannot read %s\n", fixture);
        return;
    }
    fclose(f);
    pod = cJSON_Parse(text);
    free(text);
    meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    if (pod == NULL || tr_kube_cache_new(&cache, NULL, NULL) != 0) {
        cJSON_Delete(pod);
        return;
    }
    rss_before = peak_rss_kb();
    for (int i = 0; i < pods; i++) {
        snprintf(name, sizeof(name), "checkout-%d-5f794b8478-%05d", i % 250, i);
        cJSON_ReplaceItemInObject(meta, "name", cJSON_CreateString(name));
        (void)tr_kube_cache_apply(cache, TR_KUBE_RES_PODS, 0, pod, wall_ms());
    }
    rss_after = peak_rss_kb();
    tr_kube_cache_stats_get(cache, &stats);
    printf("pod cache:             %zu pods, %zu bytes (%zu bytes/pod), peak RSS +%ld KiB\n",
           stats.pods, stats.bytes, stats.bytes / (stats.pods ? stats.pods : 1),
           rss_after - rss_before);
    tr_kube_cache_free(cache);
    cJSON_Delete(pod);
}

int main(void)
{
    const char *shared = getenv("SHARED") != NULL ? getenv("SHARED") : "../shared";
    const char *tmp = getenv("BENCH_DIR") != NULL ? getenv("BENCH_DIR") : "/tmp";
    char path[512], dir[512], db[600];
    size_t count = 0;
    char **lines;
    int rc;

    if (tr_alloc_install() != 0)
        return 1;
    snprintf(path, sizeof(path), "%s/fixtures/k8s/bench/warning-events-20k.jsonl.gz", shared);
    snprintf(dir, sizeof(dir), "%s/bench_ingest.XXXXXX", tmp);
    lines = read_lines(path, &count);
    if (lines == NULL || count == 0 || mkdtemp(dir) == NULL) {
        fprintf(stderr, "bench_ingest: cannot read %s\n", path);
        return 1;
    }
    rc = bench_events(lines, count, dir);
    for (size_t i = 0; i < count; i++)
        free(lines[i]);
    free(lines);
    snprintf(path, sizeof(path), "%s/fixtures/k8s/pod-crashloop-oomkilled.json", shared);
    bench_pods(path, 5000);
    printf("peak RSS:              %ld KiB\n", peak_rss_kb());
    snprintf(db, sizeof(db), "%s/bench.db", dir);
    unlink(db);
    snprintf(db, sizeof(db), "%s/bench.db-wal", dir);
    unlink(db);
    snprintf(db, sizeof(db), "%s/bench.db-shm", dir);
    unlink(db);
    rmdir(dir);
    tr_alloc_uninstall();
    return rc;
}
