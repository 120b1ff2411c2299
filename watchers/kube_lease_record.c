/*
 * kube_lease_record.c - the pure half of kube_lease.h: MicroTime parsing and
 * formatting, reading a Lease object, deciding what to do with it, and
 * building the bodies that write it. No I/O, so the unit tests and the fuzz
 * target drive it directly.
 */
#include "kube_lease.h"
#include "alloc.h"
#include "kube_cache.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- time ---------------------------------------------------------------- */

int tr_kube_lease_parse_time(const char *text, int64_t *out_us)
{
    /* kube_cache's RFC 3339 reader gives milliseconds; MicroTime adds three digits. */
    int64_t ms = tr_kube_time_ms(text), sub_ms = 0;
    const char *frac;
    int i;

    if (ms <= 0)
        return TR_EPARSE;
    frac = text[19] == '.' ? text + 20 : NULL;
    for (i = 0; frac != NULL && i < 6 && isdigit((unsigned char)frac[i]); i++)
        if (i >= 3)
            sub_ms = sub_ms * 10 + (frac[i] - '0');
    for (; i < 6; i++)
        if (i >= 3)
            sub_ms *= 10;
    *out_us = ms * 1000 + sub_ms;
    return TR_OK;
}

int tr_kube_lease_format_time(int64_t unix_us, char *buf, size_t size)
{
    time_t secs = (time_t)(unix_us / 1000000);
    int64_t us = unix_us % 1000000;
    struct tm tm;
    char head[32];
    int n;

    if (unix_us < 0 || gmtime_r(&secs, &tm) == NULL ||
        strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return TR_EINVAL;
    n = snprintf(buf, size, "%s.%06dZ", head, (int)us);
    return n > 0 && (size_t)n < size ? TR_OK : TR_ETOOBIG;
}

/* ---- the record ------------------------------------------------------------ */

void tr_kube_lease_record_dispose(tr_kube_lease_record *rec)
{
    if (rec == NULL)
        return;
    tr_free(rec->resource_version);
    tr_free(rec->holder);
    memset(rec, 0, sizeof(*rec));
}

static int record_time(const cJSON *spec, const char *field, int64_t *out, tr_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(spec, field);

    *out = 0;
    if (item == NULL || cJSON_IsNull(item))
        return TR_OK;
    if (!cJSON_IsString(item) || tr_kube_lease_parse_time(item->valuestring, out) != TR_OK)
        return tr_error_set(err, TR_EPARSE, "Lease spec.%s: not a MicroTime", field);
    return TR_OK;
}

static int record_int(const cJSON *spec, const char *field, int64_t *out, tr_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(spec, field);

    *out = 0;
    if (item == NULL || cJSON_IsNull(item))
        return TR_OK;
    if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > 1e12)
        return tr_error_set(err, TR_EPARSE, "Lease spec.%s: not a count", field);
    *out = (int64_t)item->valuedouble;
    return TR_OK;
}

int tr_kube_lease_record_parse(tr_kube_lease_record *out, const char *json, size_t len,
                               tr_error *err)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *meta, *rv, *spec, *holder;
    int rc = TR_OK;

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(root)) {
        rc = tr_error_set(err, TR_EPARSE, "Lease: not a JSON object");
        goto cleanup;
    }
    meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
    if (!cJSON_IsString(rv) || rv->valuestring[0] == '\0') {
        rc = tr_error_set(err, TR_EPARSE, "Lease metadata.resourceVersion: missing");
        goto cleanup;
    }
    spec = cJSON_GetObjectItemCaseSensitive(root, "spec");
    if (spec != NULL && !cJSON_IsObject(spec)) {
        rc = tr_error_set(err, TR_EPARSE, "Lease spec: not an object");
        goto cleanup;
    }
    holder = cJSON_GetObjectItemCaseSensitive(spec, "holderIdentity");
    if (holder != NULL && !cJSON_IsNull(holder) && !cJSON_IsString(holder)) {
        rc = tr_error_set(err, TR_EPARSE, "Lease spec.holderIdentity: not a string");
        goto cleanup;
    }
    out->resource_version = tr_strdup(rv->valuestring);
    out->holder = tr_strdup(cJSON_GetStringValue(holder) ? cJSON_GetStringValue(holder) : "");
    if (out->resource_version == NULL || out->holder == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "Lease: out of memory");
        goto cleanup;
    }
    if ((rc = record_int(spec, "leaseDurationSeconds", &out->duration_s, err)) != TR_OK ||
        (rc = record_int(spec, "leaseTransitions", &out->transitions, err)) != TR_OK ||
        (rc = record_time(spec, "renewTime", &out->renew_us, err)) != TR_OK ||
        (rc = record_time(spec, "acquireTime", &out->acquire_us, err)) != TR_OK)
        goto cleanup;
cleanup:
    if (rc != TR_OK)
        tr_kube_lease_record_dispose(out);
    cJSON_Delete(root);
    return rc;
}

int tr_kube_lease_record_expired(const tr_kube_lease_record *rec, int64_t now_us)
{
    if (rec->holder == NULL || rec->holder[0] == '\0' || rec->renew_us == 0)
        return 1;
    return rec->renew_us + rec->duration_s * 1000000 < now_us;
}

