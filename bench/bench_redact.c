/*
 * bench_redact.c - redactor and log-window throughput on a generated,
 * realistic mixed log (~8 MB: access lines, JSON lines with pod and image
 * references, Java stack traces, a few seeded secrets). Prints MB/s and
 * checks the seeded secrets are gone; asserts nothing about time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "buf.h"
#include "logwin.h"
#include "redact.h"

#define TARGET_BYTES ((size_t)8 * 1024 * 1024)
#define ROUNDS 3

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const seeded[] = {
    "AKIAIOSFODNN7EXAMPLE", "ghp_0123456789abcdefghijABCDEFGHIJKLmnop", "hunter2-db-pass",
    "xoxb-1234567890-abcdefghijKLMN",
};

static int generate(tr_buf *log)
{
    unsigned seed = 42;
    int rc = 0;

    for (size_t i = 0; rc == 0 && log->len < TARGET_BYTES; i++) {
        seed = seed * 1103515245u + 12345u;
        switch (seed >> 16 & 7) {
        case 0:
            rc = tr_buf_printf(log, "{\"ts\":\"2024-05-01T10:00:%02zu\",\"level\":\"info\","
                                    "\"pod\":\"web-7d9c8b6f4-x2x9z\",\"image\":\"ghcr.io/shop/"
                                    "api@sha256:9b2a6f3c1d4e5f60718293a4b5c6d7e89b2a6f3c1d4e5f6"
                                    "0718293a4b5c6d7e8\",\"msg\":\"cache refreshed\"}\n", i % 60);
            break;
        case 1:
            rc = tr_buf_puts(log, "java.lang.IllegalStateException: pool exhausted\n"
                                  "\tat com.shop.db.Pool.acquire(Pool.java:118)\n"
                                  "\tat io.netty.channel.AbstractChannelHandlerContext.invoke"
                                  "(AbstractChannelHandlerContext.java:379)\n");
            break;
        default:
            rc = tr_buf_printf(log, "10.0.%u.%u - - [01/May/2024:10:00:00 +0000] \"GET "
                                    "/api/v1/items/%zu?page=2 HTTP/1.1\" 200 512 \"-\" "
                                    "\"Mozilla/5.0\" req=123e4567-e89b-12d3-a456-426614174000\n",
                               seed >> 8 & 255, seed & 255, i);
        }
        if (rc == 0 && i % 5000 == 0)
            rc = tr_buf_printf(log, "connecting with password=%s token %s id %s via %s\n",
                               seeded[2], seeded[1], seeded[0], seeded[3]);
    }
    return rc;
}

int main(void)
{
    tr_buf log = TR_BUF_INIT(0), out = TR_BUF_INIT(0);
    tr_logwin_options opt = { 65536, 200, 3, 8 };
    double t0, secs, mb;
    int rc = 1;

    if (tr_alloc_install() != 0 || generate(&log) != 0)
        goto cleanup;
    mb = (double)log.len / (1024.0 * 1024.0);
    t0 = now_s();
    for (int r = 0; r < ROUNDS; r++) {
        tr_redact_ctx *ctx = tr_redact_ctx_new();

        tr_buf_clear(&out);
        if (ctx == NULL || tr_redact_text_ctx(ctx, &out, log.ptr, log.len) != 0) {
            tr_redact_ctx_free(ctx);
            goto cleanup;
        }
        if (r == 0)
            printf("redact: %zu values masked (%zu distinct) in %.1f MB\n",
                   tr_redact_ctx_stats(ctx)->total, tr_redact_ctx_stats(ctx)->distinct, mb);
        tr_redact_ctx_free(ctx);
    }
    secs = now_s() - t0;
    printf("redact: %.1f MB/s\n", mb * ROUNDS / secs);
    for (size_t i = 0; i < sizeof(seeded) / sizeof(seeded[0]); i++)
        if (strstr(tr_buf_cstr(&out), seeded[i]) != NULL)
            printf("redact: LEAK: %s survived\n", seeded[i]);
    t0 = now_s();
    for (int r = 0; r < ROUNDS; r++) {
        tr_buf_clear(&out);
        if (tr_logwin_cut(&out, log.ptr, log.len, &opt, NULL) != 0)
            goto cleanup;
    }
    secs = now_s() - t0;
    printf("logwin: %.1f MB/s (8 MB log to %zu bytes)\n", mb * ROUNDS / secs, out.len);
    rc = 0;
cleanup:
    tr_buf_dispose(&log);
    tr_buf_dispose(&out);
    tr_alloc_uninstall();
    return rc;
}
