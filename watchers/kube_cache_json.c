/*
 * kube_cache_json.c - readers of apiserver objects (part of the kube_cache
 * module, declared in kube_cache.h): dotted paths, labels, conditions, the
 * controller reference and RFC 3339 times. Every reader tolerates any JSON
 * shape: a mismatch gives NULL or the default.
 */
#include "kube_cache.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

const cJSON *tr_kube_obj_get(const cJSON *obj, const char *path)
{
    char segment[128];

    while (obj != NULL && path != NULL && *path != '\0') {
        const char *dot = strchr(path, '.');
        size_t len = dot != NULL ? (size_t)(dot - path) : strlen(path);

        if (len == 0 || len >= sizeof(segment) || !cJSON_IsObject(obj))
            return NULL;
        memcpy(segment, path, len);
        segment[len] = '\0';
        obj = cJSON_GetObjectItemCaseSensitive(obj, segment);
        path = dot != NULL ? dot + 1 : NULL;
    }
    return obj;
}

const char *tr_kube_obj_str(const cJSON *obj, const char *path)
{
    const cJSON *item = tr_kube_obj_get(obj, path);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

int64_t tr_kube_obj_int(const cJSON *obj, const char *path, int64_t dflt)
{
    const cJSON *item = tr_kube_obj_get(obj, path);

    /* Clamp before converting: a double out of int64 range is undefined behaviour. */
    if (!cJSON_IsNumber(item) || item->valuedouble != item->valuedouble)
        return dflt;
    if (item->valuedouble >= 9.0e18)
        return INT64_C(9000000000000000000);
    if (item->valuedouble <= -9.0e18)
        return -INT64_C(9000000000000000000);
    return (int64_t)item->valuedouble;
}

const char *tr_kube_obj_label(const cJSON *obj, const char *key)
{
    const cJSON *labels = tr_kube_obj_get(obj, "metadata.labels");
    const cJSON *item;

    if (!cJSON_IsObject(labels))
        return NULL;
    item = cJSON_GetObjectItemCaseSensitive(labels, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

const cJSON *tr_kube_obj_condition(const cJSON *obj, const char *type)
{
    const cJSON *conditions = tr_kube_obj_get(obj, "status.conditions");
    const cJSON *item;

    if (!cJSON_IsArray(conditions))
        return NULL;
    cJSON_ArrayForEach(item, conditions)
    {
        const char *t = tr_kube_obj_str(item, "type");

        if (t != NULL && strcmp(t, type) == 0)
            return item;
    }
    return NULL;
}

const cJSON *tr_kube_obj_controller(const cJSON *obj)
{
    const cJSON *refs = tr_kube_obj_get(obj, "metadata.ownerReferences");
    const cJSON *item, *first = NULL;

    if (!cJSON_IsArray(refs))
        return NULL;
    cJSON_ArrayForEach(item, refs)
    {
        if (tr_kube_obj_str(item, "kind") == NULL || tr_kube_obj_str(item, "name") == NULL)
            continue;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "controller")))
            return item;
        if (first == NULL)
            first = item;
    }
    return first;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int64_t tr_kube_time_ms(const char *text)
{
    struct tm tm;
    int year, mon, day, hour, min, sec, ms = 0, offset_min = 0;
    const char *p;
    time_t t;

    if (text == NULL || strlen(text) < 20 || digits(text, 4, &year) || text[4] != '-' ||
        digits(text + 5, 2, &mon) || text[7] != '-' || digits(text + 8, 2, &day) ||
        (text[10] != 'T' && text[10] != 't' && text[10] != ' ') ||
        digits(text + 11, 2, &hour) || text[13] != ':' || digits(text + 14, 2, &min) ||
        text[16] != ':' || digits(text + 17, 2, &sec))
        return 0;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
        return 0;
    p = text + 19;
    if (*p == '.') {
        int scale = 100;

        for (p++; isdigit((unsigned char)*p); p++) {
            ms += (*p - '0') * scale;
            scale /= 10;
        }
    }
    if (*p == '+' || *p == '-') {
        int oh, om;

        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || p[6] != '\0')
            return 0;
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
    } else if (!((*p == 'Z' || *p == 'z') && p[1] == '\0')) {
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return 0;
    return ((int64_t)t - (int64_t)offset_min * 60) * 1000 + ms;
}

