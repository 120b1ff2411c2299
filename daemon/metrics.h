/*
 * metrics.h - the metrics registry behind GET /metrics: counters, gauges and
 * histograms with fixed label names, rendered in the Prometheus text
 * exposition format 0.0.4, plus the standard process_* metrics.
 *
 * The registry owns its families and their series. A family has a fixed
 * list of label names and at most max_series_per_family series: a sample
 * for a new label combination beyond that is dropped and counted (in
 * triaged_metrics_series_dropped_total and tr_metrics_dropped()), never
 * grown, so label values that come from input cannot exhaust memory.
 *
 * Loop thread only: nothing here locks. Families and series are rendered in
 * the order they were created, so the output is stable.
 */
#ifndef TR_METRICS_H
#define TR_METRICS_H

#include <stddef.h>

#include "buf.h"

typedef struct tr_metrics tr_metrics;
typedef struct tr_metric_family tr_metric_family;

#define TR_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TR_METRICS_DEFAULT_MAX_SERIES 256
#define TR_METRICS_MAX_LABELS 8
#define TR_METRICS_MAX_BUCKETS 64

/* max_series_per_family 0 means TR_METRICS_DEFAULT_MAX_SERIES. Free with tr_metrics_free. */
int tr_metrics_new(tr_metrics **out, size_t max_series_per_family);
void tr_metrics_free(tr_metrics *reg);

/*
 * Render process_cpu_seconds_total, process_open_fds, process_max_fds,
 * process_resident_memory_bytes, process_virtual_memory_bytes and
 * process_start_time_seconds (read from /proc at render time) too.
 */
void tr_metrics_enable_process(tr_metrics *reg);

/*
 * Register a family. The variadic arguments are the label names, ended by
 * NULL (at most TR_METRICS_MAX_LABELS). A counter's name gets "_total"
 * appended unless it already ends so. Registering the same name again with
 * the same type and labels returns the existing family. Returns NULL on a
 * bad name, a clash or no memory (logged). The registry owns the family.
 */
tr_metric_family *tr_metrics_counter(tr_metrics *reg, const char *name, const char *help, ...);
tr_metric_family *tr_metrics_gauge(tr_metrics *reg, const char *name, const char *help, ...);
/*
 * buckets: strictly increasing upper bounds, +Inf is implied; NULL takes
 * Prometheus' default (0.005 ... 10 seconds).
 */
tr_metric_family *tr_metrics_histogram(tr_metrics *reg, const char *name, const char *help,
                                       const double *buckets, size_t bucket_count, ...);

/*
 * Record a sample. The variadic arguments are exactly as many label values
 * (const char *) as the family has label names. A NULL family is a no-op
 * returning 0, so optional metrics need no checks at call sites.
 *   tr_metric_inc: counters (value >= 0) and gauges (any sign) add value.
 *   tr_metric_set: gauges only.
 *   tr_metric_observe: histograms only.
 * Return 0, TR_EINVAL (wrong type, negative counter step, NULL label
 * value), TR_ELIMIT (series cap hit: sample dropped) or TR_ENOMEM.
 */
int tr_metric_inc(tr_metric_family *family, double value, ...);
int tr_metric_set(tr_metric_family *family, double value, ...);
int tr_metric_observe(tr_metric_family *family, double value, ...);

/* The current value of a counter or gauge series (a histogram's count); 0 if absent. */
double tr_metric_value(tr_metric_family *family, ...);

/* Samples dropped because a family had reached its series cap. */
unsigned long long tr_metrics_dropped(const tr_metrics *reg);

/* Append the whole exposition to out. Returns 0, TR_ETOOBIG or TR_ENOMEM. */
int tr_metrics_render(tr_metrics *reg, tr_buf *out);

#endif