tr_kube_lease_action tr_kube_lease_decide(const tr_kube_lease_record *rec, const char *identity,
                                          int64_t now_us)
{
    if (rec->holder != NULL && rec->holder[0] != '\0' && strcmp(rec->holder, identity) == 0)
        return TR_KUBE_LEASE_RENEW;
    return tr_kube_lease_record_expired(rec, now_us) ? TR_KUBE_LEASE_ACQUIRE
                                                     : TR_KUBE_LEASE_FOLLOW;
}

/* A key given twice (the JSON allows it) must not survive as a stale second copy. */
static void delete_all(cJSON *obj, const char *key)
{
    while (cJSON_GetObjectItemCaseSensitive(obj, key))
        cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
}

/* Set spec for action into spec (an object); the transitions count is the old one. */
static int fill_spec(cJSON *spec, tr_kube_lease_action action, const char *identity,
                     int64_t now_us, int64_t duration_s, int64_t transitions)
{
    char stamp[40];
    const cJSON *old_acquire = cJSON_GetObjectItemCaseSensitive(spec, "acquireTime");
    static const char *const fields[] = { "holderIdentity", "leaseDurationSeconds", "acquireTime",
                                          "renewTime", "leaseTransitions" };
    char *acquire = NULL;
    size_t i;
    int rc = TR_ENOMEM;

    if (tr_kube_lease_format_time(now_us, stamp, sizeof(stamp)) != TR_OK)
        return TR_EINVAL;
    /* A renewal keeps the acquireTime of the term; everything else restarts it. */
    acquire = tr_strdup(action == TR_KUBE_LEASE_RENEW && cJSON_IsString(old_acquire)
                            ? old_acquire->valuestring : stamp);
    if (acquire == NULL)
        return TR_ENOMEM;
    if (action == TR_KUBE_LEASE_ACQUIRE)
        transitions++;
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        delete_all(spec, fields[i]);
    if (cJSON_AddStringToObject(spec, "holderIdentity",
                                action == TR_KUBE_LEASE_RELEASE ? "" : identity) &&
        cJSON_AddNumberToObject(spec, "leaseDurationSeconds",
                                action == TR_KUBE_LEASE_RELEASE ? 1 : (double)duration_s) &&
        cJSON_AddStringToObject(spec, "acquireTime", acquire) &&
        cJSON_AddStringToObject(spec, "renewTime", stamp) &&
        cJSON_AddNumberToObject(spec, "leaseTransitions", (double)transitions))
        rc = TR_OK;
    tr_free(acquire);
    return rc;
}

static int print_body(char **out, cJSON *root, tr_error *err)
{
    *out = cJSON_PrintUnformatted(root);
    return *out ? TR_OK : tr_error_set(err, TR_ENOMEM, "Lease body: out of memory");
}

int tr_kube_lease_build_update(char **out, const char *lease_json, size_t len,
                               tr_kube_lease_action action, const char *identity,
                               int64_t now_us, int64_t duration_s, tr_error *err)
{
    tr_kube_lease_record rec;
    cJSON *root = NULL, *spec;
    int rc;

    *out = NULL;
    if ((rc = tr_kube_lease_record_parse(&rec, lease_json, len, err)) != TR_OK)
        return rc;
    root = cJSON_ParseWithLength(lease_json, len);
    if (root == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "Lease: out of memory");
        goto cleanup;
    }
    /* The server fills these in; sending managedFields back only bloats the PUT. */
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "metadata"),
                                            "managedFields");
    spec = cJSON_GetObjectItemCaseSensitive(root, "spec");
    if (spec == NULL && (spec = cJSON_AddObjectToObject(root, "spec")) == NULL) {
        rc = tr_error_set(err, TR_ENOMEM, "Lease: out of memory");
        goto cleanup;
    }
    rc = fill_spec(spec, action, identity, now_us, duration_s, rec.transitions);
    if (rc != TR_OK) {
        tr_error_set(err, rc, "Lease spec: cannot build (%s)", tr_strerror(rc));
        goto cleanup;
    }
    rc = print_body(out, root, err);
cleanup:
    cJSON_Delete(root);
    tr_kube_lease_record_dispose(&rec);
    return rc;
}

int tr_kube_lease_build_create(char **out, const char *namespace, const char *name,
                               const char *identity, int64_t now_us, int64_t duration_s,
                               tr_error *err)
{
    cJSON *root = cJSON_CreateObject(), *meta = NULL, *spec = NULL;
    int rc = TR_ENOMEM;

    *out = NULL;
    if (root && cJSON_AddStringToObject(root, "apiVersion", "coordination.k8s.io/v1") &&
        cJSON_AddStringToObject(root, "kind", "Lease") &&
        (meta = cJSON_AddObjectToObject(root, "metadata")) != NULL &&
        cJSON_AddStringToObject(meta, "name", name) &&
        cJSON_AddStringToObject(meta, "namespace", namespace) &&
        (spec = cJSON_AddObjectToObject(root, "spec")) != NULL)
        rc = fill_spec(spec, TR_KUBE_LEASE_ACQUIRE, identity, now_us, duration_s, -1);
    if (rc == TR_OK)
        rc = print_body(out, root, err);
    else
        tr_error_set(err, rc, "Lease: cannot build (%s)", tr_strerror(rc));
    cJSON_Delete(root);
    return rc;
}
