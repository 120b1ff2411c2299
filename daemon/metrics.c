/*
 * metrics.c - counters, gauges and histograms in Prometheus text format 0.0.4.
 *
 * Series are found by a linear scan over the family's label values: a
 * family is capped at max_series (a few hundred), samples are recorded at
 * request rate on one thread, and the scan keeps creation order for free,
 * which is what makes the rendering stable.
 */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "log.h"

#define DROPPED_NAME "triaged_metrics_series_dropped_total"

typedef enum family_type { TYPE_COUNTER, TYPE_GAUGE, TYPE_HISTOGRAM } family_type;

typedef struct series {
    char **values;
    double value;          /* counter or gauge */
    double sum;            /* histogram */
    uint64_t count;        /* histogram */
    uint64_t *buckets;     /* histogram: per bound, not cumulative */
} series;

struct tr_metric_family {
    tr_metrics *reg;
    family_type type;
    char *name;
    char *help;
    char *labels[TR_METRICS_MAX_LABELS];
    size_t label_count;
    double bounds[TR_METRICS_MAX_BUCKETS];
    size_t bound_count;
    series *series;
    size_t series_count;
    size_t series_alloc;
    unsigned long long dropped;
};

struct tr_metrics {
    tr_metric_family **families;
    size_t family_count;
    size_t family_alloc;
    size_t max_series;
    unsigned long long dropped;
    int process;
};

static const double default_buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5,   1,    2.5,   5,    10 };

int tr_metrics_new(tr_metrics **out, size_t max_series_per_family)
{
    tr_metrics *reg = tr_calloc(1, sizeof(*reg));

    *out = NULL;
    if (reg == NULL)
        return TR_ENOMEM;
    reg->max_series = max_series_per_family ? max_series_per_family
                                            : TR_METRICS_DEFAULT_MAX_SERIES;
    *out = reg;
    return TR_OK;
}

static void family_free(tr_metric_family *f)
{
    size_t i, j;

    if (f == NULL)
        return;
    for (i = 0; i < f->series_count; i++) {
        for (j = 0; j < f->label_count; j++)
            tr_free(f->series[i].values[j]);
        tr_free(f->series[i].values);
        tr_free(f->series[i].buckets);
    }
    for (j = 0; j < f->label_count; j++)
        tr_free(f->labels[j]);
    tr_free(f->series);
    tr_free(f->name);
    tr_free(f->help);
    tr_free(f);
}

void tr_metrics_free(tr_metrics *reg)
{
    size_t i;

    if (reg == NULL)
        return;
    for (i = 0; i < reg->family_count; i++)
        family_free(reg->families[i]);
    tr_free(reg->families);
    tr_free(reg);
}

void tr_metrics_enable_process(tr_metrics *reg)
{
    reg->process = 1;
}

unsigned long long tr_metrics_dropped(const tr_metrics *reg)
{
    return reg->dropped;
}

