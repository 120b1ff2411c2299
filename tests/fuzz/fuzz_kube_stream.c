/*
 * fuzz_kube_stream.c - libFuzzer target for watchers/kube_stream.c: the
 * input is a watch response body. The first byte picks a chunk size, so the
 * same body is also split at arbitrary points; the line cap is small so the
 * over-long-line path is reached. Each event's Status fields are read too,
 * as the reflector does for ERROR events.
 */
#include "watchers/kube_stream.h"

#include "alloc.h"
#include "error.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_event(const tr_kube_event *ev, void *userdata)
{
    tr_kube_status status;
    size_t *count = userdata;

    tr_kube_status_read(ev->object, &status);
    (void)tr_kube_status_is_expired(&status); /* only crashes matter */
    (*count)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_kube_stream st;
    size_t chunk, off, count = 0;
    tr_error err;
    int rc = TR_OK;

    if (size == 0)
        return 0;
    chunk = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    tr_kube_stream_init(&st, 4096);
    for (off = 0; off < size && rc == TR_OK; off += chunk)
        rc = tr_kube_stream_feed(&st, (const char *)data + off, size - off < chunk ? size - off
                                                                                    : chunk,
                                 on_event, &count, &err);
    if (rc == TR_OK)
        (void)tr_kube_stream_finish(&st, &err);
    tr_kube_stream_dispose(&st);
    return 0;
}