static int valid_name(const char *s, int colon_ok)
{
    size_t i;

    if (s == NULL || s[0] == '\0')
        return 0;
    for (i = 0; s[i]; i++) {
        char c = s[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (colon_ok && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static tr_metric_family *find_family(tr_metrics *reg, const char *name)
{
    size_t i;

    for (i = 0; i < reg->family_count; i++)
        if (strcmp(reg->families[i]->name, name) == 0)
            return reg->families[i];
    return NULL;
}

static int same_shape(const tr_metric_family *f, family_type type, const char **labels,
                      size_t label_count)
{
    size_t i;

    if (f->type != type || f->label_count != label_count)
        return 0;
    for (i = 0; i < label_count; i++)
        if (strcmp(f->labels[i], labels[i]) != 0)
            return 0;
    return 1;
}

static tr_metric_family *do_register(tr_metrics *reg, family_type type, const char *name,
                                     const char *help, const double *bounds,
                                     size_t bound_count, va_list ap)
{
    const char *labels[TR_METRICS_MAX_LABELS];
    size_t label_count = 0, i;
    tr_metric_family *f = NULL, *existing;
    tr_buf full = TR_BUF_INIT(256);
    const char *label;

    while ((label = va_arg(ap, const char *)) != NULL) {
        if (label_count == TR_METRICS_MAX_LABELS || !valid_name(label, 0) ||
            strncmp(label, "__", 2) == 0 || (type == TYPE_HISTOGRAM && !strcmp(label, "le"))) {
            tr_log_error("metrics", "%s: bad or too many label names", name ? name : "?");
            goto cleanup;
        }
        labels[label_count++] = label;
    }
    if (reg == NULL || !valid_name(name, 1)) {
        tr_log_error("metrics", "bad metric name '%s'", name ? name : "(null)");
        goto cleanup;
    }
    if (tr_buf_puts(&full, name) != TR_OK ||
        (type == TYPE_COUNTER && !ends_with(name, "_total") &&
         tr_buf_puts(&full, "_total") != TR_OK))
        goto cleanup;
    existing = find_family(reg, full.ptr);
    if (existing != NULL) {
        if (same_shape(existing, type, labels, label_count)) {
            tr_buf_dispose(&full);
            return existing;
        }
        tr_log_error("metrics", "%s registered twice with different types or labels", full.ptr);
        goto cleanup;
    }
    if (reg->family_count == reg->family_alloc) {
        size_t n = reg->family_alloc ? reg->family_alloc * 2 : 16;
        tr_metric_family **grown = tr_realloc(reg->families, n * sizeof(tr_metric_family *));
        if (grown == NULL)
            goto cleanup;
        reg->families = grown;
        reg->family_alloc = n;
    }
    f = tr_calloc(1, sizeof(*f));
    if (f == NULL)
        goto cleanup;
    f->reg = reg;
    f->type = type;
    f->name = tr_buf_detach(&full);
    f->help = tr_strdup(help ? help : "");
    if (f->name == NULL || f->help == NULL)
        goto fail;
    for (i = 0; i < label_count; i++) {
        f->labels[i] = tr_strdup(labels[i]);
        if (f->labels[i] == NULL)
            goto fail;
        f->label_count++;
    }
    if (type == TYPE_HISTOGRAM) {
        if (bounds == NULL) {
            bounds = default_buckets;
            bound_count = sizeof(default_buckets) / sizeof(default_buckets[0]);
        }
        if (bound_count == 0 || bound_count > TR_METRICS_MAX_BUCKETS)
            goto bad_buckets;
        for (i = 0; i < bound_count; i++) {
            if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
                goto bad_buckets;
            f->bounds[i] = bounds[i];
        }
        f->bound_count = bound_count;
    }
    reg->families[reg->family_count++] = f;
    return f;

bad_buckets:
    tr_log_error("metrics", "%s: buckets must be finite and strictly increasing", f->name);
fail:
    family_free(f);
    f = NULL;
cleanup:
    tr_buf_dispose(&full);
    return f;
}

tr_metric_family *tr_metrics_counter(tr_metrics *reg, const char *name, const char *help, ...)
{
    tr_metric_family *f;
    va_list ap;

    va_start(ap, help);
    f = do_register(reg, TYPE_COUNTER, name, help, NULL, 0, ap);
    va_end(ap);
    return f;
}

tr_metric_family *tr_metrics_gauge(tr_metrics *reg, const char *name, const char *help, ...)
{
    tr_metric_family *f;
    va_list ap;

    va_start(ap, help);
    f = do_register(reg, TYPE_GAUGE, name, help, NULL, 0, ap);
    va_end(ap);
    return f;
}

tr_metric_family *tr_metrics_histogram(tr_metrics *reg, const char *name, const char *help,
                                       const double *buckets, size_t bucket_count, ...)
{
    tr_metric_family *f;
    va_list ap;

    va_start(ap, bucket_count);
    f = do_register(reg, TYPE_HISTOGRAM, name, help, buckets, bucket_count, ap);
    va_end(ap);
    return f;
}

/* Finds the series for the label values in ap, creating it when create is set. */
static int get_series(tr_metric_family *f, va_list ap, int create, series **out)
{
    const char *values[TR_METRICS_MAX_LABELS];
    series *s;
    size_t i, j;

    *out = NULL;
    for (i = 0; i < f->label_count; i++) {
        values[i] = va_arg(ap, const char *);
        if (values[i] == NULL)
            return TR_EINVAL;
    }
    for (i = 0; i < f->series_count; i++) {
        for (j = 0; j < f->label_count; j++)
            if (strcmp(f->series[i].values[j], values[j]) != 0)
                break;
        if (j == f->label_count) {
            *out = &f->series[i];
            return TR_OK;
        }
    }
    if (!create)
        return TR_ENOTFOUND;
    if (f->series_count >= f->reg->max_series) {
        if (f->dropped++ == 0)
            tr_log_warn("metrics", "%s: more than %zu series, dropping new ones", f->name,
                        f->reg->max_series);
        f->reg->dropped++;
        return TR_ELIMIT;
    }
    if (f->series_count == f->series_alloc) {
        size_t n = f->series_alloc ? f->series_alloc * 2 : 4;
        series *grown;
        if (n > f->reg->max_series)
            n = f->reg->max_series;
        grown = tr_realloc(f->series, n * sizeof(*grown));
        if (grown == NULL)
            return TR_ENOMEM;
        f->series = grown;
        f->series_alloc = n;
    }
    s = &f->series[f->series_count];
    memset(s, 0, sizeof(*s));
    s->values = tr_calloc(f->label_count ? f->label_count : 1, sizeof(char *));
    if (s->values == NULL)
        return TR_ENOMEM;
    if (f->type == TYPE_HISTOGRAM) {
        s->buckets = tr_calloc(f->bound_count, sizeof(uint64_t));
        if (s->buckets == NULL)
            goto nomem;
    }
    for (i = 0; i < f->label_count; i++) {
        s->values[i] = tr_strdup(values[i]);
        if (s->values[i] == NULL)
            goto nomem;
    }
    f->series_count++;
    *out = s;
    return TR_OK;

nomem:
    for (i = 0; i < f->label_count; i++)
        tr_free(s->values[i]);
    tr_free(s->values);
    tr_free(s->buckets);
    return TR_ENOMEM;
}

int tr_metric_inc(tr_metric_family *f, double value, ...)
{
    series *s;
    va_list ap;
    int rc;

    if (f == NULL)
        return TR_OK;
    if (f->type == TYPE_HISTOGRAM || (f->type == TYPE_COUNTER && !(value >= 0)))
        return TR_EINVAL;
    va_start(ap, value);
    rc = get_series(f, ap, 1, &s);
    va_end(ap);
    if (rc == TR_OK)
        s->value += value;
    return rc;
}

int tr_metric_set(tr_metric_family *f, double value, ...)
{
    series *s;
    va_list ap;
    int rc;

    if (f == NULL)
        return TR_OK;
    if (f->type != TYPE_GAUGE)
        return TR_EINVAL;
    va_start(ap, value);
    rc = get_series(f, ap, 1, &s);
    va_end(ap);
    if (rc == TR_OK)
        s->value = value;
    return rc;
}

int tr_metric_observe(tr_metric_family *f, double value, ...)
{
    series *s;
    va_list ap;
    size_t i;
    int rc;

    if (f == NULL)
        return TR_OK;
    if (f->type != TYPE_HISTOGRAM || isnan(value))
        return TR_EINVAL;
    va_start(ap, value);
    rc = get_series(f, ap, 1, &s);
    va_end(ap);
    if (rc != TR_OK)
        return rc;
    for (i = 0; i < f->bound_count; i++) {
        if (value <= f->bounds[i]) {
            s->buckets[i]++;
            break;
        }
    }
    s->count++;
    s->sum += value;
    return TR_OK;
}

double tr_metric_value(tr_metric_family *f, ...)
{
    series *s = NULL;
    va_list ap;

    if (f == NULL)
        return 0;
    va_start(ap, f);
    (void)get_series(f, ap, 0, &s); /* absent reads as 0 */
    va_end(ap);
    if (s == NULL)
        return 0;
    return f->type == TYPE_HISTOGRAM ? (double)s->count : s->value;
}

/* Go's ParseFloat reads these; integers print without an exponent. */
static int put_number(tr_buf *out, double v)
{
    char text[40];

    if (isnan(v))
        return tr_buf_puts(out, "NaN");
    if (isinf(v))
        return tr_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 1e15)
        return tr_buf_printf(out, "%.0f", v);
    snprintf(text, sizeof(text), "%.15g", v);
    if (strtod(text, NULL) != v)
        snprintf(text, sizeof(text), "%.17g", v);
    return tr_buf_puts(out, text);
}

static int put_escaped(tr_buf *out, const char *s, int quote)
{
    int rc = TR_OK;

    for (; *s && rc == TR_OK; s++) {
        if (*s == '\\')
            rc = tr_buf_puts(out, "\\\\");
        else if (*s == '\n')
            rc = tr_buf_puts(out, "\\n");
        else if (quote && *s == '"')
            rc = tr_buf_puts(out, "\\\"");
        else
            rc = tr_buf_putc(out, *s);
    }
    return rc;
}

/* {a="x",b="y"} with an optional le, or nothing when there are no labels. */
static int put_labels(tr_buf *out, const tr_metric_family *f, const series *s, const char *le)
{
    size_t i;
    int rc = TR_OK;

    if (f->label_count == 0 && le == NULL)
        return TR_OK;
    rc = tr_buf_putc(out, '{');
    for (i = 0; i < f->label_count && rc == TR_OK; i++) {
        rc = tr_buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
        if (rc == TR_OK)
            rc = put_escaped(out, s->values[i], 1);
        if (rc == TR_OK)
            rc = tr_buf_putc(out, '"');
    }
    if (rc == TR_OK && le != NULL)
        rc = tr_buf_printf(out, "%sle=\"%s\"", f->label_count ? "," : "", le);
    if (rc == TR_OK)
        rc = tr_buf_putc(out, '}');
    return rc;
}

static int put_header(tr_buf *out, const char *name, const char *help, const char *type)
{
    int rc = tr_buf_printf(out, "# HELP %s ", name);

    if (rc == TR_OK)
        rc = put_escaped(out, help, 0);
    if (rc == TR_OK)
        rc = tr_buf_printf(out, "\n# TYPE %s %s\n", name, type);
    return rc;
}

static int put_sample(tr_buf *out, const char *name, const char *suffix,
                      const tr_metric_family *f, const series *s, const char *le, double v)
{
    int rc = tr_buf_printf(out, "%s%s", name, suffix);

    if (rc == TR_OK)
        rc = put_labels(out, f, s, le);
    if (rc == TR_OK)
        rc = tr_buf_putc(out, ' ');
    if (rc == TR_OK)
        rc = put_number(out, v);
    if (rc == TR_OK)
        rc = tr_buf_putc(out, '\n');
    return rc;
}

static int render_histogram_series(tr_buf *out, const tr_metric_family *f, const series *s)
{
    uint64_t cumulative = 0;
    char le[40];
    size_t i;
    int rc = TR_OK;

    for (i = 0; i < f->bound_count && rc == TR_OK; i++) {
        tr_buf bound = TR_BUF_INIT(sizeof(le) - 1);
        cumulative += s->buckets[i];
        rc = put_number(&bound, f->bounds[i]);
        if (rc == TR_OK) {
            snprintf(le, sizeof(le), "%s", tr_buf_cstr(&bound));
            rc = put_sample(out, f->name, "_bucket", f, s, le, (double)cumulative);
        }
        tr_buf_dispose(&bound);
    }
    if (rc == TR_OK)
        rc = put_sample(out, f->name, "_bucket", f, s, "+Inf", (double)s->count);
    if (rc == TR_OK)
        rc = put_sample(out, f->name, "_sum", f, s, NULL, s->sum);
    if (rc == TR_OK)
        rc = put_sample(out, f->name, "_count", f, s, NULL, (double)s->count);
    return rc;
}

static int render_family(tr_buf *out, const tr_metric_family *f)
{
    static const char *const type_names[] = { "counter", "gauge", "histogram" };
    size_t i;
    int rc = put_header(out, f->name, f->help, type_names[f->type]);

    for (i = 0; i < f->series_count && rc == TR_OK; i++) {
        if (f->type == TYPE_HISTOGRAM)
            rc = render_histogram_series(out, f, &f->series[i]);
        else
            rc = put_sample(out, f->name, "", f, &f->series[i], NULL, f->series[i].value);
    }
    return rc;
}

static int render_one(tr_buf *out, const char *name, const char *type, const char *help,
                      double value)
{
    int rc = put_header(out, name, help, type);

    if (rc == TR_OK)
        rc = tr_buf_printf(out, "%s ", name);
    if (rc == TR_OK)
        rc = put_number(out, value);
    if (rc == TR_OK)
        rc = tr_buf_putc(out, '\n');
    return rc;
}

/* Fields of /proc/self/stat after the command name, which may hold spaces. */
static int read_proc_stat(double *cpu_seconds, double *start_seconds)
{
    char line[1024], *p;
    unsigned long long utime = 0, stime = 0, starttime = 0, btime = 0;
    long ticks = sysconf(_SC_CLK_TCK);
    FILE *f;
    int field, found = 0;

    f = fopen("/proc/self/stat", "r");
    if (f == NULL)
        return TR_EIO;
    p = fgets(line, sizeof(line), f);
    fclose(f);
    if (p == NULL || (p = strrchr(line, ')')) == NULL || ticks <= 0)
        return TR_EIO;
    /* Field 3 (state) follows ") "; utime is 14, stime 15, starttime 22. */
    for (field = 2; *p && field < 22; p++) {
        if (*p != ' ')
            continue;
        field++;
        if (field == 14)
            utime = strtoull(p + 1, NULL, 10);
        else if (field == 15)
            stime = strtoull(p + 1, NULL, 10);
        else if (field == 22)
            starttime = strtoull(p + 1, NULL, 10);
    }
    f = fopen("/proc/stat", "r");
    if (f == NULL)
        return TR_EIO;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "btime %llu", &btime) == 1)
            found = 1;
    fclose(f);
    if (!found)
        return TR_EIO;
    *cpu_seconds = (double)(utime + stime) / (double)ticks;
    *start_seconds = (double)btime + (double)starttime / (double)ticks;
    return TR_OK;
}

static int render_process(tr_buf *out)
{
    unsigned long long vm_pages = 0, rss_pages = 0;
    double cpu = 0, start = 0, fds = 0;
    long page = sysconf(_SC_PAGESIZE);
    struct rlimit lim;
    struct dirent *entry;
    DIR *dir;
    FILE *f;
    int rc = TR_OK;

    if (read_proc_stat(&cpu, &start) == TR_OK) {
        rc = render_one(out, "process_cpu_seconds_total", "counter",
                        "Total user and system CPU time spent in seconds.", cpu);
        if (rc == TR_OK)
            rc = render_one(out, "process_start_time_seconds", "gauge",
                            "Start time of the process since unix epoch in seconds.", start);
    }
    dir = opendir("/proc/self/fd");
    if (dir != NULL && rc == TR_OK) {
        while ((entry = readdir(dir)) != NULL)
            if (entry->d_name[0] != '.')
                fds++;
        rc = render_one(out, "process_open_fds", "gauge", "Number of open file descriptors.",
                        fds - 1); /* not counting the directory being read */
    }
    if (dir != NULL)
        closedir(dir);
    if (rc == TR_OK && getrlimit(RLIMIT_NOFILE, &lim) == 0)
        rc = render_one(out, "process_max_fds", "gauge",
                        "Maximum number of open file descriptors.",
                        lim.rlim_cur == RLIM_INFINITY ? INFINITY : (double)lim.rlim_cur);
    f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &vm_pages, &rss_pages) != 2)
            vm_pages = rss_pages = 0;
        fclose(f);
        if (rc == TR_OK)
            rc = render_one(out, "process_virtual_memory_bytes", "gauge",
                            "Virtual memory size in bytes.", (double)vm_pages * (double)page);
        if (rc == TR_OK)
            rc = render_one(out, "process_resident_memory_bytes", "gauge",
                            "Resident memory size in bytes.", (double)rss_pages * (double)page);
    }
    return rc;
}

int tr_metrics_render(tr_metrics *reg, tr_buf *out)
{
    size_t i;
    int rc = TR_OK;

    for (i = 0; i < reg->family_count && rc == TR_OK; i++)
        rc = render_family(out, reg->families[i]);
    if (rc == TR_OK)
        rc = render_one(out, DROPPED_NAME, "counter",
                        "Metric samples dropped because their family had too many series.",
                        (double)reg->dropped);
    if (rc == TR_OK && reg->process)
        rc = render_process(out);
    return rc;
}
